//! The `ip` scheme: an address, optionally with a `/bits` prefix length.

use std::net::IpAddr;

fn parse(id: &str) -> Option<(Vec<u8>, u32)> {
    let mut parts = id.splitn(2, '/');
    let addr: IpAddr = parts.next()?.parse().ok()?;
    let bytes = match addr {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    };
    let max = (bytes.len() * 8) as u32;
    let bits = match parts.next() {
        None => max,
        Some(b) => {
            let b: i64 = b.parse().ok()?;
            if b < 0 || b > i64::from(max) {
                return None;
            }
            b as u32
        }
    };
    Some((bytes, bits))
}

/// Whether an ip ACL id is well formed.
pub fn is_valid_id(id: &str) -> bool {
    parse(id).is_some()
}

/// Whether the client address `client` falls in the ACL expression `acl` (`addr[/bits]`).
pub fn matches(client: &str, acl: &str) -> bool {
    let (Some((want, bits)), Ok(addr)) = (parse(acl), client.parse::<IpAddr>()) else {
        return false;
    };
    let have = match addr {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    };
    if have.len() != want.len() {
        return false;
    }
    let mut left = bits;
    for (h, w) in have.iter().zip(&want) {
        if left == 0 {
            break;
        }
        let take = left.min(8);
        let mask: u8 = (0xffu16 << (8 - take)) as u8;
        if h & mask != w & mask {
            return false;
        }
        left -= take;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks() {
        assert!(matches("10.1.2.3", "10.1.2.3"));
        assert!(matches("10.1.2.3", "10.1.0.0/16"));
        assert!(!matches("10.2.2.3", "10.1.0.0/16"));
        assert!(matches("10.1.2.3", "10.1.2.0/23"));
        assert!(matches("::1", "::1"));
        assert!(!matches("::1", "127.0.0.1"));
        assert!(is_valid_id("1.2.3.4/32"));
        assert!(!is_valid_id("1.2.3.4/33"));
        assert!(!is_valid_id("nonsense"));
    }
}
