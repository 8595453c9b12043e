"""Every derivation link hides what derives from a hidden record, on every Session channel.

``derived.DERIVED_FROM`` names, per type, the reference elements a record inherits labels
along (tests/test_derived_rule.py keeps it one rule over the R4B definitions). The rule here,
stated over **every** ``(type, element)`` of it that the generated clinic holds a record of, or
that a minimal record of the type can be written for:

    Write a record of the element's target type that a user may not see (restricted, HIV),
    then a record of ``type`` pointing at it through ``element``. For a user without the
    clearance (the instructor: every patient, ceiling N, may export) nothing differs from
    before the two writes: counts, ``_count=0`` and paged Bundle totals and links, ids,
    ``_sort`` order, type history, wildcard ``_include``/``_revinclude`` (from the record's
    type and from its patient), and bulk export (what is exported, and the record's id
    nowhere in it).

Only links of types the observer reads none of are not written; a second test fails if any
other link stops being written (no template, a record the validator refuses).
"""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import Any

import pytest

from ehr_sandbox.access.derived import DERIVED_FROM, VERSIONED_ONLY
from ehr_sandbox.access.labels import ACT_CODE, CONFIDENTIALITY
from ehr_sandbox.errors import SandboxError, ValidationError
from ehr_sandbox.sandbox import Sandbox
from ehr_sandbox.session import Session
from ehr_sandbox.validation.r4b import rules

OBSERVER = "instructor.lee"
HIDDEN = [
    {"system": CONFIDENTIALITY, "code": "R"},
    {"system": ACT_CODE, "code": "HIV"},
]


def _subject(pid: str) -> dict[str, str]:
    return {"reference": f"Patient/{pid}"}


def _directory(system: Session, pid: str) -> dict[str, Any]:
    """References a financial record needs: the patient's coverage, an organization, a
    payment, a claim."""
    out: dict[str, Any] = {}
    for rtype in ("Coverage", "Organization", "PaymentReconciliation", "Claim", "Practitioner"):
        found = _first(system, rtype, pid)
        if found is not None:
            out[rtype] = {"reference": f"{rtype}/{found['id']}"}
    return out


def _minimal(rtype: str, pid: str, day: str, extra: dict[str, Any]) -> dict[str, Any] | None:
    """A minimal valid record of a type the generated clinic does not hold (None: none here)."""
    coded = {"text": "review"}
    made: dict[str, dict[str, Any]] = {
        "Communication": {
            "status": "completed",
            "subject": _subject(pid),
            "sent": f"{day}T08:00:00+00:00",
        },
        "CommunicationRequest": {"status": "active", "subject": _subject(pid)},
        "CarePlan": {"status": "active", "intent": "plan", "subject": _subject(pid)},
        "Goal": {
            "lifecycleStatus": "active",
            "description": coded,
            "subject": _subject(pid),
        },
        "CareTeam": {"status": "active", "subject": _subject(pid)},
        "ClinicalImpression": {"status": "completed", "subject": _subject(pid)},
        "RiskAssessment": {"status": "final", "subject": _subject(pid)},
        "DetectedIssue": {"status": "final", "patient": _subject(pid)},
        "EpisodeOfCare": {"status": "active", "patient": _subject(pid)},
        "MedicationStatement": {
            "status": "active",
            "medicationCodeableConcept": coded,
            "subject": _subject(pid),
        },
        "MedicationDispense": {
            "status": "completed",
            "medicationCodeableConcept": coded,
            "subject": _subject(pid),
        },
        "DeviceRequest": {
            "status": "active",
            "intent": "order",
            "codeCodeableConcept": coded,
            "subject": _subject(pid),
        },
        "ImagingStudy": {"status": "available", "subject": _subject(pid)},
        "Media": {
            "status": "completed",
            "content": {"contentType": "image/png"},
            "subject": _subject(pid),
        },
        "Composition": {
            "status": "final",
            "type": coded,
            "subject": _subject(pid),
            "date": f"{day}T08:00:00+00:00",
            "author": [{"reference": "Practitioner/prac-dr.patel"}],
            "title": "Summary",
        },
        "AppointmentResponse": {"participantStatus": "accepted", "actor": _subject(pid)},
        "ChargeItem": {"status": "billable", "code": coded, "subject": _subject(pid)},
        "PaymentNotice": {
            "status": "active",
            "created": day,
            "payment": extra.get("PaymentReconciliation"),
            "recipient": extra.get("Organization"),
            "amount": {"value": 10, "currency": "USD"},
        },
        "ExplanationOfBenefit": {
            "status": "active",
            "type": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/claim-type",
                        "code": "professional",
                    }
                ]
            },
            "use": "claim",
            "patient": _subject(pid),
            "created": day,
            "insurer": extra.get("Organization"),
            "provider": extra.get("Practitioner"),
            "outcome": "complete",
            "insurance": [{"focal": True, "coverage": extra.get("Coverage")}],
        },
        "FamilyMemberHistory": {
            "status": "completed",
            "patient": _subject(pid),
            "relationship": coded,
        },
    }
    body = made.get(rtype)
    return None if body is None else {"resourceType": rtype, **copy.deepcopy(body)}


