"""The model artifact: one JSON document (never pickle) whose version is the hash of its content."""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import orjson

logger = logging.getLogger(__name__)

FORMAT = "risk_api/logistic-v1"
VERSION_CHARS = 16


class ArtifactError(ValueError):
    """An artifact file is unreadable, malformed, or its content does not match its version."""


def _canonical(content: dict[str, Any]) -> bytes:
    body = {k: v for k, v in content.items() if k != "version"}
    try:
        return orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    except TypeError as exc:
        raise ArtifactError(f"artifact content is not JSON-serialisable: {exc}") from None


def content_version(content: dict[str, Any]) -> str:
    """The SHA-256 of the canonical JSON of everything but ``version``, shortened."""
    return hashlib.sha256(_canonical(content)).hexdigest()[:VERSION_CHARS]


def seal(content: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``content`` with its ``version`` set from its hash."""
    if not isinstance(content, dict):
        raise TypeError(f"content must be a dict, got {type(content).__name__}")
    return {**content, "version": content_version(content)}


def dumps(artifact: dict[str, Any]) -> bytes:
    return orjson.dumps(artifact, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2) + b"\n"


def save(artifact: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write atomically (temp file + rename) so a watcher never reads half a file."""
    if artifact.get("version") != content_version(artifact):
        raise ArtifactError("artifact is not sealed: call seal() first")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(dumps(artifact))
        os.chmod(tmp, 0o644)                     # mkstemp makes 0600; an artifact is not a secret
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def loads(data: bytes | str) -> dict[str, Any]:
    """Parse and check an artifact: JSON object, known format, version equal to the content hash."""
    try:
        artifact = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ArtifactError(f"artifact is not valid JSON: {exc}") from None
    if not isinstance(artifact, dict):
        raise ArtifactError("artifact must be a JSON object")
    if artifact.get("format") != FORMAT:
        raise ArtifactError(f"artifact format must be {FORMAT!r}, got {artifact.get('format')!r}")
    expected = content_version(artifact)
    if artifact.get("version") != expected:
        raise ArtifactError(f"artifact version {artifact.get('version')!r} does not match its content ({expected})")
    return artifact


def load(path: str | os.PathLike) -> dict[str, Any]:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ArtifactError(f"cannot read artifact {path}: {exc.strerror or exc}") from None
    try:
        return loads(data)
    except ArtifactError as exc:
        raise ArtifactError(f"{path}: {exc}") from None
