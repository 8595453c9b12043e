"""A record a user may not see answers every per-record question exactly as an absent id does.

Rule, stated over operations and kinds of hidden record: for each operation a session offers on
one record (read, vread, instance history, provenance, existence, signature verification,
addendum, entered-in-error, update), asking about a record the user may not see (a signed note
of a patient they do not treat; a restricted result of a patient they do) gives the same
outcome, exception type and message (the id blanked) as asking about an id that does not
exist. A difference is an existence oracle: "there is a signed note with this id".
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ehr_sandbox.errors import SandboxError
from ehr_sandbox.relationships import schedule_window
from ehr_sandbox.sandbox import Sandbox
from ehr_sandbox.session import Session

OPERATIONS: dict[str, Callable[[Session, str, str], Any]] = {
    "read": lambda s, t, i: s.read(t, i),
    "vread": lambda s, t, i: s.vread(t, i, "1"),
    "history": lambda s, t, i: s.history(t, i),
    "provenance": lambda s, t, i: s.provenance(f"{t}/{i}"),
    "exists": lambda s, t, i: s.exists(f"{t}/{i}"),
    "verify_signature": lambda s, t, i: s.verify_signature(f"{t}/{i}"),
    "addendum": lambda s, t, i: s.addendum(f"{t}/{i}", "late finding"),
    "entered-in-error": lambda s, t, i: s.mark_entered_in_error(f"{t}/{i}", "wrong chart"),
    "update": lambda s, t, i: s.update({"resourceType": t, "id": i, "status": "current"}),
}


def _outcome(f: Callable[[], Any], rid: str) -> str:
    try:
        got = f()
    except SandboxError as exc:
        return f"{type(exc).__name__}: {exc}".replace(rid, "<id>")
    return f"answered {got!r}" if isinstance(got, bool) else f"answered {type(got).__name__}"


def _book(sb: Sandbox, pid: str) -> None:
    start = schedule_window(sb.reference_date)[0]
    sb.system_session().create(
        {
            "resourceType": "Appointment",
            "status": "booked",
            "start": f"{start}T10:00:00+00:00",
            "end": f"{start}T10:20:00+00:00",
            "participant": [
                {"actor": {"reference": f"Patient/{pid}"}, "status": "accepted"},
                {"actor": {"reference": "Practitioner/prac-dr.patel"}, "status": "accepted"},
            ],
        }
    )


def _signed_note(sb: Sandbox, pid: str) -> tuple[str, str]:
    """A note dr.patel writes and signs for ``pid``."""
    doctor = sb.login("dr.patel")
    note_type = sb.system_session().search("DocumentReference").first()["type"]
    note = doctor.create(
        {
            "resourceType": "DocumentReference",
            "status": "current",
            "type": note_type,
            "subject": {"reference": f"Patient/{pid}"},
            "date": f"{sb.reference_date}T09:00:00+00:00",
            "content": [
                {
                    "attachment": {
                        "contentType": "text/plain",
                        "data": base64.b64encode(b"Seen today.").decode(),
                    }
                }
            ],
        }
    )
    doctor.sign(f"DocumentReference/{note['id']}")
    return "DocumentReference", note["id"]


@pytest.fixture(scope="module")
def clinic() -> Sandbox:
    sb = Sandbox.generate(patients=4, seed=7, years=1)
    pids = sorted(p["id"] for p in sb.system_session().search("Patient").fetch_all())
    _book(sb, pids[0])  # dr.patel and the rooming staff see pids[0]
    return sb


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
@pytest.mark.parametrize("observer", ["rn.lopez", "fd.smith", "billing.davis"])
def test_a_hidden_signed_note_answers_as_an_absent_id(
    clinic: Sandbox, operation: str, observer: str
) -> None:
    pids = sorted(p["id"] for p in clinic.system_session().search("Patient").fetch_all())
    sb = clinic.copy()
    # a patient the observer does not treat (roles without a chart relationship: any one)
    outsider = next((p for p in pids if p not in sb.treating(observer)), pids[-1])
    sb.system_session().create(
        {
            "resourceType": "Encounter",
            "status": "finished",
            "class": {
                "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                "code": "AMB",
            },
            "subject": {"reference": f"Patient/{outsider}"},
            "participant": [{"individual": {"reference": "Practitioner/prac-dr.patel"}}],
            "period": {"start": "2025-12-01T09:00:00+00:00", "end": "2025-12-01T09:20:00+00:00"},
        }
    )
    rtype, rid = _signed_note(sb, outsider)
    s = sb.login(observer)
    assert not s.exists(f"{rtype}/{rid}")  # hidden from the observer (the scenario holds)
    f = OPERATIONS[operation]
    hidden = _outcome(lambda: f(s, rtype, rid), rid)
    absent = _outcome(lambda: f(s, rtype, "no-such-note"), "no-such-note")
    assert hidden == absent


def test_the_fhir_api_answers_a_hidden_signed_note_as_an_absent_id(tmp_path: Path) -> None:
    """Through HTTP: ``$verify-signature`` on a signed note the caller may not see answers
    with the same status and body as on an id that does not exist."""
    import httpx

    from tests.server_fixture import running_server, token_for

    with running_server(tmp_path / "server", patients=3, seed=7) as app:
        sb = app.state.sandbox
        pids = sorted(p["id"] for p in sb.grader_session().search("Patient").fetch_all())
        outsider = next(p for p in pids if p not in sb.treating("rn.lopez"))
        sb.grader_session().create(
            {
                "resourceType": "Encounter",
                "status": "finished",
                "class": {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                    "code": "AMB",
                },
                "subject": {"reference": f"Patient/{outsider}"},
                "participant": [{"individual": {"reference": "Practitioner/prac-dr.patel"}}],
                "period": {
                    "start": "2025-12-01T09:00:00+00:00",
                    "end": "2025-12-01T09:20:00+00:00",
                },
            }
        )
        rtype, rid = _signed_note(sb, outsider)
        token = token_for(app, "rn.lopez")
        body = {"resourceType": "Parameters"}
        with httpx.Client(
            base_url=app.root, headers={"Authorization": f"Bearer {token}"}, timeout=60
        ) as c:
            hidden = c.post(f"/fhir/{rtype}/{rid}/$verify-signature", json=body)
            absent = c.post(f"/fhir/{rtype}/{rid[:-1]}z/$verify-signature", json=body)
        assert hidden.status_code == absent.status_code == 404
        assert hidden.text.replace(rid, "<id>") == absent.text.replace(f"{rid[:-1]}z", "<id>")