FILL: dict[str, dict[str, Any]] = {
    # required elements of a backbone element the template does not have yet
    "Claim.procedure": {"sequence": 1},
    "DocumentReference.relatesTo": {"code": "appends"},
    "CarePlan.activity.detail": {"status": "scheduled"},
    "Composition.section": {
        "title": "Summary",
        "text": {
            "status": "generated",
            "div": '<div xmlns="http://www.w3.org/1999/xhtml">Summary</div>',
        },
    },
}


def _set(
    record: dict[str, Any], path: tuple[str, ...], ref: dict[str, Any], flip: bool = False
) -> None:
    """Point ``record``'s element ``path`` (through backbone elements) at ``ref`` only (a
    list or a single value as R4B defines it; ``flip``: the other one, for types the rules
    file does not describe)."""
    types = rules()["types"]
    node, where = record, record["resourceType"]
    for i, part in enumerate(path):
        info = types.get(where, {}).get(part)
        many = bool(info.get("n")) if info else True
        many = many != (flip and i == len(path) - 1)
        where = f"{where}.{part}"
        if i == len(path) - 1:
            if part.endswith("Reference"):  # a choice: diagnosis[x] is one of them
                node.pop(part[: -len("Reference")] + "CodeableConcept", None)
            node[part] = [ref] if many else ref
            return
        old = node.get(part)
        child = {
            **FILL.get(where, {}),
            **((old[0] if isinstance(old, list) and old else old) or {}),
        }
        node[part] = [child] if many else child
        node = child


def _targets(rtype: str, path: tuple[str, ...]) -> list[str]:
    found = list(rules()["references"].get(rtype, {}).get(".".join(path), ()))
    return ["Condition"] if found in (["Resource"], []) else found


