"""Typed settings from the environment: frozen dataclasses whose fields name their variable and default."""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import warnings
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Iterator, Mapping
from urllib.parse import urlsplit

logger = logging.getLogger(__name__)

_SPEC = "credit_core.config.spec"
_NESTED = "credit_core.config.nested"
_DIGITS = re.compile(r"[+-]?[0-9]+")   # ASCII only: int() would take "1_000" and other scripts' digits
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


class ConfigError(ValueError):
    """A setting is unusable; the message names its environment variable and why."""


# -- parsers ------------------------------------------------------------------------------------------------

class Parser:
    """Turns a variable's text into a value (``convert``) and checks a value however it came (``check``).

    ``check`` raises TypeError for a wrong Python type and ValueError for a bad value, with a message that
    starts with "must be" and leaves out the variable's name; it returns the value, normalised if need be.
    """

    expected = "a string"

    def convert(self, raw: str) -> Any:
        return raw

    def check(self, value: Any) -> Any:
        if not isinstance(value, str):
            raise TypeError(f"must be {self.expected}, got {value!r}")
        return value


class text(Parser):
    """Any string; ``nonempty`` refuses "" given in Python (an empty variable counts as unset anyway)."""

    def __init__(self, *, nonempty: bool = False):
        self.nonempty = nonempty
        self.expected = "a non-empty string" if nonempty else "a string"

    def check(self, value: Any) -> Any:
        value = super().check(value)
        if self.nonempty and not value:
            raise ValueError(f"must be {self.expected}, got {value!r}")
        return value


def _bounds(lo: Any, hi: Any, *, above: Any = None) -> str:
    if above is not None:
        return f"> {above}" if hi is None else f"in ({above}, {hi}]"
    if lo is not None and hi is not None:
        return f"in {lo}..{hi}"
    if lo is not None:
        return f">= {lo}"
    return f"<= {hi}" if hi is not None else ""


class integer(Parser):
    """An int (ASCII digits) within ``min``..``max``."""

    def __init__(self, *, min: int | None = None, max: int | None = None):
        self.lo, self.hi = min, max
        self.range = _bounds(min, max)
        self.expected = f"an integer {self.range}".rstrip()

    def convert(self, raw: str) -> int:
        if not _DIGITS.fullmatch(raw):
            raise ValueError(raw)
        return int(raw)

    def check(self, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"must be {self.expected}, got {value!r}")
        if (self.lo is not None and value < self.lo) or (self.hi is not None and value > self.hi):
            raise ValueError(f"must be {self.range}, got {value!r}")
        return value


class number(Parser):
    """A float (an int is accepted) >= ``min``, or > ``above``, and <= ``max``; NaN is refused."""

    def __init__(self, *, min: float | None = None, above: float | None = None, max: float | None = None):
        if min is not None and above is not None:
            raise TypeError("number() takes min or above, not both")
        self.lo, self.above, self.hi = min, above, max
        self.range = _bounds(min, max, above=above)
        self.expected = f"a number {self.range}".rstrip()

    def convert(self, raw: str) -> float:
        return float(raw)

    def check(self, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"must be {self.expected}, got {value!r}")
        if value != value or (self.lo is not None and value < self.lo) or (
                self.above is not None and not value > self.above) or (self.hi is not None and value > self.hi):
            raise ValueError(f"must be {self.range}, got {value!r}")
        return value


def positive() -> number:
    """A number > 0 (seconds, rates)."""
    return number(above=0)


class boolean(Parser):
    """on/off, true/false, yes/no, 1/0 (any case)."""

    expected = "one of on/off, true/false, yes/no, 1/0"

    def convert(self, raw: str) -> bool:
        word = raw.lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
        raise ValueError(raw)

    def check(self, value: Any) -> bool:
        if not isinstance(value, bool):
            raise TypeError(f"must be a bool, got {value!r}")
        return value


class choice(Parser):
    """One of ``options`` (the variable's text is lower-cased first)."""

    def __init__(self, *options: str):
        if not options:
            raise TypeError("choice() needs at least one option")
        self.options = options
        self.expected = f"one of {', '.join(options)}"

    def convert(self, raw: str) -> str:
        return raw.lower()

    def check(self, value: Any) -> str:
        if value not in self.options:
            raise ValueError(f"must be {self.expected}, got {value!r}")
        return value


