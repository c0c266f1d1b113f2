// Drives the Apache ZooKeeper 3.8 Java client through record/proxy.py so that
// every client opcode (success and error forms) shows up in a wire capture.
//
// Usage: java -cp <zookeeper jars>:. Recorder <scenario> <host:port of proxy> <proxy control port>
// Scenarios: crud, multi, watches, auth, misc, reconnect, sasl
//
// Each step is announced to the proxy ("comment step: ...") before its
// requests are sent, so the fixture files are self-describing.

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

import org.apache.zookeeper.AddWatchMode;
import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.Op;
import org.apache.zookeeper.OpResult;
import org.apache.zookeeper.WatchedEvent;
import org.apache.zookeeper.Watcher;
import org.apache.zookeeper.Watcher.Event.EventType;
import org.apache.zookeeper.Watcher.Event.KeeperState;
import org.apache.zookeeper.ZooDefs;
import org.apache.zookeeper.ZooDefs.Ids;
import org.apache.zookeeper.ZooKeeper;
import org.apache.zookeeper.admin.ZooKeeperAdmin;
import org.apache.zookeeper.client.ZKClientConfig;
import org.apache.zookeeper.data.ACL;
import org.apache.zookeeper.data.ClientInfo;
import org.apache.zookeeper.data.Id;
import org.apache.zookeeper.data.Stat;
import org.apache.zookeeper.server.auth.DigestAuthenticationProvider;

public class Recorder {
    static final int SESSION_TIMEOUT_MS = 4000;
    static final byte[] D = "d".getBytes(StandardCharsets.UTF_8);

    interface ZkCall {
        void run() throws Exception;
    }

    // ---------------------------------------------------------------- proxy control
    static Socket ctlSock;
    static BufferedReader ctlIn;
    static OutputStream ctlOut;

    static synchronized String ctl(String cmd) throws Exception {
        ctlOut.write((cmd.replace('\n', ' ') + "\n").getBytes(StandardCharsets.UTF_8));
        ctlOut.flush();
        String reply = ctlIn.readLine();
        if (reply == null || !reply.startsWith("ok")) {
            throw new IllegalStateException("proxy control: " + cmd + " -> " + reply);
        }
        return reply;
    }

    static void step(String text) throws Exception {
        System.out.println("== " + text);
        ctl("comment step: " + text);
    }

    // ---------------------------------------------------------------- watcher / events
    static final LinkedBlockingQueue<WatchedEvent> events = new LinkedBlockingQueue<>();
    static volatile KeeperState lastState = null;
    static final Object stateLock = new Object();

    static class LoggingWatcher implements Watcher {
        final String name;

        LoggingWatcher(String name) {
            this.name = name;
        }

        @Override
        public void process(WatchedEvent e) {
            System.out.println("   [" + name + "] event " + e);
            if (e.getType() == EventType.None) {
                synchronized (stateLock) {
                    lastState = e.getState();
                    stateLock.notifyAll();
                }
            } else {
                events.add(e);
            }
        }
    }

    static final LoggingWatcher defaultWatcher = new LoggingWatcher("default");

    static void waitState(KeeperState want) throws Exception {
        long deadline = System.currentTimeMillis() + 15000;
        synchronized (stateLock) {
            while (lastState != want) {
                long left = deadline - System.currentTimeMillis();
                if (left <= 0) {
                    throw new IllegalStateException("timeout waiting for state " + want + ", have " + lastState);
                }
                stateLock.wait(left);
            }
        }
    }

    static ZooKeeper connect(String hp) throws Exception {
        lastState = null;
        ZooKeeper zk = new ZooKeeper(hp, SESSION_TIMEOUT_MS, defaultWatcher);
        waitState(KeeperState.SyncConnected);
        return zk;
    }

    static ZooKeeperAdmin connectAdmin(String hp) throws Exception {
        lastState = null;
        ZooKeeperAdmin zk = new ZooKeeperAdmin(hp, SESSION_TIMEOUT_MS, defaultWatcher);
        waitState(KeeperState.SyncConnected);
        return zk;
    }

    static WatchedEvent expectEvent(EventType type, String path) throws Exception {
        long deadline = System.currentTimeMillis() + 10000;
        List<WatchedEvent> skipped = new ArrayList<>();
        try {
            while (true) {
                long left = deadline - System.currentTimeMillis();
                WatchedEvent e = left > 0 ? events.poll(left, TimeUnit.MILLISECONDS) : null;
                if (e == null) {
                    throw new IllegalStateException("timeout waiting for " + type + " " + path + "; saw " + skipped);
                }
                if (e.getType() == type && e.getPath().equals(path)) {
                    return e;
                }
                skipped.add(e);
            }
        } finally {
            events.addAll(skipped);
        }
    }

