#!/usr/bin/env bash
# CI interop check: records a fresh capture between the installed Apache ZooKeeper 3.8 and its
# Java and C clients, then runs the golden test on it (the committed fixtures stay untouched).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT="$(mktemp -d "${TMPDIR:-/tmp}/zk-golden-ci.XXXXXX")"
trap 'rm -rf "$OUT"' EXIT
GOLDEN_OUT="$OUT" bash "$HERE/record.sh"
cd "$HERE/../../.."
ZK_GOLDEN_DIR="$OUT" cargo test -q -p zk-proto --test golden
