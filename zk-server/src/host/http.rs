//! The two HTTP endpoints, on one small HTTP/1.1 server (hyper): the AdminServer
//! (`GET <commandURL>` lists the commands, `GET <commandURL>/<name>?k=v` runs one) and the
//! Prometheus endpoint (`GET /metrics`). Both ask the node task, through the channel the
//! client connections use, for an answer rendered from its one view of the server
//! ([`crate::admin::commands`], [`crate::admin::metrics`]).
//!
//! Like Apache: a standalone server whose AdminServer port is taken does not start, an
//! ensemble member logs it and goes on; a metrics port that is taken stops either.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::admin::commands::{self, AdminRequest};
use crate::admin::metrics;
use crate::config::ServerConfig;
use crate::error::{Result, ServerError};
use crate::host::client::ClientMsg;

/// The bound HTTP listeners of one server, not yet serving.
#[derive(Debug, Default)]
pub struct HttpEndpoints {
    admin: Option<(TcpListener, String)>,
    metrics: Option<TcpListener>,
}

impl HttpEndpoints {
    /// Binds the AdminServer (`admin.enableServer`) and the metrics endpoint
    /// (`metricsProvider.className`) as `config` asks. A taken AdminServer port fails a
    /// standalone server and is only logged by an ensemble `member`; a taken metrics port
    /// fails both (Apache's behaviour).
    pub async fn bind(config: &ServerConfig, member: bool) -> Result<Self> {
        let mut out = HttpEndpoints::default();
        if config.admin.enabled {
            let addr = config.admin.addr();
            match TcpListener::bind(addr).await {
                Ok(l) => {
                    let url = config.admin.command_url.clone();
                    tracing::info!(
                        "AdminServer on http://{}{url}",
                        l.local_addr().unwrap_or(addr)
                    );
                    out.admin = Some((l, url));
                }
                Err(e) if member => tracing::warn!(
                    "problem starting the AdminServer on {addr} (admin.serverPort={}): {e}; \
                     going on without it",
                    addr.port()
                ),
                Err(e) => {
                    return Err(ServerError::Endpoint {
                        key: "admin.serverPort",
                        what: "the AdminServer",
                        addr,
                        source: e,
                    })
                }
            }
        }
        if let Some(m) = &config.metrics {
            let addr = m.addr();
            let l = TcpListener::bind(addr)
                .await
                .map_err(|e| ServerError::Endpoint {
                    key: "metricsProvider.httpPort",
                    what: "Prometheus /metrics",
                    addr,
                    source: e,
                })?;
            tracing::info!(
                "Prometheus metrics on http://{}/metrics",
                l.local_addr().unwrap_or(addr)
            );
            out.metrics = Some(l);
        }
        Ok(out)
    }

    /// The AdminServer's address, when it listens.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().and_then(|(l, _)| l.local_addr().ok())
    }

    /// The metrics endpoint's address, when it listens.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Starts serving; answers come from the node task behind `node`. The tasks end when
    /// aborted (with the node).
    pub fn spawn(self, node: UnboundedSender<ClientMsg>) -> Vec<JoinHandle<()>> {
        let mut tasks = Vec::new();
        if let Some((l, url)) = self.admin {
            let route = Route::Admin(url);
            tasks.push(tokio::spawn(serve(l, route, node.clone())));
        }
        if let Some(l) = self.metrics {
            tasks.push(tokio::spawn(serve(l, Route::Metrics, node)));
        }
        tasks
    }
}

/// What one listener serves.
#[derive(Debug, Clone)]
enum Route {
    /// The AdminServer under this command URL.
    Admin(String),
    /// `/metrics`.
    Metrics,
}

async fn serve(listener: TcpListener, route: Route, node: UnboundedSender<ClientMsg>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                // Out of descriptors and the like: wait, as the client listener does.
                tracing::warn!("HTTP accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let route = route.clone();
        let node = node.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let route = route.clone();
                let node = node.clone();
                async move { Ok::<_, Infallible>(answer(req, &route, &node).await) }
            });
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!("HTTP connection from {peer}: {e}");
            }
        });
    }
}

fn reply(
    status: StatusCode,
    content_type: Option<&'static str>,
    body: String,
) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    if let Some(t) = content_type {
        r.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(t));
    }
    r
}

fn not_found(path: &str) -> Response<Full<Bytes>> {
    reply(
        StatusCode::NOT_FOUND,
        Some("text/plain; charset=utf-8"),
        format!("404 Not Found: {path}\n"),
    )
}

/// Asks the node task and waits for its rendering.
async fn ask(node: &UnboundedSender<ClientMsg>, request: AdminRequest) -> Option<String> {
    let (tx, rx) = oneshot::channel();
    node.send(ClientMsg::Admin { request, reply: tx }).ok()?;
    rx.await.ok()
}

async fn answer(
    req: Request<Incoming>,
    route: &Route,
    node: &UnboundedSender<ClientMsg>,
) -> Response<Full<Bytes>> {
    if req.method() != Method::GET {
        return reply(
            StatusCode::METHOD_NOT_ALLOWED,
            Some("text/plain; charset=utf-8"),
            format!("405 {} not allowed: GET only\n", req.method()),
        );
    }
    let path = req.uri().path().to_owned();
    let request = match route {
        Route::Metrics if path == "/metrics" => AdminRequest::Metrics,
        Route::Metrics => return not_found(&path),
        Route::Admin(url) => match path.strip_prefix(url.as_str()) {
            // Apache's list page has no content type.
            Some("" | "/") => return reply(StatusCode::OK, None, commands::list_page(url)),
            Some(rest) if rest.starts_with('/') => AdminRequest::Command {
                name: rest[1..].to_owned(),
                params: query_params(req.uri().query().unwrap_or("")),
            },
            _ => return not_found(&path),
        },
    };
    let content_type = match request {
        AdminRequest::Metrics => metrics::CONTENT_TYPE,
        AdminRequest::Command { .. } => "application/json",
    };
    match ask(node, request).await {
        Some(body) => reply(StatusCode::OK, Some(content_type), body),
        None => reply(
            StatusCode::SERVICE_UNAVAILABLE,
            Some("text/plain; charset=utf-8"),
            "503 the server is shutting down\n".into(),
        ),
    }
}

/// `a=1&b=x%20y` as pairs, percent-decoded (`+` is a space, as in a form).
fn query_params(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query() {
        assert_eq!(
            query_params("traceMask=306&x=a%20b+c&flag"),
            vec![
                ("traceMask".into(), "306".into()),
                ("x".into(), "a b c".into()),
                ("flag".into(), String::new()),
            ]
        );
        // Malformed escapes stay as they are; nothing panics.
        assert_eq!(percent_decode("%"), "%");
        assert_eq!(percent_decode("%4"), "%4");
        assert_eq!(percent_decode("%zz"), "%zz");
        assert_eq!(percent_decode("%41"), "A");
    }
}
