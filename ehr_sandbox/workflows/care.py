"""What the clinical MA workflows share: patient identification, FHIR building blocks, routing.

Every clinical operation starts from a patient identified with **two identifiers** (name, date
of birth, MRN: any two). :func:`identify` checks them against the chart and records the check
in the audit trail (an action of kind :data:`IDENTIFY_KIND` through
:meth:`~ehr_sandbox.session.Session.audit_action`: which identifiers were checked and whether
each matched, never their values); every care operation calls :func:`require_identified`
first, which asks the audit trail whether this user's latest identification of the patient
today (the visit) matched, and refuses otherwise (The Joint Commission NPSG.01.01.01). A
mismatch is recorded too, and stops care until the patient is identified again. Writes go
through :func:`ehr_sandbox.workflows.base.write` / ``write_all`` (Provenance, audit, operation
tag).

>>> from ehr_sandbox.sandbox import Sandbox
>>> s = demo_session()
>>> p = s.search("Patient").first()
>>> ref = identify(s, f"Patient/{p['id']}", name=display_name(p), birth_date=p["birthDate"])
>>> ref == f"Patient/{p['id']}" and is_identified(s, ref)
True
"""

from __future__ import annotations

import itertools
import json
import uuid
from datetime import date, datetime
from functools import cache
from typing import TYPE_CHECKING, Any

from ehr_sandbox.errors import NotFound
from ehr_sandbox.workflows.base import Rule, RuleRefused, now, now_text, today, write_all
from synthetic.systems import (
    LOINC,
    MRN,
    OBSERVATION_CATEGORY,
    SANDBOX_OBSERVATION,
    SNOMED,
    TASK_CODE,
    UCUM,
)

if TYPE_CHECKING:
    from ehr_sandbox.session import Session

__all__ = [
    "LOINC",
    "MRN_SYSTEM",
    "OBS_CATEGORY",
    "SANDBOX_OBS",
    "SNOMED",
    "UCUM",
    "IDENTIFY",
    "IDENTIFY_KIND",
    "identification",
    "age_days",
    "age_months",
    "age_years",
    "category",
    "coding",
    "demo_session",
    "display_name",
    "identify",
    "is_identified",
    "loinc_concept",
    "mrn_of",
    "provider_of",
    "quantity",
    "read_patient",
    "refuse",
    "require_identified",
    "routed_task",
    "user_ref",
    "write_entries",
]

MRN_SYSTEM = MRN
OBS_CATEGORY = OBSERVATION_CATEGORY
SANDBOX_OBS = SANDBOX_OBSERVATION
"""Sandbox codes for findings with no LOINC code we ship (monofilament sites, pedal pulses,
colour vision, audiometry, QC and sterilization logs); ours, like the sandbox procedure codes."""

IDENTIFY = Rule(
    "care.two-identifiers",
    "identify the patient with two identifiers (name, date of birth, MRN) before any care; "
    "a mismatch stops care",
    "The Joint Commission NPSG.01.01.01 (2025)",
)

IDENTIFY_KIND = "patient-identify"
"""Audit action kind of a patient identification; its detail is JSON
``{"checked": {identifier: matched}, "matched": bool}`` (identifier names only, no values)."""


def refuse(
    rule: Rule, resource: str, path: str, expected: str, found: object = None
) -> RuleRefused:
    """A :class:`RuleRefused` to raise (keeps call sites short).

    Examples
    --------
    >>> str(refuse(IDENTIFY, "Patient", "birth_date", "the chart's date of birth", "2000-01-01"))[:40]
    "Patient: birth_date: expected the chart'"
    """
    return RuleRefused(rule, resource=resource, path=path, expected=expected, found=found)


@cache
def _demo_sandbox() -> Any:
    from ehr_sandbox.sandbox import Sandbox

    return Sandbox.generate(patients=4, seed=16, years=1)


def demo_session(username: str = "ma.garcia") -> Session:
    """A session on a small shared demo clinic (used by the docstring examples).

    Examples
    --------
    >>> demo_session().user.role
    'medical_assistant'
    """
    return _demo_sandbox().login(username)


def display_name(patient: dict[str, Any]) -> str:
    """``"Given Family"`` of the official (first) name.

    Examples
    --------
    >>> display_name({"name": [{"family": "Lee", "given": ["Ann", "Marie"]}]})
    'Ann Lee'
    """
    name = (patient.get("name") or [{}])[0]
    given = (name.get("given") or [""])[0]
    return f"{given} {name.get('family', '')}".strip()


