"""Registering a new patient whose name matches an existing one (search the MPI first).

A caller registering as a new patient has the same name, address and phone as an existing
patient, but was born a generation later: the son who shares his father's name. The MPI
search finds the father as a probable match; the student sets the match aside with the reason
(the date of birth differs) and registers the son as a new patient, leaving the father's
record untouched.
"""

from __future__ import annotations

import copy
from datetime import date
from typing import Any

from ehr_sandbox.exercises import rubric, stated
from ehr_sandbox.exercises.builtin.common import (
    patient_label,
    still_standing,
    then_withdrawn,
    visible_patients,
)
from ehr_sandbox.exercises.builtin.front_office.common import FD, check, op_of, written
from ehr_sandbox.exercises.grading import GradingContext, provenance_reason
from ehr_sandbox.exercises.model import Criterion, Exercise, Expect, Hint, Scenario, Solution
from ehr_sandbox.workflows import registration
from ehr_sandbox.workflows.base import RuleRefused, write

__all__ = ["NEW_PATIENT_MPI"]

MPI = "search the master patient index before creating a patient, and record why a probable match is a different person"


def _setup(sandbox: Any, variant: Any) -> Scenario:
    rng = variant.rng()
    adults = [
        p
        for p in visible_patients(sandbox, FD)
        if p.get("birthDate")
        and 1945 <= int(p["birthDate"][:4]) <= 1975
        and p.get("address")
        and p.get("telecom")
    ]
    father = variant.pick(adults, salt="existing")
    born = date.fromisoformat(father["birthDate"])
    son_born = date(born.year + rng.randint(24, 32), rng.randint(1, 12), rng.randint(1, 28))
    fd = sandbox.login(FD)
    cand = {
        "resourceType": "Patient",
        "name": copy.deepcopy(father["name"][:1]),
        "gender": father.get("gender"),
        "birthDate": son_born.isoformat(),
        "address": copy.deepcopy(father["address"][:1]),
        "telecom": [t for t in father.get("telecom", []) if t.get("system") == "phone"][:1]
        or copy.deepcopy(father["telecom"][:1]),
    }
    hits = registration.find_duplicates(fd, cand)
    name = father["name"][0]
    return Scenario(
        facts={
            "given": " ".join(name.get("given", [])),
            "family": name.get("family", ""),
            "gender": father.get("gender"),
            "birth_date": son_born.isoformat(),
            "address": " ".join(father["address"][0].get("line", []))
            + f", {father['address'][0].get('city', '')}",
            "phone": cand["telecom"][0]["value"] if cand["telecom"] else "",
            "candidate": cand,
            "existing_dob": father["birthDate"],
            "existing_name": patient_label(father),
        },
        answer={"existing": father["id"], "flagged": [h["patient"] for h in hits]},
        protect=(f"Patient/{father['id']}",),
    )


def _new_patients(ctx: GradingContext, *, current: bool) -> list[dict[str, Any]]:
    """Patients created since setup that still stand at hand-in (a registration deactivated
    or voided afterwards registered no one): as they are now (``current``: a registration
    changed afterwards is graded as changed) or as first written (how it was registered)."""
    return still_standing(
        ctx,
        [
            v
            for v in written(ctx, "Patient")
            if v["id"] != ctx.answer["existing"] and v.get("meta", {}).get("versionId") == "1"
        ],
        current=current,
    )


def _same_address(patient: dict[str, Any], form: dict[str, Any]) -> bool:
    """True when the patient's first address has the street lines and city of the form's."""

    def key(p: dict[str, Any]) -> tuple[list[str], str]:
        a = (p.get("address") or [{}])[0]
        lines = [" ".join(str(x).split()).casefold() for x in a.get("line", [])]
        return lines, " ".join(str(a.get("city", "")).split()).casefold()

    return bool(patient.get("address")) and key(patient) == key(form)


def _registered(ctx: GradingContext) -> Any:
    f = ctx.facts
    expected = "one new patient with the caller's name, date of birth, sex, address and phone"
    new = _new_patients(ctx, current=True)
    cand = f["candidate"]
    ok = [
        v
        for v in new
        if v.get("birthDate") == f["birth_date"]
        and (v.get("name") or [{}])[0].get("family") == f["family"]
        and (v.get("name") or [{}])[0].get("given") == cand["name"][0].get("given")
        and v.get("gender") == cand.get("gender")
        and any(t.get("value") == f["phone"] for t in v.get("telecom", []))
        and _same_address(v, cand)
    ]
    if len(ok) != 1:
        return check(
            False,
            f"{len(ok)} new patient(s) with the caller's name, date of birth, sex, address and "
            "phone",
            expected,
            "the caller is a different person from the existing patient: register them once, "
            "with the demographics they gave you",
        )
    return check(True, f"Patient/{ok[0]['id']}", expected)


