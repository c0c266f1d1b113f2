//! Read requests, answered from the applied state (Apache's `FinalRequestProcessor` read
//! cases), registering watches as they go.

use zk_proto::ops::{
    GetAclResponse, GetAllChildrenNumberResponse, GetChildren2Response, GetChildrenResponse,
    GetDataResponse, GetEphemeralsResponse, PathRequest, PathWatchRequest, StatResponse,
    WhoAmIResponse,
};
use zk_proto::{
    AddWatchMode, ErrorCode, Id, MultiOp, MultiResponse, OpResult, Perms, Request, Response,
    WatcherType,
};

use crate::state::acl;
use crate::state::database::ZkDatabase;
use crate::state::watch::WatchManager;

/// What a read needs to know about its caller.
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    /// Session (also the watcher id).
    pub session: i64,
    /// The connection's identities.
    pub auth: &'a [Id],
    /// Auth providers beyond digest and ip.
    pub schemes: &'a acl::Schemes,
}

fn node_for_read<'d>(
    db: &'d ZkDatabase,
    path: &str,
    who: &Caller,
    perm: Perms,
) -> Result<&'d crate::state::tree::DataNode, ErrorCode> {
    let n = db.tree.get(path).ok_or(ErrorCode::NoNode)?;
    if !acl::check(&n.acl, perm, who.auth, who.schemes) {
        return Err(ErrorCode::NoAuth);
    }
    Ok(n)
}

fn get_data(
    db: &ZkDatabase,
    w: &mut WatchManager,
    who: &Caller,
    r: &PathWatchRequest,
) -> Result<GetDataResponse, ErrorCode> {
    let n = node_for_read(db, &r.path, who, Perms::READ)?;
    if r.watch {
        w.add_data(&r.path, who.session);
    }
    Ok(GetDataResponse {
        data: n.data_bytes(),
        stat: n.client_stat(),
    })
}

fn get_children(
    db: &ZkDatabase,
    w: &mut WatchManager,
    who: &Caller,
    r: &PathWatchRequest,
) -> Result<(Vec<String>, zk_proto::Stat), ErrorCode> {
    let n = node_for_read(db, &r.path, who, Perms::READ)?;
    if r.watch {
        w.add_child(&r.path, who.session);
    }
    Ok((db.tree.children_java_order(n), n.client_stat()))
}

/// Apache 3.8 decodes only Children, Data and Any in check/removeWatches; other types fail
/// to deserialize (MarshallingError). Persistent watches are removed with Data/Any.
fn only_classic_watcher_type(t: WatcherType) -> Result<(), ErrorCode> {
    match t {
        WatcherType::Children | WatcherType::Data | WatcherType::Any => Ok(()),
        _ => Err(ErrorCode::MarshallingError),
    }
}

fn is_read_op(o: &MultiOp) -> bool {
    matches!(o, MultiOp::GetData(_) | MultiOp::GetChildren(_))
}

/// Executes a read; returns the reply code and body.
pub fn execute(
    db: &ZkDatabase,
    w: &mut WatchManager,
    who: &Caller,
    req: &Request,
) -> (ErrorCode, Response) {
    match dispatch(db, w, who, req) {
        Ok(resp) => (ErrorCode::Ok, resp),
        // A refused multiRead still carries an (empty) result list, as in Apache.
        Err(e) if matches!(req, Request::MultiRead(m) if !m.ops.iter().any(is_read_op)) => {
            (e, Response::Multi(MultiResponse::default()))
        }
        Err(e) => (e, Response::Empty),
    }
}

