//! Zxid arithmetic: the high 32 bits are the epoch, the low 32 bits a counter.

/// A ZooKeeper transaction id.
pub type Zxid = i64;

/// Builds a zxid from an epoch and a counter.
pub fn make_zxid(epoch: i64, counter: i64) -> Zxid {
    (epoch << 32) | (counter & 0xffff_ffff)
}

/// The epoch part of a zxid.
pub fn epoch_of(zxid: Zxid) -> i64 {
    zxid >> 32
}

/// The counter part of a zxid.
pub fn counter_of(zxid: Zxid) -> i64 {
    zxid & 0xffff_ffff
}

/// Formats a zxid the way Apache logs it (`0x1000000a5`).
pub fn hex(zxid: Zxid) -> String {
    format!("0x{zxid:x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_and_join() {
        let z = make_zxid(3, 17);
        assert_eq!(z, 0x3_0000_0011);
        assert_eq!(epoch_of(z), 3);
        assert_eq!(counter_of(z), 17);
        assert_eq!(make_zxid(1, 0xffff_ffff) + 1, make_zxid(2, 0));
        assert_eq!(hex(z), "0x300000011");
    }
}
