//! Where sessions land when the leader of a zk-server ensemble dies (issue 12's storm,
//! small): the survivors must share them about evenly, as Apache's do. In a binary of its
//! own, with member processes and `kill -9`, as the `reconnect_storm` bench runs it.

use std::time::{Duration, Instant};

use tests::zk_processes::{Options, ProcessEnsemble};
use zk_client::hosts::{ConnectString, HostList};
use zk_client::{Client, SessionState};

const T: Duration = Duration::from_secs(30);

/// The leader dies while it and one follower hold all the sessions and the other
/// follower none (as after that follower restarted, in the bench). Both survivors close
/// their clients while they elect, then hold the handshakes that come back until they
/// serve. Each survivor must end with about half the sessions: were the closed clients to
/// walk on to the next host of their list, the empty follower would get all of the busy
/// one's plus half the leader's (75%), which is what the bench saw before
/// (`HostList::scatter`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_spread_evenly_over_the_survivors_of_a_leader_kill() {
    const N: usize = 300;
    let mut opts = Options::members(3);
    opts.extra_cfg = "maxClientCnxns=0\n".into();
    let mut ens = ProcessEnsemble::start(opts).await.expect("ensemble");
    let leader = ens.wait_for_leader(T).await.expect("leader");
    let (busy, empty) = ((leader + 1) % 3, (leader + 2) % 3);
    let cs = ens.connect_string();
    let hosts = ConnectString::parse(&cs).expect("connect string").hosts;
    let addr = |i: usize| ens.client_addr(i).to_string();
    let (leader_host, busy_host, empty_host) = (addr(leader), addr(busy), addr(empty));
    // Half the seeds start their list on the leader, half on the busy follower.
    let first = |seed: u64| {
        HostList::new(hosts.clone(), seed)
            .next_host()
            .map(|(h, _)| h.to_string())
    };
    let seeds: Vec<u64> = [&leader_host, &busy_host]
        .into_iter()
        .flat_map(|want| {
            (0u64..)
                .filter(move |s| first(*s).as_ref() == Some(want))
                .take(N / 2)
        })
        .collect();
    let mut clients = Vec::new();
    for chunk in seeds.chunks(50) {
        let batch = chunk.iter().map(|seed| {
            Client::builder(&cs)
                .seed(*seed)
                .session_timeout(Duration::from_secs(20))
                .connect()
        });
        for c in futures::future::join_all(batch).await {
            clients.push(c.expect("session"));
        }
    }
    let on = |clients: &[Client], host: &str| {
        clients
            .iter()
            .filter(|c| c.connected_host().map(|h| h.to_string()).as_deref() == Some(host))
            .count()
    };
    assert_eq!(
        (on(&clients, &leader_host), on(&clients, &busy_host)),
        (N / 2, N / 2),
        "the sessions start on the leader and the busy follower"
    );
    let killed = Instant::now();
    ens.kill9(leader);
    loop {
        let back = clients
            .iter()
            .filter(|c| {
                c.state() == SessionState::Connected
                    && c.connected_host().map(|h| h.to_string()).as_deref()
                        != Some(leader_host.as_str())
            })
            .count();
        if back == N {
            break;
        }
        assert!(
            killed.elapsed() < T,
            "{back} of {N} sessions back on a survivor after {:?}",
            killed.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = killed.elapsed();
    let (b, e) = (on(&clients, &busy_host), on(&clients, &empty_host));
    println!("all {N} sessions back in {took:?}: {b} on the busy follower, {e} on the empty one");
    assert_eq!(b + e, N);
    assert!(
        (N * 35 / 100..=N * 65 / 100).contains(&b),
        "uneven spread over the survivors: {b} on the busy follower, {e} on the empty one"
    );
    assert!(clients.iter().all(|c| c.state() != SessionState::Expired));
    for c in clients {
        let _ = c.close().await;
    }
}