/// One read request, by its kind.
fn dispatch(
    db: &ZkDatabase,
    w: &mut WatchManager,
    who: &Caller,
    req: &Request,
) -> Result<Response, ErrorCode> {
    match req {
        Request::Exists(r) => exists(db, w, who, r),
        Request::GetData(r) => Ok(Response::GetData(get_data(db, w, who, r)?)),
        Request::GetChildren(r) => {
            let (children, _) = get_children(db, w, who, r)?;
            Ok(Response::GetChildren(GetChildrenResponse { children }))
        }
        Request::GetChildren2(r) => {
            let (children, stat) = get_children(db, w, who, r)?;
            Ok(Response::GetChildren2(GetChildren2Response {
                children,
                stat,
            }))
        }
        Request::GetAcl(r) => get_acl(db, who, &r.path),
        Request::Sync(r) => Ok(Response::Sync(PathRequest {
            path: r.path.clone(),
        })),
        Request::GetEphemerals(r) => Ok(get_ephemerals(db, who, &r.path)),
        Request::GetAllChildrenNumber(r) => all_children_number(db, who, &r.path),
        // Apache refuses a multiRead holding write ops with MarshallingError: a mix of read
        // and write ops fails to decode (no body), write ops alone fail while answering
        // (an empty result list as the body, added by `execute`).
        Request::MultiRead(m) if m.ops.iter().any(|o| !is_read_op(o)) => {
            Err(ErrorCode::MarshallingError)
        }
        Request::MultiRead(m) => Ok(multi_read(db, w, who, &m.ops)),
        Request::CheckWatches(r) => {
            only_classic_watcher_type(r.watcher_type)?;
            if w.contains(&r.path, r.watcher_type, who.session) {
                Ok(Response::Empty)
            } else {
                Err(ErrorCode::NoWatcher)
            }
        }
        Request::RemoveWatches(r) => {
            only_classic_watcher_type(r.watcher_type)?;
            if w.remove(&r.path, r.watcher_type, who.session) {
                Ok(Response::Empty)
            } else {
                Err(ErrorCode::NoWatcher)
            }
        }
        Request::AddWatch(r) => {
            let recursive = match r.mode {
                AddWatchMode::Persistent => false,
                AddWatchMode::PersistentRecursive => true,
                AddWatchMode::Unknown(_) => return Err(ErrorCode::BadArguments),
            };
            w.add_persistent(&r.path, who.session, recursive);
            Ok(Response::AddWatch(zk_proto::ops::ErrorResponse {
                err: ErrorCode::Ok,
            }))
        }
        Request::WhoAmI => Ok(Response::WhoAmI(WhoAmIResponse {
            client_info: acl::client_info(who.auth),
        })),
        Request::Ping => Ok(Response::Empty),
        _ => Err(ErrorCode::Unimplemented),
    }
}

fn exists(
    db: &ZkDatabase,
    w: &mut WatchManager,
    who: &Caller,
    r: &PathWatchRequest,
) -> Result<Response, ErrorCode> {
    // Apache registers the watch before looking: an exists watch on a missing node waits
    // for its creation.
    if r.watch {
        w.add_data(&r.path, who.session);
    }
    let n = db.tree.get(&r.path).ok_or(ErrorCode::NoNode)?;
    Ok(Response::Stat(StatResponse {
        stat: n.client_stat(),
    }))
}

/// The ACL, digests redacted unless the caller may administer the node.
fn get_acl(db: &ZkDatabase, who: &Caller, path: &str) -> Result<Response, ErrorCode> {
    let n = node_for_read(db, path, who, Perms::READ | Perms::ADMIN)?;
    let list = if acl::check(&n.acl, Perms::ADMIN, who.auth, who.schemes) {
        (*n.acl).clone()
    } else {
        acl::redact_digests(&n.acl)
    };
    Ok(Response::GetAcl(GetAclResponse {
        acl: list,
        stat: n.client_stat(),
    }))
}

/// The caller's ephemeral nodes under `prefix` (all of them for "" or "/").
fn get_ephemerals(db: &ZkDatabase, who: &Caller, prefix: &str) -> Response {
    let trimmed = prefix.trim();
    let all = trimmed.is_empty() || trimmed == "/";
    let ephemerals = db
        .tree
        .ephemerals(who.session)
        .into_iter()
        .filter(|p| all || p.starts_with(prefix))
        .collect();
    Response::GetEphemerals(GetEphemeralsResponse { ephemerals })
}

fn all_children_number(db: &ZkDatabase, who: &Caller, path: &str) -> Result<Response, ErrorCode> {
    node_for_read(db, path, who, Perms::READ)?;
    let n = db.tree.all_children_number(path).ok_or(ErrorCode::NoNode)?;
    Ok(Response::GetAllChildrenNumber(
        GetAllChildrenNumberResponse {
            total_number: i32::try_from(n).unwrap_or(i32::MAX),
        },
    ))
}

