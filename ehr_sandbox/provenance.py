"""Provenance for every write: who changed which version, when, how and why.

>>> p = build_provenance(["Observation/o1/_history/2"], recorded="2026-01-05T08:00:00+00:00",
...                      activity="correct", who="Practitioner/p1", reason="138 keyed as 183")
>>> p["target"][0]["reference"], p["activity"]["coding"][0]["code"], p["reason"][0]["text"]
('Observation/o1/_history/2', 'correct', '138 keyed as 183')
"""

from __future__ import annotations

from typing import Any

from synthetic.systems import PROVENANCE_PARTICIPANT_TYPE, SANDBOX_ACTIVITY, V3_DATA_OPERATION

DATA_OPERATION = V3_DATA_OPERATION
ACTIVITY_SYSTEM = SANDBOX_ACTIVITY
PARTICIPATION = PROVENANCE_PARTICIPANT_TYPE

ACTIVITIES: dict[str, tuple[str, str, str]] = {
    "create": (DATA_OPERATION, "CREATE", "create"),
    "update": (DATA_OPERATION, "UPDATE", "revise"),
    "delete": (DATA_OPERATION, "DELETE", "delete"),
    "entered-in-error": (ACTIVITY_SYSTEM, "entered-in-error", "Marked entered in error"),
    "correct": (ACTIVITY_SYSTEM, "correct", "Correction of the legal record"),
    "amend": (ACTIVITY_SYSTEM, "amend", "Amendment at the patient's request"),
    "addendum": (ACTIVITY_SYSTEM, "addendum", "Addendum to a note"),
    "late-entry": (ACTIVITY_SYSTEM, "late-entry", "Late entry"),
    "registration-update": (ACTIVITY_SYSTEM, "registration-update", "Registration update"),
    "sign": (ACTIVITY_SYSTEM, "sign", "Signature"),
    "import": (ACTIVITY_SYSTEM, "import", "Import"),
    "label": (ACTIVITY_SYSTEM, "label", "Security label change"),
}
"""Activity name -> (system, code, display) used in ``Provenance.activity``."""

ACTIVITIES_NEEDING_REASON = frozenset(
    {"entered-in-error", "correct", "amend", "late-entry", "registration-update", "label"}
)
"""Operations on the legal record that are refused without a reason."""


def build_provenance(
    targets: list[str],
    *,
    recorded: str,
    activity: str,
    who: str | None,
    on_behalf_of: str | None = None,
    reason: str | None = None,
    occurred: str | None = None,
    signature: dict[str, Any] | None = None,
    patients: list[str] | None = None,
    security: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A Provenance resource (without id) for one write.

    ``targets`` are versioned references (``Type/id/_history/v``). ``patients`` are the ids of
    the patients the targets belong to: each becomes a ``Patient/<id>`` target too, which puts
    the Provenance in those patients' compartments (FHIR's ``Provenance.patient`` search is
    ``target.where(resolve() is Patient)``), so only users who may see the patient see who
    changed their record and why. ``security`` carries the targets' labels (a reason can be
    as sensitive as the record it explains).

    >>> build_provenance(["Observation/o/_history/1"], recorded="2026-01-05T08:00:00+00:00",
    ...                  activity="create", who=None, patients=["a"])["target"][1]
    {'reference': 'Patient/a'}

    >>> build_provenance(["Patient/a/_history/1"], recorded="2026-01-05T08:00:00+00:00",
    ...                  activity="create", who=None)["agent"][0]["who"]["display"]
    'ehr-sandbox system'
    """
    system, code, display = ACTIVITIES[activity]
    agent: dict[str, Any] = {
        "type": {"coding": [{"system": PARTICIPATION, "code": "author", "display": "Author"}]},
        "who": {"reference": who} if who else {"display": "ehr-sandbox system"},
    }
    if on_behalf_of:
        agent["onBehalfOf"] = {"reference": on_behalf_of}
    prov: dict[str, Any] = {
        "resourceType": "Provenance",
        "target": [{"reference": t} for t in targets]
        + [
            {"reference": f"Patient/{pid}"}
            for pid in sorted(set(patients or ()))
            if not any(t.startswith(f"Patient/{pid}/") for t in targets)
        ],
        "recorded": recorded,
        "activity": {"coding": [{"system": system, "code": code, "display": display}]},
        "agent": [agent],
    }
    if occurred:
        prov["occurredDateTime"] = occurred
    if reason:
        prov["reason"] = [{"text": reason}]
    if signature:
        prov["signature"] = [signature]
    if security:
        prov["meta"] = {"security": [dict(c) for c in security]}
    return prov


def activity_of(provenance: dict[str, Any]) -> str | None:
    """The activity name of a Provenance built here (``None`` for foreign ones).

    >>> activity_of(build_provenance(["Patient/a/_history/1"], recorded="2026-01-05T08:00:00+00:00",
    ...                              activity="sign", who=None))
    'sign'
    """
    for coding in (provenance.get("activity") or {}).get("coding", []):
        for name, (system, code, _) in ACTIVITIES.items():
            if coding.get("system") == system and coding.get("code") == code:
                return name
    return None
