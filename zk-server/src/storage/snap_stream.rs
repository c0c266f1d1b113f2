//! The database a leader sends after SNAP, as Apache streams it (`LearnerHandler` writes
//! `ZKDatabase.serializeSnapshot` then the string `"BenWasHere"`):
//!
//! ```text
//! int sessionCount; { long id; int timeout }*
//! int aclCount; { long index; vector<ACL> }*
//! { ustring path; DataNode{buffer data; long acl; StatPersisted stat} }*   pre-order, root ""
//! ustring "/"                                                              end of nodes
//! ustring "BenWasHere"                                                     signature
//! ```
//!
//! That is the body of a snapshot file without its header, seals and digest. Nothing
//! announces the stream's length, so the reader walks its structure ([`read_stream`]) to
//! find where the next QuorumPacket starts.
//!
//! The *body* (everything before the signature) is what [`ZabMessage::Snapshot`] carries;
//! [`encode`] / [`decode`] convert it from / to the persistence layer's [`SnapshotData`].
//!
//! [`ZabMessage::Snapshot`]: crate::zab::ZabMessage::Snapshot

use bytes::{BufMut, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};
use zk_proto::jute::{JuteReader, JuteWrite, Record};
use zk_proto::Acl;

use crate::storage::SnapshotData;

/// The signature ending the stream.
pub const SIGNATURE: &str = "BenWasHere";
/// Path that ends the node list.
const END_PATH: &str = "/";
/// Encoded size of a `StatPersisted` (6 longs, 3 ints).
const STAT_LEN: usize = 6 * 8 + 3 * 4;

/// Serializes a database image as a SNAP body (without the signature).
pub fn encode(snap: &SnapshotData) -> Bytes {
    let mut nodes = BytesMut::new();
    for (path, node) in &snap.nodes {
        nodes.write_string(path);
        node.write(&mut nodes);
    }
    encode_parts(&snap.sessions, &snap.acls, &nodes)
}

/// A SNAP body from its parts, the nodes already serialized as records (`ustring path;
/// DataNode`, pre-order: what a tree walk writes).
pub fn encode_parts(sessions: &[(i64, i32)], acls: &[(i64, Vec<Acl>)], nodes: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(nodes.len() + 64 + sessions.len() * 12);
    write_head(&mut b, sessions, acls);
    b.put_slice(nodes);
    b.write_string(END_PATH);
    b.freeze()
}

/// [`encode_parts`] as pieces to write one after the other (head, `nodes`, end marker),
/// so the node records, the bulk of it, are not copied.
pub fn body_pieces(sessions: &[(i64, i32)], acls: &[(i64, Vec<Acl>)], nodes: Bytes) -> Vec<Bytes> {
    let mut head = BytesMut::with_capacity(64 + sessions.len() * 12);
    write_head(&mut head, sessions, acls);
    let mut end = BytesMut::new();
    end.write_string(END_PATH);
    vec![head.freeze(), nodes, end.freeze()]
}

/// Sessions and the ACL cache: what precedes the nodes.
fn write_head(b: &mut BytesMut, sessions: &[(i64, i32)], acls: &[(i64, Vec<Acl>)]) {
    b.write_i32(count(sessions.len()));
    for &(id, timeout) in sessions {
        b.write_i64(id);
        b.write_i32(timeout);
    }
    b.write_i32(count(acls.len()));
    for (index, list) in acls {
        b.write_i64(*index);
        b.write_vec(list);
    }
}

/// What goes on the wire after the SNAP packet: the body, then the signature.
pub fn signed(body: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(body.len() + 4 + SIGNATURE.len());
    b.put_slice(body);
    b.write_string(SIGNATURE);
    b.freeze()
}

fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// Decodes a SNAP body (as [`read_stream`] returns it) into the database as of `zxid`.
pub fn decode(zxid: i64, body: Bytes) -> Result<SnapshotData, String> {
    let mut r = JuteReader::new(body);
    let (sessions, acls, nodes) = crate::storage::snapshot::read_database(&mut r)?;
    if !r.is_empty() {
        return Err(format!("{} bytes after the end of the tree", r.remaining()));
    }
    Ok(SnapshotData {
        last_zxid: zxid,
        sessions,
        acls,
        nodes,
    })
}

fn invalid(what: impl Into<String>) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what.into())
}

/// Reads a stream's bytes on demand into one buffer, never past `limit`.
struct Pull<'a, R> {
    io: &'a mut R,
    buf: BytesMut,
    pos: usize,
    limit: usize,
}

impl<R: AsyncRead + Unpin> Pull<'_, R> {
    async fn need(&mut self, n: usize) -> std::io::Result<()> {
        let end = self.pos.saturating_add(n);
        if end > self.limit {
            return Err(invalid(format!(
                "snapshot larger than {} bytes",
                self.limit
            )));
        }
        while self.buf.len() < end {
            self.buf.reserve((end - self.buf.len()).min(1 << 20));
            if self.io.read_buf(&mut self.buf).await? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
        }
        Ok(())
    }

    async fn skip(&mut self, n: usize) -> std::io::Result<()> {
        self.need(n).await?;
        self.pos += n;
        Ok(())
    }

    async fn int(&mut self) -> std::io::Result<i32> {
        self.need(4).await?;
        let b = &self.buf[self.pos..self.pos + 4];
        self.pos += 4;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A count or length: `-1` (null) reads as 0 when `nullable`, other negatives fail.
    async fn len(&mut self, nullable: bool) -> std::io::Result<usize> {
        match self.int().await? {
            -1 if nullable => Ok(0),
            n => usize::try_from(n).map_err(|_| invalid(format!("negative length {n}"))),
        }
    }

    /// A `ustring`, checked to be UTF-8; returns its bytes' range.
    async fn string(&mut self) -> std::io::Result<std::ops::Range<usize>> {
        let n = self.len(true).await?;
        self.need(n).await?;
        let r = self.pos..self.pos + n;
        std::str::from_utf8(&self.buf[r.clone()]).map_err(|_| invalid("invalid UTF-8"))?;
        self.pos += n;
        Ok(r)
    }
}

