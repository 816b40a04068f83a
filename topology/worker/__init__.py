"""The faust wiring of the topology: ``faust -A topology.worker.app worker``.

- ``app``: ``TopologyApp`` and the module-level ``app`` (configured from the environment when first configured);
- ``agents``: the agents (thin: a stage's pure functions wired to a stream and the Emitter), found by autodiscovery;
- ``topics``: the faust topic objects;
- ``running``: the agent body shared by every stage (batches, hold/release of offsets, the safety net);
- ``raw_reader``: ``RawReader``, applicants.raw read with aiokafka's own consumer group inside the worker;
- ``emit``: ``Emitter``, record batches through the app's producer;
- ``commits`` / ``transport``: the consumer that commits only contiguous acked offsets, and its fetch wait;
- ``codec``: the "orjson" faust codec.
"""
