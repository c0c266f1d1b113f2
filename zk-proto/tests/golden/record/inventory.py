#!/usr/bin/env python3
"""Decode the golden fixture files and write an inventory of what they contain.

Usage: inventory.py [--check] FIXTURE.txt... > inventory.txt

Every frame is fully decoded with a small reference jute decoder (below) and
must be consumed exactly; any decode error, trailing byte, reply without a
matching request, or unknown opcode is reported on stderr and makes --check
exit with status 1.  The inventory lists, per file and connection, each frame
as (direction, xid, opcode-or-reply), followed by an opcode coverage table.
"""

import struct
import sys
import os

OPS = {
    0: "notification", 1: "create", 2: "delete", 3: "exists", 4: "getData", 5: "setData",
    6: "getACL", 7: "setACL", 8: "getChildren", 9: "sync", 11: "ping", 12: "getChildren2",
    13: "check", 14: "multi", 15: "create2", 16: "reconfig", 17: "checkWatches",
    18: "removeWatches", 19: "createContainer", 20: "deleteContainer", 21: "createTTL",
    22: "multiRead", 100: "auth", 101: "setWatches", 102: "sasl", 103: "getEphemerals",
    104: "getAllChildrenNumber", 105: "setWatches2", 106: "addWatch", 107: "whoAmI",
    -10: "createSession", -11: "closeSession", -1: "error",
}
EVENTS = {-1: "None", 1: "NodeCreated", 2: "NodeDeleted", 3: "NodeDataChanged",
          4: "NodeChildrenChanged", 5: "DataWatchRemoved", 6: "ChildWatchRemoved",
          7: "PersistentWatchRemoved"}
SPECIAL_XIDS = {-1: "notification", -2: "ping", -4: "auth", -8: "setWatches"}

# opcodes that the brief requires to appear somewhere in the fixtures
REQUIRED = [1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14, 15, 16, 17, 18, 19, 21, 22,
            100, 101, 102, 103, 104, 105, 106, 107, -11]


class DecodeError(Exception):
    pass


class R:
    """Big-endian jute reader."""

    def __init__(self, b):
        self.b = b
        self.i = 0

    def take(self, n):
        if self.i + n > len(self.b):
            raise DecodeError("short read: need %d at %d of %d" % (n, self.i, len(self.b)))
        v = self.b[self.i:self.i + n]
        self.i += n
        return v

    def int(self):
        return struct.unpack(">i", self.take(4))[0]

    def long(self):
        return struct.unpack(">q", self.take(8))[0]

    def bool(self):
        v = self.take(1)[0]
        if v not in (0, 1):
            raise DecodeError("bad boolean byte %d" % v)
        return bool(v)

    def buffer(self):
        n = self.int()
        if n < -1:
            raise DecodeError("bad buffer length %d" % n)
        return None if n == -1 else bytes(self.take(n))

    def string(self):
        b = self.buffer()
        return None if b is None else b.decode("utf-8")

    def vector(self, elem):
        n = self.int()
        if n < -1:
            raise DecodeError("bad vector length %d" % n)
        return None if n == -1 else [elem() for _ in range(n)]

    def left(self):
        return len(self.b) - self.i

    def done(self):
        if self.left():
            raise DecodeError("%d trailing bytes" % self.left())


def stat(r):
    return dict(czxid=r.long(), mzxid=r.long(), ctime=r.long(), mtime=r.long(), version=r.int(),
                cversion=r.int(), aversion=r.int(), ephemeralOwner=r.long(), dataLength=r.int(),
                numChildren=r.int(), pzxid=r.long())


def acl(r):
    return (r.int(), r.string(), r.string())


def acls(r):
    return r.vector(lambda: acl(r))


def strings(r):
    return r.vector(r.string)


# ---- request bodies (by opcode) --------------------------------------------
def create_req(r):
    return dict(path=r.string(), data=r.buffer(), acl=acls(r), flags=r.int())


def create_ttl_req(r):
    d = create_req(r)
    d["ttl"] = r.long()
    return d