    static void drainEvents(long ms) throws Exception {
        Thread.sleep(ms);
        events.clear();
    }

    // ---------------------------------------------------------------- helpers
    static void expectErr(KeeperException.Code code, ZkCall c) throws Exception {
        try {
            c.run();
        } catch (KeeperException e) {
            if (e.code() != code) {
                throw new IllegalStateException("expected " + code + " got " + e.code(), e);
            }
            System.out.println("   expected error " + e.code());
            return;
        }
        throw new IllegalStateException("expected error " + code + " but call succeeded");
    }

    static void tryCall(String label, ZkCall c) {
        try {
            c.run();
            print(label, "ok");
        } catch (Exception e) {
            print(label, e);
        }
    }

    static void sync(ZooKeeper zk, String path) throws Exception {
        CountDownLatch l = new CountDownLatch(1);
        int[] rc = new int[1];
        zk.sync(path, (r, p, ctx) -> {
            rc[0] = r;
            l.countDown();
        }, null);
        if (!l.await(10, TimeUnit.SECONDS)) {
            throw new IllegalStateException("sync timeout");
        }
        System.out.println("   sync rc=" + rc[0]);
    }

    static void print(String what, Object o) {
        System.out.println("   " + what + " -> " + o);
    }

    static List<ACL> digestAcl(String user, String password, int perms) throws Exception {
        String id = DigestAuthenticationProvider.generateDigest(user + ":" + password);
        return Collections.singletonList(new ACL(perms, new Id("digest", id)));
    }