def mrn_of(patient: dict[str, Any]) -> str | None:
    """The patient's MRN, if any.

    Examples
    --------
    >>> mrn_of({"identifier": [{"system": MRN_SYSTEM, "value": "MRN1"}]})
    'MRN1'
    """
    for ident in patient.get("identifier", []):
        if ident.get("system") == MRN_SYSTEM:
            return ident.get("value")
    return None


def _norm_name(text: str) -> str:
    parts = str(text).replace(",", " ").lower().split()
    return " ".join(sorted(parts))


def _name_matches(patient: dict[str, Any], given: str) -> bool:
    want = _norm_name(given)
    for name in patient.get("name", []):
        first = (name.get("given") or [""])[0]
        candidates = {
            _norm_name(f"{first} {name.get('family', '')}"),
            _norm_name(" ".join([*name.get("given", []), name.get("family", "")])),
        }
        if want in candidates:
            return True
    return False


def read_patient(session: Session, patient: str) -> dict[str, Any]:
    """Read ``Patient/<id>`` (or a bare id) through the session.

    Examples
    --------
    >>> s = demo_session()
    >>> pid = s.search("Patient").first()["id"]
    >>> read_patient(s, pid)["id"] == pid
    True
    """
    pid = patient.split("/", 1)[1] if patient.startswith("Patient/") else patient
    return session.read("Patient", pid)


def identify(
    session: Session,
    patient: str,
    *,
    name: str | None = None,
    birth_date: str | None = None,
    mrn: str | None = None,
) -> str:
    """Confirm the patient's identity with two identifiers; returns ``"Patient/<id>"``.

    Parameters
    ----------
    session : Session
        The user's session.
    patient : str
        The chart you are about to work on (``Patient/<id>``).
    name, birth_date, mrn : str, optional
        What the patient states / the wristband or label shows; at least two are required.

    Returns
    -------
    str
        The patient reference; the check (identifier names and whether each matched) is in
        the audit trail, where :func:`require_identified` finds it.

    Raises
    ------
    RuleRefused
        ``care.two-identifiers`` when fewer than two identifiers are given or one does not
        match the chart.

    Examples
    --------
    >>> s = demo_session()
    >>> p = s.search("Patient").first()
    >>> identify(s, p["id"], name="Nobody Here", birth_date=p["birthDate"])
    Traceback (most recent call last):
    ...
    ehr_sandbox.workflows.base.RuleRefused: Patient: name: expected the name on the chart (found 'Nobody Here'). Refused by rule care.two-identifiers: identify the patient with two identifiers (name, date of birth, MRN) before any care; a mismatch stops care [The Joint Commission NPSG.01.01.01 (2025)]
    """
    on_server = getattr(session, "identify_on_server", None)
    if on_server is not None:
        # a remote session: the server compares and audits (a client never records it)
        return str(on_server(patient, name=name, birth_date=birth_date, mrn=mrn))
    given = {k: v for k, v in (("name", name), ("birth_date", birth_date), ("mrn", mrn)) if v}
    if len(given) < 2:
        raise refuse(
            IDENTIFY, "Patient", "identifiers", "two of name, birth_date, mrn", sorted(given)
        )
    try:
        chart = read_patient(session, patient)
    except NotFound:
        raise refuse(IDENTIFY, "Patient", "patient", "a chart you can open", patient) from None
    ref = f"Patient/{chart['id']}"
    checked = {
        "name": lambda v: _name_matches(chart, v),
        "birth_date": lambda v: str(v) == chart.get("birthDate"),
        "mrn": lambda v: str(v) == mrn_of(chart),
    }
    results = {k: bool(checked[k](v)) for k, v in given.items()}
    matched = all(results.values())
    session.audit_action(
        IDENTIFY_KIND,
        patient=ref,
        detail=json.dumps({"checked": results, "matched": matched}, sort_keys=True),
    )
    expected = {
        "name": "the name on the chart",
        "birth_date": "the date of birth on the chart",
        "mrn": "the MRN on the chart",
    }
    for key in ("name", "birth_date", "mrn"):
        if key in results and not results[key]:
            raise refuse(IDENTIFY, "Patient", key, expected[key], given[key])
    return ref


