"""Catalogue item 5, ``records/addendum``: a signed note gets a new DocumentReference that appends
it; the original stays unchanged.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from ehr_sandbox.exercises import rubric
from ehr_sandbox.exercises.builtin.common import (
    document_text,
    note_type,
    patient_facts,
    patient_label,
    progress_note,
    ref_id,
    rewrite_answer_key,
    sandbox_now,
    visible_patients,
)
from ehr_sandbox.exercises.builtin.records.common import (
    PHYSICIAN,
    created_by_user,
    iso_instant,
    new_ids,
)
from ehr_sandbox.exercises.grading import GradingContext
from ehr_sandbox.exercises.model import Check, Criterion, Exercise, Expect, Hint, Solution

__all__ = ["ADDENDUM", "ADDENDUM_ADVICE"]

_ADDITIONS: tuple[tuple[str, str], ...] = (
    (
        "Patient also reports mild ankle swelling for one week; advised leg elevation, recheck at follow-up.",
        "ankle swelling",
    ),
    ("Home glucose log reviewed after the visit: fasting values 110-130 mg/dL.", "glucose log"),
    (
        "Outside lipid panel from last month received and reviewed; no change to the plan.",
        "lipid panel",
    ),
    (
        "Patient called back: the rash started after a new laundry detergent; continue plan.",
        "laundry detergent",
    ),
)
_ELEMENTS: dict[str, dict[str, list[str]]] = {
    "ankle swelling": {
        "the new finding (ankle swelling)": [
            "ankle swelling",
            "swollen ankle",
            "swollen ankles",
            "ankles swollen",
            "ankles are swollen",
            "ankle edema",
            "pedal edema",
            "edema",
            "swelling",
        ],
        "the advice given (elevate the legs)": [
            "elevate",
            "elevation",
            "elevating",
            "raise",
            "legs up",
        ],
    },
    "glucose log": {
        "what was reviewed (home glucose readings)": [
            "glucose",
            "sugar",
            "sugars",
            "fingerstick",
            "cbg",
        ],
        "the values": ["110", "130"],
    },
    "lipid panel": {
        "the outside result (lipid panel)": ["lipid", "lipids", "cholesterol", "ldl"],
        "the decision (no change to the plan)": [
            "no change",
            "unchanged",
            "continue",
            "same plan",
            "plan stays",
            "no changes",
        ],
    },
    "laundry detergent": {
        "the likely cause (a new laundry detergent)": ["detergent", "laundry", "soap"],
        "the plan (continue)": ["continue", "plan", "unchanged", "no change"],
    },
}
"""What an addendum must say for each addition, in any words (checked with the rubric)."""


def other_topics(keyword: str) -> list[str]:
    """Words that name another addition's subject (its first element) and not this one's: an
    addendum that names every addition at once records things that were never reported.

    >>> "detergent" in other_topics("lipid panel"), "lipid" in other_topics("lipid panel")
    (True, False)
    """
    own = {w for words in _ELEMENTS[keyword].values() for w in words}
    return sorted(
        {
            w
            for k, elements in _ELEMENTS.items()
            if k != keyword
            for w in next(iter(elements.values()))
        }
        - own
    )


def _says_addition(text: str, keyword: str) -> Any:
    """The rubric check of an addendum's text for ``keyword``'s addition."""
    return rubric.check_text(
        text,
        _ELEMENTS[keyword],
        forbidden={"another addition's subject (something not reported)": other_topics(keyword)},
        what="the addendum",
    )


ADDENDUM_ADVICE = "an addendum must point to the note it appends (relatesTo code 'appends'); never edit or replace a signed note"


def _setup_addendum(sandbox: Any, variant: Any) -> dict[str, Any]:
    doctor = sandbox.login(PHYSICIAN)
    patient = variant.pick(visible_patients(sandbox, PHYSICIAN), salt="patient")
    addition, keyword = variant.pick(_ADDITIONS, salt="addition")
    rng = variant.rng()
    when = sandbox_now(sandbox) - timedelta(days=rng.randint(1, 6))
    text = (
        f"Office visit {when.date().isoformat()} with {patient_label(patient)}.\n"
        "Assessment and plan discussed; follow up as scheduled."
    )
    note = doctor.create(
        progress_note(
            f"Patient/{patient['id']}",
            doctor.user.ref,
            text,
            iso_instant(when),
            type_=note_type(sandbox),
        )
    )
    doctor.sign(f"DocumentReference/{note['id']}")
    return {
        **patient_facts(patient, "patient"),
        "note_id": note["id"],
        "note_version": note["meta"]["versionId"],
        "note_date": when.date().isoformat(),
        "addition": addition,
        "keyword": keyword,
    }


def _add_original(ctx: GradingContext) -> Check:
    f = ctx.facts
    ref = f"DocumentReference/{f['note_id']}"
    expected = f"{ref} unchanged at version {f['note_version']}, signature still valid"
    note = ctx.read(ref)
    if note is None:
        return Check(False, f"{ref} is gone", expected, ADDENDUM_ADVICE)
    version = str(note.get("meta", {}).get("versionId"))
    if version != str(f["note_version"]) or note.get("status") != "current":
        return Check(
            False,
            f"{ref} is at version {version} with status {note.get('status')!r}",
            expected,
            ADDENDUM_ADVICE,
        )
    if not ctx.session.verify_signature(ref):
        return Check(False, f"{ref}'s signature no longer verifies", expected, ADDENDUM_ADVICE)
    if not _with_content(ctx):
        return Check(False, "the new information has not been added yet", expected, ADDENDUM_ADVICE)
    return Check(True, f"{ref} unchanged, signature verifies", expected)


def _with_content(ctx: GradingContext) -> list[dict[str, Any]]:
    """New documents on the patient's chart that say what the addition says (in any words)."""
    f = ctx.facts
    new = new_ids(ctx, "DocumentReference")
    return [
        d
        for d in ctx.all("DocumentReference")
        if d["id"] in new
        and d["id"] != f["note_id"]
        and d.get("status") == "current"  # a withdrawn (entered-in-error) addendum adds nothing
        and ref_id(d.get("subject")) == f["patient_id"]
        and _says_addition(document_text(d), f["keyword"]).passed
    ]