REQ = {
    1: create_req, 15: create_req, 19: create_req, 21: create_ttl_req,
    2: lambda r: dict(path=r.string(), version=r.int()),
    3: lambda r: dict(path=r.string(), watch=r.bool()),
    4: lambda r: dict(path=r.string(), watch=r.bool()),
    5: lambda r: dict(path=r.string(), data=r.buffer(), version=r.int()),
    6: lambda r: dict(path=r.string()),
    7: lambda r: dict(path=r.string(), acl=acls(r), version=r.int()),
    8: lambda r: dict(path=r.string(), watch=r.bool()),
    9: lambda r: dict(path=r.string()),
    11: lambda r: {},
    12: lambda r: dict(path=r.string(), watch=r.bool()),
    13: lambda r: dict(path=r.string(), version=r.int()),
    16: lambda r: dict(joining=r.string(), leaving=r.string(), newMembers=r.string(), curConfigId=r.long()),
    17: lambda r: dict(path=r.string(), type=r.int()),
    18: lambda r: dict(path=r.string(), type=r.int()),
    100: lambda r: dict(type=r.int(), scheme=r.string(), auth=r.buffer()),
    101: lambda r: dict(relativeZxid=r.long(), data=strings(r), exist=strings(r), child=strings(r)),
    102: lambda r: dict(token=r.buffer()),
    103: lambda r: dict(prefixPath=r.string()),
    104: lambda r: dict(path=r.string()),
    105: lambda r: dict(relativeZxid=r.long(), data=strings(r), exist=strings(r), child=strings(r),
                        persistent=strings(r), persistentRecursive=strings(r)),
    106: lambda r: dict(path=r.string(), mode=r.int()),
    107: lambda r: {},
    -11: lambda r: {},
}
MULTI_REQ_OPS = {1, 2, 5, 13, 15, 19, 21}      # inside multi (14)
MULTIREAD_REQ_OPS = {4, 8}                     # inside multiRead (22)


def multi_req(r, allowed):
    ops = []
    while True:
        typ, done, err = r.int(), r.bool(), r.int()
        if done:
            if typ != -1 or err != -1:
                raise DecodeError("odd multi terminator %d %s %d" % (typ, done, err))
            return ops
        if typ not in allowed:
            raise DecodeError("opcode %d not allowed inside this multi" % typ)
        REQ[typ](r)
        ops.append(typ)


# ---- response bodies (by request opcode) -------------------------------------
RSP = {
    1: lambda r: dict(path=r.string()),
    15: lambda r: dict(path=r.string(), stat=stat(r)),
    19: lambda r: dict(path=r.string(), stat=stat(r)),
    21: lambda r: dict(path=r.string(), stat=stat(r)),
    2: lambda r: {},
    3: lambda r: dict(stat=stat(r)),
    4: lambda r: dict(data=r.buffer(), stat=stat(r)),
    5: lambda r: dict(stat=stat(r)),
    6: lambda r: dict(acl=acls(r), stat=stat(r)),
    7: lambda r: dict(stat=stat(r)),
    8: lambda r: dict(children=strings(r)),
    9: lambda r: dict(path=r.string()),
    11: lambda r: {},
    12: lambda r: dict(children=strings(r), stat=stat(r)),
    13: lambda r: {},
    16: lambda r: dict(data=r.buffer(), stat=stat(r)),
    17: lambda r: {},
    18: lambda r: {},
    100: lambda r: {},
    101: lambda r: {},
    102: lambda r: dict(token=r.buffer()),
    103: lambda r: dict(ephemerals=strings(r)),
    104: lambda r: dict(totalNumber=r.int()),
    105: lambda r: {},
    106: lambda r: dict(err=r.int()),   # addWatch reply body is an ErrorResponse (int err = 0)
    107: lambda r: dict(clientInfo=r.vector(lambda: (r.string(), r.string()))),
    -11: lambda r: {},
}
# result types that may appear inside a multi / multiRead response
MULTI_RSP = {
    1: RSP[1], 15: RSP[15], 19: RSP[15], 21: RSP[15], 2: RSP[2], 5: RSP[5], 13: RSP[13],
    4: RSP[4], 8: RSP[8], -1: lambda r: dict(err=r.int()),
}


def multi_rsp(r):
    res = []
    while True:
        typ, done, err = r.int(), r.bool(), r.int()
        if done:
            if typ != -1 or err != -1:
                raise DecodeError("odd multi response terminator %d %s %d" % (typ, done, err))
            return res
        if typ not in MULTI_RSP:
            raise DecodeError("unknown multi result type %d" % typ)
        body = MULTI_RSP[typ](r)
        res.append(typ if typ != -1 else "err%d" % body["err"])


def op_name(op):
    return "%d %s" % (op, OPS.get(op, "?"))


class Conn:
    def __init__(self):
        self.state = "new"         # new -> connecting -> open
        self.pending = {}          # xid -> [opcode, ...] of outstanding requests (FIFO)
        self.conn_request_seen = False


