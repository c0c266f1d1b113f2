# Shared by the side-by-side bench scripts here (sourced, not run).

# Apache ZooKeeper 3.8's classpath from the Debian packages. Shell scripts cannot call the
# Rust kit (tests::apache::classpath in tests/src/apache.rs); keep the two in step. slf4j-nop
# here: a benchmarked server should not spend time logging.
CP=/usr/share/java/zookeeper.jar:/usr/share/java/zookeeper-jute.jar:/usr/share/java/slf4j-api.jar:/usr/share/java/slf4j-nop.jar:/usr/share/java/netty-all.jar:/usr/share/java/metrics-core.jar:/usr/share/java/commons-cli.jar

# Debian's netty-all.jar is an empty aggregate: Apache's Netty connection factory (which TLS,
# `secureClientPort`, needs) loads these (tests::apache's JARS lists them too).
CP_NETTY=$CP:$(printf '/usr/share/java/netty-%s.jar:' buffer codec common handler resolver transport \
  transport-native-epoll transport-native-unix-common | sed 's/:$//')

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# write_zoo_cfg FILE DATA_DIR PORT: the one config both servers get (defaults otherwise,
# every four-letter word allowed, no admin server, no timed purge).
write_zoo_cfg() {
  cat >"$1" <<EOF
tickTime=2000
dataDir=$2
clientPort=$3
clientPortAddress=127.0.0.1
4lw.commands.whitelist=*
admin.enableServer=false
autopurge.purgeInterval=0
EOF
}
