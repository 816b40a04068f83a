"""Dead letters (applicants.dlq) read back, filtered and replayed: the library under `python -m deploy dlq`.

- ``records``: a DLQ record (key, value, topic, partition, offset, timestamp, headers) as a ``DeadLetter``
  view, and the pure filters and counts over them (also used by the dashboard);
- ``ledger``: the replay ledger, one record per replayed dead letter (what stops a second replay by accident);
- ``replay``: what a replay publishes on applicants.raw for a dead letter, and which ones a run replays;
- ``reader``: a topic read from its beginning to its current end (aiokafka), also on Tansu;
- ``publisher``: replayed records and their ledger entries sent to the broker;
- ``settings``: the tool's environment variables.
"""
