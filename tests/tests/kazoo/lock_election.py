"""kazoo side of recipes_kazoo.rs: contends for a Lock, then an Election, on the paths the
Rust side uses, reporting each step on stdout and waiting for a line on stdin to let go."""
import sys

from kazoo.client import KazooClient

zk = KazooClient(hosts=sys.argv[1])
zk.start()
lock = zk.Lock("/kz/lock", "python")
print("CONTENDERS " + ",".join(lock.contenders()), flush=True)
lock.acquire()
print("ACQUIRED", flush=True)
sys.stdin.readline()
lock.release()
print("RELEASED", flush=True)
sys.stdin.readline()  # the Rust side leads the election now

election = zk.Election("/kz/election", "python")
print("ECONTENDERS " + ",".join(election.contenders()), flush=True)


def lead():
    print("LEADER", flush=True)
    sys.stdin.readline()


election.run(lead)
print("DONE", flush=True)
zk.stop()
