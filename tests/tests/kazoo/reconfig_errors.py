"""Reconfig requests that must fail (and one that must not), answered by the ensemble at
argv[1]: prints one line per case, `name: outcome`, so two ensembles can be compared."""
import sys

from kazoo.client import KazooClient

hosts = sys.argv[1]
spare = sys.argv[2:5]  # three free ports for servers that never run

anon = KazooClient(hosts=hosts, timeout=15)
anon.start()
admin = KazooClient(hosts=hosts, timeout=15, auth_data=[("digest", "super:test")])
admin.start()


def outcome(client, **kw):
    try:
        data, _ = client.reconfig(
            joining=kw.get("joining"),
            leaving=kw.get("leaving"),
            new_members=kw.get("new_members"),
            from_config=kw.get("from_config", -1),
        )
        return "ok", data.decode()
    except Exception as e:  # the error class is what is compared
        return type(e).__name__, None


data, _ = admin.get("/zookeeper/config")
text = data.decode()
version = int(text.strip().split("\n")[-1].split("=")[1], 16)
print("config has a version line:", text.strip().split("\n")[-1].startswith("version="))
members = [l for l in text.split("\n") if l.startswith("server.")]
print("members:", len(members))

observer = "server.100=127.0.0.1:%s:%s:observer;127.0.0.1:%s" % tuple(spare)
print("not super:", outcome(anon, joining=observer)[0])
print("not a server spec:", outcome(admin, joining="some thing")[0])
print("bad port:", outcome(admin, joining="server.9=127.0.0.1:x:1;2")[0])
print("two ports only:", outcome(admin, joining="server.9=127.0.0.1:%s:%s" % tuple(spare[:2]))[0])
print("same quorum and election port:",
      outcome(admin, joining="server.9=127.0.0.1:%s:%s;%s" % (spare[0], spare[0], spare[2]))[0])
print("leave every participant:", outcome(admin, leaving="1,2,3")[0])
print("future fromConfig:", outcome(admin, joining=observer, from_config=version + 1)[0])
print("stale fromConfig:", outcome(admin, joining=observer, from_config=version - 1)[0])
no_quorum = ",".join(
    "server.%d=127.0.0.1:%d:%d:participant;127.0.0.1:%d" % (10 + i, 1 + i, 11 + i, 21 + i)
    for i in range(4)
)
print("new voters not running:", outcome(admin, joining=no_quorum)[0])
print("members without quorum:", outcome(admin, new_members=no_quorum)[0])
print("unparsable member list:", outcome(admin, new_members="server.1=nothing")[0])

ok, added = outcome(admin, joining=observer, from_config=version)
print("add observer:", ok, observer in (added or ""))
after = int(added.strip().split("\n")[-1].split("=")[1], 16) if added else 0
print("version grew:", after > version)
# Another session may sit on a member that has not applied the commit yet: sync first,
# as ZooKeeper requires for reading another session's write.
anon.sync("/zookeeper/config")
data, _ = anon.get("/zookeeper/config")
print("everyone reads it:", observer in data.decode())
ok, removed = outcome(admin, leaving="100")
print("remove observer:", ok, observer not in (removed or "x"))
print("old fromConfig now:", outcome(admin, joining=observer, from_config=version)[0])
anon.stop()
admin.stop()
