//! The prepare stage: validates a write against the state it will meet (tree plus
//! outstanding changes), checks ACLs and turns it into a txn with a zxid (Apache's
//! `PrepRequestProcessor`). Sans-IO: time and zxid come in as arguments.

use bytes::Bytes;
use std::collections::BTreeSet;
use std::sync::Arc;
use zk_proto::create_mode::{ttl_to_ephemeral_owner, CONTAINER_EPHEMERAL_OWNER};

use zk_proto::ops::{
    CheckVersionRequest, CreateRequest, DeleteRequest, ReconfigRequest, SetAclRequest,
    SetDataRequest,
};
use zk_proto::txn::{
    CheckVersionTxn, CloseSessionTxn, CreateContainerTxn, CreateSessionTxn, CreateTtlTxn,
    CreateTxn, DeleteTxn, ErrorTxn, SetAclTxn, SetDataTxn, Txn, TxnEntry, TxnHeader,
};
use zk_proto::{CreateMode, ErrorCode, Id, MultiOp, OpCode, Perms, Request};

use crate::core::pending::{NodeView, PendingChanges};
use crate::state::acl;
use crate::state::database::ZkDatabase;
use crate::state::tree::node::{new_stat, NodeKind};
use crate::state::tree::{path, DataTree};
use crate::zab::config::ConfigText;
use crate::zab::{QuorumConfig, QuorumServer, Sid};

/// What an ensemble leader knows when it prepares a reconfig (set by its node before
/// each reconfig request; absent on learners' and standalone processors).
#[derive(Debug, Clone)]
pub struct ReconfigContext {
    /// The committed config.
    pub committed: Arc<QuorumConfig>,
    /// The last config seen proposed (the committed one when no reconfig is in progress).
    pub last_seen: Arc<QuorumConfig>,
    /// The leader and the participants synced with it now.
    pub synced: BTreeSet<Sid>,
}

/// Largest TTL Apache accepts (40 bits; the bits above hold the extended type).
pub const MAX_TTL_MS: i64 = 0x00ff_ffff_ffff;

/// Who is asking and when.
#[derive(Debug, Clone, Copy)]
pub struct PrepContext<'a> {
    /// Session.
    pub session: i64,
    /// The connection's identities.
    pub auth: &'a [Id],
    /// Request xid.
    pub cxid: i32,
    /// Zxid to assign.
    pub zxid: i64,
    /// Wall clock, ms.
    pub time: i64,
}

/// Settings the prep stage needs.
#[derive(Debug, Clone)]
pub struct PrepSettings {
    /// `zookeeper.extendedTypesEnabled`: TTL nodes.
    pub extended_types: bool,
    /// `jute.maxbuffer`: largest node data.
    pub max_data: usize,
    /// Reconfig enabled (never in standalone).
    pub reconfig_enabled: bool,
    /// Auth providers beyond digest and ip (ACL ids they validate and match).
    pub schemes: crate::state::acl::Schemes,
    /// `zookeeper.enforceQuota`: creates and setData past a hard quota limit fail with
    /// QuotaExceeded, and writes past a soft one are logged.
    pub enforce_quota: bool,
}

impl Default for PrepSettings {
    fn default() -> Self {
        PrepSettings {
            extended_types: false,
            max_data: zk_proto::frame::DEFAULT_JUTE_MAX_BUFFER,
            reconfig_enabled: false,
            schemes: Default::default(),
            enforce_quota: false,
        }
    }
}

/// The prepare stage and its outstanding changes.
#[derive(Debug, Default)]
pub struct Prep {
    /// Outstanding changes.
    pub pending: PendingChanges,
    /// Settings.
    pub settings: PrepSettings,
    /// The leader's view of the ensemble, for reconfig requests.
    pub reconfig: Option<ReconfigContext>,
    /// Quota warnings, rate limited.
    quota_log: QuotaLog,
}

/// Apache's `RateLogger` for quota messages: a new message is logged at once; repeats
/// within 100 ms are counted and logged with their count when the interval ends or
/// another message comes.
#[derive(Debug, Default)]
struct QuotaLog {
    msg: Option<String>,
    since: i64,
    count: u32,
}

impl QuotaLog {
    const INTERVAL_MS: i64 = 100;

    fn flush(&mut self) {
        if let Some(m) = self.msg.take() {
            if self.count > 1 {
                tracing::warn!("[{} times] {m}", self.count);
            } else if self.count == 1 {
                tracing::warn!("{m}");
            }
        }
        self.count = 0;
    }

