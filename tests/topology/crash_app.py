"""A worker app for the health tests: topology.worker.app's app, plus a timer that cancels one stage's agent when
told to (the file named by CRASH_TRIGGER appears, holding the agent's name).

faust's ``Agent.cancel`` ends each of the agent's actors' streams: their tasks
end while the worker keeps running and answering HTTP, as when an agent dies
in production.  ``FaustWorker(app="tests.topology.crash_app")``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from topology.worker.app import app

logger = logging.getLogger(__name__)

TRIGGER_ENV = "CRASH_TRIGGER"
_done: set[str] = set()


@app.timer(0.2)
async def cancel_on_trigger() -> None:
    trigger = os.environ.get(TRIGGER_ENV)
    if not trigger or not Path(trigger).exists():
        return
    name = Path(trigger).read_text().strip()
    if name in _done:
        return
    _done.add(name)
    logger.warning("test trigger: cancelling the %s agent", name)
    app.agents[name].cancel()
