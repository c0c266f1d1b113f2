#!/usr/bin/env bash
# TLS side by side: zk-server plaintext, zk-server TLS and Apache ZooKeeper 3.8 TLS (Netty),
# driven by zk-load with the same settings in interleaved rounds of one run.
#
#   bash zk-server/benches/tls_vs_apache.sh     # SECS=6 ROUNDS=3 SESSIONS=8 INFLIGHT=32
#
# One zk-server serves both a plain and a TLS port; Apache serves TLS on NettyServerCnxnFactory.
# Both load the same PEM stores (an EC P-256 CA, server and client certificates made with
# openssl here; client auth `need`, Apache's default). For get and set (100 B) it reports ops/s
# and the server's CPU time per op (utime+stime of /proc/<pid>/stat over the run, so only the
# server's own work, not zk-load's). Every process started here is killed by pid on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)

SECS="${SECS:-6}"
SESSIONS="${SESSIONS:-8}"
INFLIGHT="${INFLIGHT:-32}"
ROUNDS="${ROUNDS:-3}"
source zk-server/benches/bench_common.sh

cargo build -q --release -p zk-server --bins
BIN="${CARGO_TARGET_DIR:-target}/release"

WORK="$(mktemp -d /tmp/zk-tls-bench.XXXXXX)"
PIDS=()
cleanup() {
  for p in "${PIDS[@]+"${PIDS[@]}"}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

# ---- stores ----
P="$WORK/pki"
mkdir -p "$P"
ossl() { openssl "$@" 2>/dev/null; }
ossl ecparam -name prime256v1 -genkey -noout -out "$P/ca.key"
ossl req -x509 -new -key "$P/ca.key" -subj "/CN=bench CA" -days 2 -out "$P/ca.pem"
leaf() {  # name CN
  ossl ecparam -name prime256v1 -genkey -noout -out "$P/$1.ec"
  ossl pkcs8 -topk8 -nocrypt -in "$P/$1.ec" -out "$P/$1.key"
  ossl req -new -key "$P/$1.key" -subj "/O=zk-rs/CN=$2" -out "$P/$1.csr"
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n' >"$P/$1.ext"
  ossl x509 -req -in "$P/$1.csr" -CA "$P/ca.pem" -CAkey "$P/ca.key" -CAcreateserial -days 2 \
    -extfile "$P/$1.ext" -out "$P/$1.crt"
}
leaf server zk-server
leaf client bench
cat "$P/server.key" "$P/server.crt" >"$P/server.pem"

spawn_ready() { python3 zk-server/benches/spawn_ready.py "$PORT" "$LOG" "$@"; }

start_server() {  # name -> sets PORT (plain), SPORT (TLS), PID
  local name=$1 dir="$WORK/$1"
  mkdir -p "$dir"
  PORT=$(free_port)
  SPORT=$(free_port)
  write_zoo_cfg "$dir/zoo.cfg" "$dir" "$PORT"
  cat >>"$dir/zoo.cfg" <<CFG
secureClientPort=$SPORT
secureClientPortAddress=127.0.0.1
serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory
ssl.keyStore.location=$P/server.pem
ssl.trustStore.location=$P/ca.pem
CFG
  LOG="$dir/out.log"
  local out
  if [ "$name" = zk-server ]; then
    out=$(spawn_ready "$BIN/zk-server" "$dir/zoo.cfg")
  else
    out=$(spawn_ready java -Xmx1000m -Dzookeeper.admin.enableServer=false -cp "$CP_NETTY" \
      org.apache.zookeeper.server.ZooKeeperServerMain "$dir/zoo.cfg")
  fi
  read -r PID _ _ _ <<<"$out"
  PIDS+=("$PID")
}

start_server zk-server; ZK_PORT=$PORT; ZK_SPORT=$SPORT; ZK_PID=$PID
start_server apache; AP_SPORT=$SPORT; AP_PID=$PID

TLS=(--tls-ca "$P/ca.pem" --tls-cert "$P/client.crt" --tls-key "$P/client.key")
# target -> "pid zk-load flags..."
target_pid() { case $1 in apache-tls) echo "$AP_PID" ;; *) echo "$ZK_PID" ;; esac; }
target_args() {
  case $1 in
    zk-plain) echo "--server 127.0.0.1:$ZK_PORT" ;;
    zk-tls) echo "--server 127.0.0.1:$ZK_SPORT ${TLS[*]}" ;;
    apache-tls) echo "--server 127.0.0.1:$AP_SPORT ${TLS[*]}" ;;
  esac
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)

