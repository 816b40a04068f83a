"""Helpers shared by the local-stack tests (imported as ``tests.deploy.stack_testlib``)."""

from __future__ import annotations

import os
from pathlib import Path

from deploy.local import Stack, build_stack
from deploy.services import FaustWorker


def stack_for(env: dict[str, str]) -> Stack:
    """The stack ``build_stack`` makes with ``env`` added to this process's environment (restored after)."""
    old = dict(os.environ)
    os.environ.update(env)
    try:
        return build_stack()
    finally:
        os.environ.clear()
        os.environ.update(old)


def with_crash_app(stack: Stack, trigger: Path) -> Stack:
    """``stack`` with its workers running tests.topology.crash_app: once ``trigger`` holds an agent's name (a stage:
    decision, submit), that agent is cancelled inside the running worker, as when an agent dies in production."""
    stack.workers = [FaustWorker(name=w.name, run_dir=w.run_dir, env={**w.extra_env, "CRASH_TRIGGER": str(trigger)},
                                 web_port=w.web_port, web_host=w.web_host, app="tests.topology.crash_app")
                     for w in stack.workers]
    return stack


def has_processed(worker: FaustWorker, stage: str) -> bool:
    """True once ``stage`` of the running ``worker`` has processed a record (its /health says when it last did):
    its task runs, so cancelling it now makes the stage crashed."""
    health = worker.health()
    return bool(health and stage in health.stages and health.stages[stage].seconds_since_last_record is not None)
