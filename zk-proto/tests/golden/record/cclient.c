/*
 * Drives the Apache ZooKeeper 3.8 C client (libzookeeper_mt) through
 * record/proxy.py for the c_api.txt fixture: the C encodings of multi
 * (success and failure), getACL/setACL, create2 with TTL/container, the
 * watch-removal opcodes and an auth packet -- things cli_mt cannot do.
 *
 * Build: gcc -o cclient cclient.c -lzookeeper_mt   (headers in /usr/include/zookeeper)
 * Usage: cclient <host:port of proxy> <proxy control port>
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#define THREADED 1 /* sync API of libzookeeper_mt */
#include <zookeeper/zookeeper.h>

static int ctl_fd = -1;
static volatile int connected = 0;
static volatile int events_seen = 0;

static void ctl(const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf) - 2, fmt, ap);
    va_end(ap);
    buf[n++] = '\n';
    if (write(ctl_fd, buf, n) != n) {
        perror("ctl write");
        exit(1);
    }
    char c, reply[256];
    int i = 0;
    while (read(ctl_fd, &c, 1) == 1 && c != '\n' && i < (int)sizeof(reply) - 1) reply[i++] = c;
    reply[i] = 0;
    if (strncmp(reply, "ok", 2) != 0) {
        fprintf(stderr, "proxy control error: %s\n", reply);
        exit(1);
    }
}

#define STEP(...)                                  \
    do {                                           \
        char _b[900];                              \
        snprintf(_b, sizeof(_b), __VA_ARGS__);     \
        printf("== %s\n", _b);                     \
        fflush(stdout);                            \
        ctl("comment step: %s", _b);               \
    } while (0)

static void check_rc(const char *what, int rc, int expected) {
    printf("   %s -> rc=%d (%s)\n", what, rc, zerror(rc));
    fflush(stdout);
    if (rc != expected) {
        fprintf(stderr, "%s: expected rc %d, got %d\n", what, expected, rc);
        exit(1);
    }
}

static void global_watcher(zhandle_t *zh, int type, int state, const char *path, void *ctx) {
    (void)zh;
    (void)ctx;
    printf("   [global] event type=%d state=%d path=%s\n", type, state, path ? path : "");
    fflush(stdout);
    if (type == ZOO_SESSION_EVENT && state == ZOO_CONNECTED_STATE) connected = 1;
    if (type != ZOO_SESSION_EVENT) events_seen++;
}

static void obj_watcher(zhandle_t *zh, int type, int state, const char *path, void *ctx) {
    (void)zh;
    printf("   [%s] event type=%d state=%d path=%s\n", (const char *)ctx, type, state, path ? path : "");
    fflush(stdout);
    if (type != ZOO_SESSION_EVENT) events_seen++;
}

