"""Catalogue item 11 of EXERCISES.md: Access report.

Defines and registers ``reports/access-report`` (section "Running reports").
The package ``__init__`` imports the exercise modules in catalogue order; helpers shared
within the section are in ``common``.
"""

from __future__ import annotations

import contextlib
import re
from collections import Counter
from collections.abc import Mapping
from typing import Any

from ehr_sandbox.audit.events import event_patient
from ehr_sandbox.errors import SandboxError
from ehr_sandbox.exercises.builtin.common import mrn, patient_facts, ref_id
from ehr_sandbox.exercises.builtin.reports.common import (
    PRIVACY_OFFICER,
    answer_of,
    hand_in,
    is_alive,
    nothing_found,
    report_expects,
)
from ehr_sandbox.exercises.grading import GradingContext
from ehr_sandbox.exercises.model import (
    COLLATERAL,
    Check,
    Criterion,
    Exercise,
    Hint,
    Scenario,
    Solution,
)
from ehr_sandbox.exercises.registry import register

# ------------------------------------------------------------------------------------------
# 11. Access report
# ------------------------------------------------------------------------------------------
PHI_COLUMNS = frozenset(
    {
        "name",
        "patient_name",
        "family",
        "family_any",
        "given",
        "birth_date",
        "birthdate",
        "dob",
        "mrn",
        "address",
        "line",
        "city",
        "zip",
        "postal_code",
        "phone",
        "telecom",
        "email",
        "ssn",
        "gender",
        "sex",
    }
)
PHI_ADVICE = "minimum necessary: an access report needs who, when, what and why, not the patient's demographics"
CURIOUS_CLERK = "fd.brown"
OTHER_LOGIN = "dr.nguyen"
ACCESSORS = (
    "dr.patel",
    "dr.nguyen",
    "rn.kim",
    "ma.chen",
    "ma.johnson",
    "fd.brown",
    "billing.davis",
)


def _event_key(ev: Mapping[str, Any]) -> tuple[str, str]:
    who = ""
    for agent in ev.get("agent", []):
        if agent.get("requestor"):
            who = str(agent.get("altId") or "")
            break
    return str(ev.get("recorded", "")), who


def _date_spellings(day: str) -> set[str]:
    """A birth date as people write it: ISO, US (MM/DD/YYYY, M/D/YYYY), compact and dotted.

    >>> sorted(_date_spellings("1980-02-03"))
    ['02/03/1980', '03.02.1980', '1980-02-03', '19800203', '2/3/1980']
    """
    if len(day) != 10:
        return {day} if day else set()
    y, m, d = day[:4], day[5:7], day[8:10]
    return {day, f"{m}/{d}/{y}", f"{int(m)}/{int(d)}/{y}", f"{y}{m}{d}", f"{d}.{m}.{y}"}


def _setup_access(sandbox: Any, variant: Any) -> Scenario:
    """Three colleagues look at one patient's record; a front-desk clerk's peek is refused.

    Every variant has a refused access (the clerk opening a result), so a report of allowed
    accesses only is short in every variant.
    """
    rng = variant.rng()
    system = sandbox.system_session()
    observed = {ref_id(o.get("subject")) for o in system.resources("Observation")}
    patients = sorted(
        (p for p in system.resources("Patient") if is_alive(p) and p["id"] in observed),
        key=lambda p: p["id"],
    )
    patient = variant.pick(patients, salt="patient")
    pid = patient["id"]
    result = variant.pick(
        sorted(o["id"] for o in system.resources("Observation") if ref_id(o.get("subject")) == pid),
        salt="result",
    )
    for username in rng.sample(ACCESSORS, 3):
        session = sandbox.login(username)
        for action in rng.sample(("chart", "vitals", "schedule"), 2):
            try:
                if action == "chart":
                    session.read("Patient", pid)
                elif action == "vitals":
                    session.search("Observation", params={"patient": f"Patient/{pid}"}).fetch()
                else:
                    session.search("Appointment", params={"patient": f"Patient/{pid}"}).fetch()
            except SandboxError:
                continue  # a denied access is logged too, and belongs in the report
    with contextlib.suppress(SandboxError):
        sandbox.login(CURIOUS_CLERK).read("Observation", result)  # refused, and logged
    before = [e for e in sandbox.audit.events() if event_patient(e) == pid]
    address = (patient.get("address") or [{}])[0]
    phone = next(
        (t.get("value") for t in patient.get("telecom", []) if t.get("system") == "phone"), ""
    )
    name = (patient.get("name") or [{}])[0]
    values = {
        mrn(patient),
        name.get("family"),
        *(g for g in name.get("given", []) if len(g) > 2),
        (address.get("line") or [""])[0],
        phone,
        *_date_spellings(str(patient.get("birthDate") or "")),
    }
    return Scenario(
        facts=patient_facts(patient, "patient"),
        answer={
            "accesses": sorted([list(_event_key(e)) for e in before]),
            "refused": sorted(
                [list(_event_key(e)) for e in before if str(e.get("outcome")) != "0"]
            ),
            "logged": sorted(
                [[*_event_key(e), str(e.get("action", "")), str(e.get("outcome"))] for e in before]
            ),
            "phi_values": sorted(v for v in values if v),
        },
    )


