"""Catalogue item 22, ``emr-ehr/referral-loop``: a referral (ServiceRequest) is sent complete,
with requester, performer, reason and supporting information, and closed when the consult note
arrives.
"""

from __future__ import annotations

from typing import Any

from ehr_sandbox.exercises.builtin.common import (
    parse_instant,
    patient_facts,
    progress_note,
    rewrite_answer_key,
)
from ehr_sandbox.exercises.builtin.emr_ehr.common import (
    CARDIOLOGY,
    HOSPITAL,
    PHYSICIAN,
    adult_patients,
    book_visit,
    created_by_user,
    session_today,
)
from ehr_sandbox.exercises.grading import GradingContext, codes, text_of
from ehr_sandbox.exercises.model import Check, Criterion, Exercise, Expect, Hint, Solution
from ehr_sandbox.network import fhir_builders as fb

__all__ = ["REFERRAL_LOOP", "receive_consult_note"]

SUPPORTING_KINDS = (
    "Observation",
    "Condition",
    "DocumentReference",
    "DiagnosticReport",
    "Procedure",
    "MedicationRequest",
    "MedicationStatement",
    "AllergyIntolerance",
    "Immunization",
    "Encounter",
)
"""What supporting information is: the patient's clinical data (a result, a problem, a note,
a visit), not their demographics or their appointments."""

CONSULT_NOTE = "11488-4"
"""LOINC "Consult note": the type of the note :func:`receive_consult_note` files."""


def _setup_referral(sandbox: Any, variant: Any) -> dict[str, Any]:
    s = sandbox.system_session()
    # a patient with data to send: every variant needs supporting information to exist
    with_data = [
        p
        for p in adult_patients(sandbox)
        if s.search("Observation", patient=f"Patient/{p['id']}").first()
    ]
    patient = variant.pick(with_data, salt="patient")
    book_visit(sandbox, patient["id"])
    reason = variant.pick(
        ["Chest tightness on exertion", "Palpitations for two weeks", "Murmur heard at the visit"],
        salt="reason",
    )
    return {**patient_facts(patient, "patient"), "reason": reason, "performer": CARDIOLOGY}


def receive_consult_note(att: Any) -> str:
    """The cardiology consult note arrives by fax: file it in the patient's chart; returns its
    DocumentReference id.

    The faxed note is filed under the student's own login (as a practice indexes a received
    fax), with the cardiologist as its author: the record shows who wrote it and who filed it,
    and it works the same on a classroom server (only ``att.facts`` and ``att.session``).
    """
    f, s = att.facts, att.session
    text = f"Consult note from {CARDIOLOGY}: evaluated for {f['reason'].lower()}; stress test normal. Back to primary care."
    note = {
        "resourceType": "DocumentReference",
        "status": "current",
        "docStatus": "final",
        "type": {
            "coding": [{"system": fb.LOINC, "code": CONSULT_NOTE, "display": "Consult note"}],
            "text": "Consult note",
        },
        "subject": {"reference": f"Patient/{f['patient_id']}"},
        "date": f"{session_today(s)}T15:00:00-05:00",
        "author": [{"display": CARDIOLOGY}],
        "description": "Cardiology consult note (received by fax)",
        "content": [
            {
                "attachment": {
                    "contentType": "text/plain",
                    "title": "Consult note",
                    "data": __import__("base64").b64encode(text.encode()).decode(),
                }
            }
        ],
    }
    return s.create(note, reason="consult note received by fax")["id"]


def _referrals(ctx: GradingContext) -> list[dict[str, Any]]:
    ref = f"Patient/{ctx.facts['patient_id']}"
    return [
        sr
        for sr in ctx.search("ServiceRequest", patient=ref)
        if "referral" in text_of(sr.get("code") or {}).lower() and created_by_user(ctx, sr)
    ]


