"""The operators' and auditors' dashboard: a Flask service reading /metrics, the DLQ and the HBase audit store."""
