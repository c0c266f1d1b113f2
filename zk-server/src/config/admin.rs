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

/// The `-D` properties of the command line. `Debug` shows their names only, and
/// [`SystemProperties::shown`] hides the values of secrets: some carry passwords.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SystemProperties(pub Vec<(String, String)>);

impl std::fmt::Debug for SystemProperties {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(k, _)| k))
            .finish()
    }
}

impl SystemProperties {
    /// Whether a property's value is a secret (a password, a digest, a key).
    pub fn is_secret(name: &str) -> bool {
        let n = name.to_ascii_lowercase();
        ["password", "secret", "digest", "passwd", "credential"]
            .iter()
            .any(|w| n.contains(w))
    }

    /// Name and value of each, secrets' values replaced by `********`.
    pub fn shown(&self) -> impl Iterator<Item = (String, String)> + '_ {
        self.0.iter().map(|(k, v)| {
            let v = match Self::is_secret(k) {
                true => "********".to_owned(),
                false => v.clone(),
            };
            (k.clone(), v)
        })
    }

    /// Number of properties.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

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

    fn parse(
        text: &str,
        props: &[(&str, &str)],
    ) -> crate::error::Result<crate::config::ServerConfig> {
        let props: Vec<(String, String)> = props
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        crate::config::ServerConfig::parse(&format!("dataDir=/tmp/zk\n{text}"), &props)
    }

    #[test]
    fn zoo_cfg_lines_and_properties() {
        let c = parse("", &[]).unwrap();
        assert_eq!(c.admin, AdminConfig::default(), "on by default, as Apache");
        assert_eq!(c.metrics, None);
        let c = parse(
            "admin.serverPort=9999\nadmin.serverAddress=127.0.0.1\nadmin.commandURL=/cmd\n",
            &[],
        )
        .unwrap();
        assert_eq!(c.admin.addr().to_string(), "127.0.0.1:9999");
        assert_eq!(c.admin.command_url, "/cmd");
        assert!(
            c.warnings.iter().all(|w| !w.contains("admin.")),
            "{:?}",
            c.warnings
        );
        // -D properties, which win over zoo.cfg as elsewhere.
        let c = parse(
            "admin.serverPort=9999\n",
            &[
                ("zookeeper.admin.enableServer", "false"),
                ("zookeeper.admin.serverPort", "7777"),
            ],
        )
        .unwrap();
        assert!(!c.admin.enabled);
        assert_eq!(c.admin.port, 7777);
        assert_eq!(c.system_properties.len(), 2);
        let c = parse("", &[("my.app.password", "hush")]).unwrap();
        assert!(!format!("{c:?}").contains("hush"));
        let shown: Vec<_> = c.system_properties.shown().collect();
        assert_eq!(shown[0].1, "********");
        // Accepted, not used.
        let c = parse("admin.idleTimeout=1000\n", &[]).unwrap();
        assert!(c.warnings.iter().any(|w| w.contains("admin.idleTimeout")));
        let e = parse("admin.serverPort=http\n", &[])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("admin.serverPort") && e.contains("line 2"),
            "{e}"
        );
    }

    #[test]
    fn metrics_provider_lines() {
        let c = parse(
            &format!(
                "metricsProvider.className={PROMETHEUS_PROVIDER}\nmetricsProvider.httpPort=7070\n"
            ),
            &[],
        )
        .unwrap();
        assert_eq!(c.metrics.unwrap().addr().to_string(), "0.0.0.0:7070");
        // Apache reads the provider from zoo.cfg only.
        let c = parse(
            "",
            &[("zookeeper.metricsProvider.className", PROMETHEUS_PROVIDER)],
        )
        .unwrap();
        assert_eq!(c.metrics, None);
        assert!(c
            .warnings
            .iter()
            .any(|w| w.contains("metricsProvider.className")));
        let e = parse("metricsProvider.className=x.Y\n", &[])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("metricsProvider.className") && e.contains("line 2"),
            "{e}"
        );
    }

    #[test]
    fn https_asked_for_is_refused() {
        for (text, props) in [
            ("admin.forceHttps=true\n", vec![]),
            ("admin.portUnification=true\n", vec![]),
            ("", vec![("zookeeper.admin.forceHttps", "true")]),
            ("metricsProvider.httpsPort=7443\n", vec![]),
        ] {
            let e = parse(text, &props).unwrap_err().to_string();
            assert!(
                e.contains("HTTPS") && e.contains("refusing to start"),
                "{text}{props:?}: {e}"
            );
        }
        // Saying no is fine.
        assert!(parse("admin.forceHttps=false\n", &[]).is_ok());
    }
}