class url(Parser):
    """A URL with one of ``schemes`` and a host; ``strip_slash`` drops trailing slashes."""

    def __init__(self, *schemes: str, strip_slash: bool = False):
        self.schemes = schemes or ("http", "https")
        self.strip_slash = strip_slash
        names = "http(s)" if set(self.schemes) == {"http", "https"} else "/".join(self.schemes)
        self.expected = f"an {names} URL" if names[0] in "aehiou" else f"a {names} URL"

    def check(self, value: Any) -> str:
        value = super().check(value)
        try:
            parts = urlsplit(value)
        except ValueError:
            parts = None
        if parts is None or parts.scheme not in self.schemes or not parts.netloc:
            raise ValueError(f"must be {self.expected}, got {value!r}")
        return value.rstrip("/") if self.strip_slash else value


class comma_list(Parser):
    """Comma separated items, blanks dropped, each passed through ``item``, collected in ``container``."""

    def __init__(self, item: Callable[[str], Any] = str, *, container: type = tuple):
        self.item, self.container = item, container
        self.expected = "a comma separated list"

    def convert(self, raw: str) -> Any:
        return self.container(self.item(p.strip()) for p in raw.split(",") if p.strip())

    def check(self, value: Any) -> Any:
        if not isinstance(value, self.container):
            raise TypeError(f"must be a {self.container.__name__}, got {value!r}")
        return value


# -- fields ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Spec:
    """One environment variable: its name, default, parser, older names and whether it is a secret.

    Declare a variable used by several settings classes once, as a module-level Spec, and give it to
    ``setting`` in each class: it is still one declaration.
    """

    env: str
    default: Any
    parse: Parser = dataclasses.field(default_factory=text)
    deprecated: tuple[str, ...] = ()
    secret: bool = False
    empty: bool = False   # an empty variable is a value ("" parsed), not "unset"
    doc: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.env, str) or not re.fullmatch(r"[A-Z][A-Z0-9_]*", self.env):
            raise TypeError(f"an environment variable name is upper case, got {self.env!r}")
        if isinstance(self.deprecated, str) or not all(isinstance(n, str) for n in self.deprecated):
            raise TypeError(f"{self.env}: deprecated must be a tuple of names, got {self.deprecated!r}")
        if not isinstance(self.parse, Parser):
            raise TypeError(f"{self.env}: parse must be a Parser, got {self.parse!r}")

    def raw(self, environ: Mapping[str, str]) -> str | None:
        """The variable's text (stripped) from ``environ``, trying the deprecated names; None when unset."""
        value = self._lookup(environ, self.env)
        for old in self.deprecated:
            old_value = self._lookup(environ, old)
            if old_value is None:
                continue
            message = (f"{old} is deprecated: set {self.env} instead" if value is None
                       else f"{old} is deprecated and ignored: {self.env} is set too")
            # Python hides DeprecationWarning outside __main__ by default: the log line reaches operators.
            warnings.warn(message, DeprecationWarning, stacklevel=3)
            logger.warning("%s", message)
            if value is None:
                return old_value
        return value

    def _lookup(self, environ: Mapping[str, str], name: str) -> str | None:
        raw = environ.get(name)
        if raw is None:
            return None
        raw = raw.strip()
        return raw if raw or self.empty else None

    def parse_text(self, raw: str) -> Any:
        try:
            return self.parse.convert(raw)
        except (TypeError, ValueError):
            raise ConfigError(f"{self.env} must be {self.parse.expected}, got {raw!r}") from None

    def check(self, value: Any) -> Any:
        if value is None and self.default is None:
            return None
        try:
            return self.parse.check(value)
        except TypeError as exc:
            raise TypeError(f"{self.env} {exc}") from None
        except ValueError as exc:
            raise ConfigError(f"{self.env} {exc}") from None


