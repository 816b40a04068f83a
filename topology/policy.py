"""The lending policy (declines that skip scoring), from configuration; its version is a hash of its rules."""

from __future__ import annotations

import functools
import hashlib
import logging
from dataclasses import dataclass
from typing import Any, Mapping

import orjson

from credit_core.config import Settings as BaseSettings
from credit_core.config import ConfigError, comma_list, number, setting
from credit_core.fields import GRADES

logger = logging.getLogger(__name__)

# Each default can be changed through the environment variable named beside it.
DEFAULT_DECLINE_GRADES = ("E", "F", "G")  # POLICY_DECLINE_GRADES (comma separated; set it empty for none)
DEFAULT_MIN_ANNUAL_INC = 20000.0          # POLICY_MIN_ANNUAL_INC (0 turns the rule off)

CODE_GRADE = "POLICY_GRADE"
CODE_MIN_INCOME = "POLICY_MIN_INCOME"


@dataclass(frozen=True)
class Policy:
    """The original DecisionBolt's rules, configurable: decline some grades and low incomes."""

    decline_grades: frozenset[str] = frozenset(DEFAULT_DECLINE_GRADES)
    min_annual_inc: float = DEFAULT_MIN_ANNUAL_INC

    def __post_init__(self) -> None:
        if not isinstance(self.decline_grades, frozenset):
            raise TypeError("decline_grades must be a frozenset of grade letters")
        bad = sorted(g for g in self.decline_grades if g not in GRADES)
        if bad:
            raise ValueError(f"POLICY_DECLINE_GRADES: unknown grades {bad}; grades are {', '.join(GRADES)}")
        if isinstance(self.min_annual_inc, bool) or not isinstance(self.min_annual_inc, (int, float)):
            raise TypeError("min_annual_inc must be a number")
        if not 0 <= self.min_annual_inc < 1e12:
            raise ValueError(f"POLICY_MIN_ANNUAL_INC must be >= 0, got {self.min_annual_inc!r}")

    @property
    def rules(self) -> dict[str, Any]:
        return {"decline_grades": sorted(self.decline_grades), "min_annual_inc": float(self.min_annual_inc)}

    @functools.cached_property
    def version(self) -> str:
        """A stable id of the rules: the same rules always give the same version."""
        digest = hashlib.sha256(orjson.dumps(self.rules, option=orjson.OPT_SORT_KEYS)).hexdigest()
        return f"policy-{digest[:12]}"

    def evaluate(self, rec: Mapping[str, Any]) -> list[dict[str, str]]:
        """The policy reasons that decline this cleaned record (empty: eligible for scoring)."""
        reasons = []
        grade = rec.get("grade")
        if grade in self.decline_grades:
            reasons.append({"code": CODE_GRADE, "text": f"Grade {grade} is outside the lending policy"})
        inc = rec.get("annual_inc")
        if self.min_annual_inc and inc is not None and inc < self.min_annual_inc:
            reasons.append({"code": CODE_MIN_INCOME,
                            "text": f"Annual income {inc:,.0f} is below the policy minimum of "
                                    f"{self.min_annual_inc:,.0f}"})
        return reasons

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Policy":
        p = PolicySettings.from_env(env)
        return cls(decline_grades=p.decline_grades, min_annual_inc=p.min_annual_inc)


@dataclass(frozen=True, kw_only=True)
class PolicySettings(BaseSettings):
    """The policy's environment variables; Policy.from_env builds the policy from them."""

    # An empty POLICY_DECLINE_GRADES is a value: decline no grade.
    decline_grades: frozenset[str] = setting("POLICY_DECLINE_GRADES", frozenset(DEFAULT_DECLINE_GRADES),
                                             parse=comma_list(str.upper, container=frozenset), empty=True)
    min_annual_inc: float = setting("POLICY_MIN_ANNUAL_INC", DEFAULT_MIN_ANNUAL_INC, parse=number(min=0))

    def validate(self) -> None:
        bad = sorted(g for g in self.decline_grades if g not in GRADES)
        if bad:
            raise ConfigError(f"POLICY_DECLINE_GRADES must hold grades {', '.join(GRADES)}, got unknown {bad}")
