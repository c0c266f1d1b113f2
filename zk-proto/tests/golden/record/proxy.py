#!/usr/bin/env python3
"""Recording TCP proxy for the ZooKeeper client protocol (stdlib only).

Sits between one ZooKeeper client and one server, forwards bytes unchanged in
both directions, and splits each direction into the 4-byte big-endian
length-prefixed frames of the ZooKeeper wire protocol.  Every complete frame
(INCLUDING its 4-byte length prefix) is appended as one line to the output
file, in the order in which the proxy received the frames:

    C <hex>      client -> server frame
    S <hex>      server -> client frame
    # <text>     comment

Each recorded TCP connection starts with the comment line "# new connection";
the first C frame after it is a ConnectRequest and the first S frame a
ConnectResponse.  Four-letter-word connections (first 4 bytes are ASCII
letters, e.g. "ruok", "srvr") are forwarded but never recorded.

Control:
  * SIGUSR1: forcibly drop (close) all active client connections and their
    upstream connections, so the client reconnects (and resends watches).
  * SIGTERM / SIGINT: close everything and exit 0.
  * Control socket (TCP, loopback, --control-port; 0 = pick a free one); one
    command per line, each answered with "ok\\n" after it took effect
    (or "err <why>\\n"):
        drop              same as SIGUSR1
        comment <text>    append "# <text>" to the output file
        wait-idle         answer once no recorded connection is open
        quit              exit
  * --port-file FILE: once listening, write "<listen_port> <control_port>\\n"
    to FILE (written atomically) so a driver script can find the ports.
"""

import argparse
import os
import selectors
import signal
import socket
import sys
import time

MAX_FRAME = 16 * 1024 * 1024


def is_four_letter_word(b):
    return len(b) >= 4 and all(0x61 <= c <= 0x7A for c in b[:4])


class Recorder:
    def __init__(self, path, title):
        self.f = open(path, "w", encoding="ascii", buffering=1)
        self.f.write("# ZooKeeper wire capture (Apache ZooKeeper 3.8 server).\n")
        self.f.write("# Format: 'C <hex>' client->server frame, 'S <hex>' server->client frame,\n")
        self.f.write("# each frame including its 4-byte big-endian length prefix; '#' lines are comments.\n")
        if title:
            for line in title.splitlines():
                self.f.write("# " + line + "\n")

    def comment(self, text):
        for line in str(text).splitlines() or [""]:
            self.f.write(("# " + line).rstrip() + "\n")

    def frame(self, direction, data):
        self.f.write("%s %s\n" % (direction, data.hex()))

    def close(self):
        self.f.flush()
        self.f.close()