def _add_appends(ctx: GradingContext) -> Check:
    f = ctx.facts
    target = f"DocumentReference/{f['note_id']}"
    expected = f"a new DocumentReference with relatesTo 'appends' {target}, saying {', '.join(_ELEMENTS[f['keyword']])}"
    docs = _with_content(ctx)
    if not docs:
        new = new_ids(ctx, "DocumentReference")
        mine = [d for d in ctx.all("DocumentReference") if d["id"] in new]
        if mine and all(d.get("status") != "current" for d in mine):
            return Check(
                False,
                f"your addendum is {mine[0].get('status')!r}: nothing stands appended",
                expected,
                "an addendum that is withdrawn adds nothing to the record: append one that stands",
            )
        said = (
            _says_addition(document_text(mine[0]), f["keyword"]).found
            if mine
            else "no new document on the chart"
        )
        return Check(
            False,
            said,
            expected,
            "write what you learned, in your own words, covering each element",
        )
    links = [
        (r.get("code"), (r.get("target") or {}).get("reference"))
        for d in docs
        for r in d.get("relatesTo", []) or []
    ]
    if ("appends", target) in links:
        return Check(True, f"an addendum appends {target}", expected)
    found = (
        "a separate note with no link to the original"
        if not links
        else f"a note that {links[0][0]} {links[0][1]}"
    )
    return Check(False, found, expected, ADDENDUM_ADVICE)


def _add_by_user(ctx: GradingContext) -> Check:
    f = ctx.facts
    target = f"DocumentReference/{f['note_id']}"
    docs = [
        d
        for d in ctx.all("DocumentReference")
        if any(
            r.get("code") == "appends" and (r.get("target") or {}).get("reference") == target
            for r in d.get("relatesTo", []) or []
        )
    ]
    expected = f"the addendum authored by {ctx.user.username} (Provenance)"
    ok = [d for d in docs if created_by_user(ctx, d)]
    if not ok:
        return Check(
            False, "no addendum written by you", expected, "write the addendum in your own session"
        )
    return Check(True, f"DocumentReference/{ok[0]['id']} by {ctx.user.username}", expected)


def _add_solution(att: Any, text: str | None = None) -> None:
    """The addendum (with ``text`` instead of the addition's, in a wrong solution)."""
    f = att.facts
    att.session.addendum(
        f"DocumentReference/{f['note_id']}",
        f"Addendum: {text or f['addition']}",
        reason="Information received after signing",
    )


EVERY_ADDITION = " ".join(text for text, _ in _ADDITIONS)
"""Every addition's text at once (the keyword-stuffing wrong solution)."""


def _add_standalone(att: Any) -> None:
    f, s = att.facts, att.session
    s.create(
        progress_note(
            f"Patient/{f['patient_id']}",
            s.user.ref,
            f"Addendum: {f['addition']}",
            iso_instant(sandbox_now(att.sandbox)),
        )
    )


def _add_replaces(att: Any) -> None:
    f, s = att.facts, att.session
    doc = progress_note(
        f"Patient/{f['patient_id']}",
        s.user.ref,
        f"Corrected note: {f['addition']}",
        iso_instant(sandbox_now(att.sandbox)),
    )
    doc["relatesTo"] = [
        {"code": "replaces", "target": {"reference": f"DocumentReference/{f['note_id']}"}}
    ]
    s.create(doc)


def _add_vague(att: Any) -> None:
    f = att.facts
    att.session.addendum(
        f"DocumentReference/{f['note_id']}", "Addendum: see chart, update", reason="update"
    )


