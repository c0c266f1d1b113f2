//! The connect string (`"h1:2181,h2:2181/app"`): host list, chroot, and the shuffled
//! round-robin walk over the hosts; the client addresses of an ensemble config
//! (`/zookeeper/config`), and the probabilistic rebalancing (ZOOKEEPER-1355) that moves a
//! fair share of clients to the members a reconfig added.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

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

/// The host list, shuffled once with a seeded generator and walked round-robin (from a
/// drawn host after a server closed the connection, see [`HostList::scatter`]); after a
/// membership change that asked this client to move, the next hosts are drawn between the
/// kept and the added members (see [`rebalance`]) until a connection is made.
#[derive(Debug, Clone)]
pub struct HostList {
    hosts: Vec<HostPort>,
    next: usize,
    /// Seeded: list updates and reconnect draws replay in tests.
    rng: StdRng,
    moving: Option<Moving>,
}

/// Where a client asked to move is still to try, after a list update.
#[derive(Debug, Clone)]
struct Moving {
    kept: Vec<HostPort>,
    added: Vec<HostPort>,
    p_added: f64,
}

/// What a client does when the member list changes: stay on its server, or reconnect,
/// choosing an added member with probability `p_added` and a kept one otherwise.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rebalance {
    /// Keep the current connection.
    Stay,
    /// Reconnect: to an added member with probability `p_added`, else to a kept one.
    Move {
        /// Probability of choosing a member that was not in the old list.
        p_added: f64,
    },
}

/// ZOOKEEPER-1355's decision, for a client on `current` when the list goes from `old`
/// to `new`, given a uniform `draw` in `[0, 1)`. Each member ends with `1/new.len()` of
/// the clients in expectation: when the list grows, a client whose server stays moves
/// with probability `1 - old/new` (all to added members); when it shrinks, clients of a
/// kept server stay and those of a removed one spread so that kept members get just
/// what they lack. A client connected nowhere stays (its next connection walks the new
/// list).
pub fn rebalance(
    old: &[HostPort],
    new: &[HostPort],
    current: Option<&HostPort>,
    draw: f64,
) -> Rebalance {
    let Some(current) = current else {
        return Rebalance::Stay;
    };
    let kept = new.iter().filter(|h| old.contains(h)).count();
    let added = new.len() - kept;
    let in_new = new.contains(current);
    if new.len() > old.len() {
        // Old members carry old/new of what they had: this client leaves with the
        // complement. One whose server left goes to an added member, as the kept ones
        // are over their share already.
        if in_new && draw >= 1.0 - old.len() as f64 / new.len() as f64 {
            return Rebalance::Stay;
        }
        return Rebalance::Move { p_added: 1.0 };
    }
    if in_new {
        return Rebalance::Stay;
    }
    if added == 0 {
        return Rebalance::Move { p_added: 0.0 };
    }
    // The clients of removed servers fill each kept member up from old.len() to
    // new.len() clients' worth of share; the rest go to the added members.
    let (n_old, n_new, kept_f) = (old.len() as f64, new.len() as f64, kept as f64);
    let removed = n_old - kept_f;
    let p_kept = if removed <= 0.0 {
        0.0
    } else {
        (kept_f * (n_old - n_new) / (n_new * removed)).clamp(0.0, 1.0)
    };
    Rebalance::Move {
        p_added: 1.0 - p_kept,
    }
}