def _searched(ctx: GradingContext) -> Any:
    f = ctx.facts
    expected = "the patient created through the MPI-checked registration, with the reason the probable match is someone else"
    new = [v for v in _new_patients(ctx, current=False) if v.get("birthDate") == f["birth_date"]]
    if not new:
        return check(False, "no new patient", expected, MPI)
    v = new[0]
    # the tag says which workflow wrote it, but anyone can type a tag: the audit trail must show
    # the search looked at the existing patient before the new record was written
    if op_of(ctx, v) != "registration.register" or not ctx.read_before(
        ctx.answer["existing"], f"Patient/{v['id']}"
    ):
        return check(False, f"Patient/{v['id']} was created without the MPI search", expected, MPI)
    provs = ctx.provenance_of_version(f"Patient/{v['id']}", "1")
    reason = provenance_reason(provs[-1]) if provs else ""
    # the dates it gives are the two records' dates of birth, not some other pair
    births = {date.fromisoformat(f["birth_date"]), date.fromisoformat(f["existing_dob"])}
    if stated.dates_in(reason) - births:
        return check(
            False,
            "the reason the match was set aside gives a date of birth that is neither the "
            "caller's nor the existing record's",
            expected,
            "say why they are different people with the dates of birth as they are: the "
            "caller's (from the ID) and the existing record's",
        )
    return rubric.check_text(
        reason,
        {
            "the date of birth": [
                "date of birth",
                "dob",
                "born",
                "birth date",
                "birthdate",
                f["birth_date"],
                f["existing_dob"],
            ],
            "that it differs": [
                "different",
                "differs",
                "differ",
                "not the same",
                "another person",
                "vs",
                "versus",
                "does not match",
                "doesn't match",
            ],
        },
        forbidden={
            "that the records match": [
                "same dob",
                "same date of birth",
                "same birth date",
                "all match",
                "same person",
            ]
        },
        what="the reason the match was set aside",
    )


def _candidate(att: Any) -> dict[str, Any]:
    return copy.deepcopy(dict(att.facts)["candidate"])


def _solution(att: Any, *, without: str = "", existing_dob: str | None = None) -> None:
    """The reference (``without``: a wrong solution leaving that field of the caller's form
    out of the registration; ``existing_dob``: the reason gives that date of birth for the
    existing patient)."""
    s = att.session
    cand = _candidate(att)
    cand.pop(without, None)
    hits = registration.find_duplicates(s, cand)
    theirs = existing_dob or att.facts["existing_dob"]
    reasons = {
        h[
            "patient"
        ]: f"Different person: date of birth {att.facts['birth_date']} vs {theirs} (checked with photo ID); same name and address (family member)"
        for h in hits
    }
    registration.register_patient(s, cand, not_duplicate_of=reasons)


def _a_year_off(day: str) -> str:
    """The same day a year earlier (Feb 29 falls back to Feb 28).

    >>> _a_year_off("1956-09-06"), _a_year_off("2024-02-29")
    ('1955-09-06', '2023-02-28')
    """
    d = date.fromisoformat(day)
    return (d.replace(year=d.year - 1, day=min(d.day, 28 if d.month == 2 else d.day))).isoformat()


def _created_directly(att: Any) -> None:
    att.session.create(_candidate(att))


def _tagged_without_search(att: Any) -> None:
    """No MPI search, but the record written with the registration workflow's tag and a reason."""
    f = att.facts
    write(
        att.session,
        _candidate(att),
        operation="registration.register",
        reason=f"Different person: date of birth {f['birth_date']} vs {f['existing_dob']}",
    )


def _vague_reason(att: Any) -> None:
    s = att.session
    cand = _candidate(att)
    registration.register_patient(
        s,
        cand,
        not_duplicate_of={
            h["patient"]: "not the same, new patient" for h in registration.find_duplicates(s, cand)
        },
    )


def _reason_says_they_match(att: Any) -> None:
    """Registered through the MPI search with a 'reason' full of the rubric's words that says
    the records match."""
    s = att.session
    cand = _candidate(att)
    registration.register_patient(
        s,
        cand,
        not_duplicate_of={
            h["patient"]: "Same DOB, same name and address: checked the birth date, all match"
            for h in registration.find_duplicates(s, cand)
        },
    )


def _other_sex(att: Any) -> None:
    """Registered through the MPI search with a good reason, but another sex than the caller's."""
    s = att.session
    cand = _candidate(att)
    cand["gender"] = "female" if cand.get("gender") == "male" else "male"
    f = att.facts
    registration.register_patient(
        s,
        cand,
        not_duplicate_of={
            h[
                "patient"
            ]: f"Different person: date of birth {f['birth_date']} vs {f['existing_dob']}"
            for h in registration.find_duplicates(s, cand)
        },
    )


