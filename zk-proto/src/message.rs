//! Whole request and reply bodies, typed by opcode.
//!
//! The server decodes a [`Request`] from the opcode of its header; the client decodes a
//! [`Response`] from the opcode of the request it is answering (replies do not carry one).

use bytes::BytesMut;

use crate::error::{ProtoError, Result};
use crate::error_code::ErrorCode;
use crate::header::AuthPacket;
use crate::jute::{JuteReader, Record};
use crate::multi::{MultiRequest, MultiResponse};
use crate::opcode::OpCode;
use crate::ops::*;
use crate::watch::{AddWatchRequest, RemoveWatchesRequest, SetWatches, SetWatches2};

/// A request body, one variant per client opcode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// create (1).
    Create(CreateRequest),
    /// delete (2).
    Delete(DeleteRequest),
    /// exists (3).
    Exists(PathWatchRequest),
    /// getData (4).
    GetData(PathWatchRequest),
    /// setData (5).
    SetData(SetDataRequest),
    /// getACL (6).
    GetAcl(PathRequest),
    /// setACL (7).
    SetAcl(SetAclRequest),
    /// getChildren (8).
    GetChildren(PathWatchRequest),
    /// sync (9).
    Sync(PathRequest),
    /// ping (11, xid -2): no body.
    Ping,
    /// getChildren2 (12).
    GetChildren2(PathWatchRequest),
    /// check (13) outside multi.
    Check(CheckVersionRequest),
    /// multi (14).
    Multi(MultiRequest),
    /// create2 (15).
    Create2(CreateRequest),
    /// reconfig (16).
    Reconfig(ReconfigRequest),
    /// checkWatches (17).
    CheckWatches(RemoveWatchesRequest),
    /// removeWatches (18).
    RemoveWatches(RemoveWatchesRequest),
    /// createContainer (19).
    CreateContainer(CreateRequest),
    /// deleteContainer (20).
    DeleteContainer(PathRequest),
    /// createTTL (21).
    CreateTtl(CreateTtlRequest),
    /// multiRead (22).
    MultiRead(MultiRequest),
    /// auth (100, xid -4).
    Auth(AuthPacket),
    /// setWatches (101, xid -8).
    SetWatches(SetWatches),
    /// sasl (102).
    Sasl(SaslToken),
    /// getEphemerals (103).
    GetEphemerals(PathRequest),
    /// getAllChildrenNumber (104).
    GetAllChildrenNumber(PathRequest),
    /// setWatches2 (105, xid -8).
    SetWatches2(SetWatches2),
    /// addWatch (106).
    AddWatch(AddWatchRequest),
    /// whoAmI (107): no body.
    WhoAmI,
    /// closeSession (-11): no body.
    CloseSession,
}

impl Request {
    /// The opcode for the request header.
    pub fn opcode(&self) -> OpCode {
        match self {
            Request::Create(_) => OpCode::Create,
            Request::Delete(_) => OpCode::Delete,
            Request::Exists(_) => OpCode::Exists,
            Request::GetData(_) => OpCode::GetData,
            Request::SetData(_) => OpCode::SetData,
            Request::GetAcl(_) => OpCode::GetAcl,
            Request::SetAcl(_) => OpCode::SetAcl,
            Request::GetChildren(_) => OpCode::GetChildren,
            Request::Sync(_) => OpCode::Sync,
            Request::Ping => OpCode::Ping,
            Request::GetChildren2(_) => OpCode::GetChildren2,
            Request::Check(_) => OpCode::Check,
            Request::Multi(_) => OpCode::Multi,
            Request::Create2(_) => OpCode::Create2,
            Request::Reconfig(_) => OpCode::Reconfig,
            Request::CheckWatches(_) => OpCode::CheckWatches,
            Request::RemoveWatches(_) => OpCode::RemoveWatches,
            Request::CreateContainer(_) => OpCode::CreateContainer,
            Request::DeleteContainer(_) => OpCode::DeleteContainer,
            Request::CreateTtl(_) => OpCode::CreateTtl,
            Request::MultiRead(_) => OpCode::MultiRead,
            Request::Auth(_) => OpCode::Auth,
            Request::SetWatches(_) => OpCode::SetWatches,
            Request::Sasl(_) => OpCode::Sasl,
            Request::GetEphemerals(_) => OpCode::GetEphemerals,
            Request::GetAllChildrenNumber(_) => OpCode::GetAllChildrenNumber,
            Request::SetWatches2(_) => OpCode::SetWatches2,
            Request::AddWatch(_) => OpCode::AddWatch,
            Request::WhoAmI => OpCode::WhoAmI,
            Request::CloseSession => OpCode::CloseSession,
        }
    }

