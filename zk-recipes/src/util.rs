//! Small helpers shared by the recipes: retrying transient errors, creating parent paths,
//! random node-name tokens, path joining.

use std::future::Future;
use std::time::Duration;

use zk_client::{Acl, Client, CreateMode};

/// Retries `op` while it fails with a transient error (`ConnectionLoss`, `Timeout`),
/// backing off 20 ms .. 1 s. Terminal errors (expiry, close) end the retries, so this
/// never loops forever on a dead session.
///
/// Only for idempotent operations, or ones whose outcome the caller checks afterwards.
pub async fn retry<T, F, Fut>(mut op: F) -> zk_client::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = zk_client::Result<T>>,
{
    let mut delay = Duration::from_millis(20);
    loop {
        match op().await {
            Err(e) if e.is_retryable() => {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(1));
            }
            r => return r,
        }
    }
}

/// Creates `path` and its missing ancestors as persistent nodes (empty data). Existing
/// nodes are fine.
pub async fn ensure_path(client: &Client, path: &str) -> zk_client::Result<()> {
    if path == "/" || path.is_empty() {
        return Ok(());
    }
    if retry(|| client.exists(path, false)).await?.is_some() {
        return Ok(());
    }
    let acl = Acl::open_unsafe();
    let mut cur = String::new();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        cur.push('/');
        cur.push_str(part);
        match retry(|| client.create(&cur, b"", &acl, CreateMode::Persistent)).await {
            Ok(_) | Err(zk_client::Error::NodeExists { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A random 32-hex-digit token (the shape of kazoo's `uuid4().hex` node prefixes).
pub fn token() -> String {
    let v: u128 = rand::random();
    format!("{v:032x}")
}

/// `parent/child` without doubling the slash at the root.
pub fn join(parent: &str, child: &str) -> String {
    if parent == "/" {
        format!("/{child}")
    } else {
        format!("{parent}/{child}")
    }
}

/// The parent of an absolute path (`"/"` for top-level nodes).
pub fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

/// The last component of a path.
pub fn name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// The number of components below `root` (`root` itself is depth 0), or `None` when
/// `path` is not under `root`.
pub fn depth_below(root: &str, path: &str) -> Option<usize> {
    if path == root {
        return Some(0);
    }
    let rest = if root == "/" {
        path.strip_prefix('/')?
    } else {
        path.strip_prefix(root)?.strip_prefix('/')?
    };
    Some(rest.split('/').count())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(join("/", "a"), "/a");
        assert_eq!(join("/a", "b"), "/a/b");
        assert_eq!(parent("/a/b"), "/a");
        assert_eq!(parent("/a"), "/");
        assert_eq!(name("/a/b"), "b");
        assert_eq!(depth_below("/a", "/a"), Some(0));
        assert_eq!(depth_below("/a", "/a/b/c"), Some(2));
        assert_eq!(depth_below("/a", "/ab"), None);
        assert_eq!(depth_below("/", "/x/y"), Some(2));
        assert_eq!(token().len(), 32);
    }
}
