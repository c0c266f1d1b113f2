//! Shared helpers of the persistence tests: txn builders and a tiny replay of txns onto a
//! tree (to check what a data dir holds). Also included (by `#[path]`) by the `tests`
//! crate's `storage_apache.rs`, which runs Apache on the dirs `Storage` writes; it lives
//! there because Apache is started only by the kit in `tests/src`.
#![allow(dead_code)]

pub mod tree;

use bytes::Bytes;
use zk_proto::txn::{
    CloseSessionTxn, CreateSessionTxn, CreateTxn, DeleteTxn, SetDataTxn, Txn, TxnEntry, TxnHeader,
};
use zk_proto::{Acl, OpCode};

/// A txn entry with a fixed session and time.
pub fn entry(zxid: i64, op: OpCode, txn: Txn) -> TxnEntry {
    TxnEntry {
        header: TxnHeader {
            client_id: 0x1234,
            cxid: zxid as i32,
            zxid,
            time: 1_700_000_000_000 + zxid,
            txn_type: op,
        },
        txn,
        digest: None,
    }
}

/// `create path data` (persistent, open ACL).
pub fn create(zxid: i64, path: &str, data: &str, parent_cversion: i32) -> TxnEntry {
    entry(
        zxid,
        OpCode::Create,
        Txn::Create(CreateTxn {
            path: path.into(),
            data: Some(Bytes::copy_from_slice(data.as_bytes())),
            acl: Acl::open_unsafe(),
            ephemeral: false,
            parent_c_version: parent_cversion,
        }),
    )
}

/// `setData path data` to `version`.
pub fn set_data(zxid: i64, path: &str, data: &str, version: i32) -> TxnEntry {
    entry(
        zxid,
        OpCode::SetData,
        Txn::SetData(SetDataTxn {
            path: path.into(),
            data: Some(Bytes::copy_from_slice(data.as_bytes())),
            version,
        }),
    )
}

/// `delete path`.
pub fn delete(zxid: i64, path: &str) -> TxnEntry {
    entry(
        zxid,
        OpCode::Delete,
        Txn::Delete(DeleteTxn { path: path.into() }),
    )
}

/// `createSession` of the fixed session.
pub fn create_session(zxid: i64, timeout: i32) -> TxnEntry {
    entry(
        zxid,
        OpCode::CreateSession,
        Txn::CreateSession(CreateSessionTxn { time_out: timeout }),
    )
}

/// `closeSession` of the fixed session.
pub fn close_session(zxid: i64, ephemerals: &[&str]) -> TxnEntry {
    entry(
        zxid,
        OpCode::CloseSession,
        Txn::CloseSession(Some(CloseSessionTxn {
            paths2_delete: ephemerals.iter().map(|p| p.to_string()).collect(),
        })),
    )
}

/// `n` creates of `/n<zxid>` starting at `first`.
pub fn creates(first: i64, n: i64) -> Vec<TxnEntry> {
    (first..first + n)
        .map(|z| create(z, &format!("/n{z}"), &format!("data-{z}"), -1))
        .collect()
}

/// Zxids of entries.
pub fn zxids(entries: &[TxnEntry]) -> Vec<i64> {
    entries.iter().map(|e| e.header.zxid).collect()
}

/// Names of the files in a directory, sorted.
pub fn file_names(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().to_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}
