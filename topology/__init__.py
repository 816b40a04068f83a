"""The Storm topology ported to Python: the stages' pure work (topology.stages) and its faust wiring (topology.worker)."""