    fn log(&mut self, msg: String, now: i64) {
        if self.msg.as_deref() == Some(msg.as_str()) {
            self.count += 1;
            if now - self.since >= Self::INTERVAL_MS {
                self.flush();
                self.msg = Some(msg);
                self.since = now;
            }
        } else {
            self.flush();
            tracing::warn!("{msg}");
            self.msg = Some(msg);
            self.since = now;
        }
    }
}

fn header(ctx: &PrepContext, ty: OpCode) -> TxnHeader {
    TxnHeader {
        client_id: ctx.session,
        cxid: ctx.cxid,
        zxid: ctx.zxid,
        time: ctx.time,
        txn_type: ty,
    }
}

fn entry(h: TxnHeader, txn: Txn) -> TxnEntry {
    TxnEntry {
        header: h,
        txn,
        digest: None,
    }
}

fn validate_path(p: &str) -> Result<(), ErrorCode> {
    path::validate(p).map_err(|_| ErrorCode::BadArguments)
}

/// `path.substring(0, lastSlash)` with Apache's root spelled `/`.
fn parent_for(p: &str) -> Result<&str, ErrorCode> {
    match p.rfind('/') {
        None => Err(ErrorCode::BadArguments),
        _ if p.contains('\0') => Err(ErrorCode::BadArguments),
        Some(0) => Ok("/"),
        Some(i) => Ok(&p[..i]),
    }
}

/// An incremental reconfig's member list: `leaving` ids removed, `joining` specs
/// (`server.N=spec`, comma separated) added or replacing. Ids that are not numbers fail as
/// Apache's uncaught NumberFormatException does (MarshallingError); anything else wrong
/// is BadArguments.
fn incremental(
    last_seen: &QuorumConfig,
    joining: Option<&str>,
    leaving: Option<&str>,
) -> Result<std::collections::BTreeMap<Sid, QuorumServer>, ErrorCode> {
    let mut next = last_seen.servers.clone();
    for id in leaving.into_iter().flat_map(|l| l.split(',')) {
        let id = id.trim();
        if id.is_empty() {
            continue;
        }
        let sid: Sid = id.parse().map_err(|_| ErrorCode::MarshallingError)?;
        next.remove(&sid);
    }
    for joiner in joining.into_iter().flat_map(|j| j.split(',')) {
        let joiner = joiner.trim();
        if joiner.is_empty() {
            continue;
        }
        let parts: Vec<&str> = joiner.split('=').filter(|p| !p.is_empty()).collect();
        let [key, spec] = parts[..] else {
            tracing::info!("reconfig: {joiner:?}: Wrong format of server string");
            return Err(ErrorCode::BadArguments);
        };
        let id = key.rsplit('.').next().unwrap_or(key).trim();
        let sid: Sid = id.parse().map_err(|_| ErrorCode::MarshallingError)?;
        let qs = QuorumServer::parse(sid, spec.trim()).map_err(|e| {
            tracing::info!("reconfig: {joiner:?}: {e}");
            ErrorCode::BadArguments
        })?;
        if qs.client_addr.is_none() {
            tracing::info!(
                "reconfig: {joiner:?}: Wrong format of server string - each server should \
                 have 3 ports specified"
            );
            return Err(ErrorCode::BadArguments);
        }
        next.insert(sid, qs);
    }
    Ok(next)
}

fn check_version(current: i32, expected: i32) -> Result<i32, ErrorCode> {
    if expected != -1 && expected != current {
        return Err(ErrorCode::BadVersion);
    }
    Ok(current.wrapping_add(1))
}

impl Prep {
    /// A prep stage with the given settings.
    pub fn new(settings: PrepSettings) -> Self {
        Prep {
            pending: PendingChanges::new(),
            settings,
            reconfig: None,
            quota_log: QuotaLog::default(),
        }
    }

    /// Apache's `checkQuota` for a create (`count_diff` 1) or setData (0) under `p`: only
    /// with `zookeeper.enforceQuota`, against the applied tree as in Apache.
    fn check_quota(
        &mut self,
        db: &ZkDatabase,
        ctx: &PrepContext,
        p: &str,
        bytes_diff: i64,
        count_diff: i64,
    ) -> Result<(), ErrorCode> {
        if !self.settings.enforce_quota {
            return Ok(());
        }
        let breaches = db
            .tree
            .check_quota(p, bytes_diff, count_diff)
            .map_err(|e| {
                // Apache's parser throws, and the request fails as unprocessable.
                tracing::error!("quota check of {p} failed: {e}");
                ErrorCode::MarshallingError
            })?;
        for b in &breaches {
            self.quota_log.log(b.to_string(), ctx.time);
        }
        if breaches.iter().any(|b| b.hard) {
            return Err(ErrorCode::QuotaExceeded);
        }
        Ok(())
    }