def setting(env: str | Spec, default: Any = None, *, parse: Parser | None = None, deprecated: tuple[str, ...] = (),
            secret: bool = False, empty: bool = False, doc: str = "") -> Any:
    """A settings field read from ``env`` (or a shared Spec), with its default beside it."""
    if isinstance(env, Spec):
        if default is not None or parse is not None or deprecated or secret or empty or doc:
            raise TypeError(f"setting({env.env}): a shared Spec carries its own options")
        spec = env
    else:
        spec = Spec(env, default, parse or text(), tuple(deprecated), secret, empty, doc)
    return field(default=spec.default, repr=not spec.secret, metadata={_SPEC: spec})


def nested(cls: type["Settings"]) -> Any:
    """A field holding another settings class, read from the same environment."""
    if not (isinstance(cls, type) and issubclass(cls, Settings)):
        raise TypeError(f"nested() takes a Settings class, got {cls!r}")
    return field(default_factory=cls, metadata={_NESTED: cls})


def spec_of(f: dataclasses.Field) -> Spec | None:
    return f.metadata.get(_SPEC)


def nested_of(f: dataclasses.Field) -> type["Settings"] | None:
    return f.metadata.get(_NESTED)


@dataclass(frozen=True)
class Described:
    """One setting of a class, for docs and tests."""

    env: str
    path: str               # the attribute path from the class described, e.g. "hbase.port"
    default: Any
    secret: bool
    deprecated: tuple[str, ...]
    spec: Spec = dataclasses.field(repr=False, compare=False)


# -- the base class -------------------------------------------------------------------------------------------

class Settings:
    """Base of settings classes: ``@dataclass(frozen=True, kw_only=True) class X(Settings)`` with
    ``setting(...)`` / ``nested(...)`` fields. Every value is checked at construction; override
    ``validate`` for rules that span fields."""

    def __post_init__(self) -> None:
        for f in fields(self):
            spec = spec_of(f)
            if spec is None:
                continue
            value = getattr(self, f.name)
            checked = spec.check(value)
            if checked is not value:
                object.__setattr__(self, f.name, checked)
        for f in fields(self):
            cls = nested_of(f)
            if cls is not None and not isinstance(getattr(self, f.name), cls):
                raise TypeError(f"{f.name} must be {cls.__name__}, got {getattr(self, f.name)!r}")
        self.validate()

    def validate(self) -> None:
        """Rules that span fields; raise ConfigError naming the variables."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any):
        """Settings from keyword overrides (field names; None = not given), else ``environ`` (default
        os.environ), else the defaults. A nested field's override is an instance or a dict of its overrides."""
        env = os.environ if environ is None else environ
        known = {f.name: f for f in fields(cls) if f.init}
        unknown = sorted(set(overrides) - set(known))
        if unknown:
            raise TypeError(f"unknown {cls.__name__} settings: {', '.join(unknown)}")
        values: dict[str, Any] = {}
        for name, f in known.items():
            given = overrides.get(name)
            sub = nested_of(f)
            if sub is not None:
                values[name] = given if isinstance(given, sub) else sub.from_env(env, **(given or {}))
                continue
            if given is not None:
                values[name] = given
                continue
            spec = spec_of(f)
            if spec is not None:
                raw = spec.raw(env)
                if raw is not None:
                    values[name] = spec.parse_text(raw)
        return cls(**values)

    def with_(self, **changes: Any):
        """A copy with ``changes`` (field names), checked again."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def describe(cls) -> list[Described]:
        return list(describe(cls))


def describe(cls: type, prefix: str = "") -> Iterator[Described]:
    """Every setting of ``cls``, nested ones included: env name, attribute path, default, secret?"""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"describe() takes a settings class, got {cls!r}")
    for f in fields(cls):
        spec, sub = spec_of(f), nested_of(f)
        if spec is not None:
            yield Described(spec.env, prefix + f.name, spec.default, spec.secret, spec.deprecated, spec)
        elif sub is not None:
            yield from describe(sub, prefix + f.name + ".")


def own_specs(cls: type) -> list[Spec]:
    """The specs ``cls`` declares itself (not those of its nested classes)."""
    return [s for s in (spec_of(f) for f in fields(cls)) if s is not None]
