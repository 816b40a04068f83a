"""The lending policy (declines that skip scoring), from configuration; its version is a hash of its rules."""

from __future__ import annotations

import functools
import hashlib
import logging
import os
from dataclasses import dataclass
from typing import Any, Mapping

import orjson

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
        env = os.environ if env is None else env
        raw_grades = env.get("POLICY_DECLINE_GRADES")
        if raw_grades is None:
            grades = frozenset(DEFAULT_DECLINE_GRADES)
        else:
            grades = frozenset(g.strip().upper() for g in raw_grades.split(",") if g.strip())
        raw_inc = env.get("POLICY_MIN_ANNUAL_INC")
        if raw_inc is None or raw_inc.strip() == "":
            min_inc = DEFAULT_MIN_ANNUAL_INC
        else:
            try:
                min_inc = float(raw_inc)
            except ValueError:
                raise ValueError(f"POLICY_MIN_ANNUAL_INC must be a number, got {raw_inc!r}") from None
        return cls(decline_grades=grades, min_annual_inc=min_inc)