    /// Decodes the body of a request whose header said `opcode`; the body must fill `r`.
    pub fn read(opcode: OpCode, r: &mut JuteReader) -> Result<Self> {
        let req = match opcode {
            OpCode::Create => Request::Create(Record::read(r)?),
            OpCode::Delete => Request::Delete(Record::read(r)?),
            OpCode::Exists => Request::Exists(Record::read(r)?),
            OpCode::GetData => Request::GetData(Record::read(r)?),
            OpCode::SetData => Request::SetData(Record::read(r)?),
            OpCode::GetAcl => Request::GetAcl(Record::read(r)?),
            OpCode::SetAcl => Request::SetAcl(Record::read(r)?),
            OpCode::GetChildren => Request::GetChildren(Record::read(r)?),
            OpCode::Sync => Request::Sync(Record::read(r)?),
            OpCode::Ping => Request::Ping,
            OpCode::GetChildren2 => Request::GetChildren2(Record::read(r)?),
            OpCode::Check => Request::Check(Record::read(r)?),
            OpCode::Multi => Request::Multi(Record::read(r)?),
            OpCode::Create2 => Request::Create2(Record::read(r)?),
            OpCode::Reconfig => Request::Reconfig(Record::read(r)?),
            OpCode::CheckWatches => Request::CheckWatches(Record::read(r)?),
            OpCode::RemoveWatches => Request::RemoveWatches(Record::read(r)?),
            OpCode::CreateContainer => Request::CreateContainer(Record::read(r)?),
            OpCode::DeleteContainer => Request::DeleteContainer(Record::read(r)?),
            OpCode::CreateTtl => Request::CreateTtl(Record::read(r)?),
            OpCode::MultiRead => Request::MultiRead(Record::read(r)?),
            OpCode::Auth => Request::Auth(Record::read(r)?),
            OpCode::SetWatches => Request::SetWatches(Record::read(r)?),
            OpCode::Sasl => Request::Sasl(Record::read(r)?),
            OpCode::GetEphemerals => Request::GetEphemerals(Record::read(r)?),
            OpCode::GetAllChildrenNumber => Request::GetAllChildrenNumber(Record::read(r)?),
            OpCode::SetWatches2 => Request::SetWatches2(Record::read(r)?),
            OpCode::AddWatch => Request::AddWatch(Record::read(r)?),
            OpCode::WhoAmI => Request::WhoAmI,
            OpCode::CloseSession => Request::CloseSession,
            other => {
                return Err(ProtoError::InvalidValue {
                    what: "request opcode",
                    value: other.to_i32() as i64,
                })
            }
        };
        r.finish()?;
        Ok(req)
    }

    /// Encodes the body (without header).
    pub fn write(&self, w: &mut BytesMut) {
        match self {
            Request::Create(x) | Request::Create2(x) | Request::CreateContainer(x) => x.write(w),
            Request::Delete(x) => x.write(w),
            Request::Exists(x)
            | Request::GetData(x)
            | Request::GetChildren(x)
            | Request::GetChildren2(x) => x.write(w),
            Request::SetData(x) => x.write(w),
            Request::GetAcl(x)
            | Request::Sync(x)
            | Request::DeleteContainer(x)
            | Request::GetEphemerals(x)
            | Request::GetAllChildrenNumber(x) => x.write(w),
            Request::SetAcl(x) => x.write(w),
            Request::Ping | Request::WhoAmI | Request::CloseSession => {}
            Request::Check(x) => x.write(w),
            Request::Multi(x) | Request::MultiRead(x) => x.write(w),
            Request::Reconfig(x) => x.write(w),
            Request::CheckWatches(x) | Request::RemoveWatches(x) => x.write(w),
            Request::CreateTtl(x) => x.write(w),
            Request::Auth(x) => x.write(w),
            Request::SetWatches(x) => x.write(w),
            Request::Sasl(x) => x.write(w),
            Request::SetWatches2(x) => x.write(w),
            Request::AddWatch(x) => x.write(w),
        }
    }
}