def _add_other_patient_first(att: Any) -> None:
    """Harm: the addendum first goes on another patient's note (then is voided)."""
    f, s = att.facts, att.session
    other = next(
        d
        for d in s.search("DocumentReference").fetch()
        if ref_id(d.get("subject")) != f["patient_id"] and d.get("status") == "current"
    )
    stray = s.addendum(
        f"DocumentReference/{other['id']}",
        f"Addendum: {f['addition']}",
        reason="Information received after signing",
    )
    s.mark_entered_in_error(
        f"DocumentReference/{stray['id']}",
        reason=f"Added to the wrong patient's note; belongs to {f['patient_name']}",
    )
    _add_solution(att)


def _add_then_withdrawn(att: Any) -> None:
    """The addendum written, then voided as 'written on the wrong note': nothing stands."""
    f, s = att.facts, att.session
    add = s.addendum(
        f"DocumentReference/{f['note_id']}",
        f"Addendum: {f['addition']}",
        reason="Information received after signing",
    )
    s.mark_entered_in_error(
        f"DocumentReference/{add['id']}",
        reason="Written on the wrong note; withdrawn by the author",
    )


def _add_answer_key(att: Any) -> None:
    """Answer-key change: void the signed note, write a new one, point the facts at it."""
    f, s = att.facts, att.session
    s.mark_entered_in_error(
        f"DocumentReference/{f['note_id']}",
        reason="Superseded by a complete note with new information",
    )
    new = s.create(
        progress_note(
            f"Patient/{f['patient_id']}",
            s.user.ref,
            f"Office visit {f['note_date']}. {f['addition']}",
            iso_instant(sandbox_now(att.sandbox)),
        )
    )
    f = rewrite_answer_key(att, note_id=new["id"], note_version="1")
    s.addendum(
        f"DocumentReference/{f['note_id']}",
        f"Addendum: {f['addition']}",
        reason="Information received",
    )


ADDENDUM = Exercise(
    id="records/addendum",
    title="Addendum to a signed note",
    topic="records",
    topics=("editing-records",),
    competencies=("X.P.3", "VI.P.4", "VI.P.6"),
    minutes=10,
    role=PHYSICIAN,
    summary="A signed note needs more: a new DocumentReference that appends it; the original unchanged.",
    setup=_setup_addendum,
    instructions=(
        "You signed your note `DocumentReference/{note_id}` for **{patient_name}** (DOB {patient_dob}, "
        "MRN {patient_mrn}) from {note_date}. Since then you learned:\n\n> {addition}\n\n"
        "Add this to the record, in your own words. The signed note must stay exactly as signed. "
        "Change nothing else."
    ),
    criteria=(
        Criterion(
            "original unchanged",
            3,
            _add_original,
            "A signed note is the authenticated legal record: it is never changed, only appended to (documentation standards).",
        ),
        Criterion(
            "addendum appends the note",
            3,
            _add_appends,
            "An addendum is linked to the note it adds to, so readers see both together (FHIR DocumentReference.relatesTo; MAERB X.P.3).",
        ),
        Criterion(
            "addendum authored by you",
            1,
            _add_by_user,
            "Every entry names its author (documentation standards; HIPAA 164.312(b)).",
        ),
    ),
    hints=(
        Hint("`att.session.addendum(note_ref, text, reason=...)` creates the linked addendum."),
    ),
    expects=(Expect("DocumentReference", ops=("addendum",), patients=("patient_id",), at_most=1),),
    solution=Solution(_add_solution, description="session.addendum"),
    wrong_solutions={
        "every-addition": Solution(
            lambda att: _add_solution(att, EVERY_ADDITION),
            fails="addendum appends the note",
            message="another addition's subject",
            description="an addendum that states every possible addition at once (keyword stuffing)",
        ),
        "standalone-note": Solution(
            _add_standalone,
            fails="addendum appends the note",
            message="relatesTo code 'appends'",
            description="write a new, unlinked note",
        ),
        "replaces": Solution(
            _add_replaces,
            fails="addendum appends the note",
            message="never edit or replace a signed note",
            description="write a new note that replaces the signed one",
        ),
        "withdrawn": Solution(
            _add_then_withdrawn,
            fails="addendum appends the note",
            message="append one that stands",
            description="write the addendum, then void it",
        ),
        "vague-addendum": Solution(
            _add_vague,
            fails="addendum appends the note",
            message="covering each element",
            description="an addendum that says 'see chart, update'",
        ),
        "other-patient-first": Solution(
            _add_other_patient_first,
            fails="no collateral damage",
            message="unexpected change",
            description="append to another patient's note first, void it, then do it right",
        ),
        "answer-key": Solution(
            _add_answer_key,
            fails="original unchanged",
            message=ADDENDUM_ADVICE,
            description="void the signed note, write a new one and point the facts at it",
        ),
    },
)
