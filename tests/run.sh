#!/usr/bin/env bash
# The README's test command: installs the peers the interoperability suites talk to (Apache
# ZooKeeper 3.8 server with its Java and C clients, openssl and keytool for TLS stores, kazoo
# and pure-sasl, MIT Kerberos' KDC and tools for the Kerberos suite), then runs every test of
# the workspace. Extra arguments go to `cargo test`.
# Installing needs root (apt-get, pip); already installed packages are left alone.
set -euo pipefail
cd "$(dirname "$0")/.."

export DEBIAN_FRONTEND=noninteractive
need_apt=()
dpkg -s zookeeper zookeeper-bin libzookeeper-mt-dev >/dev/null 2>&1 \
  || need_apt+=(zookeeper zookeeper-bin libzookeeper-mt-dev)
command -v java >/dev/null || need_apt+=(default-jre-headless)
command -v openssl >/dev/null || need_apt+=(openssl)
command -v tmux >/dev/null || need_apt+=(tmux)
# tests::disk_faults builds a small preload library (a failing fdatasync) with cc.
command -v cc >/dev/null || need_apt+=(gcc libc6-dev)
command -v pip >/dev/null || need_apt+=(python3-pip)
# The Kerberos suite (tests/tests/interop_kerberos.rs) runs its own realm with these; zk-server
# and zk-client load libgssapi-krb5 at run time (nothing is needed to build them).
command -v krb5kdc >/dev/null || [ -x /usr/sbin/krb5kdc ] || need_apt+=(krb5-kdc)
command -v kadmin.local >/dev/null || [ -x /usr/sbin/kadmin.local ] || need_apt+=(krb5-admin-server)
command -v kinit >/dev/null || need_apt+=(krb5-user)
# kazoo's Kerberos tests (tests/tests/kazoo_suite.rs) need python's `kerberos`, built here.
dpkg -s libkrb5-dev >/dev/null 2>&1 || need_apt+=(libkrb5-dev)
command -v gcc >/dev/null || need_apt+=(gcc)
if ((${#need_apt[@]})); then
  echo "== installing ${need_apt[*]}"
  apt-get update -q
  apt-get install -y -q "${need_apt[@]}"
fi
# pytest, pyOpenSSL (< 24.3: kazoo's harness calls X509.add_extensions) and pyjks run
# kazoo's own test suite (its harness) against zk-server (tests/tests/kazoo_suite.rs);
# objgraph, gevent, eventlet and kerberos let its cache, handler and GSSAPI tests run
# instead of skipping.
if ! python3 -c "import kazoo, puresasl, pytest, OpenSSL, jks, objgraph, gevent, eventlet, kerberos" 2>/dev/null; then
  echo "== installing kazoo, pure-sasl and kazoo's test harness needs"
  py=(kazoo pure-sasl pytest "pyOpenSSL<24.3" pyjks objgraph gevent eventlet kerberos)
  pip install -q "${py[@]}" 2>/dev/null || pip install -q --break-system-packages "${py[@]}"
fi
# The Debian package starts nothing by itself, but make sure no system ZooKeeper holds ports.
systemctl stop zookeeper >/dev/null 2>&1 || true

cargo test --workspace --no-fail-fast "$@"