def _ref_complete(ctx: GradingContext) -> Check:
    expected = (
        f"a referral ServiceRequest by you with requester, performer ({CARDIOLOGY}) and a reason"
    )
    found = _referrals(ctx)
    if not found:
        return Check(
            False,
            "no referral ServiceRequest (code text 'Referral ...') by you",
            expected,
            "place the referral",
        )
    sr = found[0]
    missing = [
        name
        for name, ok in (
            ("requester", (sr.get("requester") or {}).get("reference") == ctx.practitioner_ref),
            (
                "performer",
                CARDIOLOGY in text_of(sr.get("performer") or [])
                or any(CARDIOLOGY in str(p.get("display", "")) for p in sr.get("performer", [])),
            ),
            ("the reason asked for", _states_reason(sr, ctx.facts["reason"])),
        )
        if not ok
    ]
    if missing:
        return Check(
            False,
            f"ServiceRequest/{sr['id']} lacks {', '.join(missing)}",
            expected,
            "a referral says who asks whom and why",
        )
    return Check(True, f"ServiceRequest/{sr['id']}", expected)


def _states_reason(sr: dict[str, Any], reason: str) -> bool:
    """The referral says the reason the provider asked for (its words, in ``reasonCode`` or
    the display of ``reasonReference``), not just any reason.

    >>> _states_reason({"reasonCode": [{"text": "Chest tightness on exertion"}]}, "chest tightness on exertion")
    True
    >>> _states_reason({"reasonCode": [{"text": "Palpitations for two weeks"}]}, "Chest tightness on exertion")
    False
    """
    said = " ".join([text_of(sr.get("reasonCode") or []), text_of(sr.get("reasonReference") or [])])
    return " ".join(reason.lower().split()) in " ".join(said.lower().split())


def _ref_supporting(ctx: GradingContext) -> Check:
    expected = (
        "supportingInfo pointing at this patient's relevant data (a result, a problem, a note)"
    )
    found = _referrals(ctx)
    from ehr_sandbox.access import patient_of

    # what the specialist received is the referral as sent (its first active version): data
    # added when the loop is closed never reached them; every version counts as disclosed
    versions = [v for sr in found for v in reversed(ctx.history(f"ServiceRequest/{sr['id']}"))]
    sent = [
        next(
            (
                v
                for v in reversed(ctx.history(f"ServiceRequest/{sr['id']}"))
                if v.get("status") == "active"
            ),
            sr,
        )
        for sr in found
    ]
    infos = [i for sr in sent for i in sr.get("supportingInfo", [])]
    if not infos:
        later = any(v.get("supportingInfo") for v in versions)
        return Check(
            False,
            "no supporting information on the referral as sent"
            + (" (added only afterwards)" if later else ""),
            expected,
            "send supporting information: the specialist must not start from zero",
        )
    for info in [i for v in versions for i in v.get("supportingInfo", [])]:
        ref = info.get("reference", "")
        res = ctx.read(ref) if ref.count("/") == 1 else None
        owner = patient_of(res) if res else None
        if res is None or owner != ctx.facts["patient_id"]:
            who = f"Patient/{owner}" if owner else "no patient you can show"
            return Check(
                False,
                f"supporting information {ref or '(no reference)'} belongs to {who}",
                expected,
                "send only this patient's data: another patient's record in a referral is a disclosure",
            )
    clinical = [i for i in infos if i.get("reference", "").split("/")[0] in SUPPORTING_KINDS]
    if not clinical:
        kinds = sorted({i.get("reference", "").split("/")[0] for i in infos})
        return Check(
            False,
            f"the supporting information is only {', '.join(kinds)}",
            expected,
            "send the clinical data behind the question (a result, a problem, a note): "
            "the patient's demographics or appointments tell the specialist nothing",
        )
    return Check(True, f"{len(infos)} supporting reference(s), all this patient's", expected)


