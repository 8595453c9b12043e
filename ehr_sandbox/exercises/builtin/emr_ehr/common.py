"""Helpers shared by the "EMR vs EHR" exercises: the roles and organization names, booking a
patient, wrapping resources as outside data and reading their source back.
"""

from __future__ import annotations

import copy
from typing import Any

from ehr_sandbox.exercises.grading import GradingContext, text_of
from ehr_sandbox.network import fhir_builders as fb
from ehr_sandbox.network.exchange import OUTSIDE_TAG
from ehr_sandbox.network.organizations import ORGANIZATION_SPECS, org_url

MA, PHYSICIAN, FRONT_DESK = "ma.garcia", "dr.patel", "fd.smith"
_NAMES = {s.key: s.name for s in ORGANIZATION_SPECS}
HOSPITAL, LAB, CARDIOLOGY = (_NAMES["hospital"], _NAMES["lab"], _NAMES["cardiology"])

SOURCE_ADVICE = "keep the outside source (meta.source / informationSource); never retype outside data as your own"


def today_iso(sandbox: Any) -> str:
    return sandbox.reference_date.isoformat()


def session_today(session: Any) -> str:
    """Today's date in the EHR, as the student's session tells it (its clock, which a
    classroom server's session asks the server for): what solutions date their entries with.

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> session_today(Sandbox.empty(reference_date="2026-01-05").system_session())
    '2026-01-05'
    """
    return session.now().date().isoformat()


def adult_patients(sandbox: Any) -> list[dict[str, Any]]:
    s = sandbox.system_session()
    year = sandbox.reference_date.year
    found = [
        p
        for p in s.resources("Patient")
        if not p.get("deceasedDateTime")
        and not p.get("deceasedBoolean")
        and len(p.get("birthDate", "")) == 10
        and year - int(p["birthDate"][:4]) >= 25
    ]
    return sorted(found, key=lambda p: p["id"])


def book_visit(sandbox: Any, patient_id: str, username: str = PHYSICIAN) -> None:
    """Book the patient with ``username`` today: the care relationship every role here needs."""
    who = f"Practitioner/{sandbox.user(username).practitioner_id}"
    day = today_iso(sandbox)
    sandbox.system_session().create(
        fb.appointment(
            f"Patient/{patient_id}",
            who,
            f"{day}T09:00:00-05:00",
            f"{day}T09:20:00-05:00",
            "Follow-up visit",
        )
    )


def outside_copy(resource: dict[str, Any], org_key: str, rid: str) -> dict[str, Any]:
    out = copy.deepcopy(resource)
    out["id"] = rid
    out["meta"] = {"source": org_url(org_key), "tag": [OUTSIDE_TAG], "versionId": "1"}
    return out


def source_url_of(res: dict[str, Any]) -> str:
    return str((res.get("meta") or {}).get("source", ""))


def names_source(res: dict[str, Any], url: str, name: str) -> bool:
    said = " ".join(
        [
            text_of(res.get("informationSource") or {}),
            text_of(res.get("asserter") or {}),
            text_of(res.get("note") or []),
            str((res.get("informationSource") or {}).get("display", "")),
            str((res.get("asserter") or {}).get("display", "")),
        ]
    )
    return source_url_of(res) == url or name in said


def created_by_user(ctx: GradingContext, res: dict[str, Any]) -> bool:
    ref = f"{res['resourceType']}/{res['id']}"
    return any(ctx.by_user(p) for p in ctx.provenance_of_version(ref, "1"))
