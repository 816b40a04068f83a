"""The HBase Thrift (v1) types happybase's clients raise and send, imported in one place.

happybase loads the ``Hbase.thrift`` it ships as the module ``Hbase_thrift``
when it is imported; its connections raise that module's exceptions, so these
must be the very same classes (a second ``thriftpy2.load`` would make new ones
that no ``except`` here would catch).
"""

from __future__ import annotations

import happybase  # noqa: F401  (its import loads Hbase_thrift, below)
from Hbase_thrift import AlreadyExists, BatchMutation, IllegalArgument, Mutation
from Hbase_thrift import IOError as HBaseIOError
from thriftpy2.thrift import TException

__all__ = ["AlreadyExists", "BatchMutation", "HBaseIOError", "IllegalArgument", "Mutation", "TException"]
