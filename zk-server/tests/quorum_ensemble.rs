//! Three in-process peers over loopback sockets: election, sync, broadcast, leader loss
//! and a restarted follower catching up from its disk.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::net::TcpListener;
use zk_proto::jute::{JuteReader, JuteWrite};
use zk_server::quorum::net::driver::{spawn_peer, PeerAddrs, PeerHandle, Replica};
use zk_server::quorum::{DiskState, PeerState, Proposal, QuorumConfig, QuorumServer, Zxid};

/// Disk and database of one server, kept across restarts.
#[derive(Default)]
struct Mem {
    accepted: i64,
    current: i64,
    log: Vec<Proposal>,
    applied: Vec<Proposal>,
}

#[derive(Clone, Default)]
struct MemReplica(Arc<Mutex<Mem>>);

impl MemReplica {
    fn applied(&self) -> Vec<Zxid> {
        self.0
            .lock()
            .unwrap()
            .applied
            .iter()
            .map(|p| p.zxid)
            .collect()
    }

    /// What a restart finds: the log replayed.
    fn restart(&self) -> DiskState {
        let mut m = self.0.lock().unwrap();
        m.applied = m.log.clone();
        DiskState {
            accepted_epoch: m.accepted,
            current_epoch: m.current,
            last_zxid: m.log.last().map(|p| p.zxid).unwrap_or(0),
            recent: m.log.clone(),
        }
    }
}

impl Replica for MemReplica {
    fn persist(&mut self, p: &Proposal) {
        self.0.lock().unwrap().log.push(p.clone());
    }
    fn apply(&mut self, p: &Proposal) {
        self.0.lock().unwrap().applied.push(p.clone());
    }
    fn snapshot(&self) -> Bytes {
        let m = self.0.lock().unwrap();
        let mut b = BytesMut::new();
        b.write_i32(m.applied.len() as i32);
        for p in &m.applied {
            b.write_i64(p.zxid);
            b.write_buffer(&p.data);
        }
        b.freeze()
    }
    fn install_snapshot(&mut self, _zxid: Zxid, data: Bytes) {
        let mut r = JuteReader::new(data);
        let n = r.read_i32().unwrap();
        let txns: Vec<Proposal> = (0..n)
            .map(|_| Proposal {
                zxid: r.read_i64().unwrap(),
                data: r.read_buffer().unwrap(),
            })
            .collect();
        let mut m = self.0.lock().unwrap();
        m.log = txns.clone();
        m.applied = txns;
    }
    fn truncate(&mut self, zxid: Zxid) {
        let mut m = self.0.lock().unwrap();
        m.log.retain(|p| p.zxid <= zxid);
        m.applied.retain(|p| p.zxid <= zxid);
    }
    fn save_accepted_epoch(&mut self, e: i64) {
        self.0.lock().unwrap().accepted = e;
    }
    fn save_current_epoch(&mut self, e: i64) {
        self.0.lock().unwrap().current = e;
    }
}

struct Ensemble {
    addrs: PeerAddrs,
    servers: Vec<QuorumServer>,
    replicas: BTreeMap<i64, MemReplica>,
    peers: BTreeMap<i64, PeerHandle>,
    committed_log_size: usize,
}

impl Ensemble {
    async fn start(n: i64, committed_log_size: usize) -> Self {
        let mut election = BTreeMap::new();
        let mut quorum = BTreeMap::new();
        let mut servers = Vec::new();
        for sid in 1..=n {
            // Reserve ports by binding 0, then release them for the peers to rebind.
            let e = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let q = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let (ea, qa): (SocketAddr, SocketAddr) =
                (e.local_addr().unwrap(), q.local_addr().unwrap());
            election.insert(sid, ea);
            quorum.insert(sid, qa);
            servers.push(
                QuorumServer::parse(sid, &format!("127.0.0.1:{}:{}", qa.port(), ea.port()))
                    .unwrap(),
            );
        }
        let mut ens = Ensemble {
            addrs: PeerAddrs { election, quorum },
            servers,
            replicas: BTreeMap::new(),
            peers: BTreeMap::new(),
            committed_log_size,
        };
        for sid in 1..=n {
            ens.replicas.insert(sid, MemReplica::default());
            ens.launch(sid).await;
        }
        ens
    }