def identification(event: dict[str, Any]) -> dict[str, Any] | None:
    """What a :data:`IDENTIFY_KIND` audit event records (``checked``, ``matched``), or None
    when the event is not one or its detail does not show two identifiers checked.

    Examples
    --------
    >>> e = {"subtype": [{"code": IDENTIFY_KIND}],
    ...      "outcomeDesc": '{"checked": {"birth_date": true, "name": true}, "matched": true}'}
    >>> identification(e)["matched"]
    True
    >>> identification({**e, "outcomeDesc": '{"checked": {"name": true}, "matched": true}'}) is None
    True
    """
    if not any(c.get("code") == IDENTIFY_KIND for c in event.get("subtype", []) or []):
        return None
    try:
        detail = json.loads(str(event.get("outcomeDesc", "")))
    except ValueError:
        return None
    checked = detail.get("checked") if isinstance(detail, dict) else None
    if (
        not isinstance(checked, dict)
        or len(set(checked) & {"name", "birth_date", "mrn"}) < 2
        or not all(isinstance(v, bool) for v in checked.values())
    ):
        return None
    return {"checked": checked, "matched": detail.get("matched") is True and all(checked.values())}


def is_identified(session: Session, patient: str) -> bool:
    """Whether this user's latest identification of the patient during the visit (today, on
    the sandbox clock) matched, as the audit trail records it.

    Examples
    --------
    >>> is_identified(demo_session("ma.chen"), "Patient/nobody")
    False
    """
    ref = patient if patient.startswith("Patient/") else f"Patient/{patient}"
    clock_now = now(session)
    latest = None
    for e in session.own_actions(IDENTIFY_KIND, patient=ref):
        try:
            when = parse_instant(str(e.get("recorded", "")))
        except ValueError:
            continue
        if when.astimezone(clock_now.tzinfo).date() == clock_now.date():
            latest = e
    found = identification(latest) if latest is not None else None
    return bool(found and found["matched"])


def require_identified(session: Session, patient: str, resource: str) -> str:
    """Refuse care unless the patient was identified in this session; returns the reference.

    Examples
    --------
    >>> require_identified(demo_session("ma.chen"), "Patient/x", "Observation")
    Traceback (most recent call last):
    ...
    ehr_sandbox.workflows.base.RuleRefused: Observation: subject: expected a patient identified with two identifiers first (care.identify) (found 'Patient/x'). Refused by rule care.two-identifiers: identify the patient with two identifiers (name, date of birth, MRN) before any care; a mismatch stops care [The Joint Commission NPSG.01.01.01 (2025)]
    """
    ref = patient if str(patient).startswith("Patient/") else f"Patient/{patient}"
    if not is_identified(session, ref):
        raise refuse(
            IDENTIFY,
            resource,
            "subject",
            "a patient identified with two identifiers first (care.identify)",
            ref,
        )
    return ref


def _birth(patient: dict[str, Any]) -> date:
    return date.fromisoformat(str(patient["birthDate"])[:10])


def age_days(patient: dict[str, Any], on: date) -> int:
    """Age in days on ``on``.

    Examples
    --------
    >>> age_days({"birthDate": "2025-01-01"}, date(2025, 3, 1))
    59
    """
    return (on - _birth(patient)).days


def age_months(patient: dict[str, Any], on: date) -> int:
    """Completed months of age on ``on``.

    Examples
    --------
    >>> age_months({"birthDate": "2024-01-31"}, date(2025, 1, 30))
    11
    """
    b = _birth(patient)
    months = (on.year - b.year) * 12 + on.month - b.month
    return months - 1 if on.day < b.day else months


def age_years(patient: dict[str, Any], on: date) -> int:
    """Completed years of age on ``on``.

    Examples
    --------
    >>> age_years({"birthDate": "2000-06-15"}, date(2026, 6, 14))
    25
    """
    return age_months(patient, on) // 12