/// A reply body, typed by the opcode of the request it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// No body: errors, and delete, check, ping, auth, setWatches, removeWatches,
    /// closeSession.
    Empty,
    /// create.
    Create(CreateResponse),
    /// create2, createContainer, createTTL.
    Create2(Create2Response),
    /// exists, setData, setACL.
    Stat(StatResponse),
    /// getData and reconfig (the new config).
    GetData(GetDataResponse),
    /// getACL.
    GetAcl(GetAclResponse),
    /// getChildren.
    GetChildren(GetChildrenResponse),
    /// getChildren2.
    GetChildren2(GetChildren2Response),
    /// sync.
    Sync(PathRequest),
    /// multi and multiRead.
    Multi(MultiResponse),
    /// sasl.
    Sasl(SaslToken),
    /// getEphemerals.
    GetEphemerals(GetEphemeralsResponse),
    /// getAllChildrenNumber.
    GetAllChildrenNumber(GetAllChildrenNumberResponse),
    /// whoAmI.
    WhoAmI(WhoAmIResponse),
    /// addWatch: Apache answers with an `ErrorResponse` body carrying 0.
    AddWatch(ErrorResponse),
}

impl Response {
    /// Decodes a reply body for a request of type `opcode` whose reply header said `err`.
    ///
    /// Error replies carry no body, except where Apache attaches one (multi, sasl, addWatch).
    pub fn read(opcode: OpCode, err: ErrorCode, r: &mut JuteReader) -> Result<Self> {
        // Apache attaches a body to some error replies: a failed multi's per-op results,
        // a failed sasl's (empty) token, addWatch's ErrorResponse.
        let body_on_error = matches!(
            opcode,
            OpCode::Multi | OpCode::MultiRead | OpCode::Sasl | OpCode::AddWatch
        );
        if err != ErrorCode::Ok && (r.is_empty() || !body_on_error) {
            return Ok(Response::Empty);
        }
        let resp = match opcode {
            OpCode::Create => Response::Create(Record::read(r)?),
            OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl => {
                Response::Create2(Record::read(r)?)
            }
            OpCode::Exists | OpCode::SetData | OpCode::SetAcl => Response::Stat(Record::read(r)?),
            OpCode::GetData | OpCode::Reconfig => Response::GetData(Record::read(r)?),
            OpCode::GetAcl => Response::GetAcl(Record::read(r)?),
            OpCode::GetChildren => Response::GetChildren(Record::read(r)?),
            OpCode::GetChildren2 => Response::GetChildren2(Record::read(r)?),
            OpCode::Sync => Response::Sync(Record::read(r)?),
            OpCode::Multi | OpCode::MultiRead => Response::Multi(Record::read(r)?),
            OpCode::Sasl => Response::Sasl(Record::read(r)?),
            OpCode::GetEphemerals => Response::GetEphemerals(Record::read(r)?),
            OpCode::GetAllChildrenNumber => Response::GetAllChildrenNumber(Record::read(r)?),
            OpCode::WhoAmI => Response::WhoAmI(Record::read(r)?),
            OpCode::AddWatch if !r.is_empty() => Response::AddWatch(Record::read(r)?),
            _ => Response::Empty,
        };
        r.finish()?;
        Ok(resp)
    }

    /// Encodes the body (without header).
    pub fn write(&self, w: &mut BytesMut) {
        match self {
            Response::Empty => {}
            Response::Create(x) => x.write(w),
            Response::Create2(x) => x.write(w),
            Response::Stat(x) => x.write(w),
            Response::GetData(x) => x.write(w),
            Response::GetAcl(x) => x.write(w),
            Response::GetChildren(x) => x.write(w),
            Response::GetChildren2(x) => x.write(w),
            Response::Sync(x) => x.write(w),
            Response::Multi(x) => x.write(w),
            Response::Sasl(x) => x.write(w),
            Response::GetEphemerals(x) => x.write(w),
            Response::GetAllChildrenNumber(x) => x.write(w),
            Response::WhoAmI(x) => x.write(w),
            Response::AddWatch(x) => x.write(w),
        }
    }
}
