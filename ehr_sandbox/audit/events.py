"""Builders of BALP-shaped FHIR R4 AuditEvent dicts (IHE Basic Audit Log Patterns).

One AuditEvent per interaction: ``type`` rest + the interaction as ``subtype`` (FHIR
restful-interaction codes where one exists, the sandbox's own code system otherwise), the
action (C R U D E) and outcome (0 4 8 12 — denials are audited too), two agents (the user as
requestor with role and purpose of use, and the application), and entities for the data
(with version and security labels), the patient (role 1) and the query (base64).
Break-the-glass start/stop are DICOM security alerts (110113) with subtype 110127 / 110138.

>>> ev = build_event(action="R", interaction="read", outcome="0",
...                  user={"username": "ma.garcia", "role": "medical_assistant", "practitioner_id": "p1"},
...                  purpose="TREAT", patient_id="pat1", entity_ref="Observation/o1", version="2",
...                  labels=[], query=None, recorded="2026-01-01T09:00:00Z")
>>> ev["type"]["code"], ev["subtype"][0]["code"], [e["role"]["code"] for e in ev["entity"]]
('rest', 'read', ['4', '1'])
>>> event_patient(ev), event_username(ev)
('pat1', 'ma.garcia')
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Mapping
from typing import Any

from ehr_sandbox.errors import ValidationError
from synthetic.systems import (
    AUDIT_ENTITY_TYPE,
    AUDIT_EVENT_TYPE,
    DICOM,
    OBJECT_ROLE,
    RESTFUL_INTERACTION,
    SANDBOX_AUDIT_INTERACTION,
    SANDBOX_ROLE,
    SECURITY_SOURCE_TYPE,
    USERNAME,
    V3_ACT_REASON,
    V3_PARTICIPATION_TYPE,
)

__all__ = [
    "ACTIONS",
    "APPLICATION_NAME",
    "BTG_START",
    "BTG_STOP",
    "OUTCOMES",
    "build_event",
    "event_patient",
    "event_username",
]

DCM = DICOM
SANDBOX_INTERACTION = SANDBOX_AUDIT_INTERACTION
ROLE_SYSTEM = SANDBOX_ROLE
USERNAME_SYSTEM = USERNAME
PARTICIPATION_TYPE = V3_PARTICIPATION_TYPE
ACT_REASON = V3_ACT_REASON
ENTITY_TYPE = AUDIT_ENTITY_TYPE
SOURCE_TYPE = SECURITY_SOURCE_TYPE
APPLICATION_NAME = "ehr-sandbox"

ACTIONS = frozenset({"C", "R", "U", "D", "E"})
OUTCOMES = {"0": "Success", "4": "Minor failure", "8": "Serious failure", "12": "Major failure"}
RESTFUL_CODES = frozenset(
    {
        "read",
        "vread",
        "update",
        "patch",
        "delete",
        "history",
        "history-instance",
        "history-type",
        "history-system",
        "create",
        "search",
        "search-type",
        "search-system",
        "capabilities",
        "transaction",
        "batch",
        "operation",
    }
)
BTG_START = frozenset({"break-glass", "break-glass-start"})
BTG_STOP = frozenset({"break-glass-stop", "break-glass-end"})
_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")
_INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


def _coding(system: str, code: str, display: str | None = None) -> dict[str, str]:
    out = {"system": system, "code": code}
    if display:
        out["display"] = display
    return out


def _require(ok: bool, path: str, expected: str, found: object) -> None:
    if not ok:
        raise ValidationError("AuditEvent", path, expected, found=found)


def _user_agent(user: Mapping[str, Any], purpose: str) -> dict[str, Any]:
    username = user.get("username")
    role = user.get("role")
    _require(
        isinstance(username, str) and bool(username),
        "user.username",
        "the user's login name",
        username,
    )
    _require(isinstance(role, str) and bool(role), "user.role", "the user's role key", role)
    who: dict[str, Any] = {
        "identifier": {"system": USERNAME_SYSTEM, "value": username},
        "display": username,
    }
    if user.get("practitioner_id"):
        who["reference"] = f"Practitioner/{user['practitioner_id']}"
    elif user.get("patient_id"):
        who["reference"] = f"Patient/{user['patient_id']}"
    return {
        "type": {"coding": [_coding(PARTICIPATION_TYPE, "IRCP", "information recipient")]},
        "role": [{"coding": [_coding(ROLE_SYSTEM, role)]}],
        "who": who,
        "altId": username,
        "requestor": True,
        "purposeOfUse": [{"coding": [_coding(ACT_REASON, purpose)]}],
    }


def _application_agent() -> dict[str, Any]:
    return {
        "type": {"coding": [_coding(DCM, "110150", "Application")]},
        "who": {"display": APPLICATION_NAME},
        "requestor": False,
    }


def _type_and_subtype(interaction: str) -> tuple[dict[str, str], list[dict[str, str]]]:
    if interaction in BTG_START:
        return _coding(DCM, "110113", "Security Alert"), [
            _coding(DCM, "110127", "Emergency Override Started")
        ]
    if interaction in BTG_STOP:
        return _coding(DCM, "110113", "Security Alert"), [
            _coding(DCM, "110138", "Emergency Override Stopped")
        ]
    system = RESTFUL_INTERACTION if interaction in RESTFUL_CODES else SANDBOX_INTERACTION
    return _coding(AUDIT_EVENT_TYPE, "rest", "RESTful Operation"), [_coding(system, interaction)]


def _entities(
    patient_id: str | None,
    entity_ref: str | None,
    version: str | None,
    labels: Iterable[Mapping[str, Any]],
    query: str | None,
) -> list[dict[str, Any]]:
    entities: list[dict[str, Any]] = []
    if entity_ref:
        _require(
            isinstance(entity_ref, str) and "/" in entity_ref,
            "entity_ref",
            "a reference 'Type/id'",
            entity_ref,
        )
        ref = (
            f"{entity_ref}/_history/{version}"
            if version and "/_history/" not in entity_ref
            else entity_ref
        )
        data: dict[str, Any] = {
            "what": {"reference": ref},
            "type": _coding(ENTITY_TYPE, "2", "System Object"),
            "role": _coding(OBJECT_ROLE, "4", "Domain Resource"),
        }
        security = [dict(label) for label in labels if isinstance(label, Mapping)]
        if security:
            data["securityLabel"] = security
        entities.append(data)
    if patient_id:
        entities.append(
            {
                "what": {"reference": f"Patient/{patient_id}"},
                "type": _coding(ENTITY_TYPE, "1", "Person"),
                "role": _coding(OBJECT_ROLE, "1", "Patient"),
            }
        )
    if query:
        entities.append(
            {
                "type": _coding(ENTITY_TYPE, "2", "System Object"),
                "role": _coding(OBJECT_ROLE, "24", "Query"),
                "query": base64.b64encode(query.encode("utf-8")).decode("ascii"),
            }
        )
    return entities


def build_event(
    *,
    action: str,
    interaction: str,
    outcome: str,
    user: Mapping[str, Any],
    purpose: str,
    patient_id: str | None = None,
    entity_ref: str | None = None,
    version: str | None = None,
    labels: Iterable[Mapping[str, Any]] = (),
    query: str | None = None,
    recorded: str,
    detail: str | None = None,
) -> dict[str, Any]:
    """Build one AuditEvent (a plain dict that validates as FHIR R4).

    ``action`` C/R/U/D/E (``"E-BTG"`` is accepted as E for a break-the-glass start);
    ``interaction`` a restful-interaction code (read, vread, search, create, ...) or a
    sandbox one (break-glass-start/-stop, export, sign, audit-read, ...); ``outcome``
    "0"/"4"/"8"/"12"; ``user`` has username, role and practitioner_id (or patient_id);
    ``purpose`` a v3-ActReason purpose of use (TREAT, HPAYMT, HRESCH, BTG, ...); ``detail``
    goes to ``outcomeDesc`` (a denial's reason, a break-the-glass reason).

    >>> ev = build_event(action="E-BTG", interaction="break-glass-start", outcome="0",
    ...                  user={"username": "dr.patel", "role": "physician", "practitioner_id": "p"},
    ...                  purpose="BTG", patient_id="x", recorded="2026-01-01T09:00:00Z", detail="unconscious")
    >>> ev["type"]["code"], ev["subtype"][0]["code"], ev["action"], ev["outcomeDesc"]
    ('110113', '110127', 'E', 'unconscious')
    """
    if action == "E-BTG":
        action, interaction = "E", interaction or "break-glass-start"
    _require(action in ACTIONS, "action", "one of C, R, U, D, E", action)
    _require(
        isinstance(interaction, str) and bool(_CODE.match(interaction)),
        "interaction",
        "an interaction code such as 'read' or 'search'",
        interaction,
    )
    _require(outcome in OUTCOMES, "outcome", "one of '0', '4', '8', '12'", outcome)
    _require(
        isinstance(purpose, str) and bool(_CODE.match(purpose or "")),
        "purpose",
        "a v3-ActReason purpose of use code such as 'TREAT'",
        purpose,
    )
    _require(
        isinstance(recorded, str) and bool(_INSTANT.match(recorded)),
        "recorded",
        "a FHIR instant with a UTC offset, e.g. '2026-01-01T09:00:00Z'",
        recorded,
    )
    _require(
        isinstance(user, Mapping), "user", "a mapping with username, role, practitioner_id", user
    )
    _require(
        patient_id is None or (isinstance(patient_id, str) and bool(patient_id)),
        "patient_id",
        "a Patient id or None",
        patient_id,
    )
    _require(query is None or isinstance(query, str), "query", "the query text or None", query)
    event_type, subtype = _type_and_subtype(interaction)
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "type": event_type,
        "subtype": subtype,
        "action": action,
        "recorded": recorded,
        "outcome": outcome,
    }
    if detail:
        event["outcomeDesc"] = str(detail)
    event["purposeOfEvent"] = [{"coding": [_coding(ACT_REASON, purpose)]}]
    event["agent"] = [_user_agent(user, purpose), _application_agent()]
    event["source"] = {
        "site": APPLICATION_NAME,
        "observer": {"display": APPLICATION_NAME},
        "type": [_coding(SOURCE_TYPE, "4", "Application Server")],
    }
    entities = _entities(patient_id, entity_ref, version, labels, query)
    if entities:
        event["entity"] = entities
    return event


def event_patient(event: Mapping[str, Any]) -> str | None:
    """The id of the patient an event is about (entity with object-role 1), or None.

    >>> event_patient({"entity": [{"role": {"code": "1"}, "what": {"reference": "Patient/a"}}]})
    'a'
    """
    for entity in event.get("entity", ()):
        if entity.get("role", {}).get("code") == "1":
            ref = entity.get("what", {}).get("reference", "")
            return ref.split("/", 1)[1] if ref.startswith("Patient/") else None
    return None


def event_username(event: Mapping[str, Any]) -> str | None:
    """The username of the requesting user of an event, or None.

    >>> event_username({"agent": [{"requestor": True, "altId": "rn.kim"}]})
    'rn.kim'
    """
    for agent in event.get("agent", ()):
        if agent.get("requestor"):
            return agent.get("altId") or agent.get("who", {}).get("identifier", {}).get("value")
    return None