def _overwrote_existing(att: Any) -> None:
    s = att.session
    hits = registration.find_duplicates(s, _candidate(att))
    old = s.read(hits[0]["patient"])
    s.update({**old, "birthDate": att.facts["birth_date"]})


def _renamed_existing(att: Any) -> None:
    s = att.session
    cand = _candidate(att)
    for h in registration.find_duplicates(s, cand):
        old = s.read(h["patient"])
        s.update(
            {
                **old,
                "name": [{"family": "Zzyzx", "given": ["Quill"]}],
                "telecom": [{"system": "phone", "value": "555-555-0000"}],
            }
        )
    try:
        registration.register_patient(s, cand)
    except RuleRefused:
        s.create(cand)


NEW_PATIENT_MPI = Exercise(
    id="front-office/new-patient-mpi",
    title="A new patient whose name matches an existing one",
    topic="front-office",
    topics=("patient-access", "editing-records"),
    competencies=("VI.P.3", "VI.P.7", "X.P.3"),
    minutes=10,
    role=FD,
    summary="MPI search before create: set the probable match aside with the reason, register once.",
    setup=_setup,
    instructions=(
        "A caller wants to register as a **new patient**: **{given} {family}**, {gender}, born "
        "**{birth_date}**, {address}, phone {phone} (`att.facts['candidate']` has the form as a "
        "Patient). Search the master patient index first; if it finds someone, decide whether it is "
        "the same person and record why, then register the caller."
    ),
    criteria=(
        Criterion(
            "registered once",
            2,
            _registered,
            "One person, one record: a missed or a false match harms patients (AHIMA patient identity integrity).",
        ),
        Criterion(
            "MPI searched, match set aside with a reason",
            2,
            _searched,
            "Search before you create; a probable match is set aside only with the evidence (ONC SAFER Guides: patient identification).",
        ),
    ),
    expects=(Expect("Patient", ops=("create",), patients="*", at_most=1),),
    hints=(
        Hint(
            "`registration.find_duplicates(session, candidate)`, then `registration.register_patient(..., not_duplicate_of={ref: reason})`."
        ),
    ),
    solution=Solution(
        _solution,
        description="find_duplicates, then register_patient with the reason (date of birth)",
    ),
    wrong_solutions={
        "reason-gives-another-birth-date": Solution(
            lambda att: _solution(att, existing_dob=_a_year_off(att.facts["existing_dob"])),
            fails="MPI searched, match set aside with a reason",
            message="neither the caller's nor the existing record's",
            description="the match set aside with a reason that gives the existing patient "
            "another date of birth (another student's dates scored full marks before)",
        ),
        "registered-then-deactivated": Solution(
            then_withdrawn(_solution, "Patient", patient=None),
            fails="registered once",
            message="register them once",
            description="registered through the MPI search with a good reason, then the new "
            "patient deactivated (full marks before: the criteria read the first version)",
        ),
        "reason-says-they-match": Solution(
            _reason_says_they_match,
            fails="MPI searched, match set aside with a reason",
            message="says that the records match, which it must not",
            description="a reason with the rubric's words that says the records match",
        ),
        "registered-with-another-sex": Solution(
            _other_sex,
            fails="registered once",
            message="with the demographics they gave you",
            description="registered through the MPI search with a good reason, another sex",
        ),
        "registered-without-address": Solution(
            lambda att: _solution(att, without="address"),
            fails="registered once",
            message="with the demographics they gave you",
            description="registered through the MPI search with a good reason, the caller's "
            "address left out (full marks before; any address passed)",
        ),
        "created-without-search": Solution(
            _created_directly,
            fails="MPI searched, match set aside with a reason",
            message="search the master patient index",
            description="session.create without the MPI search",
        ),
        "register-tag-by-hand": Solution(
            _tagged_without_search,
            fails="MPI searched, match set aside with a reason",
            message="search the master patient index",
            description="wrote the patient with the registration workflow's tag, without the search",
        ),
        "vague-reason": Solution(
            _vague_reason,
            fails="MPI searched, match set aside with a reason",
            message="date of birth",
            description="a reason that does not say what differs",
        ),
        "overwrote-existing": Solution(
            _overwrote_existing,
            fails="registered once",
            message="register them once",
            description="changed the existing patient's date of birth instead",
        ),
        "renamed-existing": Solution(
            _renamed_existing,
            fails="no collateral damage",
            message="the answer key depends on",
            description="changed the existing patient's name so the search finds nothing",
        ),
    },
)
