//! zk-client's reconnect jitter when an ensemble member dies under a crowd: 1,000 clients
//! of one zk-server process, SIGKILLed (`client_scenarios/stampede.rs` measures). In a
//! binary of its own so that no other test competes for the CPU while it is measured.

mod client_scenarios;

/// The scenario: 1,000 clients of one member of a 3-process zk-server ensemble; the
/// member is killed (SIGKILL). Their reconnections to the two survivors spread over the
/// jitter window (3 s here, with 20 s sessions), none expires, and the survivors share the
/// crowd about evenly. Clients reach each member through a proxy, whose accept times are
/// the server-side view of the attempts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_clients_of_a_killed_member_spread_their_reconnections() {
    use client_scenarios::stampede::{assert_spread, Spread};
    use std::time::{Duration, Instant};
    use tests::proxy::Proxy;
    use tests::zk_processes::{Options, ProcessEnsemble};
    use zk_client::{Client, SessionState};

    const N: usize = 1000;
    let window = Duration::from_secs(3);
    let mut opts = Options::members(3);
    opts.extra_cfg = "maxClientCnxns=0\nmaxSessionTimeout=30000\n".into();
    let mut ens = ProcessEnsemble::start(opts).await.expect("ensemble");
    let leader = ens
        .wait_for_leader(Duration::from_secs(30))
        .await
        .expect("leader");
    // The victim is a follower: a member is lost, not the quorum's leader.
    let victim = (0..3).find(|&i| i != leader).expect("a follower");
    let survivors: Vec<usize> = (0..3).filter(|&i| i != victim).collect();
    let to_victim = Proxy::start(ens.client_addr(victim)).await.unwrap();
    let to_survivor = [
        Proxy::start(ens.client_addr(survivors[0])).await.unwrap(),
        Proxy::start(ens.client_addr(survivors[1])).await.unwrap(),
    ];
    // Everyone lands on the victim first: the survivors refuse until the crowd is in.
    for p in &to_survivor {
        p.set_refuse(true);
    }
    let hosts = format!(
        "{},{},{}",
        to_victim.addr(),
        to_survivor[0].addr(),
        to_survivor[1].addr()
    );
    let mut clients = Vec::with_capacity(N);
    for chunk in 0..N.div_ceil(50) {
        let batch = (chunk * 50..((chunk + 1) * 50).min(N)).map(|i| {
            Client::builder(&hosts)
                .session_timeout(Duration::from_secs(20))
                .reconnect_jitter(window)
                .seed(i as u64)
                .connect()
        });
        for c in futures::future::join_all(batch).await {
            clients.push(c.expect("connect"));
        }
    }
    assert_eq!(
        to_victim.accepted() as usize,
        N,
        "every client on the victim"
    );
    let sessions: Vec<i64> = clients.iter().map(|c| c.session_id()).collect();
    for p in &to_survivor {
        p.set_refuse(false);
    }
    let before: Vec<usize> = to_survivor.iter().map(|p| p.accept_times().len()).collect();

    let t0 = Instant::now();
    ens.kill9(victim);
    to_victim.set_refuse(true);
    to_victim.drop_connections();
    let deadline = t0 + Duration::from_secs(60);
    loop {
        let back = clients
            .iter()
            .filter(|c| c.state() == SessionState::Connected)
            .count();
        let accepted: usize = to_survivor
            .iter()
            .zip(&before)
            .map(|(p, b)| p.accept_times().len() - b)
            .sum();
        if back == N && accepted >= N {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{back}/{N} clients back, {accepted} accepted, after 60 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for (c, sid) in clients.iter().zip(&sessions) {
        assert_eq!(c.session_id(), *sid, "a session was replaced");
        assert_eq!(c.state(), SessionState::Connected);
    }
    let per_survivor: Vec<usize> = to_survivor
        .iter()
        .zip(&before)
        .map(|(p, b)| p.accept_times().len() - b)
        .collect();
    let mut attempts_ms: Vec<f64> = to_survivor
        .iter()
        .zip(&before)
        .flat_map(|(p, b)| p.accept_times()[*b..].to_vec())
        .map(|t| t.saturating_duration_since(t0).as_secs_f64() * 1000.0)
        .collect();
    attempts_ms.sort_by(f64::total_cmp);
    attempts_ms.truncate(N);
    eprintln!("survivors took {per_survivor:?} of {N}");
    assert_spread(&Spread {
        window_ms: window.as_secs_f64() * 1000.0,
        attempts_ms,
    });
    // Spread over the survivors as the shuffled host lists spread them (Apache's clients
    // split about evenly too): neither takes more than 60%.
    for k in &per_survivor {
        assert!(k * 10 <= N * 6, "uneven: {per_survivor:?}");
    }
    for c in &clients {
        let _ = c.close().await;
    }
}
