"""Helpers shared by the local-stack tests (imported as ``tests.deploy.stack_testlib``)."""

from __future__ import annotations

import os

from deploy.local import Stack, build_stack


def stack_for(env: dict[str, str]) -> Stack:
    """The stack ``build_stack`` makes with ``env`` added to this process's environment (restored after)."""
    old = dict(os.environ)
    os.environ.update(env)
    try:
        return build_stack()
    finally:
        os.environ.clear()
        os.environ.update(old)
