//! The HTTP endpoints' settings: the AdminServer (`admin.*`, also
//! `-Dzookeeper.admin.*`) and the Prometheus metrics endpoint (`metricsProvider.*`, zoo.cfg
//! lines only, as Apache reads them).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// Apache's Prometheus provider class: the one `metricsProvider.className` that turns
/// `/metrics` on.
pub const PROMETHEUS_PROVIDER: &str =
    "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider";

/// Providers that export nothing over HTTP (Apache's default and its no-op one).
const SILENT_PROVIDERS: &[&str] = &[
    "org.apache.zookeeper.metrics.impl.DefaultMetricsProvider",
    "org.apache.zookeeper.metrics.impl.NullMetricsProvider",
];

/// The AdminServer (`admin.enableServer`, `admin.serverAddress`, `admin.serverPort`,
/// `admin.commandURL`), with Apache's defaults: on, `0.0.0.0:8080`, `/commands`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminConfig {
    /// `admin.enableServer`: off only when exactly `false`, as Apache reads it.
    pub enabled: bool,
    /// `admin.serverAddress`.
    pub address: IpAddr,
    /// `admin.serverPort`; 0 picks a free port.
    pub port: u16,
    /// `admin.commandURL`: where the command list lives; commands are under it.
    pub command_url: String,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            enabled: true,
            address: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port: 8080,
            command_url: "/commands".into(),
        }
    }
}

impl AdminConfig {
    /// Off: what in-process test servers use, so parallel tests never race for port 8080.
    pub fn disabled() -> Self {
        AdminConfig {
            enabled: false,
            ..AdminConfig::default()
        }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.address, self.port)
    }

    /// Applies `admin.<key>` (the `zookeeper.` prefix already stripped); `Ok(false)` if
    /// the key is not one of the AdminServer's.
    pub(super) fn apply(&mut self, key: &str, value: &str) -> Result<bool, String> {
        let value = value.trim();
        match key {
            "admin.enableServer" => self.enabled = value != "false",
            "admin.serverAddress" => self.address = parse_host(key, value)?,
            "admin.serverPort" => self.port = parse_port(key, value)?,
            "admin.commandURL" => {
                // Apache's servlet path: with or without the leading slash.
                let url = value.trim_end_matches('/');
                self.command_url = match url.starts_with('/') {
                    true => url.to_owned(),
                    false => format!("/{url}"),
                };
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// The Prometheus endpoint (`metricsProvider.className=...PrometheusMetricsProvider`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsConfig {
    /// `metricsProvider.httpHost` (default `0.0.0.0`).
    pub host: IpAddr,
    /// `metricsProvider.httpPort` (default 7000); 0 picks a free port.
    pub port: u16,
}

impl MetricsConfig {
    /// Where `/metrics` is served.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.host, self.port)
    }
}

/// `metricsProvider.*` lines as zoo.cfg gives them (in any order), resolved once the whole
/// file is read.
#[derive(Debug, Default)]
pub(super) struct MetricsLines {
    lines: Vec<(String, String, usize)>,
}

impl MetricsLines {
    /// Keeps one `metricsProvider.<key>=value` line.
    pub(super) fn push(&mut self, key: &str, value: &str, line: usize) {
        self.lines
            .push((key.to_owned(), value.trim().to_owned(), line));
    }

    /// The endpoint the lines ask for, or an error naming the line; warnings for
    /// accepted settings that change nothing here.
    pub(super) fn resolve(
        self,
        warnings: &mut Vec<String>,
    ) -> Result<Option<MetricsConfig>, (usize, String)> {
        let class = self
            .lines
            .iter()
            .rev()
            .find(|(k, _, _)| k == "metricsProvider.className");
        let Some((_, class, class_line)) = class else {
            if let Some((k, _, line)) = self.lines.first() {
                warnings.push(format!(
                    "line {line}: {k} without metricsProvider.className: no metrics endpoint"
                ));
            }
            return Ok(None);
        };
        if SILENT_PROVIDERS.contains(&class.as_str()) {
            return Ok(None);
        }
        if class != PROMETHEUS_PROVIDER {
            // Apache stops when it cannot load the class.
            return Err((
                *class_line,
                format!(
                    "metricsProvider.className={class}: no such metrics provider here (use \
                     {PROMETHEUS_PROVIDER})"
                ),
            ));
        }
        let mut cfg = MetricsConfig {
            host: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port: 7000,
        };
        for (k, v, line) in &self.lines {
            let at = |e: String| (*line, e);
            match k.as_str() {
                "metricsProvider.className" => {}
                "metricsProvider.httpHost" => cfg.host = parse_host(k, v).map_err(at)?,
                "metricsProvider.httpPort" => cfg.port = parse_port(k, v).map_err(at)?,
                // The JVM's own metrics (jvm_*): nothing of the kind to export here.
                "metricsProvider.exportJvmInfo"
                | "metricsProvider.numWorkerThreads"
                | "metricsProvider.maxQueueSize"
                | "metricsProvider.workerShutdownTimeoutMs" => warnings.push(format!(
                    "line {line}: {k} accepted, not used (no JVM, no reporting threads)"
                )),
                _ => warnings.push(format!("line {line}: unknown key {k}, ignored")),
            }
        }
        Ok(Some(cfg))
    }
}

fn parse_port(key: &str, v: &str) -> Result<u16, String> {
    v.parse()
        .map_err(|_| format!("{key}: '{v}' is not a port number"))
}

/// An address to listen on: an IP, or `localhost`.
fn parse_host(key: &str, v: &str) -> Result<IpAddr, String> {
    match v {
        "localhost" => Ok(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        v => v
            .parse()
            .map_err(|_| format!("{key}: '{v}' is not an IP address")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_keys() {
        let mut a = AdminConfig::default();
        assert!(a.enabled);
        assert_eq!(a.addr().to_string(), "0.0.0.0:8080");
        assert!(a.apply("admin.serverPort", "9090").unwrap());
        assert!(a.apply("admin.commandURL", "cmds/").unwrap());
        assert_eq!(a.command_url, "/cmds");
        // Apache turns it off only on the exact word.
        assert!(a.apply("admin.enableServer", "no").unwrap());
        assert!(a.enabled);
        assert!(a.apply("admin.enableServer", "false").unwrap());
        assert!(!a.enabled);
        assert!(a
            .apply("admin.serverPort", "x")
            .unwrap_err()
            .contains("admin.serverPort"));
        assert!(!a.apply("admin.other", "1").unwrap());
    }

    #[test]
    fn metrics_lines() {
        let mut w = Vec::new();
        let mut m = MetricsLines::default();
        m.push("metricsProvider.httpPort", "7001", 3);
        m.push("metricsProvider.className", PROMETHEUS_PROVIDER, 4);
        m.push("metricsProvider.exportJvmInfo", "false", 5);
        let cfg = m.resolve(&mut w).unwrap().unwrap();
        assert_eq!(cfg.addr().to_string(), "0.0.0.0:7001");
        assert_eq!(w.len(), 1, "{w:?}");

        let mut m = MetricsLines::default();
        m.push("metricsProvider.className", "com.example.Mine", 7);
        let (line, e) = m.resolve(&mut w).unwrap_err();
        assert_eq!(line, 7);
        assert!(e.contains("metricsProvider.className"), "{e}");

        let mut m = MetricsLines::default();
        m.push(
            "metricsProvider.className",
            "org.apache.zookeeper.metrics.impl.DefaultMetricsProvider",
            1,
        );
        assert_eq!(m.resolve(&mut w).unwrap(), None);
        assert_eq!(MetricsLines::default().resolve(&mut w).unwrap(), None);
    }
}
