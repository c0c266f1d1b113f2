#!/usr/bin/env bash
# Regenerate every golden wire-capture fixture in zk-proto/tests/golden/ from scratch.
#
#   zk-proto/tests/golden/record/record.sh
#
# Starts a private Apache ZooKeeper 3.8 standalone server (Debian packages
# zookeeper / zookeeper-bin / libzookeeper-mt-dev) on a free loopback port with
# a temporary dataDir, then for each scenario starts record/proxy.py in front
# of it and runs a client through the proxy (Java: record/Recorder.java; C:
# cli_mt driven by record/drive_cli.py, and record/cclient.c). Fixtures are
# written to a temp dir, checked with record/inventory.py --check, and only
# then copied over the *.txt files here together with inventory.txt.
# Every process started here is stopped by pid on exit (also on failure).
# Set KEEP_WORK=1 to keep the temp dir (logs) for inspection.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
GOLDEN="${GOLDEN_OUT:-$(dirname "$HERE")}"  # GOLDEN_OUT: write the fixtures elsewhere (CI re-check)
mkdir -p "$GOLDEN"
JAVA="${JAVA:-java}"
JAVAC="${JAVAC:-javac}"
PYTHON="${PYTHON:-python3}"
CC="${CC:-gcc}"
ZK_JAR=/usr/share/java/zookeeper.jar            # its manifest Class-Path pulls in jute, netty, slf4j-api, ...
SERVER_CP="$ZK_JAR:/usr/share/java/slf4j-simple.jar"
CLIENT_CP="$ZK_JAR:/usr/share/java/slf4j-nop.jar"
CLI_MT=/usr/lib/zookeeper/bin/cli_mt

for f in "$ZK_JAR" /usr/share/java/slf4j-simple.jar /usr/share/java/slf4j-nop.jar "$CLI_MT" /usr/include/zookeeper/zookeeper.h; do
  [ -e "$f" ] || { echo "missing $f (apt-get install -y zookeeper zookeeper-bin libzookeeper-mt-dev)" >&2; exit 1; }
done

WORK="$(mktemp -d "${TMPDIR:-/tmp}/zk-golden.XXXXXX")"
PIDS=()
SERVER_PID=""