def coding(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    """A CodeableConcept with one coding (and its display as text).

    Examples
    --------
    >>> coding(LOINC, "8867-4", "Heart rate")["text"]
    'Heart rate'
    """
    c: dict[str, Any] = {"system": system, "code": code}
    if display:
        c["display"] = display
    out: dict[str, Any] = {"coding": [c]}
    if display:
        out["text"] = display
    return out


def loinc_concept(code: str) -> dict[str, Any]:
    """A LOINC CodeableConcept with the display from the shipped code set.

    Examples
    --------
    >>> loinc_concept("8867-4")["coding"][0]["display"]
    'Heart rate'
    """
    from synthetic.content import load_content

    return coding(LOINC, code, load_content().codes["loinc"].display(code))


def category(code: str) -> list[dict[str, Any]]:
    """An Observation.category list with one observation-category code.

    Examples
    --------
    >>> category("vital-signs")[0]["coding"][0]["code"]
    'vital-signs'
    """
    return [{"coding": [{"system": OBS_CATEGORY, "code": code}]}]


def quantity(value: float, unit: str) -> dict[str, Any]:
    """A UCUM Quantity.

    Examples
    --------
    >>> quantity(72, "/min")["system"]
    'http://unitsofmeasure.org'
    """
    return {"value": value, "unit": unit, "system": UCUM, "code": unit}


def user_ref(session: Session) -> dict[str, Any]:
    """A Reference to the acting user (Practitioner), or a display for accounts without one.

    Examples
    --------
    >>> user_ref(demo_session())["reference"]
    'Practitioner/prac-ma.garcia'
    """
    ref = session.user.ref
    return {"reference": ref} if ref else {"display": session.user.username}


def provider_of(patient: dict[str, Any], provider: str | None = None) -> str:
    """The provider to route to: ``provider`` if given, else the patient's general practitioner.

    Examples
    --------
    >>> provider_of({"generalPractitioner": [{"reference": "Practitioner/p1"}]})
    'Practitioner/p1'
    """
    if provider:
        return provider
    for gp in patient.get("generalPractitioner", []):
        ref = gp.get("reference", "")
        if ref.startswith("Practitioner/"):
            return ref
    return "Practitioner/prac-dr.patel"


def routed_task(
    session: Session,
    patient: str,
    owner: str,
    text: str,
    *,
    focus: str | None = None,
    priority: str = "routine",
    code: str = "fulfill",
    business_status: str | None = None,
) -> dict[str, Any]:
    """A Task (not yet written) that routes ``text`` to ``owner`` (the provider) for action.

    Examples
    --------
    >>> t = routed_task(demo_session(), "Patient/p", "Practitioner/d", "BP 182/110", priority="urgent")
    >>> t["owner"]["reference"], t["priority"], t["status"]
    ('Practitioner/d', 'urgent', 'requested')
    """
    task: dict[str, Any] = {
        "resourceType": "Task",
        "status": "requested",
        "intent": "order",
        "priority": priority,
        "code": {"coding": [{"system": TASK_CODE, "code": code}]},
        "description": text,
        "for": {"reference": patient},
        "authoredOn": now_text(session),
        "requester": user_ref(session),
        "owner": {"reference": owner},
    }
    if focus:
        task["focus"] = {"reference": focus}
    if business_status:
        task["businessStatus"] = {"text": business_status}
    return task


def parse_instant(text: str) -> datetime:
    """A FHIR dateTime as an aware datetime (dates become midnight UTC).

    Examples
    --------
    >>> parse_instant("2026-01-05").isoformat()
    '2026-01-05T00:00:00+00:00'
    """
    if len(text) == 10:
        text += "T00:00:00+00:00"
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


__all__ += ["now", "now_text", "parse_instant", "today"]


_URN_NS = uuid.UUID("8d6a3c2e-16a1-5c1e-9a7e-6d1c1a16a016")
_URN_COUNTER = itertools.count()


def _fresh_urn(session: Session) -> str:
    return f"urn:uuid:{uuid.uuid5(_URN_NS, f'{next(_URN_COUNTER)}:{now_text(session)}')}"


def write_entries(
    session: Session, entries: list[dict[str, Any]], *, operation: str
) -> list[dict[str, Any]]:
    """:func:`~ehr_sandbox.workflows.base.write_all` with fresh ``urn:uuid`` fullUrls.

    The transaction planner takes a create's id from its ``urn:uuid`` fullUrl (or from its
    content) and keeps an existing resource with that id unchanged, so fixed placeholder urns
    or two identical entries would silently not be written. Every placeholder fullUrl (and
    every reference to it) is replaced by a new urn, and plain resources get one too.

    Examples
    --------
    >>> s = demo_session()
    >>> p = s.search("Patient").first()
    >>> t = routed_task(s, f"Patient/{p['id']}", "Practitioner/prac-dr.patel", "same text")
    >>> a = write_entries(s, [t], operation="demo.op")[0]
    >>> b = write_entries(s, [t], operation="demo.op")[0]
    >>> a["id"] != b["id"]
    True
    """
    text = json.dumps(entries)
    for entry in entries:
        old = entry.get("fullUrl") if "resource" in entry and "resourceType" not in entry else None
        if old:
            text = text.replace(
                json.dumps(old)[1:-1], _fresh_urn(session)[9:].join(["urn:uuid:", ""])
            )
    fresh = json.loads(text)
    out = [
        e
        if ("resource" in e and "resourceType" not in e)
        else {"fullUrl": _fresh_urn(session), "resource": e}
        for e in fresh
    ]
    return write_all(session, out, operation=operation)