def _not_the_consult_note(ctx: GradingContext, sr: dict[str, Any], doc: dict[str, Any]) -> str:
    """Why ``doc`` is not the consult note that answers ``sr`` ('' when it is): the note
    :func:`receive_consult_note` files is a consult note (LOINC), written by the cardiologist
    (not by the student), filed during the attempt, dated on or after the referral."""
    ref = f"DocumentReference/{doc['id']}"
    if doc.get("status") != "current":
        return f"{ref} has status {doc.get('status')!r}, not a note that stands"
    if CONSULT_NOTE not in codes(doc.get("type")):
        return f"{ref} is not a consult note (its type)"
    authors = doc.get("author") or []
    if not any(CARDIOLOGY in str(a.get("display", "")) for a in authors) or any(
        a.get("reference") == ctx.practitioner_ref for a in authors
    ):
        return f"{ref} is not written by the specialist the referral went to (its author)"
    if not any(v.get("meta", {}).get("versionId") == "1" for v in ctx.versions_since_setup(ref)):
        return f"{ref} was in the chart before this referral"
    written, asked = (
        ctx.written_at(v)
        for v in (ctx.history(ref)[-1], ctx.history(f"ServiceRequest/{sr['id']}")[-1])
    )
    dated = parse_instant(doc.get("date"))
    authored = str(sr.get("authoredOn") or "")[:10]
    if (
        written is None
        or asked is None
        or written < asked
        or dated is None
        or dated.date().isoformat() < authored
    ):
        return f"{ref} is dated or filed before the referral was sent"
    return ""


def _ref_closed(ctx: GradingContext) -> Check:
    expected = (
        "the referral completed and the consult note that answers it linked to it (context.related)"
    )
    found = _referrals(ctx)
    if not found:
        return Check(False, "no referral", expected, "close the loop when the note arrives")
    sr = found[0]
    linked = [
        d
        for d in ctx.search("DocumentReference", patient=f"Patient/{ctx.facts['patient_id']}")
        if any(
            (r.get("reference") == f"ServiceRequest/{sr['id']}")
            for r in (d.get("context") or {}).get("related", [])
        )
    ]
    wrong = [w for w in (_not_the_consult_note(ctx, sr, d) for d in linked) if w]
    notes = [d for d in linked if not _not_the_consult_note(ctx, sr, d)]
    if linked and not notes:
        return Check(
            False,
            "; ".join(wrong),
            expected,
            "the loop closes on the specialist's answer: link the consult note that came back "
            "for this referral, not another document",
        )
    if sr.get("status") != "completed" or not notes:
        return Check(
            False,
            f"status {sr.get('status')!r}, {len(notes)} linked consult note(s)",
            expected,
            "close the loop: link the consult note and complete the referral",
        )
    return Check(
        True,
        f"ServiceRequest/{sr['id']} completed; DocumentReference/{notes[0]['id']} linked",
        expected,
    )


def _send(att: Any, supporting: list[str] | None, reason: str | None = None) -> dict[str, Any]:
    """The referral to the variant's performer, sent with ``supporting`` references;
    ``reason``: that reason instead of the one the provider asked for."""
    f, s = att.facts, att.session
    return s.create(
        fb.referral(
            f"Patient/{f['patient_id']}",
            f"Practitioner/{s.user.practitioner_id}",
            session_today(s),
            f["performer"],
            reason or f["reason"],
            supporting=supporting or None,
        )
    )


def _close(
    att: Any,
    sr: dict[str, Any],
    note_id: str,
    *,
    note_status: str | None = None,
    add_info: list[str] | None = None,
) -> None:
    """Link document ``note_id`` to the referral (optionally setting its status), then complete
    the referral (optionally adding supporting information only now)."""
    s = att.session
    note = s.read("DocumentReference", note_id)
    note["context"] = {"related": [{"reference": f"ServiceRequest/{sr['id']}"}]}
    if note_status is not None:
        note["status"] = note_status
    s.update(note, reason="consult note received for this referral")
    sr = s.read("ServiceRequest", sr["id"])
    sr["status"] = "completed"
    if add_info:
        sr["supportingInfo"] = [{"reference": ref} for ref in add_info]
    s.update(sr, reason="consult note received; referral loop closed")


def _first_observation(att: Any) -> str:
    pid = f"Patient/{att.facts['patient_id']}"
    return f"Observation/{att.session.search('Observation', patient=pid).first()['id']}"