/// Reads a SNAP stream (after the SNAP packet) from `io`, starting with the bytes already
/// buffered in `buffered`. Returns the body (without the signature) and the bytes read
/// past the stream's end (the start of the next packets). The stream is checked
/// structurally (counts, lengths, UTF-8, signature), and never read past `limit` bytes.
pub async fn read_stream<R: AsyncRead + Unpin>(
    io: &mut R,
    buffered: BytesMut,
    limit: usize,
) -> std::io::Result<(Bytes, BytesMut)> {
    let mut p = Pull {
        io,
        buf: buffered,
        pos: 0,
        limit,
    };
    let sessions = p.len(false).await?;
    p.skip(sessions.saturating_mul(12)).await?;
    let acls = p.len(false).await?;
    for _ in 0..acls {
        p.skip(8).await?;
        let list = p.len(true).await?;
        for _ in 0..list {
            p.skip(4).await?; // perms
            p.string().await?; // scheme
            p.string().await?; // id
        }
    }
    loop {
        let path = p.string().await?;
        if &p.buf[path] == END_PATH.as_bytes() {
            break;
        }
        let data = p.len(true).await?;
        p.skip(data).await?;
        p.skip(8 + STAT_LEN).await?; // acl index, stat
    }
    let body_end = p.pos;
    let sig = p.string().await?;
    if &p.buf[sig] != SIGNATURE.as_bytes() {
        return Err(invalid("missing the BenWasHere signature"));
    }
    let end = p.pos;
    let mut buf = p.buf;
    let mut stream = buf.split_to(end);
    stream.truncate(body_end);
    Ok((stream.freeze(), buf))
}

#[cfg(test)]
mod tests {
    use super::*;
    use zk_proto::persistence::DataNodeRecord;
    use zk_proto::StatPersisted;

    fn sample() -> SnapshotData {
        let mut snap = SnapshotData::initial();
        snap.last_zxid = 0x1_0000_0005;
        snap.sessions = vec![(0x100, 30_000), (0x101, 10_000)];
        snap.nodes.push((
            "/a".into(),
            DataNodeRecord {
                data: Some(Bytes::from_static(b"hello")),
                acl: -1,
                stat: StatPersisted {
                    czxid: 3,
                    mzxid: 5,
                    ..StatPersisted::default()
                },
            },
        ));
        snap
    }

    #[test]
    fn body_is_the_snapshot_file_between_header_and_seal() {
        let snap = sample();
        let body = encode(&snap);
        let mut file = Vec::new();
        snap.write_to(&mut file).unwrap();
        // FileHeader: int magic, int version, long dbid.
        assert_eq!(&file[16..16 + body.len()], &body[..]);
        assert_eq!(decode(snap.last_zxid, body).unwrap(), snap);
    }

    #[test]
    fn pieces_are_the_body() {
        let snap = sample();
        let mut nodes = BytesMut::new();
        for (path, node) in &snap.nodes {
            nodes.write_string(path);
            node.write(&mut nodes);
        }
        let pieces = body_pieces(&snap.sessions, &snap.acls, nodes.freeze());
        assert_eq!(pieces.concat(), encode(&snap).to_vec());
    }

    #[tokio::test]
    async fn stream_is_framed_by_its_structure() {
        let snap = sample();
        let mut wire = signed(&encode(&snap)).to_vec();
        wire.extend_from_slice(b"next packet");
        // Split the stream between what was already buffered and what the socket yields.
        let (head, tail) = wire.split_at(7);
        let mut io = tail;
        let (body, rest) = read_stream(&mut io, BytesMut::from(head), 1 << 20)
            .await
            .unwrap();
        assert_eq!(&rest[..], b"next packet");
        assert_eq!(decode(snap.last_zxid, body).unwrap(), snap);
    }

    #[tokio::test]
    async fn bad_streams_fail_cleanly() {
        let good = signed(&encode(&sample()));
        // Truncated anywhere: an error, never a panic.
        for cut in 0..good.len() {
            let mut io = &good[..cut];
            assert!(read_stream(&mut io, BytesMut::new(), 1 << 20)
                .await
                .is_err());
        }
        // Wrong signature.
        let mut bad = signed(&encode(&sample())).to_vec();
        let n = bad.len();
        bad[n - 1] = b'X';
        let mut io = &bad[..];
        assert!(read_stream(&mut io, BytesMut::new(), 1 << 20)
            .await
            .is_err());
        // A huge session count is refused by the limit, not allocated.
        let mut io: &[u8] = &[0x7f, 0xff, 0xff, 0xff];
        assert!(read_stream(&mut io, BytesMut::new(), 1 << 20)
            .await
            .is_err());
        // Over the limit.
        let mut io = &good[..];
        assert!(read_stream(&mut io, BytesMut::new(), 16).await.is_err());
    }
}