    fn record(&self, db: &ZkDatabase, p: &str) -> Result<NodeView, ErrorCode> {
        self.pending.get(db, p).ok_or(ErrorCode::NoNode)
    }

    fn check_acl(&self, view: &NodeView, perm: Perms, auth: &[Id]) -> Result<(), ErrorCode> {
        if acl::check(&view.acl, perm, auth, &self.settings.schemes) {
            Ok(())
        } else {
            Err(ErrorCode::NoAuth)
        }
    }

    fn check_data(&self, data: &Option<Bytes>) -> Result<(), ErrorCode> {
        if data
            .as_ref()
            .is_some_and(|d| d.len() > self.settings.max_data)
        {
            return Err(ErrorCode::BadArguments);
        }
        Ok(())
    }

    /// Turns a write request into a txn. Failures become error txns, which are logged and
    /// consume a zxid exactly as in Apache.
    pub fn prepare(&mut self, db: &ZkDatabase, ctx: &PrepContext, req: &Request) -> TxnEntry {
        let result = match req {
            Request::Multi(m) => return self.prepare_multi(db, ctx, &m.ops),
            Request::CloseSession => {
                // A client's close carries its xid, as in Apache, so a follower that
                // forwarded it can match the committed txn to the waiting reply.
                let mut e = self.close_session(db, ctx.session, ctx.zxid, ctx.time);
                e.header.cxid = ctx.cxid;
                return e;
            }
            Request::Create(r) => self.create(db, ctx, OpCode::Create, r, -1),
            Request::Create2(r) => self.create(db, ctx, OpCode::Create2, r, -1),
            Request::CreateContainer(r) => self.create(db, ctx, OpCode::CreateContainer, r, -1),
            Request::CreateTtl(r) => {
                let c = CreateRequest {
                    path: r.path.clone(),
                    data: r.data.clone(),
                    acl: r.acl.clone(),
                    flags: r.flags,
                };
                self.create(db, ctx, OpCode::CreateTtl, &c, r.ttl)
            }
            Request::Delete(r) => self.delete(db, ctx, r),
            // Apache decodes a client's deleteContainer path from the whole packet, header
            // included, so it always holds a NUL: BadArguments. Containers are reaped by
            // the server itself through [`Prep::delete_container`].
            Request::DeleteContainer(_) => Err(ErrorCode::BadArguments),
            Request::SetData(r) => self.set_data(db, ctx, r),
            Request::SetAcl(r) => self.set_acl(db, ctx, r),
            Request::Check(r) => self.check(db, ctx, r),
            Request::Reconfig(r) => self.reconfig(db, ctx, r),
            _ => Err(ErrorCode::BadArguments),
        };
        match result {
            Ok((ty, txn)) => entry(header(ctx, ty), txn),
            Err(e) => entry(header(ctx, OpCode::Error), Txn::Error(ErrorTxn { err: e })),
        }
    }

    /// Apache's reconfig checks, in its order: enabled, an ensemble, no reconfig in
    /// progress, `fromConfig`, the new member list (incremental or not), enough voters, a
    /// synced quorum of the new config, then WRITE on `/zookeeper/config` (super only by
    /// default). The txn is a SetData of the new config text under the reconfig type;
    /// the config's version is its zxid.
    fn reconfig(
        &mut self,
        db: &ZkDatabase,
        ctx: &PrepContext,
        r: &ReconfigRequest,
    ) -> Result<(OpCode, Txn), ErrorCode> {
        if !self.settings.reconfig_enabled {
            return Err(ErrorCode::ReconfigDisabled);
        }
        let Some(q) = &self.reconfig else {
            // Standalone (or not leading): Apache cannot cast to a leader server.
            return Err(ErrorCode::Unimplemented);
        };
        if q.last_seen.version != q.committed.version {
            return Err(ErrorCode::ReconfigInProgress);
        }
        if r.cur_config_id != -1 && r.cur_config_id != q.last_seen.version {
            return Err(ErrorCode::BadVersion);
        }
        let servers = match &r.new_members {
            Some(members) => {
                ConfigText::parse(members)
                    .map_err(|e| {
                        tracing::info!("reconfig: bad member list {members:?}: {e}");
                        ErrorCode::BadArguments
                    })?
                    .servers
            }
            None => incremental(
                &q.last_seen,
                r.joining_servers.as_deref(),
                r.leaving_servers.as_deref(),
            )?,
        };
        let next = q.committed.with_members(servers, ctx.zxid);
        let voters = next.voters().count();
        if (q.committed.standalone_enabled && voters < 2) || voters < 1 {
            tracing::info!(
                "reconfig failed: the new configuration must include at least {} followers",
                if q.committed.standalone_enabled { 2 } else { 1 }
            );
            return Err(ErrorCode::BadArguments);
        }
        let synced: BTreeSet<Sid> = q
            .synced
            .iter()
            .copied()
            .filter(|s| next.is_voter(*s))
            .collect();
        if !next.contains_quorum(&synced) {
            tracing::info!(
                "reconfig failed: no connected and synced quorum in the new configuration \
                 (synced: {synced:?})"
            );
            return Err(ErrorCode::NewConfigNoQuorum);
        }
        let view = self.record(db, crate::state::tree::data_tree::CONFIG_ZOOKEEPER)?;
        self.check_acl(&view, Perms::WRITE, ctx.auth)?;
        Ok((
            OpCode::Reconfig,
            Txn::SetData(SetDataTxn {
                path: crate::state::tree::data_tree::CONFIG_ZOOKEEPER.to_owned(),
                data: Some(Bytes::from(next.to_config_string())),
                version: -1,
            }),
        ))
    }

