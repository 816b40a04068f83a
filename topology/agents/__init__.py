"""The topology's agents, one module each: filter, decision, submit, save (and the bench's passthrough)."""
