//! An embedded in-process ensemble for tests ([`Ensemble`]: start, find the leader, kill /
//! restart / isolate a member, heal), each member a [`crate::host::member::node::Node`].
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let ens = zk_server::testkit::Ensemble::start(3).await?;
//! let hosts = ens.connect_string(); // "127.0.0.1:A,127.0.0.1:B,127.0.0.1:C"
//! # let _ = hosts;
//! # Ok(()) }
//! ```
//!
//! Observers (members that follow the leader and serve clients but never vote) are added
//! with [`Ensemble::start_with_observers`]: `start_with_observers(3, 1)` is three voters
//! (members 0..3) and one observer (member 3); the quorum stays a majority of the voters.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::core::processor::CoreSettings;
use crate::host::bind;
use crate::host::member::node::{Node, NodeSetup};
use crate::host::member::replica::NodeDisk;
use crate::host::quorum::driver::{PeerAddrs, PeerStatus};
use crate::storage::Autopurge;
use crate::zab::{LearnerType, PeerState, QuorumConfig, QuorumServer, Sid};

/// The members' core settings unless [`Ensemble::start_with_core`] adjusts them: ticks of
/// 100 ms, session timeouts from 400 ms to 40 s.
fn default_core() -> CoreSettings {
    CoreSettings {
        tick_ms: 100,
        min_timeout: 400,
        max_timeout: 40_000,
        ..CoreSettings::default()
    }
}

fn io_error(e: crate::error::ServerError) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

struct Member {
    client: SocketAddr,
    quorum: QuorumConfig,
    disk: NodeDisk,
    node: Option<Node>,
    reserved: Option<(TcpListener, TcpListener, TcpListener)>,
}

/// N client-serving members on loopback, with in-memory disks that survive a kill.
/// Members are numbered `0..n` (server id `i + 1`); observers, if any, come after the
/// voters.
///
/// Defaults (unless [`Ensemble::start_with_core`] changes them): tickTime 100 ms, session
/// timeouts granted between 400 ms and 40 s (so a client's 10 s or 30 s is honoured),
/// read-only mode off, disks in memory. For a single server, see
/// [`crate::testkit::TestServer`].
pub struct Ensemble {
    addrs: PeerAddrs,
    members: Vec<Member>,
    read_only: bool,
    /// Members cut off by [`Ensemble::isolate`].
    isolated: BTreeSet<usize>,
    /// Every member's core settings but its server id.
    core: CoreSettings,
}

impl Ensemble {
    /// Starts `n` voting members on free loopback ports (tickTime 100 ms), with disks in
    /// memory (they survive [`Ensemble::kill`] / [`Ensemble::restart`]).
    pub async fn start(n: usize) -> std::io::Result<Ensemble> {
        Self::launch(n, 0, None, &|_| {}).await
    }

    /// Starts `voters` voting members and `observers` observers (Apache's
    /// `server.N=...:observer` with `peerType=observer`): members `0..voters` vote,
    /// members `voters..voters + observers` observe. Observers follow the leader, serve
    /// reads locally, forward writes and learn commits by INFORM; they never count toward
    /// a quorum, so with a majority of the voters down no member serves.
    ///
    /// ```no_run
    /// # async fn demo() -> std::io::Result<()> {
    /// let ens = zk_server::testkit::Ensemble::start_with_observers(3, 1).await?;
    /// let observer = ens.client_addr(3); // Mode: observer
    /// # let _ = observer;
    /// # Ok(()) }
    /// ```
    pub async fn start_with_observers(
        voters: usize,
        observers: usize,
    ) -> std::io::Result<Ensemble> {
        Self::launch(voters, observers, None, &|_| {}).await
    }

    /// Like [`Ensemble::start`], with each member's txn log and epoch files in
    /// `dir/member-<i>` (Apache's layout); a restart reads them back from disk.
    pub async fn start_on_disk(n: usize, dir: &Path) -> std::io::Result<Ensemble> {
        Self::launch(n, 0, Some(dir), &|_| {}).await
    }

    /// Like [`Ensemble::start`] (disks in `dir/member-<i>` when given, else in memory),
    /// with `tune` adjusting each member's quorum config first (e.g. `committed_log_size`,
    /// Apache's `zookeeper.commitLogCount`).
    pub async fn start_tuned(
        n: usize,
        dir: Option<&Path>,
        tune: impl Fn(&mut QuorumConfig),
    ) -> std::io::Result<Ensemble> {
        Self::launch(n, 0, dir, &tune).await
    }

    /// Like [`Ensemble::start`], with `core` adjusting every member's core settings (on
    /// each start and restart), e.g. `s.prep.extended_types = true` for TTL nodes, which
    /// Apache enables with `zookeeper.extendedTypesEnabled`.
    pub async fn start_with_core(
        n: usize,
        core: impl FnOnce(&mut CoreSettings),
    ) -> std::io::Result<Ensemble> {
        let mut settings = default_core();
        core(&mut settings);
        Self::launch_with(n, 0, None, &|_| {}, settings).await
    }