    fn prepare_multi(&mut self, db: &ZkDatabase, ctx: &PrepContext, ops: &[MultiOp]) -> TxnEntry {
        // Apache refuses to deserialize a multi mixing in read ops: the whole request fails
        // with MarshallingError (still as a logged error txn).
        if ops
            .iter()
            .any(|o| matches!(o, MultiOp::GetChildren(_) | MultiOp::GetData(_)))
        {
            return entry(
                header(ctx, OpCode::Error),
                Txn::Error(ErrorTxn {
                    err: ErrorCode::MarshallingError,
                }),
            );
        }
        self.pending.begin();
        let mut failed = false;
        let mut subs = Vec::with_capacity(ops.len());
        for op in ops {
            if failed {
                subs.push((
                    OpCode::Error,
                    Txn::Error(ErrorTxn {
                        err: ErrorCode::RuntimeInconsistency,
                    }),
                ));
                continue;
            }
            let r = match op {
                MultiOp::Create(_, r) => {
                    // Apache rebuilds a multi's creates as `Op.create(path, data, acl,
                    // flags)`: the sub-txn's type comes from the flags (createContainer or
                    // create), never create2, which Apache's DataTree would not apply.
                    let ty = match CreateMode::from_flags(r.flags) {
                        Ok(m) if m.is_container() => OpCode::CreateContainer,
                        _ => OpCode::Create,
                    };
                    self.create(db, ctx, ty, r, -1)
                }
                MultiOp::CreateTtl(r) => {
                    let c = CreateRequest {
                        path: r.path.clone(),
                        data: r.data.clone(),
                        acl: r.acl.clone(),
                        flags: r.flags,
                    };
                    self.create(db, ctx, OpCode::CreateTtl, &c, r.ttl)
                }
                MultiOp::Delete(r) => self.delete(db, ctx, r),
                MultiOp::SetData(r) => self.set_data(db, ctx, r),
                MultiOp::Check(r) => self.check(db, ctx, r),
                MultiOp::GetChildren(_) | MultiOp::GetData(_) => Err(ErrorCode::MarshallingError),
            };
            match r {
                Ok(sub) => subs.push(sub),
                Err(e) => {
                    failed = true;
                    subs.push((OpCode::Error, Txn::Error(ErrorTxn { err: e })));
                }
            }
        }
        self.pending.end(failed);
        entry(header(ctx, OpCode::Multi), Txn::Multi(subs))
    }