def _bare(record: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(record)
    for key in ("id", "meta", "text"):
        out.pop(key, None)
    return out


def _patient(record: dict[str, Any]) -> str | None:
    from ehr_sandbox.access import patient_of

    return patient_of(record)


CASES = [(t, p) for t in sorted(DERIVED_FROM) for p in DERIVED_FROM[t]]


@pytest.fixture(scope="module")
def clinic() -> Sandbox:
    return Sandbox.generate(patients=4, seed=5, years=1)


@pytest.fixture(scope="module")
def untouched(clinic: Sandbox) -> dict[Any, Any]:
    """What the observer sees of the module's clinic (never written to), worked out once per
    question: many cases ask the same one."""
    return {}


def _safe(f: Any) -> Any:
    try:
        return f()
    except SandboxError as exc:
        return f"{type(exc).__name__}: {exc}"


def _seen(s: Session, rtype: str, source_type: str, pid: str) -> dict[str, Any]:
    """What ``s`` learns of ``rtype`` and ``source_type`` (and of ``pid``'s records)."""
    out: dict[str, Any] = {}
    for t in sorted({rtype, source_type}):

        def page(t: str = t) -> Any:
            b = s.search(t, _count="2").bundle()
            return b.get("total"), [e["resource"]["id"] for e in b.get("entry", [])]

        def included(t: str = t) -> Any:
            b = s.search(t, _include="*", _revinclude="*").bundle()
            return b.get("total"), sorted(
                (e["resource"]["resourceType"], e["resource"]["id"]) for e in b.get("entry", [])
            )

        out[f"count {t}"] = _safe(lambda t=t: s.search(t).count())
        out[f"count=0 {t}"] = _safe(lambda t=t: s.search(t, _count="0").bundle().get("total"))
        out[f"page {t}"] = _safe(page)
        out[f"ids {t}"] = _safe(lambda t=t: sorted(r["id"] for r in s.search(t).fetch_all()))
        out[f"sort {t}"] = _safe(
            lambda t=t: [r["id"] for r in s.search(t, _sort="-_lastUpdated", _count="3").fetch()]
        )
        out[f"history {t}"] = _safe(
            lambda t=t: sorted((v["id"], v["meta"].get("versionId")) for v in s.history(t))
        )
        out[f"includes {t}"] = _safe(included)
    out["patient revinclude"] = _safe(
        lambda: sorted(
            (e["resource"]["resourceType"], e["resource"]["id"])
            for e in s.search("Patient", _id=pid, _revinclude="*").bundle().get("entry", [])
        )
    )
    return out


def _export(s: Session) -> tuple[Any, str]:
    with tempfile.TemporaryDirectory() as out:
        counts = _safe(lambda: s.export(out))
        text = "".join(p.read_text() for p in sorted(Path(out).rglob("*")) if p.is_file())
    return counts, text


def _first(system: Session, rtype: str, pid: str) -> dict[str, Any] | None:
    """A record of ``rtype`` of ``pid`` (any record of it when it has no patient)."""
    try:
        found = system.search(rtype, patient=f"Patient/{pid}").first()
    except SandboxError:
        found = None
    return found or next(iter(system.resources(rtype)), None)


def _write_case(
    sb: Sandbox, rtype: str, path: tuple[str, ...]
) -> tuple[dict[str, Any], dict[str, Any]] | str:
    """The hidden source and the record derived from it through ``path``, or why not."""
    system = sb.system_session()
    day = str(sb.reference_date)
    held = list(system.resources(rtype))
    template = next((r for r in held if _patient(r)), held[0] if held else None)
    pid = _patient(template) if template else None
    if pid is None:
        pid = sorted(p["id"] for p in system.search("Patient").fetch_all())[0]
    extra = _directory(system, pid)
    record = _bare(template) if template else _minimal(rtype, pid, day, extra)
    if record is None:
        return "no record of the type can be made here"
    coverage = _first(system, "Coverage", pid)
    if rtype == "ClaimResponse" and coverage is not None:
        insurance = record.setdefault("insurance", [{"sequence": 1, "focal": True}])
        insurance[0]["coverage"] = {"reference": f"Coverage/{coverage['id']}"}
    source_template = None
    for target in _targets(rtype, path):
        source_template = _first(system, target, pid) or _minimal(target, pid, day, extra)
        if source_template is not None:
            break
    if source_template is None:
        return "no record of a target type to point at"
    source = _bare(source_template)
    source["meta"] = {"security": copy.deepcopy(HIDDEN)}
    source = system.create(source)
    ref = f"{source['resourceType']}/{source['id']}"
    if rtype in VERSIONED_ONLY:
        ref += f"/_history/{source['meta']['versionId']}"
    try:
        attempt = copy.deepcopy(record)
        _set(attempt, path, {"reference": ref})
        return source, system.create(attempt)
    except ValidationError:
        _set(record, path, {"reference": ref}, flip=True)
        return source, system.create(record)


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}.{'.'.join(c[1])}")
def test_a_record_derived_from_a_hidden_one_changes_no_channel(
    clinic: Sandbox, untouched: dict[Any, Any], case: tuple[str, tuple[str, ...]]
) -> None:
    rtype, path = case
    sb = clinic.copy()
    s = sb.login(OBSERVER)
    if rtype not in s.readable_types():
        pytest.skip(f"{OBSERVER} reads no {rtype}: nothing of it can show")
    try:
        written = _write_case(sb, rtype, path)
    except SandboxError as exc:
        pytest.skip(f"a {rtype} with {'.'.join(path)} cannot be written here: {exc}")
    if isinstance(written, str):
        pytest.skip(written)
    source, derived = written
    # the derived record is hidden as its source is (labels inherited at write)
    s = sb.login(OBSERVER)
    assert not s.exists(f"{rtype}/{derived['id']}")
    assert sb.system_session().read(rtype, derived["id"])["id"] == derived["id"]
    pid = _patient(derived) or _patient(source) or ""
    after = _seen(s, rtype, source["resourceType"], pid)
    # the same channels on the module's untouched clinic (without the two writes)
    key = (rtype, source["resourceType"], pid)
    if key not in untouched:
        untouched[key] = _seen(clinic.login(OBSERVER), *key)
    before = untouched[key]
    changed = {k: (before[k], after.get(k)) for k in before if before[k] != after.get(k)}
    assert changed == {}
    exported_after, text = _export(s)
    if "export" not in untouched:
        untouched["export"] = _export(clinic.login(OBSERVER))[0]
    assert exported_after == untouched["export"]
    assert derived["id"] not in text and source["id"] not in text


def test_most_derivation_links_are_checked_on_the_channels(clinic: Sandbox) -> None:
    """Every link whose type the observer reads is written by the channel test above (none
    of its cases is skipped for want of a record), and they are most of DERIVED_FROM."""
    sb = clinic.copy()
    readable = set(sb.login(OBSERVER).readable_types())
    written, skipped = [], {}
    for rtype, path in CASES:
        if rtype not in readable:
            continue
        try:
            got = _write_case(sb, rtype, path)
        except SandboxError as exc:
            got = f"{type(exc).__name__}: {str(exc)[:120]}"
        if isinstance(got, str):
            skipped[f"{rtype}.{'.'.join(path)}"] = got
        else:
            written.append((rtype, path))
    assert skipped == {}
    assert len(written) >= len(CASES) // 2
