//! multi (14) and multiRead (22): several ops in one request, with per-op results.

use bytes::{Bytes, BytesMut};

use crate::data::Stat;
use crate::error::{ProtoError, Result};
use crate::error_code::ErrorCode;
use crate::jute::{jute_record, JuteReader, JuteWrite, Record};
use crate::opcode::OpCode;
use crate::ops::{
    CheckVersionRequest, CreateRequest, CreateTtlRequest, DeleteRequest, PathWatchRequest,
    SetDataRequest,
};

jute_record! {
    /// Precedes every op and result of a multi; `done` marks the end.
    pub struct MultiHeader {
        /// Op type, or -1 for an error result / the end marker.
        pub op_type: i32,
        /// True only on the end marker.
        pub done: bool,
        /// -1 in requests; the result code in replies.
        pub err: i32,
    }
}

impl MultiHeader {
    const END: MultiHeader = MultiHeader {
        op_type: -1,
        done: true,
        err: -1,
    };
}

/// One op of a multi or multiRead request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiOp {
    /// create / create2 / createContainer: the opcode says which reply form is wanted.
    Create(OpCode, CreateRequest),
    /// createTTL.
    CreateTtl(CreateTtlRequest),
    /// delete.
    Delete(DeleteRequest),
    /// setData.
    SetData(SetDataRequest),
    /// check.
    Check(CheckVersionRequest),
    /// getChildren (multiRead only).
    GetChildren(PathWatchRequest),
    /// getData (multiRead only).
    GetData(PathWatchRequest),
}

impl MultiOp {
    /// The op's opcode.
    pub fn opcode(&self) -> OpCode {
        match self {
            MultiOp::Create(op, _) => *op,
            MultiOp::CreateTtl(_) => OpCode::CreateTtl,
            MultiOp::Delete(_) => OpCode::Delete,
            MultiOp::SetData(_) => OpCode::SetData,
            MultiOp::Check(_) => OpCode::Check,
            MultiOp::GetChildren(_) => OpCode::GetChildren,
            MultiOp::GetData(_) => OpCode::GetData,
        }
    }

    /// The path the op addresses.
    pub fn path(&self) -> &str {
        match self {
            MultiOp::Create(_, r) => &r.path,
            MultiOp::CreateTtl(r) => &r.path,
            MultiOp::Delete(r) => &r.path,
            MultiOp::SetData(r) => &r.path,
            MultiOp::Check(r) => &r.path,
            MultiOp::GetChildren(r) | MultiOp::GetData(r) => &r.path,
        }
    }
}

/// Body of a multi or multiRead request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MultiRequest {
    /// The ops, in order.
    pub ops: Vec<MultiOp>,
}

impl Record for MultiRequest {
    const MIN_ENCODED_LEN: usize = 9;
    fn read(r: &mut JuteReader) -> Result<Self> {
        let mut ops = Vec::new();
        loop {
            let h = MultiHeader::read(r)?;
            if h.done {
                break;
            }
            let op = match OpCode::from_i32(h.op_type) {
                c @ (OpCode::Create | OpCode::Create2 | OpCode::CreateContainer) => {
                    MultiOp::Create(c, CreateRequest::read(r)?)
                }
                OpCode::CreateTtl => MultiOp::CreateTtl(CreateTtlRequest::read(r)?),
                OpCode::Delete => MultiOp::Delete(DeleteRequest::read(r)?),
                OpCode::SetData => MultiOp::SetData(SetDataRequest::read(r)?),
                OpCode::Check => MultiOp::Check(CheckVersionRequest::read(r)?),
                OpCode::GetChildren => MultiOp::GetChildren(PathWatchRequest::read(r)?),
                OpCode::GetData => MultiOp::GetData(PathWatchRequest::read(r)?),
                _ => {
                    return Err(ProtoError::InvalidValue {
                        what: "multi op type",
                        value: h.op_type as i64,
                    })
                }
            };
            ops.push(op);
        }
        Ok(MultiRequest { ops })
    }
    fn write(&self, w: &mut BytesMut) {
        for op in &self.ops {
            MultiHeader {
                op_type: op.opcode().to_i32(),
                done: false,
                err: -1,
            }
            .write(w);
            match op {
                MultiOp::Create(_, r) => r.write(w),
                MultiOp::CreateTtl(r) => r.write(w),
                MultiOp::Delete(r) => r.write(w),
                MultiOp::SetData(r) => r.write(w),
                MultiOp::Check(r) => r.write(w),
                MultiOp::GetChildren(r) | MultiOp::GetData(r) => r.write(w),
            }
        }
        MultiHeader::END.write(w);
    }
}

/// The result of one op of a multi or multiRead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpResult {
    /// create: the path created.
    Create(String),
    /// create2 / createContainer / createTTL: the path and its Stat.
    Create2(String, Stat),
    /// delete succeeded.
    Delete,
    /// setData succeeded.
    SetData(Stat),
    /// check succeeded.
    Check,
    /// getChildren (multiRead).
    GetChildren(Vec<String>),
    /// getData (multiRead).
    GetData(Option<Bytes>, Stat),
    /// The op failed (or, in an aborted multi, was rolled back: Ok / RuntimeInconsistency).
    Error(ErrorCode),
}