def decode_file(path, problems):
    """Returns a list of (kind, text) items: ('conn', n) / ('frame', text)."""
    name = os.path.basename(path)
    out = []
    conn = None
    nconn = 0
    for lineno, raw in enumerate(open(path, encoding="ascii"), 1):
        line = raw.rstrip("\n")
        where = "%s:%d" % (name, lineno)
        if not line or line.startswith("#"):
            if line == "# new connection":
                if conn is not None and conn.pending:
                    out.append("  (unanswered at end of connection: %s)" % sorted(conn.pending.items()))
                conn = Conn()
                nconn += 1
                out.append(" connection %d" % nconn)
            continue
        if len(line) < 3 or line[0] not in "CS" or line[1] != " ":
            problems.append("%s: malformed line" % where)
            continue
        d, hx = line[0], line[2:]
        try:
            b = bytes.fromhex(hx)
        except ValueError:
            problems.append("%s: bad hex" % where)
            continue
        if conn is None:
            problems.append("%s: frame before '# new connection'" % where)
            conn = Conn()
        try:
            r = R(b)
            n = r.int()
            if n != len(b) - 4:
                raise DecodeError("length prefix %d but frame has %d body bytes" % (n, len(b) - 4))
            out.append("  " + decode_frame(d, r, conn))
            r.done()
        except (DecodeError, UnicodeDecodeError) as e:
            problems.append("%s: %s frame: %s" % (where, d, e))
            out.append("  %s DECODE ERROR %s" % (d, e))
    if conn is not None and conn.pending:
        out.append("  (unanswered at end of file: %s)" % sorted(conn.pending.items()))
    return out


def decode_frame(d, r, conn):
    if d == "C":
        if not conn.conn_request_seen:
            conn.conn_request_seen = True
            proto, lastz, to, sid, pw = r.int(), r.long(), r.int(), r.long(), r.buffer()
            ro = r.bool() if r.left() else None
            return "C ConnectRequest protocolVersion=%d lastZxidSeen=0x%x timeOut=%d sessionId=0x%x passwd=%d bytes readOnly=%s" % (
                proto, lastz, to, sid, len(pw or b""), "absent" if ro is None else ro)
        xid, op = r.int(), r.int()
        if op in (14, 22):
            inner = multi_req(r, MULTI_REQ_OPS if op == 14 else MULTIREAD_REQ_OPS)
            extra = " ops=[%s]" % ",".join(str(o) for o in inner)
            for o in inner:
                conn.inner_ops = getattr(conn, "inner_ops", set()) | {o}
        elif op in REQ:
            body = REQ[op](r)
            extra = ""
            if op in (3, 4, 8, 12) and body.get("watch"):
                extra = " watch"
            if op == 100:
                extra = " scheme=%s" % body["scheme"]
            if op == 106:
                extra = " mode=%d" % body["mode"]
            if op in (17, 18):
                extra = " watcherType=%d" % body["type"]
            if op in (1, 15, 19, 21):
                extra = " flags=%d" % body["flags"]
        else:
            raise DecodeError("unknown request opcode %d" % op)
        if xid in conn.pending and xid >= 0:
            raise DecodeError("duplicate outstanding xid %d" % xid)
        conn.pending.setdefault(xid, []).append(op)
        return "C xid=%d op=%s%s" % (xid, op_name(op), extra)
    # server -> client
    if conn.state != "open":
        conn.state = "open"
        proto, to, sid, pw = r.int(), r.int(), r.long(), r.buffer()
        ro = r.bool() if r.left() else None
        return "S ConnectResponse protocolVersion=%d timeOut=%d sessionId=0x%x passwd=%d bytes readOnly=%s" % (
            proto, to, sid, len(pw or b""), "absent" if ro is None else ro)
    xid, zxid, err = r.int(), r.long(), r.int()
    if xid == -1:
        typ, state, path = r.int(), r.int(), r.string()
        return "S xid=-1 notification type=%d %s state=%d" % (typ, EVENTS.get(typ, "?"), state)
    if xid not in conn.pending:
        raise DecodeError("reply xid %d without outstanding request" % xid)
    op = conn.pending[xid].pop(0)
    if not conn.pending[xid]:
        del conn.pending[xid]
    extra = ""
    if op in (14, 22):
        extra = " results=[%s]" % ",".join(str(t) for t in multi_rsp(r))
    elif err == 0:
        RSP[op](r)
    elif op == 102:
        # a failed sasl request still carries a SetSASLResponse body (null token)
        RSP[op](r)
    # other non-zero err: no body (multi / multiRead handled above)
    return "S xid=%d err=%d reply-to=%d%s" % (xid, err, op, extra)


