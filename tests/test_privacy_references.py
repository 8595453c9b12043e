"""A record a user may read never carries the text of a record they may not see.

Rules, stated over reference elements, observers and channels:

1. **The redaction itself** (``ehr_sandbox.access.redaction``): for any resource and any set of
   records the reader may see, the output keeps a reference's ``display`` and ``identifier``
   exactly when its target is seen, drops the narrative (``text``, contained ones too) when
   any target it may quote is unseen, marks such a copy ``REDACTED``, and changes nothing else.
2. **Every channel** (read, vread, instance and type history, search with wildcard
   ``_include``/``_revinclude``, a SQL-on-FHIR view, a catalogue-style report view, bulk
   export): a visible record that points at a hidden one (a restricted diagnosis behind an
   Immunization's exempt ``reasonReference``, a List entry, a result of a report, a
   Composition section) reaches a user who may not see the target without the target's
   display, identifier or a narrative quoting them; the same user still gets the record, and
   a user who may see the target gets it whole.
3. **Hidden and absent look the same**: a reference to a record that does not exist is
   redacted the same way.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ehr_sandbox.access.redaction import redact_references, target_of
from ehr_sandbox.errors import ValidationError
from ehr_sandbox.relationships import schedule_window
from ehr_sandbox.sandbox import Sandbox
from ehr_sandbox.session import Session

ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
LOINC = "http://loinc.org"
XHTML = "http://www.w3.org/1999/xhtml"

# ---------------------------------------------------------------------------- rule 1
_TYPES = ["Condition", "Observation", "Patient", "Encounter", "DocumentReference"]
_targets = st.builds(
    lambda t, i: f"{t}/{t[:3].lower()}{i}", st.sampled_from(_TYPES), st.integers(0, 5)
)
_text = st.text(alphabet="abcdefgh XYZ", min_size=1, max_size=8)


@st.composite
def _reference(draw: Any) -> dict[str, Any]:
    ref: dict[str, Any] = {"reference": draw(_targets)}
    if draw(st.booleans()):
        ref["display"] = draw(_text)
    if draw(st.booleans()):
        ref["identifier"] = {"value": draw(_text)}
    return ref


_resource = st.fixed_dictionaries(
    {
        "resourceType": st.just("List"),
        "entry": st.lists(st.fixed_dictionaries({"item": _reference()}), max_size=4),
        "subject": _reference(),
    },
    optional={"text": st.just({"status": "generated", "div": "<div>quoted</div>"})},
)


def _refs(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, dict):
        own = [node] if "reference" in node else []
        return own + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


@settings(max_examples=150, deadline=None)
@given(resource=_resource, seen=st.sets(_targets))
def test_a_reference_keeps_its_text_exactly_when_its_target_is_seen(
    resource: dict[str, Any], seen: set[str]
) -> None:
    before = json.dumps(resource, sort_keys=True)
    out = redact_references(resource, lambda ref: ref in seen)
    assert json.dumps(resource, sort_keys=True) == before  # the input is never modified
    pairs = list(zip(_refs(resource), _refs(out), strict=True))
    for original, released in pairs:
        assert released["reference"] == original["reference"]
        shown = target_of(original["reference"]) in seen
        for key in ("display", "identifier"):
            assert (key in released) == (key in original and shown), (key, original)
    quoting = [o for o, _ in pairs if "text" in resource or "display" in o or "identifier" in o]
    withheld = any(target_of(o["reference"]) not in seen for o in quoting)
    assert ("text" in out) == ("text" in resource and not withheld)
    redacted = any(c.get("code") == "REDACTED" for c in out.get("meta", {}).get("security", []))
    assert redacted == withheld
    if not withheld:
        assert out == resource
    rest = {k: v for k, v in out.items() if k not in ("entry", "subject", "text", "meta")}
    assert rest == {k: v for k, v in resource.items() if k not in ("entry", "subject", "text")}


# ---------------------------------------------------------------------------- rule 2
SECRET = "Zebra-Secret-Diagnosis"
"""The hidden record's name as a referring record quotes it (in no other record)."""

Carrier = Callable[[str, str, dict[str, Any]], dict[str, Any]]


def _narrative(words: str) -> dict[str, str]:
    return {"status": "generated", "div": f'<div xmlns="{XHTML}">{words}</div>'}


