"""The pure work of each stage, apart from faust: functions over (key, value, source) messages that return
the (partition, key, value) messages to send.  Nothing here imports faust or reads the environment; what a
stage needs comes in as arguments (``topology.stages.config.StageConfig`` for the sizes).

- ``config``: the effective batch sizes and concurrency (the literal mode's choices, made once);
- ``batching``: decoding internal messages, packing items into messages, the per-batch safety net;
- ``cleaning``: applicants.raw -> applicants.clean (the FilterBolt);
- ``screening``: the lending policy, applicants.clean -> .eligible / .scored (the DecisionBolt);
- ``scoring``: the risk API, applicants.eligible -> .scored (the SubmitBolt);
- ``saving``: HBase, applicants.scored -> decisions (the SaveBolt).
"""
