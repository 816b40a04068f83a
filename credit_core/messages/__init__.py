"""The message contracts between the pipeline's processes, one module each (no faust, no service package):

- ``keys``: message keys and partitions (application id -> key -> murmur2 partition);
- ``envelope``: the producer's applicants.raw message (built by the producer, parsed by the cleaning stage);
- ``item``: the items of the internal topics (applicants.clean / .eligible);
- ``decision``: a decision (applicants.scored, HBase's input contract) and its ``decisions`` event;
- ``dead_letter``: the applicants.dlq record.
"""
