#!/usr/bin/env bash
# Side-by-side: zk-server vs Apache ZooKeeper 3.8 on this machine, driven by the same load
# generator (zk-load) with the same settings, one after the other in one run.
#
#   bash zk-server/benches/compare_with_apache.sh            # SECS=8 ZNODES=1000000 by default
#
# Measures: time from process start to serving, ops/s and p50/p99/p999 latency for get, set
# (fsync on), create and mixed workloads, and resident memory of a fresh server after creating
# ZNODES znodes of 100 bytes (default snapCount, so snapshots are taken meanwhile); the
# populate line also gives create latency with 64 in flight per session.
# Apache runs with its stock start-script heap (-Xmx1000m) and default settings.
# Every process started here is killed by pid on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."

SECS="${SECS:-8}"
ZNODES="${ZNODES:-1000000}"
SESSIONS="${SESSIONS:-8}"
INFLIGHT="${INFLIGHT:-32}"
CP=/usr/share/java/zookeeper.jar:/usr/share/java/zookeeper-jute.jar:/usr/share/java/slf4j-api.jar:/usr/share/java/slf4j-nop.jar:/usr/share/java/netty-all.jar:/usr/share/java/metrics-core.jar:/usr/share/java/commons-cli.jar

cargo build -q --release -p zk-server --bins
BIN="${CARGO_TARGET_DIR:-target}/release"

WORK="$(mktemp -d /tmp/zk-compare.XXXXXX)"
PIDS=()
cleanup() {
  for p in "${PIDS[@]+"${PIDS[@]}"}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Starts "$@" (stdout/stderr to $LOG), waits until the server on $PORT serves (srvr reports a
# Mode: Apache answers ruok before its database is loaded), prints "<pid> <ms to ready>".
spawn_ready() {
  python3 - "$PORT" "$LOG" "$@" <<'PY'
import socket, subprocess, sys, time
port, log, cmd = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
t0 = time.time()
p = subprocess.Popen(cmd, stdout=open(log, "w"), stderr=subprocess.STDOUT, start_new_session=True)
while True:
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=1)
        s.sendall(b"srvr"); r = b""
        while True:
            c = s.recv(4096)
            if not c:
                break
            r += c
        s.close()
        if b"Mode:" in r:
            break
    except OSError:
        pass
    if p.poll() is not None:
        sys.exit("server exited; see " + log)
    time.sleep(0.001)
print(p.pid, int((time.time() - t0) * 1000))
PY
}

rss_mb() { awk '/VmRSS/ {printf "%.0f", $2/1024}' "/proc/$1/status" 2>/dev/null || echo "n/a (exited)"; }

start_server() {  # name -> sets PORT, PID, READY_MS
  local name=$1 dir="$WORK/$1"
  mkdir -p "$dir"
  PORT=$(free_port)
  cat >"$dir/zoo.cfg" <<EOF
tickTime=2000
dataDir=$dir
clientPort=$PORT
clientPortAddress=127.0.0.1
4lw.commands.whitelist=*
admin.enableServer=false
autopurge.purgeInterval=0
EOF
  LOG="$dir/out.log"
  local out
  if [ "${name%-mem}" = zk-server ]; then
    out=$(spawn_ready "$BIN/zk-server" "$dir/zoo.cfg")
  else
    out=$(spawn_ready java -Xmx1000m -Dzookeeper.admin.enableServer=false -cp "$CP" \
      org.apache.zookeeper.server.ZooKeeperServerMain "$dir/zoo.cfg")
  fi
  read -r PID READY_MS <<<"$out"
  PIDS+=("$PID")
}

declare -A RES
for name in zk-server apache; do
  start_server "$name"
  RES[$name,ready]=$READY_MS
  RES[$name,rss0]=$(rss_mb "$PID")
  # Warm-up (lets the JVM compile its hot paths before anything is measured).
  "$BIN/zk-load" --server "127.0.0.1:$PORT" --op mixed --secs 4 --sessions "$SESSIONS" --inflight "$INFLIGHT" >/dev/null
  for op in get set create mixed; do
    RES[$name,$op]=$("$BIN/zk-load" --server "127.0.0.1:$PORT" --op "$op" --secs "$SECS" \
      --sessions "$SESSIONS" --inflight "$INFLIGHT" --payload 100 --root "/bench-$op")
    echo "$name: ${RES[$name,$op]}" >&2
  done
  kill -9 "$PID" 2>/dev/null || true
  wait "$PID" 2>/dev/null || true
  # Memory on a fresh server (new dataDir), so both hold exactly ZNODES znodes plus the
  # system nodes, whatever the workloads above left behind.
  start_server "$name-mem"
  RES[$name,populate]=$("$BIN/zk-load" --server "127.0.0.1:$PORT" --op create --ops "$ZNODES" \
    --sessions "$SESSIONS" --inflight 64 --payload 100 --root /mem) || RES[$name,populate]="failed"
  echo "$name: populate ${RES[$name,populate]}" >&2
  sleep 2
  RES[$name,rss]=$(rss_mb "$PID")
  kill -9 "$PID" 2>/dev/null || true
  wait "$PID" 2>/dev/null || true
done

field() { sed -n "s|.*$2=\([0-9.]*\).*|\1|p" <<<"$1"; }
ratio() { python3 -c "a,b=float('$1'),float('$2'); print(f'{a/b:.2f}x' if b else 'n/a')"; }

echo
echo "| workload ($SESSIONS sessions x $INFLIGHT in flight, 100 B) | zk-server ops/s | Apache ops/s | ratio | zk-server p50/p99/p999 us | Apache p50/p99/p999 us |"
echo "|---|---|---|---|---|---|"
for op in get set create mixed; do
  a=${RES[zk-server,$op]}; b=${RES[apache,$op]}
  echo "| $op | $(field "$a" ops/s) | $(field "$b" ops/s) | $(ratio "$(field "$a" ops/s)" "$(field "$b" ops/s)") | $(field "$a" p50_us)/$(field "$a" p99_us)/$(field "$a" p999_us) | $(field "$b" p50_us)/$(field "$b" p99_us)/$(field "$b" p999_us) |"
done
echo
echo "| measure | zk-server | Apache | ratio |"
echo "|---|---|---|---|"
echo "| ready to serve after start (ms) | ${RES[zk-server,ready]} | ${RES[apache,ready]} | $(ratio "${RES[zk-server,ready]}" "${RES[apache,ready]}") |"
echo "| resident memory at start (MiB) | ${RES[zk-server,rss0]} | ${RES[apache,rss0]} | $(ratio "${RES[zk-server,rss0]}" "${RES[apache,rss0]}") |"
echo "| resident memory with $ZNODES znodes of 100 B (MiB) | ${RES[zk-server,rss]} | ${RES[apache,rss]} | $(ratio "${RES[zk-server,rss]}" "${RES[apache,rss]}") |"
echo "| creating $ZNODES znodes, p99 / p999 latency (us) | $(field "${RES[zk-server,populate]}" p99_us) / $(field "${RES[zk-server,populate]}" p999_us) | $(field "${RES[apache,populate]}" p99_us) / $(field "${RES[apache,populate]}" p999_us) | |"
echo "| creating $ZNODES znodes (ops/s) | $(field "${RES[zk-server,populate]}" ops/s) | $(field "${RES[apache,populate]}" ops/s) | $(ratio "$(field "${RES[zk-server,populate]}" ops/s)" "$(field "${RES[apache,populate]}" ops/s)") |"
