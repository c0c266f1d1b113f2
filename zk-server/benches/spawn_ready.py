"""Starts a ZooKeeper server and waits until it serves; used by the bench scripts here.

    python3 spawn_ready.py PORT LOG CMD...

Runs CMD in a session of its own (its own scheduler autogroup, as a service manager would
start it), output appended to LOG, and polls `srvr` on 127.0.0.1:PORT until the reply shows
a Mode (Apache answers `ruok` before its database is loaded). Prints
"<pid> <ms to ready> <VmHWM MiB> <VmRSS MiB>", the sizes read the moment it first serves.
"""
import socket
import subprocess
import sys
import time


def status_mib(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return round(int(line.split()[1]) / 1024)
    return 0


def serves(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"srvr")
            reply = b""
            while chunk := s.recv(4096):
                reply += chunk
        return b"Mode:" in reply
    except OSError:
        return False


def main():
    port, log, cmd = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
    t0 = time.time()
    p = subprocess.Popen(cmd, stdout=open(log, "a"), stderr=subprocess.STDOUT,
                         start_new_session=True)
    while not serves(port):
        if p.poll() is not None:
            sys.exit("server exited; see " + log)
        time.sleep(0.001)
    ms = int((time.time() - t0) * 1000)
    print(p.pid, ms, status_mib(p.pid, "VmHWM"), status_mib(p.pid, "VmRSS"))


main()