static void wait_events(int n) {
    for (int i = 0; i < 100 && events_seen < n; i++) usleep(50000);
    if (events_seen < n) {
        fprintf(stderr, "timeout waiting for %d events (have %d)\n", n, events_seen);
        exit(1);
    }
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s host:port controlPort\n", argv[0]);
        return 2;
    }
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons(atoi(argv[2]));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ctl_fd = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(ctl_fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        perror("connect control");
        return 1;
    }

    zoo_set_debug_level(ZOO_LOG_LEVEL_WARN);
    STEP("connect (C client, session timeout 4000 ms)");
    zhandle_t *zh = zookeeper_init(argv[1], global_watcher, 4000, 0, 0, 0);
    for (int i = 0; i < 200 && !connected; i++) usleep(50000);
    if (!connected) {
        fprintf(stderr, "not connected\n");
        return 1;
    }

    char pbuf[256];
    struct Stat st;
    int rc;

    STEP("zoo_create /capi (1)");
    check_rc("create", zoo_create(zh, "/capi", "x", 1, &ZOO_OPEN_ACL_UNSAFE, 0, pbuf, sizeof(pbuf)), ZOK);
    STEP("zoo_create /capi/nulldata with NULL value (1; data length -1)");
    check_rc("create", zoo_create(zh, "/capi/nulldata", NULL, -1, &ZOO_OPEN_ACL_UNSAFE, 0, pbuf, sizeof(pbuf)), ZOK);
    STEP("zoo_create2 /capi/s2 (15 create2)");
    check_rc("create2", zoo_create2(zh, "/capi/s2", "x", 1, &ZOO_OPEN_ACL_UNSAFE, 0, pbuf, sizeof(pbuf), &st), ZOK);
    STEP("zoo_create2_ttl /capi/ttl PERSISTENT_WITH_TTL ttl=60000 (21 createTTL)");
    check_rc("create2_ttl", zoo_create2_ttl(zh, "/capi/ttl", "x", 1, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT_WITH_TTL, 60000, pbuf, sizeof(pbuf), &st), ZOK);
    STEP("zoo_create_ttl /capi/cont CONTAINER (19 createContainer)");
    check_rc("create_ttl container", zoo_create_ttl(zh, "/capi/cont", "x", 1, &ZOO_OPEN_ACL_UNSAFE, ZOO_CONTAINER, -1, pbuf, sizeof(pbuf)), ZOK);

    STEP("zoo_multi (14), all succeed: create, create ephemeral_sequential, setData, check (13), delete");
    {
        zoo_op_t ops[5];
        zoo_op_result_t res[5];
        char p1[64], p2[64];
        struct Stat sst;
        zoo_create_op_init(&ops[0], "/capi/m1", "m", 1, &ZOO_OPEN_ACL_UNSAFE, 0, p1, sizeof(p1));
        zoo_create_op_init(&ops[1], "/capi/mes-", NULL, -1, &ZOO_OPEN_ACL_UNSAFE, ZOO_EPHEMERAL | ZOO_SEQUENCE, p2, sizeof(p2));
        zoo_set_op_init(&ops[2], "/capi/m1", "M", 1, 0, &sst);
        zoo_check_op_init(&ops[3], "/capi/m1", 1);
        zoo_delete_op_init(&ops[4], "/capi/s2", -1);
        check_rc("multi", zoo_multi(zh, 5, ops, res), ZOK);
    }
    STEP("zoo_multi (14), failing: create ok, check bad version (BadVersion), delete -> error-result form");
    {
        zoo_op_t ops[3];
        zoo_op_result_t res[3];
        char p1[64];
        zoo_create_op_init(&ops[0], "/capi/m2", "m", 1, &ZOO_OPEN_ACL_UNSAFE, 0, p1, sizeof(p1));
        zoo_check_op_init(&ops[1], "/capi/m1", 42);
        zoo_delete_op_init(&ops[2], "/capi/m1", -1);
        rc = zoo_multi(zh, 3, ops, res);
        check_rc("multi", rc, ZBADVERSION);
        printf("   results: %d %d %d\n", res[0].err, res[1].err, res[2].err);
    }

    STEP("zoo_get_acl /capi (6)");
    {
        struct ACL_vector acl;
        check_rc("get_acl", zoo_get_acl(zh, "/capi", &acl, &st), ZOK);
        deallocate_ACL_vector(&acl);
    }
    STEP("zoo_get_acl /capi/missing -> NoNode (6 -> err -101)");
    {
        struct ACL_vector acl;
        check_rc("get_acl", zoo_get_acl(zh, "/capi/missing", &acl, &st), ZNONODE);
    }
    STEP("zoo_set_acl /capi/nulldata READ_ACL_UNSAFE version 0 (7)");
    check_rc("set_acl", zoo_set_acl(zh, "/capi/nulldata", 0, &ZOO_READ_ACL_UNSAFE), ZOK);
    STEP("zoo_set_acl /capi bad version -> BadVersion (7 -> err -103)");
    check_rc("set_acl", zoo_set_acl(zh, "/capi", 5, &ZOO_OPEN_ACL_UNSAFE), ZBADVERSION);
    STEP("zoo_set_acl CREATOR_ALL_ACL without auth -> InvalidACL (7 -> err -114)");
    check_rc("set_acl", zoo_set_acl(zh, "/capi", -1, &ZOO_CREATOR_ALL_ACL), ZINVALIDACL);

    STEP("zoo_wget /capi with a watcher object (4, watch=1), zoo_wget_children2 /capi (12, watch=1)");
    {
        char buf[64];
        int len = sizeof(buf);
        struct String_vector sv;
        check_rc("wget", zoo_wget(zh, "/capi", obj_watcher, "data-w", buf, &len, &st), ZOK);
        check_rc("wget_children2", zoo_wget_children2(zh, "/capi", obj_watcher, "child-w", &sv, &st), ZOK);
        deallocate_String_vector(&sv);
    }
    STEP("zoo_remove_watches /capi DATA for that watcher (17 checkWatches)");
    check_rc("remove_watches", zoo_remove_watches(zh, "/capi", ZWATCHTYPE_DATA, obj_watcher, "data-w", 0), ZOK);
    STEP("zoo_remove_all_watches /capi ANY (18 removeWatches)");
    check_rc("remove_all_watches", zoo_remove_all_watches(zh, "/capi", ZWATCHTYPE_ANY, 0), ZOK);
    STEP("zoo_remove_all_watches /capi CHILD with nothing registered -> NoWatcher (18 -> err -121, or client-side)");
    rc = zoo_remove_all_watches(zh, "/capi", ZWATCHTYPE_CHILD, 0);
    printf("   remove_all_watches -> rc=%d (%s)\n", rc, zerror(rc));

    STEP("zoo_wget /capi/m1 then zoo_set -> NodeDataChanged notification; zoo_delete -> via exists watch NodeDeleted");
    {
        char buf[64];
        int len = sizeof(buf);
        int base = events_seen;
        check_rc("wget", zoo_wget(zh, "/capi/m1", obj_watcher, "w-m1", buf, &len, &st), ZOK);
        check_rc("set", zoo_set(zh, "/capi/m1", "changed", 7, -1), ZOK);
        wait_events(base + 1);
        check_rc("wexists", zoo_wexists(zh, "/capi/m1", obj_watcher, "e-m1", &st), ZOK);
        check_rc("delete", zoo_delete(zh, "/capi/m1", -1), ZOK);
        wait_events(base + 2);
    }

    STEP("zoo_add_auth digest bob:bobpw (xid -4, opcode 100)");
    check_rc("add_auth", zoo_add_auth(zh, "digest", "bob:bobpw", 9, NULL, NULL), ZOK);
    STEP("zoo_create /capi/bob with CREATOR_ALL_ACL (1), zoo_get_acl (6)");
    check_rc("create", zoo_create(zh, "/capi/bob", "b", 1, &ZOO_CREATOR_ALL_ACL, 0, pbuf, sizeof(pbuf)), ZOK);
    {
        struct ACL_vector acl;
        check_rc("get_acl", zoo_get_acl(zh, "/capi/bob", &acl, &st), ZOK);
        deallocate_ACL_vector(&acl);
    }
    STEP("zoo_getconfig (getData /zookeeper/config, 4)");
    {
        char buf[512];
        int len = sizeof(buf);
        check_rc("getconfig", zoo_getconfig(zh, 0, buf, &len, &st), ZOK);
    }

    STEP("zookeeper_close (closeSession -11)");
    zookeeper_close(zh);
    ctl("wait-idle");
    close(ctl_fd);
    return 0;
}