    async fn launch(&mut self, sid: i64) {
        let mut cfg = QuorumConfig::new(sid, self.servers.clone());
        cfg.tick_time = 100;
        cfg.init_limit = 10;
        cfg.sync_limit = 5;
        cfg.max_notification_interval = 400;
        cfg.committed_log_size = self.committed_log_size;
        let replica = self.replicas[&sid].clone();
        let disk = replica.restart();
        let el = TcpListener::bind(self.addrs.election[&sid]).await.unwrap();
        let ql = TcpListener::bind(self.addrs.quorum[&sid]).await.unwrap();
        let h = spawn_peer(cfg, disk, replica, el, ql, self.addrs.clone());
        self.peers.insert(sid, h);
    }

    /// Waits until every running peer serves under one leader; returns it.
    async fn settled(&mut self, not: Option<i64>) -> i64 {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let st: Vec<_> = self.peers.values().map(|p| p.status()).collect();
            if st.iter().all(|s| s.serving) {
                let leaders: Vec<_> = st.iter().map(|s| s.leader).collect();
                if leaders.windows(2).all(|w| w[0] == w[1]) {
                    if let Some(l) = leaders[0] {
                        if Some(l) != not {
                            return l;
                        }
                    }
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no stable leader: {st:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn write(&self, leader: i64, n: usize, tag: &str) -> Vec<Zxid> {
        let mut zxids = Vec::new();
        for i in 0..n {
            let z = self.peers[&leader]
                .propose(Bytes::from(format!("{tag}{i}")))
                .await
                .expect("leader proposes");
            zxids.push(z);
        }
        zxids
    }

    async fn all_applied(&self, last: Zxid) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let done = self
                .peers
                .keys()
                .all(|s| self.replicas[s].applied().last() == Some(&last));
            if done {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "txns not applied everywhere"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_peers_elect_replicate_fail_over_and_catch_up() {
    let mut ens = Ensemble::start(3, 1000).await;
    let leader = ens.settled(None).await;
    assert_eq!(ens.peers[&leader].status().state, PeerState::Leading);

    let first = ens.write(leader, 50, "a").await;
    ens.all_applied(*first.last().unwrap()).await;
    let reference = ens.replicas[&leader].applied();
    assert_eq!(reference.len(), 50);
    for r in ens.replicas.values() {
        assert_eq!(r.applied(), reference, "identical state everywhere");
    }

    // Kill the leader: the other two elect a new one in a later epoch and keep going.
    ens.peers.remove(&leader).unwrap().kill();
    let second_leader = ens.settled(Some(leader)).await;
    assert_ne!(second_leader, leader);
    let second = ens.write(second_leader, 30, "b").await;
    assert!(second[0] >> 32 > first[0] >> 32, "new epoch");
    ens.all_applied(*second.last().unwrap()).await;

    // The old leader restarts from its disk and catches up (DIFF) as a follower.
    ens.launch(leader).await;
    let third_leader = ens.settled(None).await;
    assert_eq!(
        third_leader, second_leader,
        "a joiner does not disturb the leader"
    );
    let third = ens.write(third_leader, 10, "c").await;
    ens.all_applied(*third.last().unwrap()).await;
    let reference = ens.replicas[&third_leader].applied();
    assert_eq!(reference.len(), 90);
    for r in ens.replicas.values() {
        assert_eq!(r.applied(), reference);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follower_that_missed_more_than_the_committed_log_gets_a_snapshot() {
    let mut ens = Ensemble::start(3, 20).await;
    let leader = ens.settled(None).await;
    ens.write(leader, 5, "a").await;
    let follower = *ens.peers.keys().find(|s| **s != leader).unwrap();
    ens.peers.remove(&follower).unwrap().kill();
    let missed = ens.write(leader, 100, "b").await;
    ens.all_applied(*missed.last().unwrap()).await;
    ens.launch(follower).await;
    assert_eq!(ens.settled(None).await, leader);
    let more = ens.write(leader, 5, "c").await;
    ens.all_applied(*more.last().unwrap()).await;
    let reference = ens.replicas[&leader].applied();
    assert_eq!(reference.len(), 110);
    assert_eq!(ens.replicas[&follower].applied(), reference);
    assert_eq!(
        ens.replicas[&follower].0.lock().unwrap().log.len(),
        110,
        "snapshot + log"
    );
}