def _immunization(pid: str, day: str, ref: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Immunization",
        "status": "completed",
        "vaccineCode": {"coding": [{"system": "http://hl7.org/fhir/sid/cvx", "code": "140"}]},
        "patient": {"reference": f"Patient/{pid}"},
        "occurrenceDateTime": day,
        "reasonReference": [ref],
        "text": _narrative(f"Influenza vaccine, given for {SECRET}"),
    }


def _list(pid: str, day: str, ref: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "List",
        "status": "current",
        "mode": "snapshot",
        "title": "Problems to review",
        "subject": {"reference": f"Patient/{pid}"},
        "date": day,
        "entry": [{"item": ref}],
    }


def _report(pid: str, day: str, ref: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "DiagnosticReport",
        "status": "final",
        "code": {"text": "Panel"},
        "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": day,
        "result": [ref],
    }


CARRIERS: dict[str, tuple[Carrier, str]] = {
    # carrier name -> (how the visible record is made, what kind of hidden record it names)
    "Immunization.reasonReference": (_immunization, "Condition"),  # exempt from inheritance
    "List.entry.item": (_list, "Condition"),
    "DiagnosticReport.result": (_report, "Observation"),
}


def _hidden_target(system: Session, kind: str, pid: str, day: str) -> dict[str, Any]:
    if kind == "Condition":
        return system.create(
            {
                "resourceType": "Condition",
                "code": {"coding": [{"system": ICD10, "code": "B20"}]},
                "subject": {"reference": f"Patient/{pid}"},
                "recordedDate": day,
            }
        )
    return system.create(
        {
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": LOINC, "code": "20447-9"}]},
            "subject": {"reference": f"Patient/{pid}"},
            "effectiveDateTime": day,
            "valueQuantity": {"value": 40, "unit": "copies/mL"},
        }
    )


@pytest.fixture(scope="module")
def clinic() -> Sandbox:
    sb = Sandbox.generate(patients=3, seed=11, years=1)
    system = sb.system_session()
    pid = sorted(p["id"] for p in system.search("Patient").fetch_all())[0]
    start = schedule_window(sb.reference_date)[0]
    system.create(
        {
            "resourceType": "Appointment",
            "status": "booked",
            "start": f"{start}T09:00:00+00:00",
            "end": f"{start}T09:20:00+00:00",
            "participant": [
                {"actor": {"reference": f"Patient/{pid}"}, "status": "accepted"},
                {"actor": {"reference": "Practitioner/prac-dr.patel"}, "status": "accepted"},
            ],
        }
    )
    return sb


def _pid(sb: Sandbox) -> str:
    return sorted(p["id"] for p in sb.system_session().search("Patient").fetch_all())[0]


def _outputs(s: Session, rtype: str, rid: str, element: str) -> dict[str, Any]:
    """What ``s`` receives of ``rtype/rid`` on every channel that can carry it."""
    out: dict[str, Any] = {
        "read": s.read(rtype, rid),
        "vread": s.vread(rtype, rid, "1"),
        "history": s.history(rtype, rid),
        "type history": [v for v in s.history(rtype) if v["id"] == rid],
        "search": s.search(rtype, _id=rid, _include="*", _revinclude="*").bundle(),
        "resources": [r for r in s.resources(rtype) if r["id"] == rid],
    }
    path = element.split(".", 1)[1]
    view = {
        "resource": rtype,
        "select": [
            {"column": [{"name": "id", "path": "id"}]},
            {"forEachOrNull": path, "column": [{"name": "d", "path": "display"}]},
        ],
    }
    out["view"] = [row for row in s.run_view(view) if row["id"] == rid]
    rows, _ = s.report_view({**view, "name": f"probe-{rtype}"})
    out["report view"] = [row for row in rows.to_pylist() if row["id"] == rid]
    return out


def _export(s: Session) -> str:
    with tempfile.TemporaryDirectory() as out:
        s.export(out)
        return "".join(p.read_text() for p in sorted(Path(out).glob("*")) if p.is_file())


