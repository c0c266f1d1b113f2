//! Accepts client connections and enforces `maxClientCnxns` per client IP.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::TcpListener;
use tokio::sync::mpsc::UnboundedSender;

use super::connection::{self, ConnSettings, Throttle};
use super::ClientMsg;

/// Live connections per client IP.
#[derive(Debug, Default)]
pub struct IpCounts(Mutex<HashMap<IpAddr, usize>>);

impl IpCounts {
    /// Counts a new connection unless the IP is at `max` (0: unlimited).
    pub fn try_add(&self, ip: IpAddr, max: usize) -> bool {
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let n = m.entry(ip).or_insert(0);
        if max > 0 && *n >= max {
            return false;
        }
        *n += 1;
        true
    }

    /// Forgets a closed connection.
    pub fn remove(&self, ip: IpAddr) {
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = m.get_mut(&ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                m.remove(&ip);
            }
        }
    }
}

/// Accept loop: one task per connection.
pub async fn run<M: From<ClientMsg> + Send + 'static>(
    listener: TcpListener,
    core: UnboundedSender<M>,
    settings: Arc<ConnSettings>,
    throttle: Arc<Throttle>,
) {
    let next_id = AtomicU64::new(1);
    let counts = Arc::new(IpCounts::default());
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        if !counts.try_add(peer.ip(), settings.max_client_cnxns) {
            tracing::warn!(
                "too many connections from {} - max is {}",
                peer.ip(),
                settings.max_client_cnxns
            );
            drop(stream);
            continue;
        }
        let _ = stream.set_nodelay(true);
        let id = next_id.fetch_add(1, Ordering::Relaxed);
        let core = core.clone();
        let settings = settings.clone();
        let throttle = throttle.clone();
        let counts = counts.clone();
        tokio::spawn(async move {
            connection::run(stream, peer, id, core, settings, throttle).await;
            counts.remove(peer.ip());
        });
    }
}
