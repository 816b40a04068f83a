"""topology.worker.codec: the "orjson" faust codec, registered when the app is created."""

from __future__ import annotations

from faust.serializers import codecs

from topology.worker import codec


def test_the_app_registers_the_orjson_codec():
    import topology.worker.app  # noqa: F401  (creating the app registers the codec)
    assert codecs.loads(codec.CODEC_NAME, codecs.dumps(codec.CODEC_NAME, {"x": 1, "d": [1.5]})) == {"x": 1, "d": [1.5]}
