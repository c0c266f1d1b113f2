//! Group membership: members join a group with an ephemeral node `<group>/<member id>`
//! carrying data, leave by deleting it (or by their session ending), and anyone can list
//! the members or follow a stream of joins, leaves and data updates.
//!
//! A member re-joins by itself after its session expires ([`crate::ephemeral`]); watchers
//! see that as a `Left` followed by a `Joined` of the same id.

use bytes::Bytes;

use crate::ephemeral::{EphemeralEvent, EphemeralNode};
use crate::error::{Error, Result};
use crate::events::EventStream;
use crate::session::{Session, SessionEvent};
use crate::tree_cache::{TreeCache, TreeEvent};
use crate::util::{join, name, retry};

/// One member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Member id (its node name).
    pub id: String,
    /// Data it published.
    pub data: Bytes,
}

/// A change of the group.
#[derive(Debug, Clone, PartialEq)]
pub enum MembershipEvent {
    /// A member joined.
    Joined(Member),
    /// A member's data changed.
    Updated(Member),
    /// A member left (or its session ended).
    Left(Member),
    /// The initial member list has been delivered (as `Joined` events before this).
    Initialized,
    /// A connection or session event.
    Session(SessionEvent),
}

/// A group at a path.
#[derive(Debug, Clone)]
pub struct Group {
    session: Session,
    path: String,
}

/// This process's membership: keeps the member node across session expiry. Leave with
/// [`Membership::leave`] (dropping it leaves too, in the background).
#[derive(Debug)]
pub struct Membership {
    node: EphemeralNode,
}

impl Membership {
    /// The member id.
    pub fn id(&self) -> &str {
        name(self.node.path())
    }

    /// Publishes new member data.
    pub async fn update(&self, data: &[u8]) -> Result<()> {
        self.node.set_data(data).await
    }

    /// Events of our member node (session loss, re-join).
    pub fn events(&self) -> EventStream<EphemeralEvent> {
        self.node.events()
    }

    /// Leaves the group.
    pub async fn leave(self) -> Result<()> {
        self.node.delete().await
    }
}

impl Group {
    /// The group at `path`.
    pub fn new(session: &Session, path: &str) -> Self {
        Group {
            session: session.clone(),
            path: path.to_owned(),
        }
    }

    /// Joins as `id` with `data`. Fails with `NodeExists` if another session holds `id`.
    pub async fn join(&self, id: &str, data: &[u8]) -> Result<Membership> {
        if id.is_empty() || id.contains('/') {
            return Err(Error::InvalidArgument(format!("bad member id {id:?}")));
        }
        let node = EphemeralNode::create(&self.session, &join(&self.path, id), data).await?;
        Ok(Membership { node })
    }

    /// The current members (read from ZooKeeper), sorted by id.
    pub async fn members(&self) -> Result<Vec<Member>> {
        let client = self.session.live_client().await?;
        let mut ids = match retry(|| client.get_children(&self.path, false)).await {
            Ok(c) => c,
            Err(zk_client::Error::NoNode { .. }) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        ids.sort();
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let p = join(&self.path, &id);
            match retry(|| client.get_data(&p, false)).await {
                Ok((data, _)) => out.push(Member { id, data }),
                Err(zk_client::Error::NoNode { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(out)
    }

    /// Follows the group: a live member list and a stream of changes.
    pub async fn watch(&self) -> Result<GroupWatch> {
        let cache = TreeCache::start_with_depth(&self.session, &self.path, 1).await?;
        Ok(GroupWatch { cache })
    }
}

/// A live view of a group (see [`Group::watch`]).
#[derive(Debug)]
pub struct GroupWatch {
    cache: TreeCache,
}

impl GroupWatch {
    /// The members as currently known, sorted by id.
    pub fn members(&self) -> Vec<Member> {
        self.cache
            .children(self.cache.root())
            .into_iter()
            .map(|(id, n)| Member { id, data: n.data })
            .collect()
    }

    /// Changes from now on: first `Joined` for every current member and `Initialized`,
    /// then every change.
    pub fn events(&self) -> EventStream<MembershipEvent> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        // Subscribe before the snapshot so nothing falls in between; changes already in
        // the snapshot are then filtered by node version, so none is reported twice.
        let mut tree = self.cache.events();
        let root = self.cache.root().to_owned();
        let mut known: std::collections::HashMap<String, i64> = Default::default();
        for (id, n) in self.cache.children(&root) {
            known.insert(id.clone(), n.stat.mzxid);
            let _ = tx.send(MembershipEvent::Joined(Member { id, data: n.data }));
        }
        let _ = tx.send(MembershipEvent::Initialized);
        tokio::spawn(async move {
            while let Some(ev) = tree.recv().await {
                let out = match ev {
                    TreeEvent::Added(p, n) | TreeEvent::Updated(p, n)
                        if crate::util::parent(&p) == root =>
                    {
                        let id = name(&p).to_owned();
                        match known.insert(id.clone(), n.stat.mzxid) {
                            Some(old) if old >= n.stat.mzxid => {
                                known.insert(id, old);
                                None
                            }
                            Some(_) => Some(MembershipEvent::Updated(Member { id, data: n.data })),
                            None => Some(MembershipEvent::Joined(Member { id, data: n.data })),
                        }
                    }
                    TreeEvent::Removed(p, n) if crate::util::parent(&p) == root => {
                        let id = name(&p).to_owned();
                        known
                            .remove(&id)
                            .map(|_| MembershipEvent::Left(Member { id, data: n.data }))
                    }
                    TreeEvent::Session(s) => Some(MembershipEvent::Session(s)),
                    _ => None,
                };
                if let Some(out) = out {
                    if tx.send(out).is_err() {
                        return;
                    }
                }
            }
        });
        EventStream::from_rx(rx)
    }
}