    fn create(
        &mut self,
        db: &ZkDatabase,
        ctx: &PrepContext,
        ty: OpCode,
        r: &CreateRequest,
        ttl: i64,
    ) -> Result<(OpCode, Txn), ErrorCode> {
        let mode = CreateMode::from_flags(r.flags).map_err(|_| ErrorCode::BadArguments)?;
        if mode.is_ttl() && !self.settings.extended_types {
            return Err(ErrorCode::Unimplemented);
        }
        if mode.is_ttl() {
            if ttl <= 0 || ttl > MAX_TTL_MS {
                return Err(ErrorCode::BadArguments);
            }
        } else if ttl >= 0 {
            return Err(ErrorCode::BadArguments);
        }
        let parent_path = parent_for(&r.path)?.to_string();
        let acl = acl::fixup(&r.acl, ctx.auth, &self.settings.schemes)?;
        let mut parent = self.record(db, &parent_path)?;
        self.check_acl(&parent, Perms::CREATE, ctx.auth)?;
        let mut p = r.path.clone();
        if mode.is_sequential() {
            p.push_str(&format!("{:010}", parent.stat.cversion));
        }
        validate_path(&p)?;
        if self.pending.get(db, &p).is_some() {
            return Err(ErrorCode::NodeExists);
        }
        if matches!(
            NodeKind::from_owner(parent.stat.ephemeral_owner),
            NodeKind::Ephemeral(_)
        ) {
            return Err(ErrorCode::NoChildrenForEphemerals);
        }
        self.check_data(&r.data)?;
        let data_len = r.data.as_ref().map_or(0, Bytes::len);
        self.check_quota(db, ctx, &p, data_len as i64, 1)?;
        let new_cversion = parent.stat.cversion.wrapping_add(1);
        let owner = if mode.is_container() {
            CONTAINER_EPHEMERAL_OWNER
        } else if mode.is_ttl() {
            ttl_to_ephemeral_owner(ttl).unwrap_or(0)
        } else if mode.is_ephemeral() {
            ctx.session
        } else {
            0
        };
        let txn = match ty {
            OpCode::CreateContainer => Txn::CreateContainer(CreateContainerTxn {
                path: p.clone(),
                data: r.data.clone(),
                acl: acl.clone(),
                parent_c_version: new_cversion,
            }),
            OpCode::CreateTtl => Txn::CreateTtl(CreateTtlTxn {
                path: p.clone(),
                data: r.data.clone(),
                acl: acl.clone(),
                parent_c_version: new_cversion,
                ttl,
            }),
            _ => Txn::Create(CreateTxn {
                path: p.clone(),
                data: r.data.clone(),
                acl: acl.clone(),
                ephemeral: mode.is_ephemeral(),
                parent_c_version: new_cversion,
            }),
        };
        parent.child_count += 1;
        parent.stat.cversion = new_cversion;
        parent.stat.pzxid = ctx.zxid;
        self.pending.set(ctx.zxid, &parent_path, Some(parent));
        self.pending.set(
            ctx.zxid,
            &p,
            Some(NodeView {
                stat: new_stat(ctx.zxid, ctx.time, owner),
                child_count: 0,
                acl: std::sync::Arc::new(acl),
                data_len,
            }),
        );
        Ok((ty, txn))
    }

    fn delete(
        &mut self,
        db: &ZkDatabase,
        ctx: &PrepContext,
        r: &DeleteRequest,
    ) -> Result<(OpCode, Txn), ErrorCode> {
        let parent_path = parent_for(&r.path)?.to_string();
        if DataTree::is_special(&r.path) {
            return Err(ErrorCode::BadArguments);
        }
        let mut parent = self.record(db, &parent_path)?;
        self.check_acl(&parent, Perms::DELETE, ctx.auth)?;
        let node = self.record(db, &r.path)?;
        check_version(node.stat.version, r.version)?;
        if node.child_count > 0 {
            return Err(ErrorCode::NotEmpty);
        }
        parent.child_count -= 1;
        parent.stat.pzxid = ctx.zxid;
        self.pending.set(ctx.zxid, &parent_path, Some(parent));
        self.pending.set(ctx.zxid, &r.path, None);
        Ok((
            OpCode::Delete,
            Txn::Delete(DeleteTxn {
                path: r.path.clone(),
            }),
        ))
    }

    fn delete_container_txn(
        &mut self,
        db: &ZkDatabase,
        ctx: &PrepContext,
        p: &str,
    ) -> Result<(OpCode, Txn), ErrorCode> {
        let parent_path = parent_for(p)?.to_string();
        if DataTree::is_special(p) {
            return Err(ErrorCode::BadArguments);
        }
        let node = self.record(db, p)?;
        if node.child_count > 0 {
            return Err(ErrorCode::NotEmpty);
        }
        if matches!(
            NodeKind::from_owner(node.stat.ephemeral_owner),
            NodeKind::Ephemeral(_)
        ) {
            return Err(ErrorCode::BadVersion);
        }
        let mut parent = self.record(db, &parent_path)?;
        parent.child_count -= 1;
        parent.stat.pzxid = ctx.zxid;
        self.pending.set(ctx.zxid, &parent_path, Some(parent));
        self.pending.set(ctx.zxid, p, None);
        Ok((
            OpCode::DeleteContainer,
            Txn::Delete(DeleteTxn {
                path: p.to_string(),
            }),
        ))
    }

    fn set_data(
        &mut self,
        db: &ZkDatabase,
        ctx: &PrepContext,
        r: &SetDataRequest,
    ) -> Result<(OpCode, Txn), ErrorCode> {
        validate_path(&r.path)?;
        let mut node = self.record(db, &r.path)?;
        self.check_acl(&node, Perms::WRITE, ctx.auth)?;
        self.check_data(&r.data)?;
        let data_len = r.data.as_ref().map_or(0, Bytes::len);
        self.check_quota(db, ctx, &r.path, data_len as i64 - node.data_len as i64, 0)?;
        let version = check_version(node.stat.version, r.version)?;
        node.stat.version = version;
        node.data_len = data_len;
        node.stat.mzxid = ctx.zxid;
        node.stat.mtime = ctx.time;
        self.pending.set(ctx.zxid, &r.path, Some(node));
        Ok((
            OpCode::SetData,
            Txn::SetData(SetDataTxn {
                path: r.path.clone(),
                data: r.data.clone(),
                version,
            }),
        ))
    }

