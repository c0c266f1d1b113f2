//! Ensemble membership and timing: `server.N=` entries, tickTime / initLimit / syncLimit,
//! and the majority rule (observers never vote).

use std::collections::BTreeMap;

use super::{Millis, Sid};
use crate::error::{Result, ServerError};

/// Whether a server votes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LearnerType {
    /// Votes in elections and acks proposals.
    Participant,
    /// Replicates committed txns, never votes.
    Observer,
}

/// One `server.N=host:quorumPort:electionPort[:participant|:observer][;[clientHost:]clientPort]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumServer {
    /// The server's id (`N`).
    pub sid: Sid,
    /// Host of the quorum and election ports.
    pub host: String,
    /// Leader-learner port.
    pub quorum_port: u16,
    /// Election port.
    pub election_port: u16,
    /// Participant or observer.
    pub learner_type: LearnerType,
    /// Client address, when given after `;`.
    pub client_addr: Option<String>,
}

impl QuorumServer {
    /// Parses the value of a `server.<sid>=` line.
    pub fn parse(sid: Sid, value: &str) -> Result<Self> {
        let bad = |message: String| ServerError::Config {
            line: None,
            message,
        };
        let (main, client) = match value.split_once(';') {
            Some((m, c)) => (m.trim(), Some(c.trim())),
            None => (value.trim(), None),
        };
        let parts: Vec<&str> = main.split(':').collect();
        if parts.len() < 3 || parts.len() > 4 {
            return Err(bad(format!(
                "server.{sid}: expected host:quorumPort:electionPort[:type], got {value:?}"
            )));
        }
        let port = |s: &str, what: &str| {
            s.parse::<u16>()
                .map_err(|_| bad(format!("server.{sid}: bad {what} {s:?}")))
        };
        let learner_type = match parts.get(3).copied() {
            None | Some("participant") => LearnerType::Participant,
            Some("observer") => LearnerType::Observer,
            Some(other) => return Err(bad(format!("server.{sid}: unknown peer type {other:?}"))),
        };
        let client_addr = match client {
            None | Some("") => None,
            Some(c) if c.contains(':') => Some(c.to_owned()),
            Some(c) => {
                port(c, "client port")?;
                Some(format!("0.0.0.0:{c}"))
            }
        };
        let quorum_port = port(parts[1], "quorum port")?;
        let election_port = port(parts[2], "election port")?;
        if parts[0].is_empty() {
            return Err(bad(format!("server.{sid}: no host in {value:?}")));
        }
        if quorum_port == election_port {
            // Apache's words: the check compares the quorum and election ports.
            return Err(bad(format!(
                "server.{sid}: Client and election port must be different! ({value:?})"
            )));
        }
        Ok(QuorumServer {
            sid,
            host: parts[0].to_owned(),
            quorum_port,
            election_port,
            learner_type,
            client_addr,
        })
    }

    /// The server's spec as Apache's `QuorumServer.toString()` writes it (the value of
    /// its `server.N=` line in `/zookeeper/config` and the dynamic files).
    pub fn spec(&self) -> String {
        let ty = match self.learner_type {
            LearnerType::Participant => "participant",
            LearnerType::Observer => "observer",
        };
        let mut s = format!(
            "{}:{}:{}:{ty}",
            self.host, self.quorum_port, self.election_port
        );
        if let Some(c) = &self.client_addr {
            s.push(';');
            s.push_str(c);
        }
        s
    }

    /// The client port of the spec's `;[host:]port` part.
    pub fn client_port(&self) -> Option<u16> {
        self.client_addr
            .as_deref()
            .and_then(|c| c.rsplit_once(':'))
            .and_then(|(_, p)| p.parse().ok())
    }

    /// `host:quorumPort` for learners connecting to this server as leader.
    pub fn quorum_addr(&self) -> String {
        format!("{}:{}", self.host, self.quorum_port)
    }

    /// `host:electionPort`.
    pub fn election_addr(&self) -> String {
        format!("{}:{}", self.host, self.election_port)
    }
}

/// Everything the cores need to know about the ensemble and its timing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumConfig {
    /// This server's id.
    pub my_sid: Sid,
    /// All servers, voters and observers.
    pub servers: BTreeMap<Sid, QuorumServer>,
    /// Length of a tick (tickTime).
    pub tick_time: Millis,
    /// Ticks a learner may take to connect and sync (initLimit).
    pub init_limit: u64,
    /// Ticks a learner may lag once synced (syncLimit).
    pub sync_limit: u64,
    /// How long election waits for a better vote once it has a quorum (200 ms in Apache).
    pub finalize_wait: Millis,
    /// Cap of the doubling re-send interval of notifications (60 s in Apache).
    pub max_notification_interval: Millis,
    /// How many recent committed txns the leader keeps for DIFF syncs (Apache: 500).
    pub committed_log_size: usize,
    /// Whether a leader may DIFF from its txn log when a learner is older than the
    /// committed log (Apache's txnlog sync; SNAP otherwise).
    pub txn_log_sync: bool,
    /// The config's version (`version=` / the dynamic file's suffix; 0 when never set):
    /// the zxid of the reconfig txn that made it, or of the NEWLEADER that first
    /// established it (ZOOKEEPER-1783).
    pub version: i64,
    /// `reconfigEnabled`: the config may change (reconfig txns, versions gossiped in
    /// elections, the version bump of the first established leadership).
    pub reconfig_enabled: bool,
    /// `standaloneEnabled`: a reconfig must leave at least two voters (one otherwise).
    pub standalone_enabled: bool,
}

/// A config's members and version as written in `/zookeeper/config`, reconfig txns,
/// election notifications and NEWLEADER: `server.N=spec` lines and `version=<hex>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigText {
    /// The members.
    pub servers: BTreeMap<Sid, QuorumServer>,
    /// The version (0 when the text has none).
    pub version: i64,
}

