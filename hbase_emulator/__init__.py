"""A single-machine stand-in for HBase's Thrift (v1) server on SQLite: the embedded stack's HBase, not used in production."""
