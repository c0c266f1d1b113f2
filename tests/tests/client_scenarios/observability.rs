//! Tracing spans and counters: a subscriber layer records every `zk_request` and
//! `zk_connect` span with its fields; the client's [`zk_client::Metrics`] count requests,
//! errors by code, connection attempts, reconnects, expiries and watch events.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tests::proxy::Proxy;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::Subscriber;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;
use zk_client::{Acl, Client, CreateMode, ErrorCode, SessionState};

/// One recorded span: its name and every field recorded on it (as text).
#[derive(Debug, Clone, Default)]
pub struct SpanRec {
    pub name: String,
    pub fields: BTreeMap<String, String>,
}

#[derive(Clone, Default)]
struct Capture {
    spans: Arc<Mutex<Vec<SpanRec>>>,
    by_id: Arc<Mutex<BTreeMap<u64, usize>>>,
}

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, _: Context<'_, S>) {
        let mut rec = SpanRec {
            name: attrs.metadata().name().to_owned(),
            ..Default::default()
        };
        attrs.record(&mut Fields(&mut rec.fields));
        let mut spans = self.spans.lock().unwrap();
        self.by_id
            .lock()
            .unwrap()
            .insert(id.into_u64(), spans.len());
        spans.push(rec);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _: Context<'_, S>) {
        let Some(i) = self.by_id.lock().unwrap().get(&id.into_u64()).copied() else {
            return;
        };
        values.record(&mut Fields(&mut self.spans.lock().unwrap()[i].fields));
    }
}

impl Capture {
    fn named(&self, name: &str) -> Vec<SpanRec> {
        self.spans
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.name == name)
            .cloned()
            .collect()
    }
}

/// Spans and counters against the server at `hosts`. Must run on a current-thread
/// runtime: the capturing subscriber is this thread's default.
pub async fn spans_and_counters(hosts: &str) {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry()
        .with(
            tracing_subscriber::filter::Targets::new()
                .with_target("zk_client", tracing::Level::DEBUG),
        )
        .with(capture.clone());
    let _guard = tracing::subscriber::set_default(subscriber);

    let target = hosts.split(',').next().unwrap().parse().unwrap();
    let proxy = Proxy::start(target).await.unwrap();
    let via = proxy.addr().to_string();
    let c = Client::builder(&via)
        .session_timeout(Duration::from_secs(4))
        .reconnect_jitter(Duration::from_millis(50))
        .connect()
        .await
        .unwrap();
    let server = via.clone();

    // A connection attempt: one span naming the server, its number and the outcome.
    let connects = capture.named("zk_connect");
    assert_eq!(connects.len(), 1, "{connects:?}");
    assert_eq!(connects[0].fields["server"], server);
    assert_eq!(connects[0].fields["attempt"], "1");
    assert_eq!(connects[0].fields["outcome"], "connected");
    assert_eq!(connects[0].fields["tls"], "false");

    // Requests: op, path, xid, zxid, server; errors name their code.
    let open = Acl::open_unsafe();
    let _ = c.delete("/obs/w", None).await;
    let _ = c.delete("/obs", None).await;
    let before = c.metrics();
    c.create("/obs", b"x", &open, CreateMode::Persistent)
        .await
        .unwrap();
    let (_, stat) = c.get_data("/obs", false).await.unwrap();
    assert!(matches!(
        c.get_data("/obs/none", false).await,
        Err(zk_client::Error::NoNode { .. })
    ));
    assert!(c.exists("/obs/w", true).await.unwrap().is_none());
    c.create("/obs/w", b"", &open, CreateMode::Persistent)
        .await
        .unwrap();
    let reqs = capture.named("zk_request");
    let find = |op: &str, path: &str| -> Vec<SpanRec> {
        reqs.iter()
            .filter(|s| s.fields.get("op").map(String::as_str) == Some(op))
            .filter(|s| s.fields.get("path").map(String::as_str) == Some(path))
            .cloned()
            .collect()
    };
    let create = &find("Create", "/obs")[0];
    assert_eq!(create.fields["server"], server);
    assert!(create.fields["xid"].parse::<i32>().unwrap() > 0);
    assert!(!create.fields.contains_key("err"), "{create:?}");
    let get = &find("GetData", "/obs")[0];
    assert!(get.fields["zxid"].parse::<i64>().unwrap() >= stat.mzxid);
    // Consecutive requests of one session have consecutive xids.
    let xid = |s: &SpanRec| s.fields["xid"].parse::<i32>().unwrap();
    assert_eq!(xid(get), xid(create) + 1);
    let missing = &find("GetData", "/obs/none")[0];
    assert_eq!(missing.fields["err"], "NoNode");
    assert_eq!(xid(missing), xid(get) + 1);

    // Counters.
    let m = c.metrics();
    assert_eq!(m.requests - before.requests, 5);
    assert_eq!(
        m.errors.get(&ErrorCode::NoNode).copied().unwrap_or(0)
            - before.errors.get(&ErrorCode::NoNode).copied().unwrap_or(0),
        1
    );
    assert_eq!(m.latency_buckets.iter().sum::<u64>(), m.requests);
    assert!(m.mean_latency() > Duration::ZERO);
    // The exists watch fired on the create.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while c.metrics().watch_events < 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no watch event counted"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(m.reconnects, 0);
    assert_eq!(m.connection_attempts, 1);

    // A lost connection: a reconnect, a second attempt span.
    proxy.drop_connections();
    c.wait_for_state(Duration::from_secs(1), |s| s == SessionState::Disconnected)
        .await
        .unwrap();
    c.wait_for_state(Duration::from_secs(10), SessionState::is_connected)
        .await
        .unwrap();
    let m = c.metrics();
    assert_eq!(m.reconnects, 1);
    assert!(m.connection_attempts >= 2);
    let connects = capture.named("zk_connect");
    assert_eq!(connects.len() as u64, m.connection_attempts);
    assert_eq!(connects[1].fields["attempt"], "2");

    // The session expires (closed from a second client resuming it; retried if the
    // first client takes the session back meanwhile).
    for _ in 0..5 {
        if let Ok(other) = Client::builder(hosts)
            .session(c.session_id(), c.session_password())
            .connect()
            .await
        {
            let _ = other.close().await;
        }
        if c.wait_for_state(Duration::from_secs(3), |s| s == SessionState::Expired)
            .await
            .is_ok()
        {
            break;
        }
    }
    assert_eq!(c.state(), SessionState::Expired);
    assert_eq!(c.metrics().session_expiries, 1);
}