impl ConfigText {
    /// Parses config text; `,` separates entries like a newline (as Apache's
    /// non-incremental reconfig accepts). Anything but `server.N` and `version` lines is
    /// refused, as is a text without any server.
    pub fn parse(text: &str) -> Result<ConfigText> {
        let bad = |message: String| ServerError::Config {
            line: None,
            message,
        };
        let mut servers = BTreeMap::new();
        let mut version = 0;
        for raw in text.split(['\n', ',']) {
            let l = raw.trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            let Some((key, value)) = l.split_once('=') else {
                return Err(bad(format!("{l:?} is not key=value")));
            };
            let (key, value) = (key.trim(), value.trim());
            if key == "version" {
                version = i64::from_str_radix(value, 16)
                    .map_err(|_| bad(format!("version={value} is not hexadecimal")))?;
            } else if let Some(id) = key.strip_prefix("server.") {
                let sid: Sid = id
                    .parse()
                    .map_err(|_| bad(format!("{key}: {id:?} is not a server id")))?;
                servers.insert(sid, QuorumServer::parse(sid, value)?);
            } else {
                return Err(bad(format!("{key} does not belong in a member list")));
            }
        }
        if servers.is_empty() {
            return Err(bad("no server.N entry".into()));
        }
        Ok(ConfigText { servers, version })
    }
}

impl QuorumConfig {
    /// A config with Apache's defaults (tickTime 2000, initLimit 10, syncLimit 5).
    pub fn new(my_sid: Sid, servers: impl IntoIterator<Item = QuorumServer>) -> Self {
        QuorumConfig {
            my_sid,
            servers: servers.into_iter().map(|s| (s.sid, s)).collect(),
            tick_time: 2000,
            init_limit: 10,
            sync_limit: 5,
            finalize_wait: 200,
            max_notification_interval: 60_000,
            committed_log_size: 500,
            txn_log_sync: true,
            version: 0,
            reconfig_enabled: false,
            standalone_enabled: true,
        }
    }

    /// The same server and timing with other members (a config a reconfig or a peer
    /// brought).
    pub fn with_members(&self, servers: BTreeMap<Sid, QuorumServer>, version: i64) -> Self {
        QuorumConfig {
            servers,
            version,
            ..self.clone()
        }
    }

    /// Whether both list the same members the same way (Apache's `QuorumMaj.equals`:
    /// versions aside).
    pub fn same_members(&self, other: &QuorumConfig) -> bool {
        self.servers == other.servers
    }

    /// Whether `sid` is a voting member.
    pub fn is_voter(&self, sid: Sid) -> bool {
        matches!(self.servers.get(&sid), Some(s) if s.learner_type == LearnerType::Participant)
    }

    /// Whether this server votes.
    pub fn i_vote(&self) -> bool {
        self.is_voter(self.my_sid)
    }

    /// The voting members, ascending.
    pub fn voters(&self) -> impl Iterator<Item = Sid> + '_ {
        self.servers
            .values()
            .filter(|s| s.learner_type == LearnerType::Participant)
            .map(|s| s.sid)
    }

    /// Whether `acks` holds more than half of the voters (non-voters in it are ignored).
    pub fn contains_quorum<'a>(&self, acks: impl IntoIterator<Item = &'a Sid>) -> bool {
        let voters = self.voters().count();
        let got = acks.into_iter().filter(|s| self.is_voter(**s)).count();
        got > voters / 2
    }

    /// The config in Apache's `QuorumVerifier.toString()` form, sent in notifications and
    /// NEWLEADER.
    pub fn to_config_string(&self) -> String {
        let mut s = String::new();
        for srv in self.servers.values() {
            s.push_str(&format!("server.{}={}\n", srv.sid, srv.spec()));
        }
        s.push_str(&format!("version={:x}", self.version));
        s
    }

    /// Milliseconds a learner may take to sync (initLimit ticks).
    pub fn init_timeout(&self) -> Millis {
        self.tick_time * self.init_limit
    }

    /// Milliseconds a synced learner may stay silent (syncLimit ticks).
    pub fn sync_timeout(&self) -> Millis {
        self.tick_time * self.sync_limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_server_lines() {
        let s = QuorumServer::parse(2, "10.0.0.2:2888:3888;2181").unwrap();
        assert_eq!(s.quorum_addr(), "10.0.0.2:2888");
        assert_eq!(s.election_addr(), "10.0.0.2:3888");
        assert_eq!(s.learner_type, LearnerType::Participant);
        assert_eq!(s.client_addr.as_deref(), Some("0.0.0.0:2181"));
        let o = QuorumServer::parse(4, "h:1:2:observer;127.0.0.1:2184").unwrap();
        assert_eq!(o.learner_type, LearnerType::Observer);
        assert_eq!(o.client_addr.as_deref(), Some("127.0.0.1:2184"));
        assert!(QuorumServer::parse(1, "h:1").is_err());
        assert!(QuorumServer::parse(1, "h:x:2").is_err());
        assert!(QuorumServer::parse(1, "h:1:2:witness").is_err());
    }

    #[test]
    fn majority_of_voters_only() {
        let servers = (1..=5).map(|i| {
            let ty = if i > 3 { "observer" } else { "participant" };
            QuorumServer::parse(i, &format!("h:1:2:{ty}")).unwrap()
        });
        let c = QuorumConfig::new(1, servers);
        assert!(c.contains_quorum(&[1, 2]));
        assert!(!c.contains_quorum(&[1, 4, 5]));
        assert!(c.is_voter(3) && !c.is_voter(4) && !c.is_voter(9));
        assert!(c.to_config_string().contains("server.4=h:1:2:observer"));
    }
}