    static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    // ---------------------------------------------------------------- scenarios
    static void crud(String hp) throws Exception {
        step("connect (ConnectRequest/ConnectResponse), session timeout 4000 ms");
        ZooKeeper zk = connect(hp);
        Stat st = new Stat();

        step("create /crud PERSISTENT (opcode 1 create)");
        print("create", zk.create("/crud", bytes("root"), Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT));
        step("create /crud/p PERSISTENT (1)");
        print("create", zk.create("/crud/p", bytes("hello"), Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT));
        step("create /crud/e EPHEMERAL (1, flags=1)");
        print("create", zk.create("/crud/e", D, Ids.OPEN_ACL_UNSAFE, CreateMode.EPHEMERAL));
        step("create /crud/ps- PERSISTENT_SEQUENTIAL (1, flags=2)");
        print("create", zk.create("/crud/ps-", D, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT_SEQUENTIAL));
        step("create /crud/es- EPHEMERAL_SEQUENTIAL (1, flags=3)");
        print("create", zk.create("/crud/es-", D, Ids.OPEN_ACL_UNSAFE, CreateMode.EPHEMERAL_SEQUENTIAL));
        step("create /crud/nulldata PERSISTENT with null data (data buffer length -1)");
        print("create", zk.create("/crud/nulldata", null, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT));
        step("create /crud/empty PERSISTENT with empty (zero-length) data");
        print("create", zk.create("/crud/empty", new byte[0], Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT));
        step("create /crud/c CONTAINER without Stat (opcode 19 createContainer; reply is Create2Response)");
        print("create", zk.create("/crud/c", D, Ids.OPEN_ACL_UNSAFE, CreateMode.CONTAINER));
        step("create /crud/c2 CONTAINER with Stat (opcode 19 createContainer, flags=4)");
        print("create", zk.create("/crud/c2", D, Ids.OPEN_ACL_UNSAFE, CreateMode.CONTAINER, st));
        step("create /crud/ttl PERSISTENT_WITH_TTL ttl=60000 (opcode 21 createTTL, flags=5)");
        print("create", zk.create("/crud/ttl", D, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT_WITH_TTL, st, 60000));
        step("create /crud/ttls- PERSISTENT_SEQUENTIAL_WITH_TTL ttl=60000 (opcode 21 createTTL, flags=6)");
        print("create", zk.create("/crud/ttls-", D, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT_SEQUENTIAL_WITH_TTL, st, 60000));
        step("create /crud/s2 PERSISTENT with Stat (opcode 15 create2)");
        print("create2", zk.create("/crud/s2", D, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT, st));
        step("create /crud/s2e- EPHEMERAL_SEQUENTIAL with Stat (opcode 15 create2, flags=3)");
        print("create2", zk.create("/crud/s2e-", D, Ids.OPEN_ACL_UNSAFE, CreateMode.EPHEMERAL_SEQUENTIAL, st));
        step("create /crud/s2n PERSISTENT with Stat and null data (opcode 15)");
        print("create2", zk.create("/crud/s2n", null, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT, st));

        step("create error: NodeExists (1 -> err -110)");
        expectErr(KeeperException.Code.NODEEXISTS, () -> zk.create("/crud/p", D, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT));
        step("create error: NoNode for missing parent (1 -> err -101)");
        expectErr(KeeperException.Code.NONODE, () -> zk.create("/crud/missing/x", D, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT));
        step("create error: NoChildrenForEphemerals (1 -> err -108)");
        expectErr(KeeperException.Code.NOCHILDRENFOREPHEMERALS, () -> zk.create("/crud/e/x", D, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT));
        step("create2 error: NodeExists (15 -> err -110)");
        expectErr(KeeperException.Code.NODEEXISTS, () -> zk.create("/crud/s2", D, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT, st));
        step("createContainer error: NodeExists (19 -> err -110)");
        expectErr(KeeperException.Code.NODEEXISTS, () -> zk.create("/crud/c", D, Ids.OPEN_ACL_UNSAFE, CreateMode.CONTAINER));
        step("createTTL error: NoNode (21 -> err -101)");
        expectErr(KeeperException.Code.NONODE, () -> zk.create("/crud/missing/ttl", D, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT_WITH_TTL, st, 60000));
        step("create error: InvalidACL, ip scheme with a malformed address (1 -> err -114)");
        expectErr(KeeperException.Code.INVALIDACL, () -> zk.create("/crud/badacl", D,
                Collections.singletonList(new ACL(ZooDefs.Perms.ALL, new Id("ip", "not-an-ip"))), CreateMode.PERSISTENT));

        step("exists /crud/p, existing node, no watch (3)");
        print("exists", zk.exists("/crud/p", false));
        step("exists /crud/missing, missing node, no watch (3 -> err -101, no body)");
        print("exists", zk.exists("/crud/missing", false));

        step("getData /crud/p, non-null data, no watch (4)");
        print("getData", new String(zk.getData("/crud/p", false, st), StandardCharsets.UTF_8));
        step("getData /crud/nulldata, null data (4; data buffer length -1)");
        print("getData", Arrays.toString(zk.getData("/crud/nulldata", false, st)));
        step("getData /crud/empty, empty data (4; data buffer length 0)");
        print("getData", Arrays.toString(zk.getData("/crud/empty", false, st)));
        step("getData error: NoNode (4 -> err -101)");
        expectErr(KeeperException.Code.NONODE, () -> zk.getData("/crud/missing", false, st));

        step("setData /crud/p version -1 (5)");
        print("setData", zk.setData("/crud/p", bytes("world"), -1));
        step("setData /crud/p version 1 (5, matching version)");
        print("setData", zk.setData("/crud/p", bytes("again"), 1));
        step("setData /crud/p null data (5)");
        print("setData", zk.setData("/crud/p", null, -1));
        step("setData error: BadVersion (5 -> err -103)");
        expectErr(KeeperException.Code.BADVERSION, () -> zk.setData("/crud/p", D, 42));
        step("setData error: NoNode (5 -> err -101)");
        expectErr(KeeperException.Code.NONODE, () -> zk.setData("/crud/missing", D, -1));

        step("getACL /crud/p (6)");
        print("getACL", zk.getACL("/crud/p", st));
        step("getACL error: NoNode (6 -> err -101)");
        expectErr(KeeperException.Code.NONODE, () -> zk.getACL("/crud/missing", st));
        step("setACL /crud/p to two ACL entries, version -1 (7)");
        List<ACL> two = new ArrayList<>();
        two.add(new ACL(ZooDefs.Perms.ALL, Ids.ANYONE_ID_UNSAFE));
        two.add(new ACL(ZooDefs.Perms.READ, new Id("ip", "127.0.0.1")));
        print("setACL", zk.setACL("/crud/p", two, -1));
        step("setACL /crud/p, matching aversion 1 (7)");
        print("setACL", zk.setACL("/crud/p", Ids.OPEN_ACL_UNSAFE, 1));
        step("getACL /crud/p after setACL (6)");
        print("getACL", zk.getACL("/crud/p", st));
        step("setACL error: BadVersion (7 -> err -103)");
        expectErr(KeeperException.Code.BADVERSION, () -> zk.setACL("/crud/p", Ids.OPEN_ACL_UNSAFE, 99));
        step("setACL error: InvalidACL, CREATOR_ALL_ACL without any authenticated id (7 -> err -114)");
        expectErr(KeeperException.Code.INVALIDACL, () -> zk.setACL("/crud/p", Ids.CREATOR_ALL_ACL, -1));
        step("setACL error: NoNode (7 -> err -101)");
        expectErr(KeeperException.Code.NONODE, () -> zk.setACL("/crud/missing", Ids.OPEN_ACL_UNSAFE, -1));

        step("getChildren /crud, no watch (8)");
        print("getChildren", zk.getChildren("/crud", false));
        step("getChildren /crud/p, empty child list (8)");
        print("getChildren", zk.getChildren("/crud/p", false));
        step("getChildren error: NoNode (8 -> err -101)");
        expectErr(KeeperException.Code.NONODE, () -> zk.getChildren("/crud/missing", false));
        step("getChildren /crud with Stat (opcode 12 getChildren2)");
        print("getChildren2", zk.getChildren("/crud", false, st) + " " + st);
        step("getChildren2 error: NoNode (12 -> err -101)");
        expectErr(KeeperException.Code.NONODE, () -> zk.getChildren("/crud/missing", false, st));

        step("sync /crud (9)");
        sync(zk, "/crud");

        step("delete /crud/p version -1 (2)");
        zk.delete("/crud/p", -1);
        step("delete /crud/s2 with matching version 0 (2)");
        zk.delete("/crud/s2", 0);
        step("delete error: NoNode (2 -> err -101)");
        expectErr(KeeperException.Code.NONODE, () -> zk.delete("/crud/p", -1));
        step("delete error: BadVersion (2 -> err -103)");
        expectErr(KeeperException.Code.BADVERSION, () -> zk.delete("/crud/nulldata", 7));
        step("delete error: NotEmpty (2 -> err -111)");
        expectErr(KeeperException.Code.NOTEMPTY, () -> zk.delete("/crud", -1));

        step("close session (opcode -11 closeSession)");
        zk.close();
    }