def _referral_flow(
    att: Any,
    *,
    supporting: bool,
    info_patient: str | None = None,
    close: bool = True,
    answer: str = "consult",
    reason: str | None = None,
) -> None:
    f, s = att.facts, att.session
    pid = f"Patient/{f['patient_id']}"
    info = []
    if supporting:
        about = f"Patient/{info_patient}" if info_patient else pid
        obs = (
            s.search("Observation", patient=about).first()
            or s.search("Condition", patient=about).first()
        )
        info = [f"{obs['resourceType']}/{obs['id']}"] if obs else []
        if not info:
            enc = s.search("Encounter", patient=pid).first()
            info = [f"Encounter/{enc['id']}"]
    sr = _send(att, info, reason)
    if not close:
        sr = s.read("ServiceRequest", sr["id"])
        sr["status"] = "completed"
        s.update(sr, reason="referral sent")
        return
    if answer == "consult":
        note_id = receive_consult_note(att)
    elif answer == "old":  # a note that was in the chart before the referral
        note_id = s.search("DocumentReference", patient=pid).first()["id"]
    else:  # a note the student writes, typed as a consult note
        own = progress_note(
            pid,
            f"Practitioner/{s.user.practitioner_id}",
            "Seen by cardiology; no further work-up needed.",
            f"{session_today(s)}T16:00:00-05:00",
            type_={"coding": [{"system": fb.LOINC, "code": CONSULT_NOTE}]},
        )
        note_id = s.create(own)["id"]
    _close(att, sr, note_id)


def _other_patient(att: Any) -> str:
    return next(
        p["id"]
        for p in att.session.search("Patient").fetch()
        if p["id"] != att.facts["patient_id"]
        and att.session.search("Observation", patient=f"Patient/{p['id']}").first()
    )


def _ref_answer_key(att: Any) -> None:
    """Answer-key change: rewrite the performer in the facts and refer there."""
    rewrite_answer_key(att, performer=HOSPITAL)
    f, s = att.facts, att.session
    pid = f"Patient/{f['patient_id']}"
    obs = s.search("Observation", patient=pid).first() or s.search("Encounter", patient=pid).first()
    s.create(
        fb.referral(
            pid,
            f"Practitioner/{s.user.practitioner_id}",
            session_today(s),
            HOSPITAL,
            f["reason"],
            supporting=[f"{obs['resourceType']}/{obs['id']}"],
        )
    )


def _ref_note_voided(att: Any) -> None:
    """The consult note linked with its status set to entered-in-error, then the referral
    completed."""
    sr = _send(att, [_first_observation(att)])
    _close(att, sr, receive_consult_note(att), note_status="entered-in-error")


def _ref_info_added_at_close(att: Any) -> None:
    """The referral sent with no supporting information; the result added when it is closed."""
    sr = _send(att, None)
    _close(att, sr, receive_consult_note(att), add_info=[_first_observation(att)])


def _ref_demographics_as_info(att: Any) -> None:
    """The patient's own record (demographics) as the only supporting information."""
    sr = _send(att, [f"Patient/{att.facts['patient_id']}"])
    _close(att, sr, receive_consult_note(att))


def _ref_two_patients(att: Any) -> None:
    """Harm: the right referral, plus the same referral for another patient."""
    _referral_flow(att, supporting=True)
    f, s = att.facts, att.session
    other = _other_patient(att)
    s.create(
        fb.referral(
            f"Patient/{other}",
            f"Practitioner/{s.user.practitioner_id}",
            session_today(s),
            f["performer"],
            f["reason"],
        )
    )