cleanup() {
  local rc=$?
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  if [ $rc -ne 0 ]; then
    echo "record.sh FAILED (rc=$rc); logs in $WORK" >&2
    tail -n 20 "$WORK"/*.log 2>/dev/null | tail -n 80 >&2 || true
  elif [ -z "${KEEP_WORK:-}" ]; then
    rm -rf "$WORK"
  else
    echo "work dir kept: $WORK"
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

forget_pid() {  # remove $1 from PIDS
  local keep=() p
  for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  PIDS=("${keep[@]+"${keep[@]}"}")
}

free_port() {
  "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

four_letter() {  # four_letter <port> <word>
  "$PYTHON" - "$1" "$2" <<'EOF'
import socket, sys
try:
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2)
    s.sendall(sys.argv[2].encode())
    out = b""
    while True:
        b = s.recv(4096)
        if not b:
            break
        out += b
    print(out.decode(errors="replace"))
except OSError:
    sys.exit(1)
EOF
}

# ------------------------------------------------------------------ build clients
echo "== building Recorder.java and cclient.c"
mkdir -p "$WORK/classes"
"$JAVAC" -nowarn -d "$WORK/classes" -cp "$ZK_JAR" "$HERE/Recorder.java"
"$CC" -Wall -O1 -o "$WORK/cclient" "$HERE/cclient.c" -lzookeeper_mt

# ------------------------------------------------------------------ server
ZK_PORT="$(free_port)"
SUPER_DIGEST="$("$PYTHON" -c 'import base64,hashlib; print("super:" + base64.b64encode(hashlib.sha1(b"super:secret").digest()).decode())')"
mkdir -p "$WORK/data"
# SASL DIGEST-MD5 (no Kerberos needed): server JAAS section + SASL auth provider;
# the client JAAS file is only used by the java_sasl scenario.
cat > "$WORK/server.jaas" <<'EOF'
Server {
  org.apache.zookeeper.server.auth.DigestLoginModule required
  user_bob="bobpw";
};
EOF
cat > "$WORK/client.jaas" <<'EOF'
Client {
  org.apache.zookeeper.server.auth.DigestLoginModule required
  username="bob"
  password="bobpw";
};
ClientBad {
  org.apache.zookeeper.server.auth.DigestLoginModule required
  username="bob"
  password="wrong";
};
EOF
cat > "$WORK/zoo.cfg" <<EOF
tickTime=2000
dataDir=$WORK/data
clientPort=$ZK_PORT
clientPortAddress=127.0.0.1
maxClientCnxns=0
admin.enableServer=false
EOF
echo "== starting ZooKeeper server on 127.0.0.1:$ZK_PORT"
"$JAVA" -Xmx256m \
  -Dzookeeper.extendedTypesEnabled=true \
  -Dzookeeper.4lw.commands.whitelist='*' \
  -Dzookeeper.admin.enableServer=false \
  -Dzookeeper.DigestAuthenticationProvider.superDigest="$SUPER_DIGEST" \
  -Djava.security.auth.login.config="$WORK/server.jaas" \
  -Dzookeeper.authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider \
  -cp "$SERVER_CP" org.apache.zookeeper.server.ZooKeeperServerMain "$WORK/zoo.cfg" \
  > "$WORK/server.log" 2>&1 &
SERVER_PID=$!
PIDS+=("$SERVER_PID")
for _ in $(seq 1 100); do
  if [ "$(four_letter "$ZK_PORT" ruok 2>/dev/null)" = "imok" ]; then break; fi
  kill -0 "$SERVER_PID" 2>/dev/null || { echo "server died" >&2; exit 1; }
  sleep 0.2
done
[ "$(four_letter "$ZK_PORT" ruok)" = "imok" ] || { echo "server not ready" >&2; exit 1; }
# Not `| head`: with pipefail, the writer dying of SIGPIPE once head has its line fails the run.
SRVR="$(four_letter "$ZK_PORT" srvr)"
echo "${SRVR%%$'\n'*}"

# ------------------------------------------------------------------ proxy helpers
PROXY_PID=""
LP=""
CP=""
start_proxy() {  # start_proxy <fixture-name> <title>
  rm -f "$WORK/ports"
  "$PYTHON" "$HERE/proxy.py" --upstream "127.0.0.1:$ZK_PORT" --out "$WORK/out/$1.txt" \
    --port-file "$WORK/ports" --title "$2" 2> "$WORK/proxy-$1.log" &
  PROXY_PID=$!
  PIDS+=("$PROXY_PID")
  for _ in $(seq 1 100); do [ -s "$WORK/ports" ] && break; sleep 0.1; done
  read -r LP CP < "$WORK/ports"
}
stop_proxy() {
  kill "$PROXY_PID" 2>/dev/null || true
  wait "$PROXY_PID" 2>/dev/null || true
  forget_pid "$PROXY_PID"
  PROXY_PID=""
}

mkdir -p "$WORK/out"

java_scenario() {  # java_scenario <scenario> <title> [JVM options replacing the default]
  local scenario="$1" title="$2"
  local name="java_$scenario"
  shift 2
  local jvm_opts=("-Dzookeeper.sasl.client=false")
  if [ $# -gt 0 ]; then jvm_opts=("$@"); fi
  echo "== $name"
  start_proxy "$name" "$title"
  timeout 180 "$JAVA" -Xmx256m "${jvm_opts[@]}" -cp "$CLIENT_CP:$WORK/classes" \
    Recorder "$scenario" "127.0.0.1:$LP" "$CP" > "$WORK/$name.log" 2>&1 \
    || { echo "Recorder $scenario failed" >&2; tail -n 30 "$WORK/$name.log" >&2; exit 1; }
  stop_proxy
}

java_scenario crud      "java_crud: Java client (Apache ZooKeeper 3.8) create in every CreateMode (create 1, create2 15, createContainer 19, createTTL 21), delete, exists, getData, setData, getACL, setACL, getChildren, getChildren2, sync, with success and error replies; closeSession."
java_scenario multi     "java_multi: Java client multi (14) with create/createContainer/createTTL/setData/check/delete, failing multis (error-result form), empty multi, multiRead (22) with and without per-op errors."
java_scenario watches   "java_watches: Java client watches: exists/getData/getChildren/getChildren2 with watch, notifications NodeCreated/NodeDeleted/NodeDataChanged/NodeChildrenChanged (xid -1), addWatch (106) persistent and persistent-recursive, checkWatches (17) and removeWatches (18) incl. NoWatcher errors."
java_scenario auth      "java_auth: Java client whoAmI (107), digest ACLs with NoAuth/InvalidACL errors, addAuthInfo (xid -4, opcode 100) for digest users and the configured super user; second connection: auth failure (unknown scheme -> AuthFailed, server closes)."
java_scenario misc      "java_misc: Java ZooKeeperAdmin: whoAmI (107), getEphemerals (103), getAllChildrenNumber (104), getConfig (getData /zookeeper/config), reconfig (16) errors on a standalone server, sync (9), pings (xid -2, opcode 11), closeSession."
java_scenario reconnect "java_reconnect: Java client with data/exist/child watches, auth; proxy drops the TCP connection three times; the client reconnects with its session id and re-sends auth (xid -4) and SetWatches (101) or SetWatches2 (105, when persistent watches exist). NOTE: the Java client gives SetWatches a normal xid, not -8."
java_scenario sasl      "java_sasl: Java client with SASL DIGEST-MD5 (JAAS DigestLoginModule, no Kerberos): sasl requests (opcode 102) and their replies after the ConnectResponse, whoAmI, sasl ACL; second connection: wrong password -> SASL failure (AuthFailed)." \
  -Dzookeeper.sasl.client=true -Djava.security.auth.login.config="$WORK/client.jaas"

echo "== c_cli"
start_proxy c_cli "c_cli: ZooKeeper C client (cli_mt 3.8) create (1/19/21 via create +c/+t), create2 (15), get/set/ls/ls2/exists/wexists with watches and notifications, sync, config, reconfig errors, addauth, delete, ping, and a forced reconnect with SetWatches (xid -8, opcode 101). Commands: record/c_cli.cmds."
timeout 180 "$PYTHON" "$HERE/drive_cli.py" --cli "$CLI_MT" --host "127.0.0.1:$LP" --control-port "$CP" \
  --script "$HERE/c_cli.cmds" --log "$WORK/c_cli-cli.log" > "$WORK/c_cli.log" 2>&1 \
  || { echo "drive_cli failed" >&2; tail -n 30 "$WORK/c_cli.log" "$WORK/c_cli-cli.log" >&2; exit 1; }
stop_proxy

echo "== c_api"
start_proxy c_api "c_api: ZooKeeper C client library (libzookeeper_mt 3.8, record/cclient.c): multi (14) success and failure, create2/createTTL/createContainer, getACL/setACL with errors, wget/wget_children2, remove watches (17/18), notifications, add_auth, getconfig, close."
timeout 120 "$WORK/cclient" "127.0.0.1:$LP" "$CP" > "$WORK/c_api.log" 2>&1 \
  || { echo "cclient failed" >&2; tail -n 30 "$WORK/c_api.log" >&2; exit 1; }
stop_proxy

# ------------------------------------------------------------------ stop server
kill "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null || true
forget_pid "$SERVER_PID"

# ------------------------------------------------------------------ validate and install
if grep -l -E '^# (WARNING|ERROR)' "$WORK"/out/*.txt; then
  echo "proxy reported problems in the files above" >&2
  exit 1
fi
"$PYTHON" "$HERE/inventory.py" --check "$WORK"/out/*.txt > "$WORK/inventory.txt"
cp "$WORK"/out/*.txt "$GOLDEN/"
cp "$WORK/inventory.txt" "$GOLDEN/inventory.txt"
echo "== wrote:"
ls -l "$GOLDEN"/*.txt
du -sh "$GOLDEN"
