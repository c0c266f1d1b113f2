#!/usr/bin/env bash
# Side-by-side: zk-server vs Apache ZooKeeper 3.8 on this machine, driven by the same load
# generator (zk-load) with the same settings, in interleaved rounds of one run.
#
#   bash zk-server/benches/compare_with_apache.sh     # SECS=8 ROUNDS=3 ZNODES=1000000 by default
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
ROUNDS="${ROUNDS:-3}"
source zk-server/benches/bench_common.sh

cargo build -q --release -p zk-server --bins
BIN="${CARGO_TARGET_DIR:-target}/release"

WORK="$(mktemp -d /tmp/zk-compare.XXXXXX)"
PIDS=()
cleanup() {
  for p in "${PIDS[@]+"${PIDS[@]}"}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT


# Starts "$@" (output to $LOG) and waits until the server on $PORT serves; prints
# "<pid> <ms to ready> <peak MiB> <resident MiB>".
spawn_ready() { python3 zk-server/benches/spawn_ready.py "$PORT" "$LOG" "$@"; }

rss_mb() { awk '/VmRSS/ {printf "%.0f", $2/1024}' "/proc/$1/status" 2>/dev/null || echo "n/a (exited)"; }

start_server() {  # name -> sets PORT, PID, READY_MS
  local name=$1 dir="$WORK/$1"
  mkdir -p "$dir"
  PORT=$(free_port)
  write_zoo_cfg "$dir/zoo.cfg" "$dir" "$PORT"
  LOG="$dir/out.log"
  local out
  if [ "${name%-mem}" = zk-server ]; then
    out=$(spawn_ready "$BIN/zk-server" "$dir/zoo.cfg")
  else
    out=$(spawn_ready java -Xmx1000m -Dzookeeper.admin.enableServer=false -cp "$CP" \
      org.apache.zookeeper.server.ZooKeeperServerMain "$dir/zoo.cfg")
  fi
  read -r PID READY_MS _ _ <<<"$out"
  PIDS+=("$PID")
}

declare -A RES
# Both servers run side by side (the idle one costs nothing measurable) and every workload is
# measured ROUNDS times, alternating which server goes first, so a burst of noise from the
# host hits both alike. The table gives each server's median round; the ratio range gives
# the per-round ratios.
start_server zk-server; ZK_PORT=$PORT; ZK_PID=$PID
RES[zk-server,ready]=$READY_MS; RES[zk-server,rss0]=$(rss_mb "$PID")
start_server apache; AP_PORT=$PORT; AP_PID=$PID
RES[apache,ready]=$READY_MS; RES[apache,rss0]=$(rss_mb "$PID")
port_of() { if [ "$1" = zk-server ]; then echo "$ZK_PORT"; else echo "$AP_PORT"; fi; }
# Warm-up (lets the JVM compile its hot paths before anything is measured).
for name in zk-server apache; do
  "$BIN/zk-load" --server "127.0.0.1:$(port_of $name)" --op mixed --secs 4 --sessions "$SESSIONS" --inflight "$INFLIGHT" >/dev/null
done
for op in get set create mixed; do
  for round in $(seq "$ROUNDS"); do
    order="zk-server apache"
    if [ $((round % 2)) = 0 ]; then order="apache zk-server"; fi
    for name in $order; do
      RES[$name,$op,$round]=$("$BIN/zk-load" --server "127.0.0.1:$(port_of $name)" --op "$op" --secs "$SECS" \
        --sessions "$SESSIONS" --inflight "$INFLIGHT" --payload 100 --root "/bench-$op-$round")
      echo "$name round $round: ${RES[$name,$op,$round]}" >&2
    done
  done
done
for p in "$ZK_PID" "$AP_PID"; do kill -9 "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
for name in zk-server apache; do
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
# The result line of a server's median round for a workload.
median_run() {
  local best="" i
  for i in $(seq "$ROUNDS"); do echo "$(field "${RES[$1,$2,$i]}" ops/s) $i"; done |
    sort -n | sed -n "$(((ROUNDS + 1) / 2))p" | { read -r _ best; echo "${RES[$1,$2,$best]}"; }
}
ratio_range() {
  local i lo="" hi="" r
  for i in $(seq "$ROUNDS"); do
    r=$(python3 -c "a,b=float('$(field "${RES[zk-server,$1,$i]}" ops/s)'),float('$(field "${RES[apache,$1,$i]}" ops/s)'); print(f'{a/b:.2f}')")
    echo "$r"
  done | sort -n | sed -n '1p;$p' | paste -sd- | sed 's/-/x-/; s/$/x/'
}
ratio() { python3 -c "a,b=float('$1'),float('$2'); print(f'{a/b:.2f}x' if b else 'n/a')"; }

echo
echo "| workload ($SESSIONS sessions x $INFLIGHT in flight, 100 B; median of $ROUNDS rounds) | zk-server ops/s | Apache ops/s | ratio | ratio per round | zk-server p50/p99/p999 us | Apache p50/p99/p999 us |"
echo "|---|---|---|---|---|---|---|"
for op in get set create mixed; do
  a=$(median_run zk-server "$op"); b=$(median_run apache "$op")
  echo "| $op | $(field "$a" ops/s) | $(field "$b" ops/s) | $(ratio "$(field "$a" ops/s)" "$(field "$b" ops/s)") | $(ratio_range "$op") | $(field "$a" p50_us)/$(field "$a" p99_us)/$(field "$a" p999_us) | $(field "$b" p50_us)/$(field "$b" p99_us)/$(field "$b" p999_us) |"
done
echo
echo "| measure | zk-server | Apache | ratio |"
echo "|---|---|---|---|"
echo "| ready to serve after start (ms) | ${RES[zk-server,ready]} | ${RES[apache,ready]} | $(ratio "${RES[zk-server,ready]}" "${RES[apache,ready]}") |"
echo "| resident memory at start (MiB) | ${RES[zk-server,rss0]} | ${RES[apache,rss0]} | $(ratio "${RES[zk-server,rss0]}" "${RES[apache,rss0]}") |"
echo "| resident memory with $ZNODES znodes of 100 B (MiB) | ${RES[zk-server,rss]} | ${RES[apache,rss]} | $(ratio "${RES[zk-server,rss]}" "${RES[apache,rss]}") |"
echo "| creating $ZNODES znodes, p99 / p999 latency (us) | $(field "${RES[zk-server,populate]}" p99_us) / $(field "${RES[zk-server,populate]}" p999_us) | $(field "${RES[apache,populate]}" p99_us) / $(field "${RES[apache,populate]}" p999_us) | |"
echo "| creating $ZNODES znodes (ops/s) | $(field "${RES[zk-server,populate]}" ops/s) | $(field "${RES[apache,populate]}" ops/s) | $(ratio "$(field "${RES[zk-server,populate]}" ops/s)" "$(field "${RES[apache,populate]}" ops/s)") |"