/// A multiRead of read ops only: one result per op, an error in place of a failed one.
fn multi_read(db: &ZkDatabase, w: &mut WatchManager, who: &Caller, ops: &[MultiOp]) -> Response {
    let mut results = Vec::with_capacity(ops.len());
    for op in ops {
        let res = match op {
            MultiOp::GetData(r) => match get_data(db, w, who, r) {
                Ok(d) => OpResult::GetData(d.data, d.stat),
                Err(e) => OpResult::Error(e),
            },
            MultiOp::GetChildren(r) => match get_children(db, w, who, r) {
                Ok((c, _)) => OpResult::GetChildren(c),
                Err(e) => OpResult::Error(e),
            },
            // Apache cannot decode write ops in a multiRead: MarshallingError, with an
            // empty result list as the body (`dispatch` refuses those before).
            _ => return Response::Multi(MultiResponse::default()),
        };
        results.push(res);
    }
    Response::Multi(MultiResponse { results })
}

/// The watches a reconnecting client re-registers: SetWatches, or SetWatches2 which adds
/// persistent ones. Both take one path through [`set_watches`].
#[derive(Debug, Clone, Copy)]
pub struct Rewatch<'a> {
    /// The last zxid the client saw; anything newer fires at once.
    pub relative_zxid: i64,
    /// Paths with data watches.
    pub data: &'a [String],
    /// Paths with exist watches.
    pub exist: &'a [String],
    /// Paths with child watches.
    pub child: &'a [String],
    /// Paths with persistent watches.
    pub persistent: &'a [String],
    /// Paths with persistent recursive watches.
    pub recursive: &'a [String],
}

impl<'a> Rewatch<'a> {
    /// The watches of a SetWatches or SetWatches2 request (`None` for any other).
    pub fn of(req: &'a zk_proto::Request) -> Option<Self> {
        use zk_proto::Request;
        match req {
            Request::SetWatches(s) => Some(Rewatch {
                relative_zxid: s.relative_zxid,
                data: &s.data_watches,
                exist: &s.exist_watches,
                child: &s.child_watches,
                persistent: &[],
                recursive: &[],
            }),
            Request::SetWatches2(s) => Some(Rewatch {
                relative_zxid: s.relative_zxid,
                data: &s.data_watches,
                exist: &s.exist_watches,
                child: &s.child_watches,
                persistent: &s.persistent_watches,
                recursive: &s.persistent_recursive_watches,
            }),
            _ => None,
        }
    }
}

/// SetWatches / SetWatches2 (Apache's `DataTree.setWatches`): events missed since
/// `relative_zxid` are returned at once, the other watches are registered.
pub fn set_watches(
    db: &ZkDatabase,
    w: &mut WatchManager,
    session: i64,
    r: &Rewatch<'_>,
) -> Vec<zk_proto::WatcherEvent> {
    use zk_proto::{EventType, KeeperState, WatcherEvent};
    let ev = |t: EventType, p: &str| WatcherEvent {
        event_type: t,
        state: KeeperState::SyncConnected,
        path: p.to_string(),
    };
    let relative_zxid = r.relative_zxid;
    let mut out = Vec::new();
    for p in r.data {
        match db.tree.get(p) {
            None => out.push(ev(EventType::NodeDeleted, p)),
            Some(n) if n.stat.mzxid > relative_zxid => out.push(ev(EventType::NodeDataChanged, p)),
            Some(_) => w.add_data(p, session),
        }
    }
    for p in r.exist {
        if db.tree.get(p).is_some() {
            out.push(ev(EventType::NodeCreated, p));
        } else {
            w.add_data(p, session);
        }
    }
    for p in r.child {
        match db.tree.get(p) {
            None => out.push(ev(EventType::NodeDeleted, p)),
            Some(n) if n.stat.pzxid > relative_zxid => {
                out.push(ev(EventType::NodeChildrenChanged, p))
            }
            Some(_) => w.add_child(p, session),
        }
    }
    for p in r.persistent {
        w.add_persistent(p, session, false);
    }
    for p in r.recursive {
        w.add_persistent(p, session, true);
    }
    out
}
