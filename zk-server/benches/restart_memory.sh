#!/usr/bin/env bash
# Memory and time of a restart on a data dir holding many znodes: zk-server, then Apache
# ZooKeeper 3.8 (stock start-script heap, -Xmx1000m) in the same run.
#
#   bash zk-server/benches/restart_memory.sh          # ZNODES=1000000 RESTARTS=3 by default
#   BIN=/some/dir bash zk-server/benches/restart_memory.sh   # binaries already built elsewhere
#   SERVERS=zk-server bash zk-server/benches/restart_memory.sh   # zk-server only
#
# For each server: starts it on a fresh dataDir, creates ZNODES znodes of 100 bytes with
# zk-load (8 sessions x 64 in flight; default snapCount, so snapshots are taken meanwhile),
# notes the resident size of the running server holding them, stops it with SIGTERM, then
# RESTARTS times: starts it again on the same dataDir, waits until it serves (srvr reports
# a Mode:), and reports the time to ready, the peak resident size of the restart (VmHWM at
# ready: loading the snapshot and replaying the log), the resident size at ready and 2 s
# later; then SIGTERM again. Every process started here is killed by pid on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."

ZNODES="${ZNODES:-1000000}"
RESTARTS="${RESTARTS:-3}"
SERVERS="${SERVERS:-zk-server apache}"
source zk-server/benches/bench_common.sh
if [ -z "${BIN:-}" ]; then
  cargo build -q --release -p zk-server --bins
  BIN="${CARGO_TARGET_DIR:-target}/release"
fi

WORK="$(mktemp -d /tmp/zk-restart.XXXXXX)"
PID=""
cleanup() {
  if [ -n "$PID" ]; then kill -9 "$PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# Starts the server, waits until it serves, prints "<pid> <ms to ready> <VmHWM MiB> <VmRSS MiB>"
# read the moment it first answers srvr with a Mode:.
start() {
  local cmd=("$BIN/zk-server" "$DIR/zoo.cfg")
  if [ "$SERVER" = apache ]; then
    cmd=(java -Xmx1000m -Dzookeeper.admin.enableServer=false -cp "$CP"
      org.apache.zookeeper.server.ZooKeeperServerMain "$DIR/zoo.cfg")
  fi
  python3 zk-server/benches/spawn_ready.py "$PORT" "$DIR/out.log" "${cmd[@]}"
}

rss_mb() { awk '/VmRSS/ {printf "%.0f", $2/1024}' "/proc/$1/status"; }

stop() {  # SIGTERM, wait for the exit (the server closes its log and snapshot writes)
  kill -TERM "$PID"
  while kill -0 "$PID" 2>/dev/null; do sleep 0.05; done
  PID=""
}

ROWS=()
for SERVER in $SERVERS; do
  DIR="$WORK/$SERVER"
  mkdir -p "$DIR"
  PORT=$(free_port)
  write_zoo_cfg "$DIR/zoo.cfg" "$DIR/data" "$PORT"
  read -r PID _ _ _ <<<"$(start)"
  populate=$("$BIN/zk-load" --server "127.0.0.1:$PORT" --op create --ops "$ZNODES" \
    --sessions 8 --inflight 64 --payload 100 --root /mem)
  echo "$SERVER populate: $populate" >&2
  sleep 2
  steady=$(rss_mb "$PID")
  stop
  snap=$(ls -t "$DIR/data/version-2"/snapshot.* | head -1)
  echo "$SERVER: newest snapshot $(basename "$snap"): $(($(stat -c %s "$snap") / 1048576)) MiB;" \
    "txn logs: $(du -cm "$DIR"/data/version-2/log.* | tail -1 | cut -f1) MiB in total" >&2

  ROWS+=("| $SERVER | first start + $ZNODES creates | | | | $steady (steady) |")
  for i in $(seq "$RESTARTS"); do
    read -r PID ready hwm rss <<<"$(start)"
    sleep 2
    later=$(rss_mb "$PID")
    ROWS+=("| $SERVER | restart $i | $ready | $hwm | $rss | $later |")
    stop
  done
done

echo
echo "| server | run | ready (ms) | peak RSS of the restart, VmHWM (MiB) | RSS at ready (MiB) | RSS 2 s later (MiB) |"
echo "|---|---|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
