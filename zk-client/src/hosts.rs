//! The connect string (`"h1:2181,h2:2181/app"`): host list, chroot, and the shuffled
//! round-robin walk over the hosts.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use crate::error::{Error, Result};
use crate::path::Chroot;

/// Port used when a host has none.
pub const DEFAULT_PORT: u16 = 2181;

/// One server address; the name is resolved again on every connection attempt.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostPort {
    /// Host name or IP literal (IPv6 without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl std::fmt::Display for HostPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// A parsed connect string.
///
/// ```
/// use zk_client::hosts::ConnectString;
/// let cs = ConnectString::parse("a:1,b/app").unwrap();
/// assert_eq!(cs.hosts.len(), 2);
/// assert_eq!(cs.hosts[1].port, 2181);
/// assert_eq!(cs.chroot.as_str(), "/app");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectString {
    /// Servers, in the order given.
    pub hosts: Vec<HostPort>,
    /// The chroot suffix, if any.
    pub chroot: Chroot,
}

impl ConnectString {
    /// Parses `host[:port][,host[:port]...][/chroot]`; IPv6 literals go in brackets.
    ///
    /// Errors are [`Error::InvalidConfig`] naming the connect string, the offending host
    /// and why (a URL scheme, a port outside 1..=65535, a bad chroot...).
    pub fn parse(s: &str) -> Result<Self> {
        let input = s;
        let bad = |why: String| Error::InvalidConfig(format!("connect string {input:?}: {why}"));
        let s = s.trim();
        if let Some((scheme, _)) = s.split_once("://") {
            return Err(bad(format!(
                "{scheme:?} is a URL scheme; give host:port pairs such as 127.0.0.1:2181"
            )));
        }
        let (list, chroot) = match s.find('/') {
            Some(i) => (
                &s[..i],
                Chroot::new(&s[i..]).map_err(|e| bad(format!("chroot: {e}")))?,
            ),
            None => (s, Chroot::default()),
        };
        let mut hosts = Vec::new();
        for item in list.split(',').map(str::trim).filter(|x| !x.is_empty()) {
            hosts.push(parse_host(item).map_err(|why| bad(format!("host {item:?}: {why}")))?);
        }
        if hosts.is_empty() {
            return Err(bad("no hosts".into()));
        }
        Ok(ConnectString { hosts, chroot })
    }
}

/// One `host[:port]` item; the error says what is wrong with it.
fn parse_host(item: &str) -> std::result::Result<HostPort, String> {
    let (host, port) = if let Some(rest) = item.strip_prefix('[') {
        let end = rest.find(']').ok_or("missing ] after an IPv6 address")?;
        let host = &rest[..end];
        let tail = &rest[end + 1..];
        let port = match tail.strip_prefix(':') {
            Some(p) => Some(p),
            None if tail.is_empty() => None,
            None => return Err(format!("unexpected {tail:?} after ]")),
        };
        (host, port)
    } else {
        match item.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (item, None),
        }
    };
    let port = match port {
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => n,
            _ => return Err(format!("port {p:?} is not a number in 1..=65535")),
        },
        None => DEFAULT_PORT,
    };
    if host.is_empty() {
        return Err("empty host name".into());
    }
    Ok(HostPort {
        host: host.to_owned(),
        port,
    })
}

/// The host list, shuffled once with a seeded generator and walked round-robin.
#[derive(Debug, Clone)]
pub struct HostList {
    hosts: Vec<HostPort>,
    next: usize,
}

impl HostList {
    /// Shuffles `hosts` with `seed` (same seed, same order).
    pub fn new(mut hosts: Vec<HostPort>, seed: u64) -> Self {
        hosts.shuffle(&mut StdRng::seed_from_u64(seed));
        HostList { hosts, next: 0 }
    }

    /// Number of hosts.
    pub fn len(&self) -> usize {
        self.hosts.len()
    }

    /// True when there are no hosts.
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    /// The shuffled order.
    pub fn hosts(&self) -> &[HostPort] {
        &self.hosts
    }

    /// The next host to try, and whether this completed a full cycle of the list.
    pub fn next_host(&mut self) -> Option<(HostPort, bool)> {
        if self.hosts.is_empty() {
            return None;
        }
        let i = self.next % self.hosts.len();
        self.next = (i + 1) % self.hosts.len();
        Some((self.hosts[i].clone(), self.next == 0))
    }

    /// Makes `host` the next one tried (used when a read-write server was found).
    pub fn prefer(&mut self, host: &HostPort) {
        if let Some(i) = self.hosts.iter().position(|h| h == host) {
            self.next = i;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hosts_ports_ipv6_and_chroot() {
        let cs = ConnectString::parse("h1:1, [::1]:2,h3,[fe80::1]/a/b").unwrap();
        assert_eq!(
            cs.hosts.iter().map(|h| h.to_string()).collect::<Vec<_>>(),
            ["h1:1", "[::1]:2", "h3:2181", "[fe80::1]:2181"]
        );
        assert_eq!(cs.chroot.as_str(), "/a/b");
        assert!(ConnectString::parse("").is_err());
        assert!(ConnectString::parse("h:x").is_err());
        assert!(ConnectString::parse("h:1/bad/").is_err());
    }

    #[test]
    fn parse_errors_name_the_host_and_the_reason() {
        let msg = |s: &str| ConnectString::parse(s).unwrap_err().to_string();
        let m = msg("http://127.0.0.1:2181");
        assert!(
            m.contains("http://127.0.0.1:2181") && m.contains("URL scheme"),
            "{m}"
        );
        let m = msg("127.0.0.1:99999");
        assert!(
            m.contains("\"127.0.0.1:99999\"") && m.contains("port \"99999\""),
            "{m}"
        );
        assert!(m.contains("1..=65535"), "{m}");
        let m = msg("a:1,b:x");
        assert!(
            m.contains("host \"b:x\"") && m.contains("port \"x\""),
            "{m}"
        );
        let m = msg("h:1/bad/");
        assert!(m.contains("chroot"), "{m}");
        assert!(msg(" , ").contains("no hosts"));
    }

    #[test]
    fn shuffle_is_seeded_and_round_robin_cycles() {
        let hs: Vec<_> = (0..5)
            .map(|i| HostPort {
                host: format!("h{i}"),
                port: 1,
            })
            .collect();
        let a = HostList::new(hs.clone(), 7);
        let b = HostList::new(hs.clone(), 7);
        assert_eq!(a.hosts(), b.hosts());
        let mut l = a;
        let mut seen = Vec::new();
        for i in 0..10 {
            let (h, wrapped) = l.next_host().unwrap();
            assert_eq!(wrapped, i % 5 == 4);
            seen.push(h);
        }
        assert_eq!(seen[..5], seen[5..]);
        let mut sorted = seen[..5].to_vec();
        sorted.sort_by(|x, y| x.host.cmp(&y.host));
        assert_eq!(sorted, hs);
    }
}
