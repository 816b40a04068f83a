"""Benchmarks: each module measures one part side by side with its reference; `python -m bench` runs them all."""