REFERRAL_LOOP = Exercise(
    id="emr-ehr/referral-loop",
    title="Referral: send it complete and close the loop",
    topic="emr-ehr",
    topics=("emr-vs-ehr", "diagnostic-tests"),
    competencies=("V.P.10", "V.P.11", "X.P.3"),
    minutes=15,
    role=PHYSICIAN,
    patients=8,
    summary="ServiceRequest with requester, performer, reason and supporting info; closed when the consult note arrives.",
    setup=_setup_referral,
    instructions=(
        "Refer **{patient_name}** (DOB {patient_dob}) to **{performer}** for: *{reason}*.\n\n"
        "1. Create the referral (`ServiceRequest`, code text 'Referral to cardiology') with requester, performer, reason "
        "and supporting information (this patient's relevant data only).\n2. The consult note comes back by fax: file it in the chart with "
        "`emr_ehr.receive_consult_note(att)` (it files the faxed note under your login, the cardiologist as its author), link it to "
        "the referral (`DocumentReference.context.related`) and complete the referral.\n\nChange nothing else."
    ),
    criteria=(
        Criterion(
            "referral complete",
            2,
            _ref_complete,
            "A referral must say who refers, to whom and why (MAERB V.P.10).",
        ),
        Criterion(
            "supporting information",
            2,
            _ref_supporting,
            "Without the data behind the question the specialist repeats tests or guesses (MAERB V.P.11).",
        ),
        Criterion(
            "loop closed",
            2,
            _ref_closed,
            "Open referral loops are a known patient-safety gap: every referral is tracked until the answer is back (X.P.3).",
        ),
    ),
    hints=(
        Hint("`from ehr_sandbox.network.fhir_builders import referral` builds the ServiceRequest."),
    ),
    expects=(
        Expect("ServiceRequest", ops=("create",), patients=("patient_id",), at_most=1),
        Expect("ServiceRequest", ops=("update",), patients=("patient_id",), at_most=2),
        Expect("DocumentReference", ops=("create", "update"), patients=("patient_id",), at_most=2),
    ),
    solution=Solution(
        lambda att: _referral_flow(att, supporting=True),
        description="complete referral, then close it",
    ),
    wrong_solutions={
        "no-supporting-info": Solution(
            lambda att: _referral_flow(att, supporting=False),
            fails="supporting information",
            message="send supporting information",
            description="a referral with no supporting information",
        ),
        "another-reason": Solution(
            lambda att: _referral_flow(att, supporting=True, reason="Routine check-up"),
            fails="referral complete",
            message="a referral says who asks whom and why",
            description="the referral sent with a reason other than the one the provider asked "
            "for (another student's reason): scored full marks before",
        ),
        "other-patients-result": Solution(
            lambda att: _referral_flow(att, supporting=True, info_patient=_other_patient(att)),
            fails="supporting information",
            message="send only this patient's data",
            description="attach another patient's result to the referral",
        ),
        "info-added-at-close": Solution(
            _ref_info_added_at_close,
            fails="supporting information",
            message="send supporting information",
            description="send the referral bare; add the result when closing it",
        ),
        "demographics-as-info": Solution(
            _ref_demographics_as_info,
            fails="supporting information",
            message="send the clinical data behind the question",
            description="the patient's own Patient record as the only supporting information",
        ),
        "closed-without-answer": Solution(
            lambda att: _referral_flow(att, supporting=True, close=False),
            fails="loop closed",
            message="close the loop",
            description="mark the referral completed when it is sent",
        ),
        "old-note-linked": Solution(
            lambda att: _referral_flow(att, supporting=True, answer="old"),
            fails="loop closed",
            message="the loop closes on the specialist's answer",
            description="link a note already in the chart instead of the consult note, and complete",
        ),
        "own-note-linked": Solution(
            lambda att: _referral_flow(att, supporting=True, answer="own"),
            fails="loop closed",
            message="the loop closes on the specialist's answer",
            description="write a 'consult note' yourself, link it and complete the referral",
        ),
        "consult-note-voided": Solution(
            _ref_note_voided,
            fails="loop closed",
            message="the loop closes on the specialist's answer",
            description="link the consult note with its status set to entered-in-error, complete",
        ),
        "two-patients": Solution(
            _ref_two_patients,
            fails="no collateral damage",
            message="unexpected change",
            description="the right referral, plus one for another patient",
        ),
        "answer-key": Solution(
            _ref_answer_key,
            fails="referral complete",
            message="a referral says who asks whom and why",
            description="rewrite the performer in the facts and refer elsewhere",
        ),
    },
)