@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    carrier=st.sampled_from(sorted(CARRIERS)),
    observer=st.sampled_from(["ma.garcia", "rn.kim"]),
    absent=st.booleans(),
)
def test_no_channel_quotes_a_record_the_reader_may_not_see(
    clinic: Sandbox, carrier: str, observer: str, absent: bool
) -> None:
    make, kind = CARRIERS[carrier]
    system = clinic.system_session()
    pid, day = _pid(clinic), str(clinic.reference_date)
    assert pid in clinic.treating(observer)
    if absent:
        target = f"{kind}/does-not-exist-{carrier.split('.')[0].lower()}"
    else:
        hidden = _hidden_target(system, kind, pid, day)
        target = f"{kind}/{hidden['id']}"
    ref = {"reference": target, "display": SECRET, "identifier": {"value": SECRET}}
    try:
        visible = system.create(make(pid, day, ref))
    except ValidationError:
        # the write pipeline refuses dangling references on this element: nothing to release
        assume(not absent)
        raise
    rtype, rid = visible["resourceType"], visible["id"]
    s = clinic.login(observer)
    assume(rtype in s.readable_types())  # (a medical assistant reads no List)
    outputs = _outputs(s, rtype, rid, carrier)
    # the record itself is released (only what quotes the hidden record is withheld)
    assert outputs["read"]["id"] == rid
    for channel, value in outputs.items():
        assert value, channel
        assert SECRET not in json.dumps(value), channel
    # a reader who may see the target gets the record whole (the physician treats and is
    # cleared for R), on the same channels
    if not absent:
        doctor = _outputs(clinic.login("dr.patel"), rtype, rid, carrier)
        assert SECRET in json.dumps(doctor["read"])
        assert SECRET in json.dumps(doctor["report view"])


def test_bulk_export_quotes_no_record_the_exporter_may_not_see(clinic: Sandbox) -> None:
    """The instructor exports (ceiling N): a restricted diagnosis's name does not leave in
    the Immunization that was given for it; the physician's export keeps it."""
    system = clinic.system_session()
    pid, day = _pid(clinic), str(clinic.reference_date)
    hidden = _hidden_target(system, "Condition", pid, day)
    secret = f"{SECRET}-export"
    ref = {"reference": f"Condition/{hidden['id']}", "display": secret}
    made = system.create({**_immunization(pid, day, ref), "text": _narrative(secret)})
    exported = _export(clinic.login("instructor.lee"))
    assert made["id"] in exported  # the record leaves, without the quote
    assert secret not in exported
    assert secret in _export(clinic.login("dr.patel"))


def test_the_fhir_api_quotes_no_record_the_caller_may_not_see(tmp_path: Path) -> None:
    """The same rule through HTTP (read, vread, instance and type history, search with
    includes): the server answers from the Session, so its responses carry no quote either."""
    import httpx

    from tests.server_fixture import running_server, token_for

    with running_server(tmp_path / "server", patients=3, seed=11) as app:
        sb = app.state.sandbox
        system = sb.grader_session()
        pid = sorted(p["id"] for p in system.search("Patient").fetch_all())[0]
        day = str(sb.reference_date)
        start = schedule_window(sb.reference_date)[0]
        system.create(
            {
                "resourceType": "Appointment",
                "status": "booked",
                "start": f"{start}T09:00:00+00:00",
                "end": f"{start}T09:20:00+00:00",
                "participant": [
                    {"actor": {"reference": f"Patient/{pid}"}, "status": "accepted"},
                    {"actor": {"reference": "Practitioner/prac-dr.patel"}, "status": "accepted"},
                ],
            }
        )
        hidden = _hidden_target(system, "Condition", pid, day)
        ref = {"reference": f"Condition/{hidden['id']}", "display": SECRET}
        imm = system.create(_immunization(pid, day, ref))
        token = token_for(app, "rn.kim")
        with httpx.Client(
            base_url=app.root, headers={"Authorization": f"Bearer {token}"}, timeout=60
        ) as c:
            answers = [
                c.get(f"/fhir/Immunization/{imm['id']}"),
                c.get(f"/fhir/Immunization/{imm['id']}/_history/1"),
                c.get(f"/fhir/Immunization/{imm['id']}/_history"),
                c.get("/fhir/Immunization/_history"),
                c.get(
                    "/fhir/Immunization",
                    params={"_id": imm["id"], "_include": "*", "_revinclude": "*"},
                ),
                c.get("/fhir/Patient", params={"_id": pid, "_revinclude": "*"}),
            ]
        for r in answers:
            assert r.status_code == 200, r.text[:300]
            assert SECRET not in r.text, str(r.url)
        assert imm["id"] in answers[0].text and imm["id"] in answers[4].text
