//! Transactions (multi) and batched reads (multiRead).

use bytes::{Bytes, BytesMut};
use zk_proto::multi::{MultiOp, MultiRequest, MultiResponse, OpResult as WireResult};
use zk_proto::ops::{
    CheckVersionRequest, CreateRequest, CreateTtlRequest, DeleteRequest, PathWatchRequest,
    SetDataRequest,
};
use zk_proto::{Acl, CreateMode, ErrorCode, OpCode, Record, Stat};

use crate::client::Client;
use crate::error::{Error, Result};
use crate::path::validate_path;
use crate::session::PostAction;

/// The result of one op of a transaction or multi-read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpResult {
    /// A create: actual path (chroot removed) and, when the server sent it, the Stat.
    Create {
        /// Created path.
        path: String,
        /// Its Stat.
        stat: Option<Stat>,
    },
    /// A delete.
    Delete,
    /// A set_data: the new Stat.
    SetData(Stat),
    /// A check.
    Check,
    /// A multi-read get_data.
    GetData(Bytes, Stat),
    /// A multi-read get_children.
    GetChildren(Vec<String>),
    /// The op failed; in an aborted transaction the ops around the failing one report
    /// `Server(Ok)` (ran, rolled back) or `Server(RuntimeInconsistency)` (not run).
    Error(Error),
}

/// The server path an op is about.
fn op_path(op: &MultiOp) -> &str {
    match op {
        MultiOp::Create(_, r) => &r.path,
        MultiOp::CreateTtl(r) => &r.path,
        MultiOp::Delete(r) => &r.path,
        MultiOp::SetData(r) => &r.path,
        MultiOp::Check(r) => &r.path,
        MultiOp::GetChildren(r) | MultiOp::GetData(r) => &r.path,
    }
}

/// `path` is the op's path as the caller wrote it, for the error's message.
fn convert(client: &Client, r: WireResult, path: &str) -> OpResult {
    match r {
        WireResult::Create(p) => OpResult::Create {
            path: client.client_path(&p),
            stat: None,
        },
        WireResult::Create2(p, s) => OpResult::Create {
            path: client.client_path(&p),
            stat: Some(s),
        },
        WireResult::Delete => OpResult::Delete,
        WireResult::SetData(s) => OpResult::SetData(s),
        WireResult::Check => OpResult::Check,
        WireResult::GetChildren(c) => OpResult::GetChildren(c),
        WireResult::GetData(d, s) => OpResult::GetData(d.unwrap_or_default(), s),
        WireResult::Error(ErrorCode::Ok) => OpResult::Error(Error::Server(ErrorCode::Ok)),
        WireResult::Error(c @ ErrorCode::RuntimeInconsistency) => OpResult::Error(Error::Server(c)),
        WireResult::Error(c) => OpResult::Error(Error::from_code_at(c, path)),
    }
}

/// An atomic transaction: all ops apply or none.
///
/// ```no_run
/// # async fn f(client: zk_client::Client) -> zk_client::Result<()> {
/// use zk_client::{Acl, CreateMode, OpResult};
/// let results = client
///     .multi()
///     .check("/config", Some(3))
///     .create("/config/new", b"x", &Acl::open_unsafe(), CreateMode::Persistent)
///     .set_data("/config", b"y", None)
///     .delete("/config/old", None)
///     .commit()
///     .await?;
/// assert!(matches!(results[1], OpResult::Create { .. }));
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use = "a transaction does nothing until committed"]
pub struct Transaction {
    client: Client,
    ops: Vec<MultiOp>,
    error: Option<Error>,
}

impl Transaction {
    pub(crate) fn new(client: Client) -> Self {
        Transaction {
            client,
            ops: Vec::new(),
            error: None,
        }
    }

    fn check_path(&mut self, path: &str, seq: bool) -> bool {
        if self.error.is_some() {
            return false;
        }
        if let Err(e) = validate_path(path, seq) {
            self.error = Some(e);
            return false;
        }
        true
    }

    /// Adds a create (any mode except TTL; use [`Self::create_ttl`]).
    pub fn create(mut self, path: &str, data: &[u8], acl: &[Acl], mode: CreateMode) -> Self {
        if mode.is_ttl() {
            self.error
                .get_or_insert(Error::BadArgument("TTL modes need create_ttl"));
        }
        if self.check_path(path, mode.is_sequential()) {
            let op = if mode == CreateMode::Container {
                OpCode::CreateContainer
            } else {
                OpCode::Create2
            };
            self.ops.push(MultiOp::Create(
                op,
                CreateRequest {
                    path: self.client.server_path(path),
                    data: Some(Bytes::copy_from_slice(data)),
                    acl: acl.to_vec(),
                    flags: mode.to_flags(),
                },
            ));
        }
        self
    }