    fn set_acl(
        &mut self,
        db: &ZkDatabase,
        ctx: &PrepContext,
        r: &SetAclRequest,
    ) -> Result<(OpCode, Txn), ErrorCode> {
        validate_path(&r.path)?;
        let acl = acl::fixup(&r.acl, ctx.auth, &self.settings.schemes)?;
        let mut node = self.record(db, &r.path)?;
        self.check_acl(&node, Perms::ADMIN, ctx.auth)?;
        let version = check_version(node.stat.aversion, r.version)?;
        node.stat.aversion = version;
        node.acl = std::sync::Arc::new(acl.clone());
        self.pending.set(ctx.zxid, &r.path, Some(node));
        Ok((
            OpCode::SetAcl,
            Txn::SetAcl(SetAclTxn {
                path: r.path.clone(),
                acl,
                version,
            }),
        ))
    }

    fn check(
        &mut self,
        db: &ZkDatabase,
        ctx: &PrepContext,
        r: &CheckVersionRequest,
    ) -> Result<(OpCode, Txn), ErrorCode> {
        validate_path(&r.path)?;
        let node = self.record(db, &r.path)?;
        self.check_acl(&node, Perms::READ, ctx.auth)?;
        let version = check_version(node.stat.version, r.version)?;
        Ok((
            OpCode::Check,
            Txn::Check(CheckVersionTxn {
                path: r.path.clone(),
                version,
            }),
        ))
    }

    /// The createSession txn.
    pub fn create_session(&self, session: i64, timeout: i32, zxid: i64, time: i64) -> TxnEntry {
        entry(
            TxnHeader {
                client_id: session,
                cxid: 0,
                zxid,
                time,
                txn_type: OpCode::CreateSession,
            },
            Txn::CreateSession(CreateSessionTxn { time_out: timeout }),
        )
    }

    /// The closeSession txn, listing the session's ephemerals including outstanding ones.
    pub fn close_session(
        &mut self,
        db: &ZkDatabase,
        session: i64,
        zxid: i64,
        time: i64,
    ) -> TxnEntry {
        let mut set = db.tree.ephemerals_set(session);
        for (p, owner) in self.pending.history() {
            match owner {
                None => {
                    set.remove(p);
                }
                Some(o) if o == session => {
                    set.insert(p.clone());
                }
                Some(_) => {}
            }
        }
        let es = set.java_order();
        for p in &es {
            let parent_path = path::parent(p).to_string();
            if let Some(mut parent) = self.pending.get(db, &parent_path) {
                parent.child_count -= 1;
                parent.stat.pzxid = zxid;
                self.pending.set(zxid, &parent_path, Some(parent));
            }
            self.pending.set(zxid, p, None);
        }
        entry(
            TxnHeader {
                client_id: session,
                cxid: 0,
                zxid,
                time,
                txn_type: OpCode::CloseSession,
            },
            Txn::CloseSession(Some(CloseSessionTxn {
                paths2_delete: es.into_iter().collect(),
            })),
        )
    }

    /// A deleteContainer txn for the container manager, or None if the node no longer
    /// qualifies (it got children, or is already going away).
    pub fn delete_container(
        &mut self,
        db: &ZkDatabase,
        p: &str,
        zxid: i64,
        time: i64,
    ) -> Option<TxnEntry> {
        let ctx = PrepContext {
            session: 0,
            auth: &[],
            cxid: 0,
            zxid,
            time,
        };
        let (ty, txn) = self.delete_container_txn(db, &ctx, p).ok()?;
        Some(entry(header(&ctx, ty), txn))
    }