    static void multi(String hp) throws Exception {
        step("connect");
        ZooKeeper zk = connect(hp);
        step("create /multi (1)");
        zk.create("/multi", D, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
        zk.create("/multi/existing", D, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);

        step("multi (14), all succeed: create, create ephemeral_sequential, createContainer, createTTL, setData, check (13), delete");
        List<OpResult> res = zk.multi(Arrays.asList(
                Op.create("/multi/a", bytes("a"), Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT),
                Op.create("/multi/es-", null, Ids.OPEN_ACL_UNSAFE, CreateMode.EPHEMERAL_SEQUENTIAL),
                Op.create("/multi/c", D, Ids.OPEN_ACL_UNSAFE, CreateMode.CONTAINER),
                Op.create("/multi/t", D, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT_WITH_TTL, 60000),
                Op.setData("/multi/a", bytes("A"), 0),
                Op.check("/multi/a", 1),
                Op.check("/multi/existing", -1),
                Op.delete("/multi/existing", -1)));
        print("multi", res);

        step("multi (14), failing: create ok, check with bad version (BadVersion), delete; error-result form");
        try {
            zk.multi(Arrays.asList(
                    Op.create("/multi/b", D, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT),
                    Op.check("/multi/a", 42),
                    Op.delete("/multi/a", -1)));
            throw new IllegalStateException("multi should have failed");
        } catch (KeeperException e) {
            print("multi failed", e.code() + " " + e.getResults());
        }

        step("multi (14), failing on the first op: delete missing node (NoNode)");
        try {
            zk.multi(Arrays.asList(
                    Op.delete("/multi/missing", -1),
                    Op.setData("/multi/a", D, -1)));
            throw new IllegalStateException("multi should have failed");
        } catch (KeeperException e) {
            print("multi failed", e.code() + " " + e.getResults());
        }

        step("multi (14), failing on the last op: create NodeExists");
        try {
            zk.multi(Arrays.asList(
                    Op.setData("/multi/a", D, -1),
                    Op.create("/multi/a", D, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT)));
            throw new IllegalStateException("multi should have failed");
        } catch (KeeperException e) {
            print("multi failed", e.code() + " " + e.getResults());
        }

        step("multi (14) with an empty op list");
        print("multi", zk.multi(Collections.emptyList()));

        step("multi (14) via Transaction API: create + delete");
        print("transaction", zk.transaction()
                .create("/multi/tx", D, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT)
                .delete("/multi/tx", -1)
                .commit());

        step("multiRead (22): getData + getChildren, all succeed");
        print("multiRead", zk.multi(Arrays.asList(
                Op.getData("/multi/a"),
                Op.getChildren("/multi"))));

        step("multiRead (22) with errors: getData on missing node, getChildren ok, getChildren on missing node (per-op error results)");
        print("multiRead", zk.multi(Arrays.asList(
                Op.getData("/multi/missing"),
                Op.getChildren("/multi"),
                Op.getChildren("/multi/missing2"))));

        step("close session (-11)");
        zk.close();
    }

    static void watches(String hp) throws Exception {
        step("connect");
        ZooKeeper zk = connect(hp);
        Stat st = new Stat();
        zk.create("/w", D, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);

        step("exists /w/a with watch on a missing node (3, watch=true; registers an exist watch)");
        print("exists", zk.exists("/w/a", true));
        step("create /w/a -> NodeCreated notification (xid -1, type 1)");
        zk.create("/w/a", D, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
        expectEvent(EventType.NodeCreated, "/w/a");

        step("getData /w/a with watch (4, watch=true)");
        zk.getData("/w/a", true, st);
        step("setData /w/a -> NodeDataChanged notification (type 3)");
        zk.setData("/w/a", bytes("x"), -1);
        expectEvent(EventType.NodeDataChanged, "/w/a");

        step("exists /w/a with watch on an existing node (3, watch=true)");
        print("exists", zk.exists("/w/a", true));
        step("setData /w/a -> NodeDataChanged (exists watch on existing node)");
        zk.setData("/w/a", bytes("y"), -1);
        expectEvent(EventType.NodeDataChanged, "/w/a");

        step("getChildren /w with watch (8, watch=true)");
        print("getChildren", zk.getChildren("/w", true));
        step("create /w/b -> NodeChildrenChanged notification (type 4)");
        zk.create("/w/b", D, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
        expectEvent(EventType.NodeChildrenChanged, "/w");

        step("getChildren /w with Stat and watch (12, watch=true)");
        print("getChildren2", zk.getChildren("/w", true, st));
        step("getData /w/a with watch, then delete /w/a -> NodeDeleted (type 2) + NodeChildrenChanged on /w");
        zk.getData("/w/a", true, st);
        zk.delete("/w/a", -1);
        expectEvent(EventType.NodeDeleted, "/w/a");
        expectEvent(EventType.NodeChildrenChanged, "/w");

        step("addWatch /w/p PERSISTENT (106, mode 0)");
        zk.create("/w/p", D, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
        zk.addWatch("/w/p", AddWatchMode.PERSISTENT);
        step("persistent watch: setData /w/p twice -> two NodeDataChanged; create child -> NodeChildrenChanged");
        zk.setData("/w/p", bytes("1"), -1);
        expectEvent(EventType.NodeDataChanged, "/w/p");
        zk.setData("/w/p", bytes("2"), -1);
        expectEvent(EventType.NodeDataChanged, "/w/p");
        zk.create("/w/p/kid", D, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
        expectEvent(EventType.NodeChildrenChanged, "/w/p");

        step("addWatch /w/r PERSISTENT_RECURSIVE (106, mode 1)");
        zk.create("/w/r", D, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
        zk.addWatch("/w/r", AddWatchMode.PERSISTENT_RECURSIVE);
        step("recursive watch: create /w/r/x and /w/r/x/y -> NodeCreated, setData /w/r/x/y -> NodeDataChanged, delete -> NodeDeleted");
        zk.create("/w/r/x", D, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
        expectEvent(EventType.NodeCreated, "/w/r/x");
        zk.create("/w/r/x/y", D, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
        expectEvent(EventType.NodeCreated, "/w/r/x/y");
        zk.setData("/w/r/x/y", bytes("z"), -1);
        expectEvent(EventType.NodeDataChanged, "/w/r/x/y");
        zk.delete("/w/r/x/y", -1);
        expectEvent(EventType.NodeDeleted, "/w/r/x/y");
        step("addWatch on a missing path /w/nonexistent (106; succeeds, no NoNode error)");
        zk.addWatch("/w/nonexistent", AddWatchMode.PERSISTENT);

        step("checkWatches (17): removeWatches(/w/cw, watcher, Data, local=false) for a registered data watcher");
        zk.create("/w/cw", D, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
        LoggingWatcher w1 = new LoggingWatcher("w1");
        zk.getData("/w/cw", w1, st);
        zk.removeWatches("/w/cw", w1, Watcher.WatcherType.Data, false);
        step("checkWatches (17): removeWatches(/w/cw, watcher, Children, local=false) for a registered child watcher");
        LoggingWatcher w2 = new LoggingWatcher("w2");
        zk.getChildren("/w/cw", w2);
        zk.removeWatches("/w/cw", w2, Watcher.WatcherType.Children, false);
        step("removeWatches (18): removeAllWatches(/w/cw, Any, local=false) with data+child watches registered");
        zk.getData("/w/cw", true, st);
        zk.getChildren("/w/cw", true);
        zk.removeAllWatches("/w/cw", Watcher.WatcherType.Any, false);
        step("removeWatches (18): removeAllWatches(/w/cw, Data, local=false) with a data watch registered");
        zk.exists("/w/cw", true);
        zk.removeAllWatches("/w/cw", Watcher.WatcherType.Data, false);
        step("removeWatches (18): removeAllWatches(/w/p, Any) removes the persistent watch");
        tryCall("removeAllWatches /w/p", () -> zk.removeAllWatches("/w/p", Watcher.WatcherType.Any, false));
        step("removeWatches error: removeAllWatches(/w/cw, Children) with no watch registered (18 -> err -121 NoWatcher)");
        tryCall("removeAllWatches /w/cw", () -> zk.removeAllWatches("/w/cw", Watcher.WatcherType.Children, false));
        step("checkWatches error: removeWatches(/w/b, watcher, Data) with no watch registered (17 -> err -121 NoWatcher)");
        LoggingWatcher w3 = new LoggingWatcher("w3");
        tryCall("removeWatches /w/b", () -> zk.removeWatches("/w/b", w3, Watcher.WatcherType.Data, false));
        drainEvents(300);

        step("close session (-11)");
        zk.close();
    }

    static void auth(String hp) throws Exception {
        step("connect");
        ZooKeeper zk = connect(hp);
        Stat st = new Stat();

        step("whoAmI before addAuth (107): only the ip identity");
        List<ClientInfo> who = zk.whoAmI();
        print("whoAmI", who);

        step("create /auth-alice with a digest ACL for alice only (1)");
        zk.create("/auth-alice", bytes("secret"), digestAcl("alice", "alicepw", ZooDefs.Perms.ALL), CreateMode.PERSISTENT);
        step("getData /auth-alice without auth -> NoAuth (4 -> err -102)");
        expectErr(KeeperException.Code.NOAUTH, () -> zk.getData("/auth-alice", false, st));
        step("setData /auth-alice without auth -> NoAuth (5 -> err -102)");
        expectErr(KeeperException.Code.NOAUTH, () -> zk.setData("/auth-alice", D, -1));
        step("getACL /auth-alice without auth -> NoAuth (6 -> err -102; 3.8 needs READ or ADMIN)");
        expectErr(KeeperException.Code.NOAUTH, () -> zk.getACL("/auth-alice", st));

        step("addAuthInfo digest bob:bobpw (auth packet xid -4, opcode 100, success)");
        zk.addAuthInfo("digest", bytes("bob:bobpw"));
        step("whoAmI after addAuth (107): ip + digest identities");
        print("whoAmI", zk.whoAmI());
        step("create /auth-bob with CREATOR_ALL_ACL (auth scheme; stored as digest bob)");
        zk.create("/auth-bob", bytes("bob"), Ids.CREATOR_ALL_ACL, CreateMode.PERSISTENT);
        step("getACL /auth-bob (6): shows the digest id");
        print("getACL", zk.getACL("/auth-bob", st));
        step("setACL /auth-bob to digest bob ALL + world READ (7)");
        List<ACL> acl = new ArrayList<>(digestAcl("bob", "bobpw", ZooDefs.Perms.ALL));
        acl.add(new ACL(ZooDefs.Perms.READ, Ids.ANYONE_ID_UNSAFE));
        print("setACL", zk.setACL("/auth-bob", acl, -1));
        step("getData /auth-alice as bob -> still NoAuth (4 -> err -102)");
        expectErr(KeeperException.Code.NOAUTH, () -> zk.getData("/auth-alice", false, st));
        step("create /auth-alice/x as bob -> NoAuth (1 -> err -102)");
        expectErr(KeeperException.Code.NOAUTH, () -> zk.create("/auth-alice/x", D, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT));
        step("create with malformed digest ACL id -> InvalidACL (1 -> err -114)");
        expectErr(KeeperException.Code.INVALIDACL, () -> zk.create("/auth-bad", D,
                Collections.singletonList(new ACL(ZooDefs.Perms.ALL, new Id("digest", "no-colon-here"))), CreateMode.PERSISTENT));

        step("addAuthInfo digest alice:alicepw (second auth packet, xid -4)");
        zk.addAuthInfo("digest", bytes("alice:alicepw"));
        step("getData /auth-alice as alice (4, ok)");
        print("getData", new String(zk.getData("/auth-alice", false, st), StandardCharsets.UTF_8));
        step("addAuthInfo digest super:secret (superDigest configured on the server)");
        zk.addAuthInfo("digest", bytes("super:secret"));
        step("whoAmI with three digest identities (107)");
        print("whoAmI", zk.whoAmI());
        step("delete /auth-alice and /auth-bob (2)");
        zk.delete("/auth-alice", -1);
        zk.delete("/auth-bob", -1);
        step("close session (-11)");
        zk.close();

        step("second session: auth failure with an unknown auth scheme (xid -4 -> err -115 AuthFailed, server closes the connection)");
        ZooKeeper zk2 = connect(hp);
        zk2.addAuthInfo("nosuchscheme", bytes("whatever"));
        waitState(KeeperState.AuthFailed);
        print("state", zk2.getState());
        Thread.sleep(500);
        zk2.close();
    }

    static void misc(String hp) throws Exception {
        step("connect with ZooKeeperAdmin (a ZooKeeper subclass, needed for reconfig)");
        ZooKeeperAdmin zk = connectAdmin(hp);
        Stat st = new Stat();

        step("whoAmI (107)");
        print("whoAmI", zk.whoAmI());

        step("setup: /misc tree with ephemerals");
        zk.create("/misc", D, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
        zk.create("/misc/a", D, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
        zk.create("/misc/a/b", D, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
        zk.create("/misc/e1", D, Ids.OPEN_ACL_UNSAFE, CreateMode.EPHEMERAL);
        zk.create("/misc/a/e2", D, Ids.OPEN_ACL_UNSAFE, CreateMode.EPHEMERAL);

        step("getEphemerals() with prefix / (103)");
        print("getEphemerals", zk.getEphemerals());
        step("getEphemerals(/misc/a) (103)");
        print("getEphemerals", zk.getEphemerals("/misc/a"));
        step("getEphemerals(/nomatch) (103, empty list)");
        print("getEphemerals", zk.getEphemerals("/nomatch"));

        step("getAllChildrenNumber(/misc) (104)");
        print("getAllChildrenNumber", zk.getAllChildrenNumber("/misc"));
        step("getAllChildrenNumber(/misc/missing) -> NoNode (104 -> err -101)");
        expectErr(KeeperException.Code.NONODE, () -> zk.getAllChildrenNumber("/misc/missing"));

        step("getConfig with watch (getData /zookeeper/config, opcode 4, watch=true)");
        print("getConfig", new String(zk.getConfig(true, st), StandardCharsets.UTF_8));
        step("getConfig without watch (4)");
        print("getConfig", new String(zk.getConfig(false, st), StandardCharsets.UTF_8));

        step("reconfig (16) incremental: add server 2 -> error on a standalone server");
        try {
            zk.reconfigure("server.2=127.0.0.1:2888:3888;2182", null, null, -1, st);
            print("reconfig", "unexpectedly succeeded");
        } catch (KeeperException e) {
            print("reconfig", e.code());
        }
        step("reconfig (16) non-incremental (newMembers) with fromConfig 5 -> error");
        try {
            zk.reconfigure(null, null, "server.1=127.0.0.1:2888:3888;2181", 5, st);
            print("reconfig", "unexpectedly succeeded");
        } catch (KeeperException e) {
            print("reconfig", e.code());
        }
        step("reconfig (16) after addAuth super -> still an error (reconfig disabled)");
        zk.addAuthInfo("digest", bytes("super:secret"));
        try {
            zk.reconfigure(null, "2", null, -1, st);
            print("reconfig", "unexpectedly succeeded");
        } catch (KeeperException e) {
            print("reconfig", e.code());
        }

        step("sync / (9)");
        sync(zk, "/");

        step("idle for 3.5 s so the client sends pings (xid -2, opcode 11)");
        Thread.sleep(3500);

        step("exists /misc after pings (3)");
        print("exists", zk.exists("/misc", false));

        step("close session (-11)");
        zk.close();
    }

    static void dropAndWait(ZooKeeper zk) throws Exception {
        synchronized (stateLock) {
            lastState = null;
        }
        ctl("drop");
        waitState(KeeperState.Disconnected);
        waitState(KeeperState.SyncConnected);
    }

    static void reconnect(String hp) throws Exception {
        step("connect");
        ZooKeeper zk = connect(hp);
        Stat st = new Stat();
        step("setup: /r tree");
        zk.create("/r", D, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
        zk.create("/r/d", D, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
        zk.create("/r/c", D, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
        zk.create("/r/e", D, Ids.OPEN_ACL_UNSAFE, CreateMode.EPHEMERAL);

        step("addAuthInfo digest bob:bobpw (will be re-sent after reconnect)");
        zk.addAuthInfo("digest", bytes("bob:bobpw"));

        step("register data watch (getData /r/d), exist watch (exists /r/missing), child watch (getChildren /r/c)");
        zk.getData("/r/d", true, st);
        zk.exists("/r/missing", true);
        zk.getChildren("/r/c", true);

        step("proxy drops the connection; client reconnects with its session id, re-sends auth (xid -4) and SetWatches (xid -8, opcode 101)");
        dropAndWait(zk);
        step("after reconnect: getData /r/e (ephemeral survived, same session)");
        print("getData", zk.getData("/r/e", false, st).length);
        step("fire restored watches: setData /r/d, create /r/missing, create /r/c/kid");
        zk.setData("/r/d", bytes("x"), -1);
        expectEvent(EventType.NodeDataChanged, "/r/d");
        zk.create("/r/missing", D, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
        expectEvent(EventType.NodeCreated, "/r/missing");
        zk.create("/r/c/kid", D, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
        expectEvent(EventType.NodeChildrenChanged, "/r/c");

        step("register data, exist, child, persistent (addWatch /r/p) and persistent-recursive (addWatch /r/pr) watches");
        zk.create("/r/p", D, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
        zk.create("/r/pr", D, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
        zk.getData("/r/d", true, st);
        zk.exists("/r/missing2", true);
        zk.getChildren("/r/c", true);
        zk.addWatch("/r/p", AddWatchMode.PERSISTENT);
        zk.addWatch("/r/pr", AddWatchMode.PERSISTENT_RECURSIVE);

        step("proxy drops the connection again -> auth re-sent and SetWatches2 (xid -8, opcode 105) because persistent watches exist");
        dropAndWait(zk);
        step("fire restored watches: setData /r/d, create /r/missing2, create /r/c/kid2, setData /r/p, create /r/pr/deep");
        zk.setData("/r/d", bytes("y"), -1);
        expectEvent(EventType.NodeDataChanged, "/r/d");
        zk.create("/r/missing2", D, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
        expectEvent(EventType.NodeCreated, "/r/missing2");
        zk.create("/r/c/kid2", D, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
        expectEvent(EventType.NodeChildrenChanged, "/r/c");
        zk.setData("/r/p", bytes("p"), -1);
        expectEvent(EventType.NodeDataChanged, "/r/p");
        zk.create("/r/pr/deep", D, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
        expectEvent(EventType.NodeCreated, "/r/pr/deep");

        step("drop a third time with only the persistent watches left -> SetWatches2 again, with empty data/exist/child lists");
        dropAndWait(zk);
        zk.setData("/r/p", bytes("q"), -1);
        expectEvent(EventType.NodeDataChanged, "/r/p");

        step("close session (-11)");
        zk.close();
    }

    // Needs -Djava.security.auth.login.config=<file with sections Client (bob/bobpw) and
    // ClientBad (bob/wrong)> and -Dzookeeper.sasl.client=true; the server needs a JAAS
    // Server section (DigestLoginModule, user_bob="bobpw") and
    // -Dzookeeper.authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider.
    static void sasl(String hp) throws Exception {
        step("connect with SASL DIGEST-MD5 as bob (JAAS section Client): sasl requests (opcode 102) right after the ConnectResponse");
        lastState = null;
        ZKClientConfig good = new ZKClientConfig();
        good.setProperty(ZKClientConfig.LOGIN_CONTEXT_NAME_KEY, "Client");
        ZooKeeper zk = new ZooKeeper(hp, SESSION_TIMEOUT_MS, defaultWatcher, good);
        waitState(KeeperState.SaslAuthenticated);
        Stat st = new Stat();
        step("whoAmI (107): ip + sasl identities");
        print("whoAmI", zk.whoAmI());
        step("create /sasl-bob with ACL sasl:bob (1), getData (4), getACL (6)");
        zk.create("/sasl-bob", bytes("b"), Collections.singletonList(new ACL(ZooDefs.Perms.ALL, new Id("sasl", "bob"))),
                CreateMode.PERSISTENT);
        print("getData", new String(zk.getData("/sasl-bob", false, st), StandardCharsets.UTF_8));
        print("getACL", zk.getACL("/sasl-bob", st));
        step("close session (-11)");
        zk.close();

        step("second session: SASL DIGEST-MD5 with a wrong password (JAAS section ClientBad) -> sasl error reply, AuthFailed");
        lastState = null;
        ZKClientConfig bad = new ZKClientConfig();
        bad.setProperty(ZKClientConfig.LOGIN_CONTEXT_NAME_KEY, "ClientBad");
        ZooKeeper zk2 = new ZooKeeper(hp, SESSION_TIMEOUT_MS, defaultWatcher, bad);
        waitState(KeeperState.AuthFailed);
        print("state", zk2.getState());
        Thread.sleep(500);
        zk2.close();
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 3) {
            System.err.println("usage: Recorder <crud|multi|watches|auth|misc|reconnect|sasl> <host:port> <controlPort>");
            System.exit(2);
        }
        String scenario = args[0];
        String hp = args[1];
        ctlSock = new Socket("127.0.0.1", Integer.parseInt(args[2]));
        ctlIn = new BufferedReader(new InputStreamReader(ctlSock.getInputStream(), StandardCharsets.UTF_8));
        ctlOut = ctlSock.getOutputStream();
        switch (scenario) {
            case "crud": crud(hp); break;
            case "multi": multi(hp); break;
            case "watches": watches(hp); break;
            case "auth": auth(hp); break;
            case "misc": misc(hp); break;
            case "reconnect": reconnect(hp); break;
            case "sasl": sasl(hp); break;
            default:
                System.err.println("unknown scenario " + scenario);
                System.exit(2);
        }
        ctl("wait-idle");
        ctlSock.close();
        System.out.println("scenario " + scenario + " done");
        System.exit(0);
    }
}
