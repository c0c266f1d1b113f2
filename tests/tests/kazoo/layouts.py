"""kazoo side of recipes_kazoo.rs (layouts): read-write lock, semaphore, counter and queue
on the paths the Rust side uses; reports each step on stdout and waits for a line on stdin
at each synchronisation point."""
import sys

from kazoo.client import KazooClient

zk = KazooClient(hosts=sys.argv[1])
zk.start()
step = sys.stdin.readline

# Read lock: shares with the Rust reader, blocks the Rust writer until released.
rlock = zk.ReadLock("/kz/rw", "py-reader")
rlock.acquire(timeout=10)
print("RLOCKED", flush=True)
step()
rlock.release()
print("RUNLOCKED", flush=True)

# Write lock: queued behind the Rust reader.
step()
wlock = zk.WriteLock("/kz/rw", "py-writer")
print("WWAITING", flush=True)
wlock.acquire(timeout=10)
print("WLOCKED", flush=True)
wlock.release()

# Semaphore of 2: both leases are held by Rust; waits for one.
step()
sem = zk.Semaphore("/kz/sem", "py", max_leases=2)
print("SWAITING", flush=True)
sem.acquire(timeout=10)
print("SACQUIRED " + ",".join(sorted(sem.lease_holders())), flush=True)
step()
sem.release()
print("SRELEASED", flush=True)

# Counter: Rust added 7; add 5.
step()
counter = zk.Counter("/kz/counter")
counter += 5
print("COUNTER %d" % counter.value, flush=True)

# Queue: Rust put entries; take them all in order.
step()
queue = zk.Queue("/kz/queue")
items = []
while True:
    item = queue.get()
    if item is None:
        break
    items.append(item.decode())
print("QUEUE " + ",".join(items), flush=True)
queue.put(b"from-python", priority=5)
print("QPUT", flush=True)
step()
zk.stop()
