//! zk-client sessions as the suites open them.

use std::time::Duration;

use zk_client::Client;

/// How long a suite waits for a session to be established before failing.
pub const CONNECT_WAIT: Duration = Duration::from_secs(10);

/// Connects to `hosts` with `session_timeout`; panics (failing the test) if no session is
/// established within [`CONNECT_WAIT`].
pub async fn connect(hosts: &str, session_timeout: Duration) -> Client {
    tokio::time::timeout(
        CONNECT_WAIT,
        Client::builder(hosts)
            .session_timeout(session_timeout)
            .connect(),
    )
    .await
    .expect("connect in time")
    .expect("connects")
}

/// Runs `f` until it succeeds, retrying errors a client may retry (connection loss,
/// timeouts: the ensemble has no quorum yet) for up to `within`; panics with `what` on any
/// other error or when the time is up.
pub async fn retry<F, Fut, V>(what: &str, within: Duration, mut f: F) -> V
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<V, zk_client::Error>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match f().await {
            Ok(v) => return v,
            Err(e) if tokio::time::Instant::now() >= deadline => panic!("{what}: {e}"),
            Err(e) if e.is_retryable() => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(e) => panic!("{what}: {e}"),
        }
    }
}