    /// Adds a create with a TTL in milliseconds.
    pub fn create_ttl(
        mut self,
        path: &str,
        data: &[u8],
        acl: &[Acl],
        mode: CreateMode,
        ttl_ms: i64,
    ) -> Self {
        if !mode.is_ttl() {
            self.error
                .get_or_insert(Error::BadArgument("create_ttl needs a TTL create mode"));
        }
        if self.check_path(path, mode.is_sequential()) {
            self.ops.push(MultiOp::CreateTtl(CreateTtlRequest {
                path: self.client.server_path(path),
                data: Some(Bytes::copy_from_slice(data)),
                acl: acl.to_vec(),
                flags: mode.to_flags(),
                ttl: ttl_ms,
            }));
        }
        self
    }

    /// Adds a delete.
    pub fn delete(mut self, path: &str, version: Option<i32>) -> Self {
        if self.check_path(path, false) {
            self.ops.push(MultiOp::Delete(DeleteRequest {
                path: self.client.server_path(path),
                version: version.unwrap_or(-1),
            }));
        }
        self
    }

    /// Adds a set_data.
    pub fn set_data(mut self, path: &str, data: &[u8], version: Option<i32>) -> Self {
        if self.check_path(path, false) {
            self.ops.push(MultiOp::SetData(SetDataRequest {
                path: self.client.server_path(path),
                data: Some(Bytes::copy_from_slice(data)),
                version: version.unwrap_or(-1),
            }));
        }
        self
    }

    /// Adds a version check (`None`: the node must merely exist).
    pub fn check(mut self, path: &str, version: Option<i32>) -> Self {
        if self.check_path(path, false) {
            self.ops.push(MultiOp::Check(CheckVersionRequest {
                path: self.client.server_path(path),
                version: version.unwrap_or(-1),
            }));
        }
        self
    }

    /// Number of ops so far.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// True when no op was added.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Sends the transaction. On success, one result per op; if the server aborts it,
    /// `Err(Error::Multi { index, source, results })` names the failing op.
    pub async fn commit(self) -> Result<Vec<OpResult>> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let results = run(&self.client, OpCode::Multi, self.ops).await?;
        if let Some((index, source)) = results.iter().enumerate().find_map(|(i, r)| match r {
            OpResult::Error(Error::Server(ErrorCode::Ok | ErrorCode::RuntimeInconsistency)) => None,
            OpResult::Error(e) => Some((i, e.clone())),
            _ => None,
        }) {
            return Err(Error::Multi {
                index,
                source: Box::new(source),
                results,
            });
        }
        Ok(results)
    }
}

async fn run(client: &Client, op: OpCode, ops: Vec<MultiOp>) -> Result<Vec<OpResult>> {
    let paths: Vec<String> = ops.iter().map(|o| client.client_path(op_path(o))).collect();
    let mut b = BytesMut::new();
    MultiRequest { ops }.write(&mut b);
    let reply = client.call(op, b, PostAction::None, None).await?;
    if reply.body.is_empty() && reply.err != ErrorCode::Ok {
        return Err(Error::from_code(reply.err));
    }
    let resp = MultiResponse::decode(reply.body)?;
    Ok(resp
        .results
        .into_iter()
        .zip(
            paths
                .iter()
                .map(String::as_str)
                .chain(std::iter::repeat("")),
        )
        .map(|(r, p)| convert(client, r, p))
        .collect())
}

/// Several reads answered in one round trip; each op succeeds or fails on its own.
///
/// ```no_run
/// # async fn f(client: zk_client::Client) -> zk_client::Result<()> {
/// let results = client.multi_read().get_data("/a").get_children("/").execute().await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use = "a multi-read does nothing until executed"]
pub struct MultiRead {
    client: Client,
    ops: Vec<MultiOp>,
    error: Option<Error>,
}

impl MultiRead {
    pub(crate) fn new(client: Client) -> Self {
        MultiRead {
            client,
            ops: Vec::new(),
            error: None,
        }
    }

    fn push(mut self, path: &str, data: bool) -> Self {
        if self.error.is_some() {
            return self;
        }
        if let Err(e) = validate_path(path, false) {
            self.error = Some(e);
            return self;
        }
        let req = PathWatchRequest {
            path: self.client.server_path(path),
            watch: false,
        };
        self.ops.push(if data {
            MultiOp::GetData(req)
        } else {
            MultiOp::GetChildren(req)
        });
        self
    }

    /// Adds a get_data.
    pub fn get_data(self, path: &str) -> Self {
        self.push(path, true)
    }

    /// Adds a get_children.
    pub fn get_children(self, path: &str) -> Self {
        self.push(path, false)
    }

    /// Sends the batch; one result per op (`OpResult::Error` for the ones that failed).
    pub async fn execute(self) -> Result<Vec<OpResult>> {
        if let Some(e) = self.error {
            return Err(e);
        }
        run(&self.client, OpCode::MultiRead, self.ops).await
    }
}
