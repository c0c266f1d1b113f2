#!/usr/bin/env python3
"""Feed a command script to the ZooKeeper C CLI (cli_mt) connected through
record/proxy.py, announcing every command to the proxy as a comment.

Script syntax (one item per line):
    <cli command>      sent to cli_mt's stdin, preceded by "# step: cli_mt> <command>"
    !sleep <seconds>   pause (e.g. to let the client send pings)
    !drop              ask the proxy to drop the connection (client reconnects)
    !comment <text>    write "# <text>" into the fixture
    ; text / blank     ignored
After the script, "quit" is sent; the driver waits for cli_mt to exit and for
the proxy to see the connection closed.
"""
import argparse
import socket
import subprocess
import sys
import time


class Control:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.f = self.sock.makefile("rwb")

    def cmd(self, line):
        self.f.write((line.replace("\n", " ") + "\n").encode())
        self.f.flush()
        reply = self.f.readline().decode().strip()
        if not reply.startswith("ok"):
            raise SystemExit("proxy control: %r -> %r" % (line, reply))
        return reply


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cli", default="/usr/lib/zookeeper/bin/cli_mt")
    ap.add_argument("--host", required=True)
    ap.add_argument("--control-port", type=int, required=True)
    ap.add_argument("--script", required=True)
    ap.add_argument("--delay", type=float, default=0.4, help="pause after each command")
    ap.add_argument("--log", default=None)
    args = ap.parse_args()

    ctl = Control(args.control_port)
    log = open(args.log, "w") if args.log else subprocess.DEVNULL
    ctl.cmd("comment step: start cli_mt (C client, session timeout 30000 ms)")
    proc = subprocess.Popen([args.cli, "-h", args.host], stdin=subprocess.PIPE,
                            stdout=log, stderr=subprocess.STDOUT)
    time.sleep(1.5)  # connect
    try:
        for raw in open(args.script):
            line = raw.strip()
            if not line or line.startswith(";"):
                continue
            if line.startswith("!sleep"):
                time.sleep(float(line.split()[1]))
            elif line == "!drop":
                ctl.cmd("drop")
                time.sleep(2.5)  # cli_mt reconnects
            elif line.startswith("!comment"):
                ctl.cmd("comment " + line[len("!comment"):].strip())
            else:
                ctl.cmd("comment step: cli_mt> " + line)
                proc.stdin.write((line + "\n").encode())
                proc.stdin.flush()
                time.sleep(args.delay)
        ctl.cmd("comment step: cli_mt> quit (closeSession -11)")
        proc.stdin.write(b"quit\n")
        proc.stdin.flush()
        proc.wait(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    ctl.cmd("wait-idle")
    print("cli_mt exited with %d" % proc.returncode, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
