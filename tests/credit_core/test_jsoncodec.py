"""credit_core.jsoncodec: orjson with Decimal as float."""

from __future__ import annotations

import decimal

from credit_core.jsoncodec import dumps, loads


def test_codec_round_trips_and_handles_decimal():
    assert loads(dumps({"a": [1, 2.5, None, "é"]})) == {"a": [1, 2.5, None, "é"]}
    assert loads(dumps({"d": decimal.Decimal("12.39")})) == {"d": 12.39}