# Runs zk-load against a target; prints its result line plus " cpu_us_per_op=N".
measure() {  # target op root secs
  local pid before after line ops
  pid=$(target_pid "$1")
  before=$(cpu_ticks "$pid")
  # shellcheck disable=SC2046
  line=$("$BIN/zk-load" $(target_args "$1") --op "$2" --secs "$4" --sessions "$SESSIONS" \
    --inflight "$INFLIGHT" --payload 100 --root "$3")
  after=$(cpu_ticks "$pid")
  ops=$(sed -n 's|.* ops=\([0-9]*\) .*|\1|p' <<<"$line")
  echo "$line cpu_us_per_op=$(python3 -c "print(f'{($after-$before)*1e6/$HZ/max($ops,1):.1f}')")"
}

TARGETS=(zk-plain zk-tls apache-tls)
# Warm-up: the JVM compiles its hot paths (and TLS ones) before anything is measured.
for t in "${TARGETS[@]}"; do measure "$t" mixed /warm-$t 4 >/dev/null; done

declare -A RES
for op in get set; do
  for round in $(seq "$ROUNDS"); do
    # Rotate who goes first, so a burst of noise from the shared host hits all alike.
    order=("${TARGETS[@]:$(((round - 1) % 3))}" "${TARGETS[@]:0:$(((round - 1) % 3))}")
    for t in "${order[@]}"; do
      RES[$t,$op,$round]=$(measure "$t" "$op" "/bench-$op-$round-$t" "$SECS")
      echo "$t $op round $round: ${RES[$t,$op,$round]}" >&2
    done
  done
done

field() { sed -n "s|.* $2=\([0-9.]*\).*|\1|p" <<<" $1"; }
median() {  # target op field
  local i
  for i in $(seq "$ROUNDS"); do field "${RES[$1,$2,$i]}" "$3"; done | sort -n |
    sed -n "$(((ROUNDS + 1) / 2))p"
}
ratio() { python3 -c "a,b=float('$1'),float('$2'); print(f'{a/b:.2f}x' if b else 'n/a')"; }
# The lowest and highest per-round ratio of field $4 between targets $2 and $3 for op $1.
ratio_range() {
  local i
  for i in $(seq "$ROUNDS"); do
    ratio "$(field "${RES[$2,$1,$i]}" "$4")" "$(field "${RES[$3,$1,$i]}" "$4")" | tr -d x
  done | sort -n | sed -n '1p;$p' | paste -sd- | sed 's/-/x-/; s/$/x/'
}

echo
echo "load average before the run: $LOAD0"
echo "| op ($SESSIONS sessions x $INFLIGHT in flight, 100 B, ${SECS}s rounds, median of $ROUNDS) | zk-server plain ops/s | zk-server TLS ops/s | Apache TLS ops/s | CPU us/op plain / TLS / Apache TLS | TLS/plain CPU per op (target <= 1.5x), per round | ours TLS / Apache TLS ops/s (target >= 2x), per round |"
echo "|---|---|---|---|---|---|---|"
for op in get set; do
  zp=$(median zk-plain "$op" ops/s); zt=$(median zk-tls "$op" ops/s); at=$(median apache-tls "$op" ops/s)
  cp=$(median zk-plain "$op" cpu_us_per_op); ct=$(median zk-tls "$op" cpu_us_per_op)
  ca=$(median apache-tls "$op" cpu_us_per_op)
  echo "| $op | $zp | $zt | $at | $cp / $ct / $ca | $(ratio "$ct" "$cp"), $(ratio_range "$op" zk-tls zk-plain cpu_us_per_op) | $(ratio "$zt" "$at"), $(ratio_range "$op" zk-tls apache-tls ops/s) |"
done