def _accesses_listed(ctx: GradingContext) -> Check:
    f = ctx.facts
    before = Counter(tuple(k) for k in ctx.answer["accesses"])
    refused = {tuple(k) for k in ctx.answer["refused"]}
    now = Counter(_event_key(e) for e in ctx.audit_events(patient=f["patient_id"]))
    expected = (
        f"every access to {f['patient_name']}'s record logged before you started, allowed or "
        "refused, each with when (`recorded`), who (`username`), what (`action` or `interaction`) "
        "and whether it was allowed (`outcome`), as the audit trail logged it"
    )
    answer = answer_of(ctx, "reports/access-report")
    if answer is None:
        return nothing_found(expected)
    cols = set(answer["columns"])
    lacking = [c for c in ("recorded", "username", "outcome") if c not in cols] + (
        [] if cols & {"action", "interaction"} else ["action/interaction"]
    )
    if lacking:
        return Check(
            False,
            f"columns {sorted(cols)}; no {', '.join(lacking)}",
            expected,
            "an access report says who, when, what, and whether it was allowed",
        )
    got = Counter(
        (str(r.get("recorded") or ""), str(r.get("username") or "")) for r in answer["rows"]
    )
    missing = before - got
    invented = got - now
    if missing:
        advice = (
            "a refused attempt is an access too: the patient has a right to know who tried"
            if set(missing) & refused
            else "run the access report for this patient over the whole audit trail"
        )
        return Check(
            False,
            f"{sum(got.values())} rows; {sum(missing.values())} logged accesses missing",
            expected,
            advice,
        )
    if invented:
        return Check(
            False,
            f"{sum(invented.values())} rows that are not accesses to this patient",
            expected,
            "list only this patient's audit events",
        )
    # what each access was and how it ended, as logged: a refused peek reported as allowed
    # (or an action changed) falsifies the report
    with_action = "action" in cols
    logged = Counter(
        (r, w, a, o) if with_action else (r, w, o) for r, w, a, o in ctx.answer["logged"]
    )
    shown = Counter(
        tuple(
            str(row.get(c) if row.get(c) is not None else "")
            for c in (
                ("recorded", "username", "action", "outcome")
                if with_action
                else ("recorded", "username", "outcome")
            )
        )
        for row in answer["rows"]
    )
    altered = logged - shown
    if altered:
        return Check(
            False,
            f"{sum(altered.values())} rows show another action or outcome than the audit trail logged",
            expected,
            "report each access as it was logged: a refused attempt stays refused, an action stays what it was",
        )
    return Check(True, f"{sum(got.values())} accesses", expected)


def _minimum_necessary(ctx: GradingContext) -> Check:
    expected = "no patient demographics (name, birth date in any format, MRN, address, phone) in the report"
    answer = answer_of(ctx, "reports/access-report")
    if answer is None:
        return nothing_found(expected)
    named = sorted(c for c in answer["columns"] if c.lower() in PHI_COLUMNS)
    # Case-sensitive whole words: a patient named Johnson is in "Johnson", not in "ma.johnson".
    values = [
        re.compile(r"(?<![A-Za-z0-9])" + re.escape(str(v)) + r"(?![A-Za-z0-9])")
        for v in ctx.answer["phi_values"]
    ]
    leaked = sorted(
        {
            c
            for r in answer["rows"]
            for c, v in r.items()
            if v is not None and any(p.search(str(v)) for p in values)
        }
    )
    if named or leaked:
        return Check(
            False, f"PHI in columns {sorted(set(named) | set(leaked))}", expected, PHI_ADVICE
        )
    return Check(True, f"columns {answer['columns']}", expected)


def _access_rows(att: Any, session: Any = None) -> list[dict[str, Any]]:
    s = session or att.session
    return s.reports.run("access_report", patient=att.facts["patient_id"]).to_pylist()


def _access_solution(att: Any) -> None:
    hand_in(att, att.session.reports.run("access_report", patient=att.facts["patient_id"]))


def _access_with_phi(att: Any) -> None:
    f, r = att.facts, att.session.reports
    who = r.sql(
        "SELECT family, given, birth_date, mrn FROM patient WHERE id = $p", p=f["patient_id"]
    ).to_pylist()[0]
    hand_in(att, [{**who, **row} for row in _access_rows(att)])


def _access_name_in_note(att: Any) -> None:
    # The name hides in an innocent-looking column.
    f = att.facts
    hand_in(att, [{**row, "note": f"re: {f['patient_name']}"} for row in _access_rows(att)])


def _access_us_birth_date(att: Any) -> None:
    f = att.facts
    y, m, d = f["patient_dob"].split("-")
    hand_in(att, [{**row, "subject_born": f"{m}/{d}/{y}"} for row in _access_rows(att)])


