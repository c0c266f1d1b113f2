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
        Ok(QuorumServer {
            sid,
            host: parts[0].to_owned(),
            quorum_port: port(parts[1], "quorum port")?,
            election_port: port(parts[2], "election port")?,
            learner_type,
            client_addr,
        })
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
#[derive(Debug, Clone)]
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
        }
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
            let ty = match srv.learner_type {
                LearnerType::Participant => "participant",
                LearnerType::Observer => "observer",
            };
            s.push_str(&format!(
                "server.{}={}:{}:{}:{}",
                srv.sid, srv.host, srv.quorum_port, srv.election_port, ty
            ));
            if let Some(c) = &srv.client_addr {
                s.push(';');
                s.push_str(c);
            }
            s.push('\n');
        }
        s.push_str("version=0");
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
