"""Helpers shared by the "Editing records" exercises: the roles, sandbox time, and the checks of
Provenance and blood-pressure readings that several of them grade with.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ehr_sandbox.exercises.builtin.common import (
    BP_PANEL,
    bp_values,
    is_bp,
    parse_instant,
)
from ehr_sandbox.exercises.grading import GradingContext, provenance_reason, text_of
from ehr_sandbox.exercises.model import Check
from synthetic.systems import LOINC

MA = "ma.garcia"
PHYSICIAN = "dr.patel"


def iso_instant(dt: datetime) -> str:
    return dt.replace(microsecond=0).isoformat()


def same_instant(a: str | None, b: str | None) -> bool:
    da, db = parse_instant(a), parse_instant(b)
    return da is not None and db is not None and da == db


def last_change(
    ctx: GradingContext, ref: str
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(current resource, the Provenance of its current version)."""
    res = ctx.read(ref)
    if res is None:
        return None, None
    provs = ctx.provenance_of_version(ref, str(res.get("meta", {}).get("versionId", "")))
    return res, (provs[-1] if provs else None)


def change_documented(
    ctx: GradingContext, prov: dict[str, Any] | None, activity: str, what: str, op: str
) -> Check:
    """Common check: the Provenance shows the attempt's user, the right activity and a reason."""
    expected = f"a Provenance by {ctx.user.username} with activity '{activity}' and a reason"
    if prov is None:
        return Check(False, f"no Provenance for {what}", expected, f"use {op}")
    acts = sorted(ctx.activity(prov))
    if activity not in acts:
        return Check(
            False,
            f"{what} was changed through {'/'.join(acts) or 'an unknown operation'}",
            expected,
            f"use {op}",
        )
    if not ctx.by_user(prov):
        who = text_of(prov.get("agent", [])) or ", ".join(
            (a.get("who") or {}).get("reference", "?") for a in prov.get("agent", [])
        )
        return Check(
            False,
            f"{what} was recorded by {who or 'someone else'}",
            expected,
            "do the work as yourself, in your own session",
        )
    if not provenance_reason(prov):
        return Check(
            False, f"{what} has no reason", expected, "a change to the legal record needs a reason"
        )
    return Check(
        True,
        f"{what} by {ctx.user.username} ({activity}), reason: {provenance_reason(prov)!r}",
        expected,
    )


VALID_RESULT = ("final", "amended", "corrected")
"""The statuses of a reading that stands (not preliminary, cancelled, unknown or voided)."""


def bp_readings(ctx: GradingContext, patient_id: str) -> list[dict[str, Any]]:
    found = ctx.search("Observation", patient=f"Patient/{patient_id}", code=f"{LOINC}|{BP_PANEL}")
    return [o for o in found if is_bp(o)]


def describe_bps(readings: list[dict[str, Any]]) -> str:
    if not readings:
        return "no blood pressure readings"
    return ", ".join(f"{s}/{d} ({o.get('status')})" for o in readings for s, d in [bp_values(o)])


def created_by_user(ctx: GradingContext, res: dict[str, Any], activity: str | None = None) -> bool:
    ref = f"{res['resourceType']}/{res['id']}"
    first = ctx.provenance_of_version(ref, "1")
    return any(ctx.by_user(p) and (activity is None or activity in ctx.activity(p)) for p in first)


def new_ids(ctx: GradingContext, rtype: str) -> set[str]:
    """Ids of resources of ``rtype`` written (created or changed) since setup."""
    return {v["id"] for v in ctx.versions_since_setup() if v.get("resourceType") == rtype}