    async fn launch(
        voters: usize,
        observers: usize,
        dir: Option<&Path>,
        tune: &dyn Fn(&mut QuorumConfig),
    ) -> std::io::Result<Ensemble> {
        Self::launch_with(voters, observers, dir, tune, default_core()).await
    }

    async fn launch_with(
        voters: usize,
        observers: usize,
        dir: Option<&Path>,
        tune: &dyn Fn(&mut QuorumConfig),
        core: CoreSettings,
    ) -> std::io::Result<Ensemble> {
        let n = voters + observers;
        let mut election = BTreeMap::new();
        let mut quorum = BTreeMap::new();
        let mut servers = Vec::new();
        let mut bound = Vec::new();
        for i in 0..n {
            let sid = (i + 1) as Sid;
            let cl = TcpListener::bind("127.0.0.1:0").await?;
            let el = TcpListener::bind("127.0.0.1:0").await?;
            let ql = TcpListener::bind("127.0.0.1:0").await?;
            let (c, e, q) = (cl.local_addr()?, el.local_addr()?, ql.local_addr()?);
            election.insert(sid, e);
            quorum.insert(sid, q);
            servers.push(QuorumServer {
                sid,
                host: "127.0.0.1".into(),
                quorum_port: q.port(),
                election_port: e.port(),
                learner_type: match i < voters {
                    true => LearnerType::Participant,
                    false => LearnerType::Observer,
                },
                client_addr: Some(c.to_string()),
            });
            bound.push((c, (cl, el, ql)));
        }
        let mut members = Vec::new();
        for (i, (client, reserved)) in bound.into_iter().enumerate() {
            let mut quorum = QuorumConfig::new((i + 1) as Sid, servers.clone());
            quorum.tick_time = 100;
            quorum.max_notification_interval = 400;
            tune(&mut quorum);
            let disk = match dir {
                Some(d) => NodeDisk::open(&d.join(format!("member-{i}"))).map_err(io_error)?,
                None => NodeDisk::default(),
            };
            members.push(Member {
                client,
                quorum,
                disk,
                node: None,
                reserved: Some(reserved),
            });
        }
        let mut ens = Ensemble {
            addrs: PeerAddrs {
                election,
                quorum,
                security: crate::host::quorum::QuorumSecurity::plaintext(),
            },
            members,
            read_only: false,
            isolated: BTreeSet::new(),
            core,
        };
        for i in 0..n {
            ens.restart(i).await?;
        }
        Ok(ens)
    }

