//! [`ServiceRegistry`]: registering instances and one-off queries.

use std::sync::Mutex;

use crate::discovery::instance::{now_ms, LoadReport, ServiceInstance};
use crate::ephemeral::{EphemeralEvent, EphemeralNode};
use crate::error::{Error, Result};
use crate::events::EventStream;
use crate::session::Session;
use crate::util::{join, retry};

/// The registry under a base path (Curator's default is [`super::DEFAULT_BASE`]).
#[derive(Debug, Clone)]
pub struct ServiceRegistry {
    session: Session,
    base: String,
}

/// A registered instance, kept registered across session expiry until
/// [`Registration::unregister`] (or drop).
///
/// Taking it out of rotation ([`Self::set_enabled`], or a failing
/// [`super::HealthMonitor`]) keeps it registered and listed with `enabled: false`; pickers
/// skip it. The published `enabled` is "an operator has not disabled it *and* its health
/// check (if any) passes", so a health check never puts back an instance an operator took
/// out.
#[derive(Debug)]
pub struct Registration {
    node: EphemeralNode,
    instance: Mutex<ServiceInstance>,
    /// Serializes read-modify-write updates (load reports, rotation, health), so one
    /// never overwrites another's field with a stale copy.
    writes: tokio::sync::Mutex<()>,
    flags: Mutex<Flags>,
}

#[derive(Debug, Clone, Copy)]
struct Flags {
    admin: bool,
    healthy: bool,
}

impl Registration {
    /// The registered instance as last written.
    pub fn instance(&self) -> ServiceInstance {
        self.instance
            .lock()
            .map(|i| i.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// The node path.
    pub fn path(&self) -> &str {
        self.node.path()
    }

    /// Rewrites the instance (id and name must stay). Its `enabled` field is ignored:
    /// rotation is [`Self::set_enabled`]'s and the health check's (so rewriting a copy
    /// read while unhealthy does not disable the instance for good).
    pub async fn update(&self, instance: ServiceInstance) -> Result<()> {
        self.modify(|i| *i = instance).await
    }

    /// Applies `f` to the instance and writes the result, one update at a time.
    async fn modify(&self, f: impl FnOnce(&mut ServiceInstance)) -> Result<()> {
        let _turn = self.writes.lock().await;
        let mut inst = self.instance();
        f(&mut inst);
        let flags = self.flags();
        inst.enabled = flags.admin && flags.healthy;
        let data = inst.to_json()?;
        if let Ok(mut i) = self.instance.lock() {
            *i = inst;
        }
        self.node.set_data(&data).await
    }

    fn flags(&self) -> Flags {
        self.flags.lock().map(|f| *f).unwrap_or(Flags {
            admin: true,
            healthy: true,
        })
    }

    /// Publishes a load report (version-checked write of the instance node). Returns the
    /// report written. Rate limiting is [`crate::balancing::LoadPublisher`]'s job.
    pub async fn report_load(&self, value: u64) -> Result<LoadReport> {
        let mut report = None;
        self.modify(|inst| {
            let r = LoadReport {
                value,
                seq: inst.load.as_ref().map_or(1, |l| l.seq + 1),
                reported_at_ms: now_ms(),
            };
            inst.load = Some(r.clone());
            report = Some(r);
        })
        .await?;
        report.ok_or(Error::Closed)
    }

    /// Takes the instance out of rotation (`false`) or puts it back (`true`) without
    /// unregistering it (CURATOR-38, CURATOR-275): it stays registered and listed with
    /// `enabled: false`, and [`crate::balancing::ServiceProvider`] no longer picks it, e.g.
    /// to drain a server before maintenance. Survives session expiry (the re-created node
    /// carries it).
    pub async fn set_enabled(&self, enabled: bool) -> Result<()> {
        if let Ok(mut f) = self.flags.lock() {
            f.admin = enabled;
        }
        self.modify(|_| {}).await
    }

    /// Whether the instance is published as in rotation.
    pub fn is_enabled(&self) -> bool {
        self.instance().enabled
    }

    /// The health half of `enabled` (see [`super::HealthMonitor`]).
    pub(crate) async fn set_healthy(&self, healthy: bool) -> Result<()> {
        if let Ok(mut f) = self.flags.lock() {
            f.healthy = healthy;
        }
        self.modify(|_| {}).await
    }

    /// Session events and re-registrations of this instance.
    pub fn events(&self) -> EventStream<EphemeralEvent> {
        self.node.events()
    }

    /// Removes the instance.
    pub async fn unregister(self) -> Result<()> {
        self.node.delete().await
    }
}

impl ServiceRegistry {
    /// A registry under `base` (e.g. `"/services"`).
    pub fn new(session: &Session, base: &str) -> Self {
        ServiceRegistry {
            session: session.clone(),
            base: base.to_owned(),
        }
    }

    /// The base path.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The session.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The path of a service's instances.
    pub fn service_path(&self, name: &str) -> String {
        join(&self.base, name)
    }

    /// Registers an instance as the ephemeral node `<base>/<name>/<id>`.
    pub async fn register(&self, instance: ServiceInstance) -> Result<Registration> {
        for part in [&instance.name, &instance.id] {
            if part.is_empty() || part.contains('/') {
                return Err(Error::InvalidArgument(format!("bad name or id {part:?}")));
            }
        }
        let path = join(&self.service_path(&instance.name), &instance.id);
        let node = EphemeralNode::create(&self.session, &path, &instance.to_json()?).await?;
        Ok(Registration {
            node,
            flags: Mutex::new(Flags {
                admin: instance.enabled,
                healthy: true,
            }),
            instance: Mutex::new(instance),
            writes: tokio::sync::Mutex::new(()),
        })
    }

    /// Names of the registered services.
    pub async fn service_names(&self) -> Result<Vec<String>> {
        let client = self.session.live_client().await?;
        match retry(|| client.get_children(&self.base, false)).await {
            Ok(mut v) => {
                v.sort();
                Ok(v)
            }
            Err(zk_client::Error::NoNode { .. }) => Ok(Vec::new()),
            Err(e) => Err(e.into()),
        }
    }

    /// The instances of a service, read now (undecodable nodes are skipped).
    pub async fn instances(&self, name: &str) -> Result<Vec<ServiceInstance>> {
        let client = self.session.live_client().await?;
        let dir = self.service_path(name);
        let ids = match retry(|| client.get_children(&dir, false)).await {
            Ok(v) => v,
            Err(zk_client::Error::NoNode { .. }) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut out = Vec::new();
        for id in ids {
            let p = join(&dir, &id);
            match retry(|| client.get_data(&p, false)).await {
                Ok((data, _)) => match ServiceInstance::from_json(&p, &data) {
                    Ok(i) => out.push(i),
                    Err(e) => tracing::warn!(error = %e, "skipping bad instance"),
                },
                Err(zk_client::Error::NoNode { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }
}
