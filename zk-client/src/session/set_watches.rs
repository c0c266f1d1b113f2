//! Re-registering watches after a reconnect: SetWatches / SetWatches2 packets of at most
//! 128 KiB of paths each (Java's `SET_WATCHES_MAX_LENGTH`), so a client with many watches
//! never builds a frame the server refuses.

use zk_proto::watch::{SetWatches, SetWatches2};
use zk_proto::Request;

use crate::watch::registry::WatchLists;

/// Upper bound on the path bytes carried by one SetWatches packet.
pub const SET_WATCHES_MAX_LENGTH: usize = 128 * 1024;

/// Splits `lists` into packets; SetWatches2 only when a batch has persistent watches (older
/// servers do not know opcode 105).
pub fn batches(lists: &WatchLists, relative_zxid: i64) -> Vec<Request> {
    let kinds: [&Vec<String>; 5] = [
        &lists.data,
        &lists.exist,
        &lists.child,
        &lists.persistent,
        &lists.recursive,
    ];
    let mut out = Vec::new();
    let mut cur: [Vec<String>; 5] = Default::default();
    let mut len = 0usize;
    for (k, paths) in kinds.iter().enumerate() {
        for p in paths.iter() {
            let cost = p.len() + 4;
            if len > 0 && len + cost > SET_WATCHES_MAX_LENGTH {
                out.push(packet(std::mem::take(&mut cur), relative_zxid));
                len = 0;
            }
            if let Some(slot) = cur.get_mut(k) {
                slot.push(p.clone());
            }
            len += cost;
        }
    }
    if len > 0 {
        out.push(packet(cur, relative_zxid));
    }
    out
}

fn packet(lists: [Vec<String>; 5], relative_zxid: i64) -> Request {
    let [data_watches, exist_watches, child_watches, persistent_watches, persistent_recursive_watches] =
        lists;
    if persistent_watches.is_empty() && persistent_recursive_watches.is_empty() {
        Request::SetWatches(SetWatches {
            relative_zxid,
            data_watches,
            exist_watches,
            child_watches,
        })
    } else {
        Request::SetWatches2(SetWatches2 {
            relative_zxid,
            data_watches,
            exist_watches,
            child_watches,
            persistent_watches,
            persistent_recursive_watches,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_128_kib_and_keeps_every_path() {
        let lists = WatchLists {
            data: (0..3000).map(|i| format!("/data/{i:0100}")).collect(),
            child: (0..1000).map(|i| format!("/child/{i:0100}")).collect(),
            ..Default::default()
        };
        let b = batches(&lists, 42);
        assert!(b.len() >= 3, "{} batches", b.len());
        let mut data = 0;
        let mut child = 0;
        for r in &b {
            let Request::SetWatches(sw) = r else {
                panic!("expected SetWatches");
            };
            assert_eq!(sw.relative_zxid, 42);
            let bytes: usize = sw
                .data_watches
                .iter()
                .chain(&sw.exist_watches)
                .chain(&sw.child_watches)
                .map(|p| p.len() + 4)
                .sum();
            assert!(bytes <= SET_WATCHES_MAX_LENGTH);
            data += sw.data_watches.len();
            child += sw.child_watches.len();
        }
        assert_eq!((data, child), (3000, 1000));
    }

    #[test]
    fn persistent_watches_use_set_watches2() {
        let lists = WatchLists {
            recursive: vec!["/r".into()],
            ..Default::default()
        };
        assert!(matches!(batches(&lists, 1)[..], [Request::SetWatches2(_)]));
        assert!(batches(&WatchLists::default(), 1).is_empty());
    }
}