    /// Whether member `i` is an observer.
    pub fn is_observer(&self, i: usize) -> bool {
        self.members.get(i).is_some_and(|m| {
            m.quorum
                .servers
                .get(&m.quorum.my_sid)
                .is_some_and(|s| s.learner_type == LearnerType::Observer)
        })
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether there are no members.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// `host:port,...` of every member.
    pub fn connect_string(&self) -> String {
        let hosts: Vec<String> = self.members.iter().map(|m| m.client.to_string()).collect();
        hosts.join(",")
    }

    /// Client address of member `i`.
    pub fn client_addr(&self, i: usize) -> Option<SocketAddr> {
        self.members.get(i).map(|m| m.client)
    }

    /// The disk of member `i` (its counters: [`NodeDisk::stats`]; its `snapCount`:
    /// [`NodeDisk::set_snap_count`]; its autopurge: [`NodeDisk::set_autopurge`]).
    pub fn disk(&self, i: usize) -> Option<&NodeDisk> {
        self.members.get(i).map(|m| &m.disk)
    }

    /// Sets every member's `snapCount` (roughly how many txns between snapshots).
    pub fn set_snap_count(&self, n: u64) {
        for m in &self.members {
            m.disk.set_snap_count(n);
        }
    }

    /// Turns on autopurge for every member on disk (off by default, as in Apache): each
    /// keeps its newest `snap_retain_count` snapshots (at least 3) and the logs to replay
    /// from the oldest, purging at once, every `interval` and after each snapshot. Tests
    /// pass milliseconds where zoo.cfg says hours.
    ///
    /// ```no_run
    /// # async fn demo(dir: &std::path::Path) -> std::io::Result<()> {
    /// use std::time::Duration;
    /// use zk_server::storage::Autopurge;
    /// let ens = zk_server::testkit::Ensemble::start_on_disk(3, dir).await?;
    /// ens.set_snap_count(100);
    /// ens.set_autopurge(Autopurge {
    ///     snap_retain_count: 3,
    ///     interval: Duration::from_millis(200),
    /// });
    /// # Ok(()) }
    /// ```
    pub fn set_autopurge(&self, a: Autopurge) {
        for m in &self.members {
            m.disk.set_autopurge(a);
        }
    }

    /// Role of member `i`, when running.
    pub fn status(&self, i: usize) -> Option<PeerStatus> {
        self.members.get(i)?.node.as_ref().map(|n| n.status())
    }

    /// The member leading an established quorum, if any. An isolated member is never
    /// reported (it may believe it still leads until it notices it lost its quorum).
    pub fn leader(&self) -> Option<usize> {
        (0..self.members.len()).find(|i| {
            !self.isolated.contains(i)
                && self
                    .status(*i)
                    .is_some_and(|s| s.serving && s.state == PeerState::Leading)
        })
    }

    /// Waits until every running member that is not isolated serves under one leader;
    /// returns it.
    pub async fn wait_for_leader(&self, timeout: Duration) -> Option<usize> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let running: Vec<PeerStatus> = (0..self.members.len())
                .filter(|i| !self.isolated.contains(i))
                .filter_map(|i| self.status(i))
                .collect();
            if let Some(l) = self.leader() {
                let sid = Some((l + 1) as Sid);
                if running.iter().all(|s| s.serving && s.leader == sid) {
                    return Some(l);
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Turns read-only mode (Apache's `readonlymode.enabled`) on or off for every member,
    /// running and restarted: a member cut off from its quorum then serves read-only
    /// clients.
    pub fn set_read_only_mode(&mut self, on: bool) {
        self.read_only = on;
        for n in self.members.iter().filter_map(|m| m.node.as_ref()) {
            n.set_read_only_mode(on);
        }
    }

    /// Cuts member `i` off from the other members, like a network partition around it:
    /// election and leader-follower traffic is dropped both ways, while its clients still
    /// reach it. An isolated leader stops serving once it misses its followers' acks for
    /// syncLimit ticks and the others elect a new leader; an isolated follower stops
    /// serving when it stops hearing from the leader. Ended by [`Ensemble::heal`] or by
    /// restarting the member.
    ///
    /// ```no_run
    /// # async fn demo() -> std::io::Result<()> {
    /// use std::time::Duration;
    /// let mut ens = zk_server::testkit::Ensemble::start(3).await?;
    /// let old = ens.wait_for_leader(Duration::from_secs(10)).await.expect("leader");
    /// ens.isolate(old);
    /// let new = ens.wait_for_leader(Duration::from_secs(10)).await.expect("new leader");
    /// assert_ne!(new, old);
    /// ens.heal(); // the old leader rejoins as a follower and catches up
    /// # Ok(()) }
    /// ```
    pub fn isolate(&mut self, i: usize) {
        if let Some(n) = self.members.get(i).and_then(|m| m.node.as_ref()) {
            n.isolate(true);
            self.isolated.insert(i);
        }
    }

    /// Ends every isolation: the members reconnect, and one that led while cut off
    /// rejoins the current leader as a follower (its unacknowledged txns are truncated).
    pub fn heal(&mut self) {
        for n in self.members.iter().filter_map(|m| m.node.as_ref()) {
            n.isolate(false);
        }
        self.isolated.clear();
    }

    /// Whether member `i` is isolated.
    pub fn is_isolated(&self, i: usize) -> bool {
        self.isolated.contains(&i)
    }

    /// Has the current leader give its next write zxid counter `counter` (see
    /// [`crate::host::member::node::Node::seed_zxid_counter`]): tests the counter
    /// rollover without billions of writes. `None` when no established leader with
    /// nothing in flight took it.
    pub async fn seed_leader_counter(&self, counter: u32) -> Option<i64> {
        let i = self.leader()?;
        self.members
            .get(i)?
            .node
            .as_ref()?
            .seed_zxid_counter(counter)
            .await
    }

    /// Has the current leader act as a faulty one: it proposes `data` as its next txn,
    /// unchecked (see [`crate::host::member::node::Node::propose_raw_txn`]). Returns the
    /// zxid it got, or `None` when no established leader with nothing in flight took it.
    pub async fn leader_proposes_raw(&self, data: bytes::Bytes) -> Option<i64> {
        let i = self.leader()?;
        self.members
            .get(i)?
            .node
            .as_ref()?
            .propose_raw_txn(data)
            .await
    }

    /// Stops member `i` like a crash (its disk stays for [`Ensemble::restart`]).
    pub fn kill(&mut self, i: usize) {
        if let Some(m) = self.members.get_mut(i) {
            m.node = None;
        }
        self.isolated.remove(&i);
    }

    /// (Re)starts member `i` from its disk on the same ports.
    pub async fn restart(&mut self, i: usize) -> std::io::Result<()> {
        let Some(m) = self.members.get_mut(i) else {
            return Ok(());
        };
        m.node = None;
        self.isolated.remove(&i);
        let sid = m.quorum.my_sid;
        let (cl, el, ql) = match m.reserved.take() {
            Some(r) => r,
            None => {
                let (Some(e), Some(q)) =
                    (self.addrs.election.get(&sid), self.addrs.quorum.get(&sid))
                else {
                    return Ok(());
                };
                (bind(m.client).await?, bind(*e).await?, bind(*q).await?)
            }
        };
        m.disk.recover().map_err(io_error)?;
        let settings = CoreSettings {
            server_id: sid,
            ..self.core.clone()
        };
        let node = Node::start(NodeSetup {
            quorum: m.quorum.clone(),
            settings,
            disk: m.disk.clone(),
            client: cl.into(),
            election: el,
            quorum_listener: ql,
            addrs: self.addrs.clone(),
        });
        node.set_read_only_mode(self.read_only);
        m.node = Some(node);
        Ok(())
    }
}