class Conn:
    """One proxied client connection and its upstream connection."""

    def __init__(self, proxy, client, upstream, cid):
        self.proxy = proxy
        self.client = client
        self.upstream = upstream
        self.cid = cid
        self.mode = None  # None (undecided), "record", "passthrough"
        self.bufs = {"C": bytearray(), "S": bytearray()}
        self.closed = False

    def peer(self, sock):
        return self.upstream if sock is self.client else self.client

    def on_data(self, sock, data):
        direction = "C" if sock is self.client else "S"
        if self.mode is None:
            if direction == "C":
                self.bufs["C"] += data
                if len(self.bufs["C"]) < 4:
                    self.upstream.sendall(data)
                    return
                if is_four_letter_word(self.bufs["C"]):
                    self.mode = "passthrough"
                    self.bufs["C"].clear()
                    self.bufs["S"].clear()
                else:
                    self.mode = "record"
                    self.proxy.start_recording(self)
                    pending_c = bytes(self.bufs["C"])
                    pending_s = bytes(self.bufs["S"])
                    self.bufs["C"].clear()
                    self.bufs["S"].clear()
                    self.upstream.sendall(data)
                    self.feed("C", pending_c)
                    self.feed("S", pending_s)
                    return
            else:
                # server bytes before the client sent 4 bytes: never happens with
                # ZooKeeper; forward them and decide later
                self.client.sendall(data)
                self.bufs["S"] += data
                return
        self.peer(sock).sendall(data)
        if self.mode == "record":
            self.feed(direction, data)

    def feed(self, direction, data):
        buf = self.bufs[direction]
        buf += data
        while len(buf) >= 4:
            n = int.from_bytes(buf[:4], "big", signed=True)
            if n < 0 or n > MAX_FRAME:
                self.proxy.rec.comment(
                    "ERROR: bad frame length %d from %s; stop recording this connection"
                    % (n, direction))
                self.mode = "passthrough"
                buf.clear()
                return
            if len(buf) < 4 + n:
                return
            self.proxy.rec.frame(direction, bytes(buf[:4 + n]))
            del buf[:4 + n]

    def close(self, why):
        if self.closed:
            return
        self.closed = True
        if self.mode == "record":
            for d in ("C", "S"):
                if self.bufs[d]:
                    self.proxy.rec.comment("WARNING: %d trailing bytes from %s not recorded: %s"
                                           % (len(self.bufs[d]), d, bytes(self.bufs[d]).hex()))
            self.proxy.rec.comment("connection closed (%s)" % why)
        for s in (self.client, self.upstream):
            try:
                self.proxy.sel.unregister(s)
            except (KeyError, ValueError):
                pass
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        self.proxy.conns.discard(self)
        self.proxy.check_idle()


