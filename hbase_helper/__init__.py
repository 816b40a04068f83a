"""happybase helpers: table layout, batch writes, audit scans, and the embedded HBase Thrift server."""
