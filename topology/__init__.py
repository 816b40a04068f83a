"""Faust app: the Storm topology ported to four agents over Kafka."""
