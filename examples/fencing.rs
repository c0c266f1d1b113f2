//! Fencing tokens: two workers take turns on a lock guarding a downstream "ledger". The
//! first stalls while holding the lock (as in a long GC pause) and its session expires;
//! the second takes the lock with a greater token and writes. When the first wakes up and
//! writes with its old token, the ledger refuses it: ZooKeeper cannot stop a stale holder,
//! the downstream check does.
//!
//! `cargo run -p examples --example fencing [-- --hosts h:p,...]`

use std::sync::Mutex;
use std::time::Duration;

use zk_client::{Client, SessionState};
use zk_recipes::fencing::{Fence, FencingToken};
use zk_recipes::lock::Lock;
use zk_recipes::Session;

/// The downstream system: accepts a write only with a token not lower than any seen.
#[derive(Default)]
struct Ledger {
    fence: Fence,
    entries: Mutex<Vec<String>>,
}

impl Ledger {
    fn write(&self, who: &str, token: FencingToken, entry: &str) -> zk_recipes::Result<()> {
        // Check and write together (one lock here; a database would use a conditional
        // write such as `UPDATE ... WHERE token <= $token`).
        let mut entries = self.entries.lock().unwrap();
        self.fence.check(token)?;
        entries.push(format!("{entry} (by {who}, token {token})"));
        Ok(())
    }
}

/// What a long pause does to a session: it expires on the ensemble. Done here from a
/// second client that resumes the session and closes it.
async fn expire(client: &Client, hosts: &str) -> Result<(), Box<dyn std::error::Error>> {
    for _ in 0..5 {
        if let Ok(other) = Client::builder(hosts)
            .session(client.session_id(), client.session_password())
            .connect()
            .await
        {
            let _ = other.close().await;
        }
        let expired = client
            .wait_for_state(Duration::from_secs(3), |s| s == SessionState::Expired)
            .await;
        if expired.is_ok() {
            return Ok(());
        }
    }
    Err("could not expire the session".into())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let target = examples::target().await?;
    let hosts = target.hosts.clone();
    let ledger = Ledger::default();

    let a_session = Session::connect(&hosts).await?;
    let b_session = Session::connect(&hosts).await?;
    let a = Lock::new(&a_session, "/locks/ledger", "worker-a");
    let b = Lock::new(&b_session, "/locks/ledger", "worker-b");

    a.acquire().await?;
    let a_token = a.fencing_token().ok_or("a holds the lock")?;
    println!("worker-a holds the lock, token {a_token}");
    ledger.write("worker-a", a_token, "entry 1")?;

    // worker-a stalls; its session expires while worker-b waits for the lock.
    let b_waits = tokio::spawn(async move { b.acquire().await.map(|()| b) });
    println!("worker-a stalls...");
    expire(&a_session.client(), &hosts).await?;
    println!("worker-a's session expired (it does not know yet)");
    let b = b_waits.await??;
    let b_token = b.fencing_token().ok_or("b holds the lock")?;
    println!("worker-b holds the lock, token {b_token} (> {a_token})");
    ledger.write("worker-b", b_token, "entry 2")?;

    // worker-a wakes up and carries on with the token it had.
    match ledger.write("worker-a", a_token, "entry 3") {
        Ok(()) => return Err("the ledger accepted a stale holder".into()),
        Err(e) => println!("worker-a refused by the ledger: {e}"),
    }
    assert!(!a.is_held());

    b.release().await?;
    println!("ledger:");
    for e in ledger.entries.lock().unwrap().iter() {
        println!("  {e}");
    }
    a_session.close().await?;
    b_session.close().await?;
    target.shutdown().await;
    println!("fencing: the stale holder was refused");
    Ok(())
}
