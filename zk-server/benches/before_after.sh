#!/usr/bin/env bash
# Side-by-side: two zk-server binaries (e.g. before and after a change) on this machine,
# driven by the same load generator with the same settings, in interleaved rounds of one run.
#
#   BEFORE=/path/to/old/zk-server AFTER=target/release/zk-server \
#     bash zk-server/benches/before_after.sh          # SECS=5 ROUNDS=3 by default
#
# Both servers run at once on fresh dataDirs with the zoo.cfg of compare_with_apache.sh;
# each workload (get, set with fsync, create, mixed) is measured ROUNDS times, alternating
# which server goes first, and the table gives each one's median round. zk-load is taken
# from target/release (built here if missing). Every process started here is killed by pid
# on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."

SECS="${SECS:-5}"
SESSIONS="${SESSIONS:-8}"
INFLIGHT="${INFLIGHT:-32}"
ROUNDS="${ROUNDS:-3}"
: "${BEFORE:?set BEFORE to the old zk-server binary}"
AFTER="${AFTER:-target/release/zk-server}"
source zk-server/benches/bench_common.sh
LOAD="${CARGO_TARGET_DIR:-target}/release/zk-load"
[ -x "$LOAD" ] || cargo build -q --release -p zk-server --bin zk-load

WORK="$(mktemp -d /tmp/zk-before-after.XXXXXX)"
PIDS=()
cleanup() {
  for p in "${PIDS[@]+"${PIDS[@]}"}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

declare -A PORTS RES
for name in before after; do
  dir="$WORK/$name"; mkdir -p "$dir"
  PORT=$(free_port); PORTS[$name]=$PORT
  write_zoo_cfg "$dir/zoo.cfg" "$dir" "$PORT"
  bin=$BEFORE; [ "$name" = after ] && bin=$AFTER
  read -r PID _ _ _ <<<"$(python3 zk-server/benches/spawn_ready.py "$PORT" "$dir/out.log" "$bin" "$dir/zoo.cfg")"
  PIDS+=("$PID")
done
for name in before after; do
  "$LOAD" --server "127.0.0.1:${PORTS[$name]}" --op mixed --secs 2 --sessions "$SESSIONS" --inflight "$INFLIGHT" >/dev/null
done
for op in get set create mixed; do
  for round in $(seq "$ROUNDS"); do
    order="before after"
    if [ $((round % 2)) = 0 ]; then order="after before"; fi
    for name in $order; do
      RES[$name,$op,$round]=$("$LOAD" --server "127.0.0.1:${PORTS[$name]}" --op "$op" --secs "$SECS" \
        --sessions "$SESSIONS" --inflight "$INFLIGHT" --payload 100 --root "/bench-$op-$round")
      echo "$name $op round $round: ${RES[$name,$op,$round]}" >&2
    done
  done
done

field() { sed -n "s|.*$2=\([0-9.]*\).*|\1|p" <<<"$1"; }
median_run() {
  local best="" i
  for i in $(seq "$ROUNDS"); do echo "$(field "${RES[$1,$2,$i]}" ops/s) $i"; done |
    sort -n | sed -n "$(((ROUNDS + 1) / 2))p" | { read -r _ best; echo "${RES[$1,$2,$best]}"; }
}
ratio() { python3 -c "a,b=float('$1'),float('$2'); print(f'{a/b:.2f}x' if b else 'n/a')"; }
echo
echo "| workload ($SESSIONS sessions x $INFLIGHT in flight, 100 B; median of $ROUNDS rounds) | before ops/s | after ops/s | after/before | before p50/p99 us | after p50/p99 us |"
echo "|---|---|---|---|---|---|"
for op in get set create mixed; do
  a=$(median_run before "$op"); b=$(median_run after "$op")
  echo "| $op | $(field "$a" ops/s) | $(field "$b" ops/s) | $(ratio "$(field "$b" ops/s)" "$(field "$a" ops/s)") | $(field "$a" p50_us)/$(field "$a" p99_us) | $(field "$b" p50_us)/$(field "$b" p99_us) |"
done