class Proxy:
    def __init__(self, args):
        self.args = args
        self.sel = selectors.DefaultSelector()
        self.rec = Recorder(args.out, args.title)
        self.conns = set()
        self.next_cid = 1
        self.ctl_clients = {}
        self.idle_waiters = []
        self.running = True
        self.drop_requested = False
        self.recorded_connections = 0

        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind((args.listen_host, args.listen_port))
        self.lsock.listen(16)
        self.sel.register(self.lsock, selectors.EVENT_READ, ("listen", None))

        self.csock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.csock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.csock.bind(("127.0.0.1", args.control_port))
        self.csock.listen(4)
        self.sel.register(self.csock, selectors.EVENT_READ, ("ctl-listen", None))

        # self-pipe so that signal handlers wake the select loop
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_w, False)
        self.sel.register(self.wake_r, selectors.EVENT_READ, ("wake", None))

        lp = self.lsock.getsockname()[1]
        cp = self.csock.getsockname()[1]
        if args.port_file:
            tmp = args.port_file + ".tmp"
            with open(tmp, "w") as f:
                f.write("%d %d\n" % (lp, cp))
            os.replace(tmp, args.port_file)
        print("proxy: listening on %s:%d -> %s, control port %d, recording to %s"
              % (args.listen_host, lp, args.upstream, cp, args.out), file=sys.stderr, flush=True)

    # --- recording helpers ---------------------------------------------------
    def start_recording(self, conn):
        others = [c for c in self.conns if c is not conn and c.mode == "record" and not c.closed]
        if others:
            self.rec.comment("WARNING: concurrent recorded connections; frames interleave")
        self.recorded_connections += 1
        self.rec.comment("new connection")

    def check_idle(self):
        if not any(c.mode == "record" for c in self.conns):
            waiters, self.idle_waiters = self.idle_waiters, []
            for s in waiters:
                self.ctl_reply(s, "ok")

    def drop_all(self, why):
        active = [c for c in self.conns if not c.closed]
        if any(c.mode == "record" for c in active):
            self.rec.comment("proxy: forced drop of the client connection (%s)" % why)
        for c in active:
            c.close("forced drop")
        return len(active)

    # --- control socket ----------------------------------------------------
    def ctl_reply(self, s, text):
        try:
            s.sendall((text + "\n").encode())
        except OSError:
            pass

    def ctl_command(self, s, line):
        cmd, _, rest = line.strip().partition(" ")
        if cmd == "drop":
            n = self.drop_all("control socket")
            self.ctl_reply(s, "ok %d" % n)
        elif cmd == "comment":
            self.rec.comment(rest)
            self.ctl_reply(s, "ok")
        elif cmd == "wait-idle":
            self.idle_waiters.append(s)
            self.check_idle()
        elif cmd == "quit":
            self.ctl_reply(s, "ok")
            self.running = False
        elif cmd == "":
            pass
        else:
            self.ctl_reply(s, "err unknown command %r" % cmd)

    # --- main loop -----------------------------------------------------------
    def on_signal(self, signum, _frame):
        if signum == signal.SIGUSR1:
            self.drop_requested = True
        else:
            self.running = False
        try:
            os.write(self.wake_w, b"x")
        except OSError:
            pass

    def accept(self):
        client, _ = self.lsock.accept()
        host, port = self.args.upstream.rsplit(":", 1)
        try:
            upstream = socket.create_connection((host, int(port)), timeout=10)
        except OSError as e:
            print("proxy: upstream connect failed: %s" % e, file=sys.stderr, flush=True)
            client.close()
            return
        upstream.settimeout(None)
        for s in (client, upstream):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = Conn(self, client, upstream, self.next_cid)
        self.next_cid += 1
        self.conns.add(conn)
        self.sel.register(client, selectors.EVENT_READ, ("conn", conn))
        self.sel.register(upstream, selectors.EVENT_READ, ("conn", conn))

    def run(self):
        signal.signal(signal.SIGUSR1, self.on_signal)
        signal.signal(signal.SIGTERM, self.on_signal)
        signal.signal(signal.SIGINT, self.on_signal)
        while self.running:
            for key, _ in self.sel.select(timeout=1.0):
                kind, obj = key.data
                if kind == "listen":
                    self.accept()
                elif kind == "ctl-listen":
                    s, _ = self.csock.accept()
                    self.ctl_clients[s] = bytearray()
                    self.sel.register(s, selectors.EVENT_READ, ("ctl", None))
                elif kind == "wake":
                    os.read(self.wake_r, 64)
                elif kind == "ctl":
                    s = key.fileobj
                    try:
                        data = s.recv(4096)
                    except OSError:
                        data = b""
                    if not data:
                        self.sel.unregister(s)
                        s.close()
                        self.ctl_clients.pop(s, None)
                        if s in self.idle_waiters:
                            self.idle_waiters.remove(s)
                        continue
                    buf = self.ctl_clients[s]
                    buf += data
                    while b"\n" in buf:
                        line, _, rest = bytes(buf).partition(b"\n")
                        buf[:] = rest
                        self.ctl_command(s, line.decode("utf-8", "replace"))
                elif kind == "conn":
                    conn = obj
                    if conn.closed:
                        continue
                    s = key.fileobj
                    try:
                        data = s.recv(65536)
                    except OSError:
                        data = b""
                    if not data:
                        conn.close("EOF from %s" % ("client" if s is conn.client else "server"))
                        continue
                    try:
                        conn.on_data(s, data)
                    except OSError as e:
                        conn.close("send error: %s" % e)
            if self.drop_requested:
                self.drop_requested = False
                self.drop_all("SIGUSR1")
        for c in list(self.conns):
            c.close("proxy shutdown")
        self.rec.close()
        return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--listen-host", default="127.0.0.1")
    ap.add_argument("--listen-port", type=int, default=0)
    ap.add_argument("--control-port", type=int, default=0)
    ap.add_argument("--upstream", required=True, help="host:port of the ZooKeeper server")
    ap.add_argument("--out", required=True, help="fixture file to write (truncated)")
    ap.add_argument("--title", default="", help="comment text written at the top of the file")
    ap.add_argument("--port-file", help="write '<listen_port> <control_port>' here once listening")
    args = ap.parse_args()
    sys.exit(Proxy(args).run())


if __name__ == "__main__":
    main()