impl HostList {
    /// Shuffles `hosts` with `seed` (same seed, same order).
    pub fn new(mut hosts: Vec<HostPort>, seed: u64) -> Self {
        hosts.shuffle(&mut StdRng::seed_from_u64(seed));
        HostList {
            hosts,
            next: 0,
            rng: StdRng::seed_from_u64(seed ^ 0xbb67_ae85_84ca_a73b),
            moving: None,
        }
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

    /// Replaces the list with `new` (the ensemble changed) for a client on `current`;
    /// true when the client should reconnect to rebalance (see [`rebalance`]). The same
    /// set of hosts changes nothing; an empty one is refused (false, list unchanged).
    pub fn update(&mut self, new: Vec<HostPort>, current: Option<&HostPort>) -> bool {
        let mut new = new;
        new.dedup();
        if new.is_empty() {
            return false;
        }
        let same = new.len() == self.hosts.len() && new.iter().all(|h| self.hosts.contains(h));
        if same {
            return false;
        }
        new.shuffle(&mut self.rng);
        let draw: f64 = self.rng.gen();
        let decision = rebalance(&self.hosts, &new, current, draw);
        let (kept, added) = new.iter().cloned().partition(|h| self.hosts.contains(h));
        self.hosts = new;
        match decision {
            Rebalance::Stay => {
                // Go on round-robin after the current server.
                self.next = current
                    .and_then(|c| self.hosts.iter().position(|h| h == c))
                    .map_or(0, |i| (i + 1) % self.hosts.len());
                self.moving = None;
                false
            }
            Rebalance::Move { p_added } => {
                self.next = 0;
                self.moving = Some(Moving {
                    kept,
                    added,
                    p_added,
                });
                true
            }
        }
    }

    /// A connection was made: a pending move is done.
    pub fn connected(&mut self) {
        self.moving = None;
    }

    /// The next host to try, and whether this completed a full cycle of the list.
    pub fn next_host(&mut self) -> Option<(HostPort, bool)> {
        if let Some(m) = self.moving.as_mut() {
            // Draw between added and kept members; once one side is tried out take the
            // other, once both are, walk the list as usual.
            let take_added = self.rng.gen::<f64>() < m.p_added;
            let pick = if !m.added.is_empty() && (take_added || m.kept.is_empty()) {
                Some(m.added.remove(0))
            } else if !m.kept.is_empty() {
                Some(m.kept.remove(0))
            } else {
                None
            };
            match pick {
                Some(h) => {
                    if let Some(i) = self.hosts.iter().position(|x| *x == h) {
                        self.next = (i + 1) % self.hosts.len();
                    }
                    return Some((h, false));
                }
                None => self.moving = None,
            }
        }
        if self.hosts.is_empty() {
            return None;
        }
        let i = self.next % self.hosts.len();
        self.next = (i + 1) % self.hosts.len();
        Some((self.hosts[i].clone(), self.next == 0))
    }

    /// The server closed an established connection: the next attempt starts at a host
    /// drawn from the whole list, the one just left included, and walks on from there.
    ///
    /// A member that loses its leader closes its clients, then holds their handshakes and
    /// answers them once it serves again. Were each client to walk on to the next host of
    /// its list, every survivor would get the other survivors' clients, and the spread
    /// after a leader's death would be the spread before it, mirrored (24% / 76% in a
    /// 5,000-session storm). Drawn from the whole list, each member gets its share in
    /// expectation whatever the spread was. A dead member's port refuses the draw at once;
    /// a silent one (a read timeout) does not come here, the walk goes on past it.
    pub fn scatter(&mut self) {
        if self.moving.is_none() && !self.hosts.is_empty() {
            self.next = self.rng.gen_range(0..self.hosts.len());
        }
    }

    /// Makes `host` the next one tried (used when a read-write server was found).
    pub fn prefer(&mut self, host: &HostPort) {
        if let Some(i) = self.hosts.iter().position(|h| h == host) {
            self.next = i;
            self.moving = None;
        }
    }
}

/// The client addresses of an ensemble config as `/zookeeper/config` holds it
/// (`server.N=host:quorumPort:electionPort[:role][;[clientAddr:]clientPort]` lines and a
/// `version=` line): one per member that serves clients, in server id order. A wildcard
/// or missing client address means the member's quorum host, as Apache's client does.
///
/// ```
/// use zk_client::hosts::client_hosts_from_config;
/// let hs = client_hosts_from_config(
///     "server.1=10.0.0.1:2888:3888:participant;0.0.0.0:2181\nserver.2=10.0.0.2:2888:3888;2182\nversion=100000000",
/// ).unwrap();
/// assert_eq!(hs.iter().map(|h| h.to_string()).collect::<Vec<_>>(), ["10.0.0.1:2181", "10.0.0.2:2182"]);
/// ```
pub fn client_hosts_from_config(config: &str) -> Result<Vec<HostPort>> {
    let bad = |line: &str, why: &str| {
        Error::InvalidConfig(format!("ensemble config line {line:?}: {why}"))
    };
    let mut servers = Vec::new();
    for line in config.lines().map(str::trim) {
        let Some(rest) = line.strip_prefix("server.") else {
            continue;
        };
        let (id, spec) = rest.split_once('=').ok_or_else(|| bad(line, "no '='"))?;
        let id: u64 = id
            .trim()
            .parse()
            .map_err(|_| bad(line, "server id is not a number"))?;
        let (quorum, client) = match spec.split_once(';') {
            Some((q, c)) => (q.trim(), c.trim()),
            None => continue,
        };
        if client.is_empty() {
            continue;
        }
        let quorum_host = match quorum.strip_prefix('[') {
            Some(r) => r.split(']').next().unwrap_or_default(),
            None => quorum.split(':').next().unwrap_or_default(),
        };
        let mut hp = if client.bytes().all(|b| b.is_ascii_digit()) {
            let port = client
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| bad(line, "client port is not in 1..=65535"))?;
            HostPort {
                host: quorum_host.to_owned(),
                port,
            }
        } else {
            parse_host(client).map_err(|why| bad(line, &why))?
        };
        if matches!(hp.host.as_str(), "0.0.0.0" | "::" | "0:0:0:0:0:0:0:0") {
            hp.host = quorum_host.to_owned();
        }
        if hp.host.is_empty() {
            return Err(bad(line, "no host"));
        }
        servers.push((id, hp));
    }
    servers.sort_by_key(|(id, _)| *id);
    Ok(servers.into_iter().map(|(_, h)| h).collect())
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

