#!/bin/bash
# hbase-entrypoint master | thrift | health
#   master  standalone HBase (ZooKeeper, master, region server in one JVM), data in /var/lib/hbase
#   thrift  HBase's Thrift v1 server (thread pool, binary protocol, buffered transport: happybase's defaults)
#   health  master: ZooKeeper answers imok; thrift: getTableNames succeeds (it fails while the master initializes)
# Every server binds 0.0.0.0 (standalone HBase 2.6's ZooKeeper binds loopback unless
# hbase.zookeeper.property.clientPortAddress says otherwise) and advertises HBASE_HOSTNAME.
# Settings: HBASE_HOSTNAME (the name peers reach this container by; the master's and the region server's
# advertised host), HBASE_ZOOKEEPER_QUORUM (the master's service name), HBASE_HEAP, HBASE_THRIFT_HEAP, THRIFT_PORT;
# for a run outside the image (tests/deploy/test_container.py): HBASE_LIB_DIR, HBASE_CONF_DIR, HBASE_DATA_DIR,
# HBASE_ZOOKEEPER_PORT, HBASE_MASTER_PORT, HBASE_REGIONSERVER_PORT.
set -euo pipefail

role="${1:-master}"
conf="${HBASE_CONF_DIR:-/opt/hbase/conf}"
lib="${HBASE_LIB_DIR:-/opt/hbase/lib}"
data="${HBASE_DATA_DIR:-/var/lib/hbase}"
zk_port="${HBASE_ZOOKEEPER_PORT:-2181}"
host="${HBASE_HOSTNAME:-$(hostname)}"
quorum="${HBASE_ZOOKEEPER_QUORUM:-$host}"
thrift_port="${THRIFT_PORT:-9090}"

site() {
  printf '<?xml version="1.0"?>\n<configuration>\n'
  while [ "$#" -gt 1 ]; do
    printf '  <property><name>%s</name><value>%s</value></property>\n' "$1" "$2"
    shift 2
  done
  printf '</configuration>\n'
}

write_conf() {
  site hbase.cluster.distributed false \
       hbase.rootdir "file://$data/root" \
       hbase.tmp.dir "$data/tmp" \
       hbase.zookeeper.quorum "$quorum" \
       hbase.zookeeper.property.clientPort "$zk_port" \
       hbase.zookeeper.property.dataDir "$data/zookeeper" \
       hbase.zookeeper.property.clientPortAddress 0.0.0.0 \
       hbase.master.ipc.address 0.0.0.0 \
       hbase.regionserver.ipc.address 0.0.0.0 \
       hbase.master.port "${HBASE_MASTER_PORT:-16000}" \
       hbase.regionserver.port "${HBASE_REGIONSERVER_PORT:-16020}" \
       hbase.master.info.port -1 \
       hbase.regionserver.info.port -1 \
       hbase.unsafe.stream.capability.enforce false \
       hbase.master.hostname "$host" \
       hbase.regionserver.hostname "$host" \
       hbase.thrift.info.port -1 \
       hbase.thrift.server.socket.read.timeout 86400000 \
       hbase.regionserver.thrift.framed false \
       hbase.regionserver.thrift.compact false > "$conf/hbase-site.xml"
  cat > "$conf/log4j2.properties" <<'LOG'
status = warn
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{ISO8601} %-5p [%t] %c{2}: %m%n
rootLogger = INFO,STDOUT
logger.zk.name = org.apache.zookeeper
logger.zk.level = WARN
logger.hadoop.name = org.apache.hadoop
logger.hadoop.level = WARN
LOG
}

# What HBase's bin/hbase passes on JDK 17 (deploy/apache_servers.py JDK17_FLAGS).
jvm() {
  local heap="$1"; shift
  exec java "-Xms$heap" "-Xmx$heap" -XX:+UseG1GC -Djava.awt.headless=true -Djava.net.preferIPv4Stack=true \
    -Dorg.apache.hbase.thirdparty.io.netty.tryReflectionSetAccessible=true \
    --add-modules jdk.unsupported \
    --add-opens java.base/java.nio=ALL-UNNAMED --add-opens java.base/sun.nio.ch=ALL-UNNAMED \
    --add-opens java.base/java.lang=ALL-UNNAMED --add-opens java.base/jdk.internal.ref=ALL-UNNAMED \
    --add-opens java.base/java.lang.reflect=ALL-UNNAMED --add-opens java.base/java.util=ALL-UNNAMED \
    --add-opens java.base/java.util.concurrent=ALL-UNNAMED --add-exports java.base/jdk.internal.misc=ALL-UNNAMED \
    --add-exports java.security.jgss/sun.security.krb5=ALL-UNNAMED \
    --add-exports java.base/sun.net.dns=ALL-UNNAMED --add-exports java.base/sun.net.util=ALL-UNNAMED \
    "-Dlog4j2.configurationFile=file:$conf/log4j2.properties" "-Dhbase.log.dir=$data" \
    -cp "$conf:$lib/*" "$@"
}

case "$role" in
  master)
    write_conf
    echo master > "$data/role"
    jvm "${HBASE_HEAP:-1g}" org.apache.hadoop.hbase.master.HMaster start
    ;;
  thrift)
    write_conf
    echo thrift > "$data/role"
    jvm "${HBASE_THRIFT_HEAP:-256m}" org.apache.hadoop.hbase.thrift.ThriftServer \
      -threadpool -b 0.0.0.0 -p "$thrift_port" start
    ;;
  health)
    running="$(cat "$data/role")"
    exec 3<>/dev/tcp/127.0.0.1/"$( [ "$running" = thrift ] && echo "$thrift_port" || echo "$zk_port")"
    if [ "$running" = thrift ]; then
      # Thrift binary call getTableNames(): the reply's first field is 0x0f (the list) on success, 0x0c (IOError)
      # while the master is initializing.
      printf '\x80\x01\x00\x01\x00\x00\x00\x0dgetTableNames\x00\x00\x00\x01\x00' >&3
      [ "$(head -c 26 <&3 | od -An -tx1 | tr -d ' \n' | cut -c51-52)" = 0f ]
    else
      printf ruok >&3
      [ "$(head -c 4 <&3)" = imok ]
    fi
    ;;
  *)
    echo "hbase-entrypoint: unknown role '$role' (master, thrift, health)" >&2
    exit 64
    ;;
esac