/// Body of a multi or multiRead reply.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MultiResponse {
    /// One result per op, in order.
    pub results: Vec<OpResult>,
}

impl MultiResponse {
    /// The first real failure of an aborted multi, if any.
    pub fn first_error(&self) -> Option<(usize, ErrorCode)> {
        self.results.iter().enumerate().find_map(|(i, r)| match r {
            OpResult::Error(e) if *e != ErrorCode::Ok && *e != ErrorCode::RuntimeInconsistency => {
                Some((i, *e))
            }
            _ => None,
        })
    }
}

impl Record for MultiResponse {
    const MIN_ENCODED_LEN: usize = 9;
    fn read(r: &mut JuteReader) -> Result<Self> {
        let mut results = Vec::new();
        loop {
            let h = MultiHeader::read(r)?;
            if h.done {
                break;
            }
            let res = match OpCode::from_i32(h.op_type) {
                OpCode::Create => OpResult::Create(r.read_string()?),
                OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl => {
                    OpResult::Create2(r.read_string()?, Stat::read(r)?)
                }
                OpCode::Delete => OpResult::Delete,
                OpCode::SetData => OpResult::SetData(Stat::read(r)?),
                OpCode::Check => OpResult::Check,
                OpCode::GetChildren => OpResult::GetChildren(r.read_vec()?),
                OpCode::GetData => OpResult::GetData(r.read_opt_buffer()?, Stat::read(r)?),
                OpCode::Error => OpResult::Error(ErrorCode::from_i32(r.read_i32()?)),
                _ => {
                    return Err(ProtoError::InvalidValue {
                        what: "multi result type",
                        value: h.op_type as i64,
                    })
                }
            };
            results.push(res);
        }
        Ok(MultiResponse { results })
    }
    fn write(&self, w: &mut BytesMut) {
        for res in &self.results {
            let (op, err) = match res {
                OpResult::Create(_) => (OpCode::Create, 0),
                OpResult::Create2(..) => (OpCode::Create2, 0),
                OpResult::Delete => (OpCode::Delete, 0),
                OpResult::SetData(_) => (OpCode::SetData, 0),
                OpResult::Check => (OpCode::Check, 0),
                OpResult::GetChildren(_) => (OpCode::GetChildren, 0),
                OpResult::GetData(..) => (OpCode::GetData, 0),
                OpResult::Error(e) => (OpCode::Error, e.to_i32()),
            };
            MultiHeader {
                op_type: op.to_i32(),
                done: false,
                err,
            }
            .write(w);
            match res {
                OpResult::Create(p) => w.write_string(p),
                OpResult::Create2(p, s) => {
                    w.write_string(p);
                    s.write(w);
                }
                OpResult::Delete | OpResult::Check => {}
                OpResult::SetData(s) => s.write(w),
                OpResult::GetChildren(c) => w.write_vec(c),
                OpResult::GetData(d, s) => {
                    w.write_opt_buffer(d.as_deref());
                    s.write(w);
                }
                OpResult::Error(e) => w.write_i32(e.to_i32()),
            }
        }
        MultiHeader::END.write(w);
    }
}

#[cfg(test)]
mod arb_impls {
    use super::*;
    use crate::arb::Arb;
    use proptest::prelude::*;

    impl Arb for MultiOp {
        fn arb() -> BoxedStrategy<Self> {
            prop_oneof![
                (
                    prop_oneof![
                        Just(OpCode::Create),
                        Just(OpCode::Create2),
                        Just(OpCode::CreateContainer)
                    ],
                    CreateRequest::arb()
                )
                    .prop_map(|(c, r)| MultiOp::Create(c, r)),
                CreateTtlRequest::arb().prop_map(MultiOp::CreateTtl),
                DeleteRequest::arb().prop_map(MultiOp::Delete),
                SetDataRequest::arb().prop_map(MultiOp::SetData),
                CheckVersionRequest::arb().prop_map(MultiOp::Check),
                PathWatchRequest::arb().prop_map(MultiOp::GetChildren),
                PathWatchRequest::arb().prop_map(MultiOp::GetData),
            ]
            .boxed()
        }
    }

    impl Arb for MultiRequest {
        fn arb() -> BoxedStrategy<Self> {
            Vec::<MultiOp>::arb()
                .prop_map(|ops| MultiRequest { ops })
                .boxed()
        }
    }

    impl Arb for OpResult {
        fn arb() -> BoxedStrategy<Self> {
            prop_oneof![
                String::arb().prop_map(OpResult::Create),
                (String::arb(), Stat::arb()).prop_map(|(p, s)| OpResult::Create2(p, s)),
                Just(OpResult::Delete),
                Stat::arb().prop_map(OpResult::SetData),
                Just(OpResult::Check),
                Vec::<String>::arb().prop_map(OpResult::GetChildren),
                (Option::<Bytes>::arb(), Stat::arb()).prop_map(|(d, s)| OpResult::GetData(d, s)),
                ErrorCode::arb().prop_map(OpResult::Error),
            ]
            .boxed()
        }
    }

    impl Arb for MultiResponse {
        fn arb() -> BoxedStrategy<Self> {
            Vec::<OpResult>::arb()
                .prop_map(|results| MultiResponse { results })
                .boxed()
        }
    }
}
