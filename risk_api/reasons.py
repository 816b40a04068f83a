"""Reason codes: a stable code and a plain-English text for each way a feature group can raise the risk."""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)

# group -> (code prefix, what the feature is, in words). Codes never change meaning; add new ones at the end.
GROUPS: dict[str, tuple[str, str]] = {
    "bc_open_to_buy": ("BCOPEN", "Open-to-buy on bankcard accounts"),
    "total_il_high_credit_limit": ("ILLIMIT", "Total credit limit on instalment accounts"),
    "annual_inc": ("INCOME", "Annual income"),
    "bc_util": ("BCUTIL", "Utilisation of bankcard accounts"),
    "dti": ("DTI", "Debt-to-income ratio"),
    "int_rate": ("RATE", "Interest rate of the loan"),
    "term": ("TERM", "Length of the loan term"),
    "loan_amnt": ("AMOUNT", "Amount requested"),
    "fund_rate": ("FUNDED", "Share of the requested amount that was funded"),
    "funded_amnt": ("FUNDAMT", "Amount funded"),
    "loan_to_income": ("LTI", "Loan amount relative to income"),
    "installment": ("INSTAL", "Monthly instalment"),
    "revol_util": ("REVUTIL", "Revolving credit utilisation"),
    "revol_bal": ("REVBAL", "Revolving credit balance"),
    "delinq_2yrs": ("DELINQ", "Number of delinquencies in the last two years"),
    "inq_last_6mths": ("INQ", "Number of credit inquiries in the last six months"),
    "open_acc": ("OPENACC", "Number of open credit lines"),
    "pub_rec": ("PUBREC", "Number of derogatory public records"),
    "total_acc": ("TOTACC", "Total number of credit lines"),
    "credit_history_months": ("HISTORY", "Length of credit history"),
    "grade": ("GRADE", "Loan grade"),
    "home_ownership": ("HOME", "Home ownership status"),
    "purpose": ("PURPOSE", "Purpose of the loan"),
    "verification_status": ("VERIFY", "Income verification status"),
    "emp_length": ("EMPLEN", "Length of employment"),
}


# Groups whose adverse direction is known from credit practice: a reason is only given in that direction
# (fewer public records than average is never a reason to decline, whatever a noisy coefficient says).
ADVERSE_DIRECTION: dict[str, str] = {
    "annual_inc": "LOW", "bc_util": "HIGH", "dti": "HIGH", "int_rate": "HIGH", "term": "HIGH",
    "loan_to_income": "HIGH", "revol_util": "HIGH", "delinq_2yrs": "HIGH", "inq_last_6mths": "HIGH",
    "pub_rec": "HIGH", "credit_history_months": "LOW",
}


def numeric_reason(group: str, direction: str) -> tuple[str, str]:
    """(code, text) for a numeric group whose value is HIGH, LOW or MISSING relative to the training reference."""
    prefix, label = GROUPS[group]
    if direction == "HIGH":
        return f"{prefix}_HIGH", f"{label} is higher than the average applicant's"
    if direction == "LOW":
        return f"{prefix}_LOW", f"{label} is lower than the average applicant's"
    if direction == "MISSING":
        return f"{prefix}_MISSING", f"{label} was not reported"
    raise ValueError(f"direction must be HIGH, LOW or MISSING, got {direction!r}")


def level_reason(group: str, level: str) -> tuple[str, str]:
    """(code, text) for a categorical group at ``level``."""
    prefix, label = GROUPS[group]
    shown = "other or not reported" if level == "OTHER" else level.replace("_", " ")
    return f"{prefix}_{level.upper()}", f"{label} ({shown}) is associated with higher risk"


def range_reason(group: str, feature: str, value: float, lo: float, hi: float) -> tuple[str, str]:
    """(code, text) for a feature outside the range the model was trained on (it is scored as the nearest bound)."""
    prefix, label = GROUPS[group]
    side, bound = ("below", lo) if value < lo else ("above", hi)
    shown = "" if feature == group else f" ({feature.replace('_', ' ')})"
    return (f"{prefix}_OUT_OF_RANGE",
            f"{label}{shown} is {side} the range the model was trained on ({lo:.6g} to {hi:.6g}): "
            f"scored as {bound:.6g}, so the score is less certain")