def _access_allowed_only(att: Any) -> None:
    hand_in(att, [row for row in _access_rows(att) if str(row["outcome"]) == "0"])


def _access_all_allowed(att: Any) -> None:
    # Every access listed, but the refused peek reported as allowed (a cleaned-up report).
    hand_in(att, [{**row, "outcome": "0"} for row in _access_rows(att)])


def _access_no_outcome(att: Any) -> None:
    # Every access listed, with no word on which were refused.
    hand_in(att, [{k: v for k, v in row.items() if k != "outcome"} for row in _access_rows(att)])


def _access_colleague_login(att: Any) -> None:
    # Harm: the patient's visits are looked up under a physician's login "for context".
    pid = att.facts["patient_id"]
    with contextlib.suppress(SandboxError):
        att.sandbox.login(OTHER_LOGIN).search("Encounter", patient=f"Patient/{pid}").fetch()
    _access_solution(att)


def _access_trail_edited(att: Any) -> None:
    # Answer-key attack: the refused peek is deleted from the audit trail's table, then the
    # report (now without it) handed in.
    pid = att.facts["patient_id"]
    refused = [
        int(e["id"])
        for e in att.session.audit_events()
        if event_patient(e) == pid and str(e.get("outcome")) != "0"
    ]
    con = att.sandbox.audit._con  # noqa: SLF001 - what a student holding the file could do
    for seq in refused:
        con.execute("DELETE FROM audit_log WHERE seq = ?", (seq,))
    _access_solution(att)


ACCESS_REPORT = register(
    Exercise(
        id="reports/access-report",
        skip_traps=("done-twice", "one-more-record"),  # a report handed in again replaces the first
        title="Access report from the audit trail",
        topic="reports",
        competencies=("X.P.2", "VI.P.6"),
        minutes=15,
        role=PRIVACY_OFFICER,
        summary="Produce the access report a patient asked for, with only the columns it needs.",
        topics=("reports", "privacy-security", "patient-access"),
        expects=report_expects(),
        setup=_setup_access,
        instructions=(
            "**{patient_name}** (MRN {patient_mrn}) asked who has looked at their record. As privacy "
            "officer, produce the **access report** from the audit trail: when, who (user and role), "
            "what they did and why.\n\n"
            "The report goes into a file that others will handle: include only what it needs.\n\n"
            '1. Run `att.session.reports.run("access_report", patient=...)` (or your own SQL over the '
            "`audit_event` table).\n"
            "2. Hand in the table (a Report, a DataFrame or a list of dicts):\n\n"
            "```python\nfrom ehr_sandbox.exercises.builtin.reports import hand_in\nhand_in(att, report)\n```\n\n"
            "Then call `att.check()`."
        ),
        criteria=(
            Criterion(
                "every access listed",
                3,
                _accesses_listed,
                "An access report must show every access to the record, allowed or denied (HIPAA 164.312(b) audit controls; 164.528 accounting).",
            ),
            Criterion(
                "minimum necessary",
                3,
                _minimum_necessary,
                "Uses and disclosures of PHI are limited to the minimum necessary for the purpose (HIPAA 164.502(b), 164.514(d)).",
            ),
        ),
        hints=(
            Hint(
                "The `access_report` catalogue report already has the columns an access report needs."
            ),
            Hint(
                "The patient is named in the cover letter; the table itself needs no name, birth date or MRN.",
                cost=1,
            ),
        ),
        solution=Solution(
            _access_solution, description="hand in the access_report for the patient as it is"
        ),
        wrong_solutions={
            "name-in-a-note": Solution(
                _access_name_in_note,
                fails="minimum necessary",
                message="PHI in columns ['note']",
                description="add a 'note' column naming the patient",
            ),
            "us-birth-date": Solution(
                _access_us_birth_date,
                fails="minimum necessary",
                message="PHI in columns ['subject_born']",
                description="add the birth date written MM/DD/YYYY",
            ),
            "allowed-only": Solution(
                _access_allowed_only,
                fails="every access listed",
                message="a refused attempt is an access too",
                description="leave out refused attempts",
            ),
            "refused-shown-allowed": Solution(
                _access_all_allowed,
                fails="every access listed",
                message="a refused attempt stays refused",
                description="list every access, with the refused peek shown as allowed",
            ),
            "no-outcome": Solution(
                _access_no_outcome,
                fails="every access listed",
                message="whether it was allowed",
                description="list every access without the outcome column",
            ),
            "audit-trail-edited": Solution(
                _access_trail_edited,
                fails="every access listed",
                message="tampered",
                description="deletes the refused access from the audit trail, then runs the report (answer-key attack)",
            ),
            "colleague-login": Solution(
                _access_colleague_login,
                fails=COLLATERAL,
                message=OTHER_LOGIN,
                description="look up the patient's visits under a physician's login (harm)",
            ),
            "with-demographics": Solution(
                _access_with_phi,
                fails="minimum necessary",
                message="minimum necessary",
                description="add the patient's name, birth date and MRN to every row",
            ),
        },
    )
)
