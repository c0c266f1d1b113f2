//! Path validation (the rules of Java's `PathUtils.validatePath`) and chroot mapping.

use crate::error::{Error, Result};

fn bad(path: &str, reason: &'static str) -> Error {
    Error::InvalidPath {
        path: path.to_owned(),
        reason,
    }
}

/// Checks a node path; `sequential` allows the trailing `/` of a sequential create.
///
/// ```
/// use zk_client::path::validate_path;
/// assert!(validate_path("/a/b", false).is_ok());
/// assert!(validate_path("/a/", true).is_ok());
/// assert!(validate_path("a", false).is_err());
/// assert!(validate_path("/a//b", false).is_err());
/// assert!(validate_path("/a/./b", false).is_err());
/// ```
pub fn validate_path(path: &str, sequential: bool) -> Result<()> {
    if path.is_empty() {
        return Err(bad(path, "path is empty"));
    }
    if !path.starts_with('/') {
        return Err(bad(path, "path must start with /"));
    }
    if path.len() == 1 {
        return Ok(());
    }
    let body = if sequential {
        // The server appends the sequence number, so "/a/" names children "/a/0000000001".
        path.strip_suffix('/')
            .map(|p| if p.is_empty() { "/x" } else { p })
    } else {
        None
    }
    .unwrap_or(path);
    if body.ends_with('/') {
        return Err(bad(path, "path must not end with /"));
    }
    for seg in body[1..].split('/') {
        if seg.is_empty() {
            return Err(bad(path, "empty path segment"));
        }
        if seg == "." || seg == ".." {
            return Err(bad(path, "relative path segment"));
        }
    }
    for c in path.chars() {
        let u = c as u32;
        if u == 0 {
            return Err(bad(path, "null character"));
        }
        if (0x01..=0x1f).contains(&u)
            || (0x7f..=0x9f).contains(&u)
            || (0xd800..=0xf8ff).contains(&u)
            || (0xfff0..=0xffff).contains(&u)
        {
            return Err(bad(path, "invalid character"));
        }
    }
    Ok(())
}

/// A validated chroot prefix (`""` when none), prepended to every path sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Chroot(String);

impl Chroot {
    /// Parses `"/app"` (or `""`/`"/"` for none).
    pub fn new(root: &str) -> Result<Self> {
        if root.is_empty() || root == "/" {
            return Ok(Chroot(String::new()));
        }
        validate_path(root, false)?;
        Ok(Chroot(root.to_owned()))
    }

    /// The prefix (`""` when none).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Server path for a client path.
    pub fn to_server(&self, path: &str) -> String {
        if self.0.is_empty() {
            path.to_owned()
        } else if path == "/" {
            self.0.clone()
        } else {
            let mut s = String::with_capacity(self.0.len() + path.len());
            s.push_str(&self.0);
            s.push_str(path);
            s
        }
    }

    /// Length of the server path for `path`, and its two halves, for encoding without an
    /// intermediate allocation.
    pub(crate) fn parts<'a>(&'a self, path: &'a str) -> (&'a str, &'a str) {
        if self.0.is_empty() {
            ("", path)
        } else if path == "/" {
            (&self.0, "")
        } else {
            (&self.0, path)
        }
    }

    /// Client path for a server path (paths outside the chroot are returned unchanged).
    pub fn to_client(&self, path: &str) -> String {
        self.strip(path).to_owned()
    }

    /// Borrowing form of [`Chroot::to_client`].
    pub fn strip<'a>(&self, path: &'a str) -> &'a str {
        if self.0.is_empty() {
            return path;
        }
        match path.strip_prefix(self.0.as_str()) {
            Some("") => "/",
            Some(rest) if rest.starts_with('/') => rest,
            _ => path,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chroot_maps_both_ways() {
        let c = Chroot::new("/app").unwrap();
        assert_eq!(c.to_server("/"), "/app");
        assert_eq!(c.to_server("/x"), "/app/x");
        assert_eq!(c.to_client("/app"), "/");
        assert_eq!(c.to_client("/app/x/y"), "/x/y");
        assert_eq!(c.to_client("/apple"), "/apple");
        let none = Chroot::new("/").unwrap();
        assert_eq!(none.to_server("/x"), "/x");
        assert!(Chroot::new("app").is_err());
    }

    #[test]
    fn invalid_paths() {
        for p in ["", "x", "/a/", "//", "/a/../b", "/a\u{1}", "/a\u{0}b"] {
            assert!(validate_path(p, false).is_err(), "{p:?}");
        }
        for p in ["/", "/a", "/a/b-c_d.e", "/zookeeper/quota"] {
            assert!(validate_path(p, false).is_ok(), "{p:?}");
        }
        assert!(validate_path("/", true).is_ok());
        assert!(validate_path("/q/", true).is_ok());
        assert!(validate_path("/q//", true).is_err());
    }
}