def main(argv):
    check = "--check" in argv
    files = [a for a in argv if a != "--check" and os.path.basename(a) != "inventory.txt"]
    problems = []
    coverage = {}  # opcode -> {file: count}
    inner_cov = {}
    body = []
    for path in files:
        name = os.path.basename(path)
        items = decode_file(path, problems)
        body.append("== %s" % name)
        body.extend(items)
        for it in items:
            t = it.strip()
            if t.startswith("C xid="):
                op = int(t.split("op=")[1].split()[0])
                coverage.setdefault(op, {}).setdefault(name, 0)
                coverage[op][name] += 1
                if " ops=[" in t:
                    for o in t.split("ops=[")[1].rstrip("]").split(","):
                        if o:
                            inner_cov.setdefault(int(o), {}).setdefault(name, 0)
                            inner_cov[int(o)][name] += 1
        body.append("")
    print("# Inventory of the golden ZooKeeper wire captures; generated by record/inventory.py.")
    print("# Per file and connection, every frame as: direction, xid, opcode (request) or")
    print("# reply-to=<request opcode> + err (reply); special xids: -1 notification, -2 ping, -4 auth,")
    print("# -8 setWatches. ops=[..] / results=[..] list the inner ops/result types of multi (14)")
    print("# and multiRead (22); 'errN' is an error result. Zxids/session ids vary between runs.")
    print()
    print("## Request opcode coverage (top-level requests): opcode name: file(count) ...")
    for op in sorted(set(list(coverage) + REQUIRED), key=lambda o: (o < 0, o)):
        files_s = " ".join("%s(%d)" % (f, c) for f, c in sorted(coverage.get(op, {}).items()))
        note = ""
        if op not in coverage:
            note = "(inside multi only)" if op in inner_cov else "MISSING"
        print("%4d %-21s %s%s" % (op, OPS.get(op, "?"), files_s, note))
    print()
    print("## Ops inside multi (14) / multiRead (22) requests: opcode name: file(count) ...")
    for op in sorted(inner_cov):
        print("%4d %-21s %s" % (op, OPS.get(op, "?"),
                                " ".join("%s(%d)" % (f, c) for f, c in sorted(inner_cov[op].items()))))
    print()
    errs, notes, special = {}, {}, {}
    cur = None
    for line in body:
        if line.startswith("== "):
            cur = line[3:]
            continue
        t = line.strip()
        if t.startswith("S xid=-1 notification"):
            typ = " ".join(t.split()[3:5])
            notes.setdefault(typ, set()).add(cur)
        elif t.startswith("S xid="):
            e = int(t.split("err=")[1].split()[0])
            if e:
                op = OPS.get(int(t.split("reply-to=")[1].split()[0]), "?")
                errs.setdefault(e, set()).add("%s(%s)" % (cur, op))
            for part in t.split("results=[")[1:]:
                for res in part.rstrip("]").split(","):
                    if res.startswith("err") and res != "err0":
                        errs.setdefault(int(res[3:]), set()).add("%s(in multi)" % cur)
        if t.startswith("C xid=-") or t.startswith("S xid=-"):
            x = int(t.split()[1][4:])
            if x != -1:
                special.setdefault(x, set()).add(cur)
    print("## Notification types (xid -1): type: files")
    for k in sorted(notes):
        print("  %-24s %s" % (k, " ".join(sorted(notes[k]))))
    print()
    print("## Special request xids: xid: files (-2 ping, -4 auth, -8 setWatches from the C client;")
    print("## the Java client sends setWatches/setWatches2 and sasl with ordinary xids)")
    for k in sorted(special, reverse=True):
        print("  %3d %s" % (k, " ".join(sorted(special[k]))))
    print()
    print("## Non-zero error codes in replies: code: file(request)")
    for k in sorted(errs, reverse=True):
        print("  %5d %s" % (k, " ".join(sorted(errs[k]))))
    print()
    print("## Not sent by clients (server-internal, never on the client wire): 20 deleteContainer, -10 createSession")
    print()
    print("## Frames")
    for line in body:
        print(line)
    missing = [op for op in REQUIRED if op not in coverage and op not in inner_cov]
    if missing:
        problems.append("required opcodes missing: %s" % missing)
    for p in problems:
        print("PROBLEM: " + p, file=sys.stderr)
    if check and problems:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