    /// Forgets outstanding changes of txns up to `zxid` (they are applied now).
    pub fn applied(&mut self, zxid: i64) {
        self.pending.applied(zxid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zk_proto::{Acl, MultiRequest};

    fn ctx(zxid: i64) -> PrepContext<'static> {
        PrepContext {
            session: 5,
            auth: &[],
            cxid: 1,
            zxid,
            time: 1000,
        }
    }

    fn create_req(p: &str, flags: i32) -> Request {
        Request::Create(CreateRequest {
            path: p.into(),
            data: None,
            acl: Acl::open_unsafe(),
            flags,
        })
    }

    fn err_of(e: &TxnEntry) -> Option<ErrorCode> {
        match &e.txn {
            Txn::Error(x) => Some(x.err),
            _ => None,
        }
    }

    #[test]
    fn pipelined_creates_see_each_other() {
        let db = ZkDatabase::new();
        let mut p = Prep::default();
        let a = p.prepare(&db, &ctx(1), &create_req("/a", 0));
        assert_eq!(a.header.txn_type, OpCode::Create);
        // Not applied yet, but a second create must see it.
        let again = p.prepare(&db, &ctx(2), &create_req("/a", 0));
        assert_eq!(err_of(&again), Some(ErrorCode::NodeExists));
        let child = p.prepare(&db, &ctx(3), &create_req("/a/b", 2));
        match &child.txn {
            Txn::Create(c) => assert_eq!(c.path, "/a/b0000000000"),
            other => panic!("{other:?}"),
        }
        let child2 = p.prepare(&db, &ctx(4), &create_req("/a/b", 2));
        match &child2.txn {
            Txn::Create(c) => {
                assert_eq!((c.path.as_str(), c.parent_c_version), ("/a/b0000000001", 2))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn error_order_matches_apache() {
        let db = ZkDatabase::new();
        let mut p = Prep::default();
        // InvalidACL is checked before the parent exists.
        let r = Request::Create(CreateRequest {
            path: "/x/y".into(),
            data: None,
            acl: vec![],
            flags: 0,
        });
        assert_eq!(
            err_of(&p.prepare(&db, &ctx(1), &r)),
            Some(ErrorCode::InvalidAcl)
        );
        assert_eq!(
            err_of(&p.prepare(&db, &ctx(2), &create_req("/x/y", 0))),
            Some(ErrorCode::NoNode)
        );
        assert_eq!(
            err_of(&p.prepare(&db, &ctx(3), &create_req("/x/", 0))),
            Some(ErrorCode::NoNode)
        );
        assert_eq!(
            err_of(&p.prepare(&db, &ctx(3), &create_req("/zookeeper/", 0))),
            Some(ErrorCode::BadArguments)
        );
        assert_eq!(
            err_of(&p.prepare(&db, &ctx(4), &create_req("/x", 9))),
            Some(ErrorCode::BadArguments)
        );
        assert_eq!(
            err_of(&p.prepare(&db, &ctx(5), &create_req("/t", 5))),
            Some(ErrorCode::Unimplemented)
        );
        let del = Request::Delete(DeleteRequest {
            path: "/zookeeper".into(),
            version: -1,
        });
        assert_eq!(
            err_of(&p.prepare(&db, &ctx(6), &del)),
            Some(ErrorCode::BadArguments)
        );
        let e = p.prepare(&db, &ctx(7), &create_req("/e", 1));
        assert_eq!(err_of(&e), None);
        assert_eq!(
            err_of(&p.prepare(&db, &ctx(8), &create_req("/e/c", 0))),
            Some(ErrorCode::NoChildrenForEphemerals)
        );
        let sd = Request::SetData(SetDataRequest {
            path: "/e".into(),
            data: None,
            version: 3,
        });
        assert_eq!(
            err_of(&p.prepare(&db, &ctx(9), &sd)),
            Some(ErrorCode::BadVersion)
        );
        assert_eq!(
            err_of(&p.prepare(&db, &ctx(10), &Request::Reconfig(Default::default()))),
            Some(ErrorCode::ReconfigDisabled)
        );
    }

    #[test]
    fn failed_multi_rolls_back_pending() {
        let db = ZkDatabase::new();
        let mut p = Prep::default();
        let m = Request::Multi(MultiRequest {
            ops: vec![
                MultiOp::Create(
                    OpCode::Create,
                    CreateRequest {
                        path: "/m".into(),
                        data: None,
                        acl: Acl::open_unsafe(),
                        flags: 0,
                    },
                ),
                MultiOp::Delete(DeleteRequest {
                    path: "/nope".into(),
                    version: -1,
                }),
                MultiOp::Check(CheckVersionRequest {
                    path: "/m".into(),
                    version: 0,
                }),
            ],
        });
        let e = p.prepare(&db, &ctx(1), &m);
        match &e.txn {
            Txn::Multi(subs) => {
                assert_eq!(subs[0].0, OpCode::Create);
                assert!(matches!(
                    subs[1].1,
                    Txn::Error(ErrorTxn {
                        err: ErrorCode::NoNode
                    })
                ));
                assert!(matches!(
                    subs[2].1,
                    Txn::Error(ErrorTxn {
                        err: ErrorCode::RuntimeInconsistency
                    })
                ));
            }
            other => panic!("{other:?}"),
        }
        assert!(p.pending.get(&db, "/m").is_none());
    }

    #[test]
    fn multi_creates_are_typed_by_their_flags_as_in_apache() {
        let db = ZkDatabase::new();
        let mut p = Prep::default();
        let op = |code, path: &str, mode: CreateMode| {
            MultiOp::Create(
                code,
                CreateRequest {
                    path: path.into(),
                    data: None,
                    acl: Acl::open_unsafe(),
                    flags: mode.to_flags(),
                },
            )
        };
        let m = Request::Multi(MultiRequest {
            ops: vec![
                op(OpCode::Create2, "/a", CreateMode::Persistent),
                op(OpCode::Create2, "/c", CreateMode::Container),
                op(OpCode::CreateContainer, "/p", CreateMode::Persistent),
            ],
        });
        match p.prepare(&db, &ctx(1), &m).txn {
            Txn::Multi(subs) => {
                let types: Vec<OpCode> = subs.iter().map(|(t, _)| *t).collect();
                assert_eq!(
                    types,
                    [OpCode::Create, OpCode::CreateContainer, OpCode::Create]
                );
                assert!(matches!(subs[1].1, Txn::CreateContainer(_)));
                assert!(matches!(&subs[2].1, Txn::Create(c) if !c.ephemeral));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn enforced_quota_refuses_writes_past_hard_limits() {
        use zk_proto::txn::TxnHeader;
        let mut db = ZkDatabase::new();
        let mut p = Prep::new(PrepSettings {
            enforce_quota: true,
            ..Default::default()
        });
        let mut zxid = 0;
        let mut apply = |db: &mut ZkDatabase, path: &str, data: &str| {
            zxid += 1;
            db.apply(&TxnEntry {
                header: TxnHeader {
                    client_id: 5,
                    cxid: 1,
                    zxid,
                    time: 1,
                    txn_type: OpCode::Create,
                },
                txn: Txn::Create(CreateTxn {
                    path: path.into(),
                    data: Some(data.to_string().into()),
                    acl: Acl::open_unsafe(),
                    ephemeral: false,
                    parent_c_version: -1,
                }),
                digest: None,
            });
        };
        apply(&mut db, "/q", "abc");
        apply(&mut db, "/zookeeper/quota/q", "");
        apply(
            &mut db,
            "/zookeeper/quota/q/zookeeper_limits",
            "count=-1,bytes=-1=;byteHardLimit=5;countHardLimit=2",
        );
        apply(
            &mut db,
            "/zookeeper/quota/q/zookeeper_stats",
            "count=0,bytes=0",
        );
        let create = |path: &str, data: &str| {
            Request::Create(CreateRequest {
                path: path.into(),
                data: Some(data.to_string().into()),
                acl: Acl::open_unsafe(),
                flags: 0,
            })
        };
        // Usage: 1 node, 3 bytes. A second node of 2 bytes fits; of 3 it does not.
        let e = p.prepare(&db, &ctx(10), &create("/q/a", "xyz"));
        assert_eq!(err_of(&e), Some(ErrorCode::QuotaExceeded));
        let e = p.prepare(&db, &ctx(11), &create("/q/a", "xy"));
        assert_eq!(err_of(&e), None);
        // Checked against the applied tree, as Apache does: /q/a is still outstanding.
        let e = p.prepare(&db, &ctx(12), &create("/q/b", ""));
        assert_eq!(err_of(&e), None);
        // setData weighs the new data against the old (outstanding) data, before the
        // version check.
        let sd = |data: &str, version| {
            Request::SetData(SetDataRequest {
                path: "/q".into(),
                data: Some(data.to_string().into()),
                version,
            })
        };
        assert_eq!(
            err_of(&p.prepare(&db, &ctx(13), &sd("abcdefg", 7))),
            Some(ErrorCode::QuotaExceeded)
        );
        assert_eq!(
            err_of(&p.prepare(&db, &ctx(14), &sd("abcde", 7))),
            Some(ErrorCode::BadVersion)
        );
        // Outside the quota, and with enforcement off, anything goes.
        assert_eq!(
            err_of(&p.prepare(&db, &ctx(15), &create("/r", "xyzxyz"))),
            None
        );
        p.settings.enforce_quota = false;
        assert_eq!(
            err_of(&p.prepare(&db, &ctx(16), &create("/q/c", "xyzxyz"))),
            None
        );
    }

    #[test]
    fn close_session_lists_pending_ephemerals() {
        let db = ZkDatabase::new();
        let mut p = Prep::default();
        p.prepare(&db, &ctx(1), &create_req("/e1", 1));
        let c = p.close_session(&db, 5, 2, 1000);
        match c.txn {
            Txn::CloseSession(Some(t)) => assert_eq!(t.paths2_delete, vec!["/e1".to_string()]),
            other => panic!("{other:?}"),
        }
    }
}