    /// After scatter the next host is uniform over the whole list, the current one
    /// included, and the walk goes on round-robin from it.
    #[test]
    fn scatter_draws_the_next_host_from_the_whole_list() {
        let hosts: Vec<HostPort> = (1..=3)
            .map(|p| HostPort {
                host: "h".into(),
                port: p,
            })
            .collect();
        let mut counts = [0usize; 3];
        let mut l = HostList::new(hosts, 7);
        for _ in 0..3000 {
            l.scatter();
            let (first, _) = l.next_host().unwrap();
            let (second, _) = l.next_host().unwrap();
            let i = l.hosts().iter().position(|h| *h == first).unwrap();
            assert_eq!(
                second,
                l.hosts()[(i + 1) % 3],
                "the walk goes on from the draw"
            );
            counts[usize::from(first.port - 1)] += 1;
        }
        assert!(
            counts.iter().all(|c| (850..=1150).contains(c)),
            "{counts:?}"
        );
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

    fn hs(ids: std::ops::Range<u16>) -> Vec<HostPort> {
        ids.map(|i| HostPort {
            host: "10.0.0.1".into(),
            port: 2000 + i,
        })
        .collect()
    }

    /// `clients` spread evenly over `old`; the list becomes `new`; each client that
    /// moves reconnects to the host its list draws. Returns clients per host of `new`.
    fn spread(old: &[HostPort], new: &[HostPort], clients: usize, seed: u64) -> Vec<usize> {
        let mut counts = vec![0; new.len()];
        for c in 0..clients {
            let current = old[c % old.len()].clone();
            let mut l = HostList::new(old.to_vec(), seed.wrapping_mul(7919) ^ c as u64);
            let host = if l.update(new.to_vec(), Some(&current)) {
                l.next_host().unwrap().0
            } else {
                current
            };
            let i = new
                .iter()
                .position(|h| *h == host)
                .expect("lands on a member");
            counts[i] += 1;
        }
        counts
    }

    #[test]
    fn decision_follows_zookeeper_1355() {
        let (a, b) = (hs(0..3), hs(0..5));
        // Growing 3 -> 5: a client of a kept server moves with probability 2/5.
        assert_eq!(
            rebalance(&a, &b, Some(&a[0]), 0.39),
            Rebalance::Move { p_added: 1.0 }
        );
        assert_eq!(rebalance(&a, &b, Some(&a[0]), 0.41), Rebalance::Stay);
        // Shrinking 5 -> 3: clients of kept servers stay, the others go to kept ones.
        assert_eq!(rebalance(&b, &a, Some(&b[1]), 0.0), Rebalance::Stay);
        assert_eq!(
            rebalance(&b, &a, Some(&b[4]), 0.0),
            Rebalance::Move { p_added: 0.0 }
        );
        // Not connected: nothing to move.
        assert_eq!(rebalance(&a, &b, None, 0.0), Rebalance::Stay);
        // Replacing one of three (1,2,3 -> 1,2,4): the removed server's clients all go
        // to the added one (the kept ones hold their share already).
        let c = vec![a[0].clone(), a[1].clone(), b[3].clone()];
        assert_eq!(
            rebalance(&a, &c, Some(&a[2]), 0.5),
            Rebalance::Move { p_added: 1.0 }
        );
        // 5 -> 4 with two replaced (0,1,2,3,4 -> 0,1,5,6): kept get 2*(5-4)/(4*3) = 1/6.
        let d = vec![
            b[0].clone(),
            b[1].clone(),
            hs(5..7)[0].clone(),
            hs(5..7)[1].clone(),
        ];
        match rebalance(&b, &d, Some(&b[4]), 0.5) {
            Rebalance::Move { p_added } => assert!((p_added - 5.0 / 6.0).abs() < 1e-9),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn growing_and_shrinking_give_every_member_its_fair_share() {
        let n = 3000;
        // 3 -> 5: each of the five ends with about 600.
        let counts = spread(&hs(0..3), &hs(0..5), n, 1);
        assert_eq!(counts.iter().sum::<usize>(), n);
        for c in &counts {
            assert!((480..=720).contains(c), "3 -> 5: {counts:?}");
        }
        // 5 -> 3: the kept ones end with about 1000 each, none is left on a removed one.
        let counts = spread(&hs(0..5), &hs(0..3), n, 2);
        for c in &counts {
            assert!((850..=1150).contains(c), "5 -> 3: {counts:?}");
        }
        // 5 -> 4 replacing two: about 750 each.
        let mut d = hs(0..2);
        d.extend(hs(5..7));
        let counts = spread(&hs(0..5), &d, n, 3);
        for c in &counts {
            assert!((620..=880).contains(c), "5 -> 4 replacing two: {counts:?}");
        }
    }

    #[test]
    fn updates_are_seeded_and_the_same_set_changes_nothing() {
        let (a, b) = (hs(0..3), hs(0..5));
        let run = |seed| {
            let mut l = HostList::new(a.clone(), seed);
            let moved = l.update(b.clone(), Some(&a[0]));
            (moved, l.hosts().to_vec(), l.next_host())
        };
        assert_eq!(run(5), run(5));
        let mut l = HostList::new(a.clone(), 9);
        let mut rev = a.clone();
        rev.reverse();
        let before = l.hosts().to_vec();
        assert!(!l.update(rev, Some(&a[1])));
        assert_eq!(l.hosts(), &before[..]);
        assert!(!l.update(Vec::new(), Some(&a[1])));
        assert_eq!(l.len(), 3);
        // A move tries every added member, then the kept ones, then walks the list.
        let mut l = HostList::new(a.clone(), 11);
        let c = vec![a[0].clone(), hs(7..9)[0].clone(), hs(7..9)[1].clone()];
        assert!(l.update(c.clone(), Some(&a[2])));
        let tried: Vec<_> = (0..3).map(|_| l.next_host().unwrap().0).collect();
        assert!(c[1..].contains(&tried[0]) && c[1..].contains(&tried[1]));
        assert_eq!(tried[2], c[0]);
        l.connected();
        assert!(c.contains(&l.next_host().unwrap().0));
    }

    #[test]
    fn client_hosts_come_from_the_config() {
        let cfg = "server.3=h3:1:2:observer;[::1]:2183\nserver.1=h1:1:2:participant;0.0.0.0:2181\nserver.2=[fe80::2]:1:2;2182\nserver.4=h4:1:2\nversion=1";
        let hs = client_hosts_from_config(cfg).unwrap();
        assert_eq!(
            hs.iter().map(|h| h.to_string()).collect::<Vec<_>>(),
            ["h1:2181", "[fe80::2]:2182", "[::1]:2183"]
        );
        let e = client_hosts_from_config("server.x=h:1:2;2181")
            .unwrap_err()
            .to_string();
        assert!(e.contains("server.x") && e.contains("not a number"), "{e}");
        let e = client_hosts_from_config("server.1=h:1:2;70000")
            .unwrap_err()
            .to_string();
        assert!(e.contains("65535"), "{e}");
    }
}
