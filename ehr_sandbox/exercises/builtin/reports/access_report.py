"""Catalogue item 11 of EXERCISES.md: Access report.

Defines and registers ``reports/access-report`` (section "Running reports").
The package ``__init__`` imports the exercise modules in catalogue order; helpers shared
within the section are in ``common``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from ehr_sandbox.errors import SandboxError
from ehr_sandbox.exercises.builtin.common import mrn, patient_facts
from ehr_sandbox.exercises.builtin.reports.common import (
    PRIVACY_OFFICER,
    _alive,
    _answer_of,
    _nothing,
    hand_in,
)
from ehr_sandbox.exercises.grading import GradingContext
from ehr_sandbox.exercises.model import Check, Criterion, Exercise, Hint, Solution
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


def _setup_access(sandbox: Any, variant: Any) -> dict[str, Any]:
    rng = variant.rng()
    patients = sorted(
        (p for p in sandbox.system_session().resources("Patient") if _alive(p)),
        key=lambda p: p["id"],
    )
    patient = variant.pick(patients, salt="patient")
    pid = patient["id"]
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
    events = sandbox.audit.events()
    address = (patient.get("address") or [{}])[0]
    phone = next(
        (t.get("value") for t in patient.get("telecom", []) if t.get("system") == "phone"), ""
    )
    return {
        **patient_facts(patient, "patient"),
        "last_event": int(events[-1]["id"]) if events else 0,
        "phi_values": sorted(
            {
                v
                for v in (
                    mrn(patient),
                    patient.get("birthDate"),
                    (patient.get("name") or [{}])[0].get("family"),
                    (address.get("line") or [""])[0],
                    phone,
                )
                if v
            }
        ),
    }


def _access_rows(ctx: GradingContext) -> tuple[Counter[tuple[str, str]], Counter[tuple[str, str]]]:
    """(accesses before the exercise started, every access now) as (recorded, username) counts."""
    f = ctx.facts
    events = ctx.audit_events(patient=f["patient_id"])
    before = Counter(_event_key(e) for e in events if int(e.get("id", 0)) <= f["last_event"])
    return before, Counter(_event_key(e) for e in events)


def _accesses_listed(ctx: GradingContext) -> Check:
    f = ctx.facts
    before, now = _access_rows(ctx)
    expected = (
        f"at least the {sum(before.values())} accesses to {f['patient_name']}'s record logged before you started, "
        "each with when (`recorded`), who (`username`) and what (`action` or `interaction`)"
    )
    answer = _answer_of(ctx, "reports/access-report")
    if answer is None:
        return _nothing(expected)
    cols = set(answer["columns"])
    lacking = [c for c in ("recorded", "username") if c not in cols] + (
        [] if cols & {"action", "interaction"} else ["action/interaction"]
    )
    if lacking:
        return Check(
            False,
            f"columns {sorted(cols)}; no {', '.join(lacking)}",
            expected,
            "an access report says who, when and what",
        )
    got = Counter(
        (str(r.get("recorded") or ""), str(r.get("username") or "")) for r in answer["rows"]
    )
    missing = before - got
    invented = got - now
    if missing:
        sample = ", ".join(f"{w or 'system'} at {t}" for t, w in sorted(missing)[:3])
        return Check(
            False,
            f"{sum(got.values())} rows; missing {sum(missing.values())} (e.g. {sample})",
            expected,
            "run the access report for this patient over the whole audit trail",
        )
    if invented:
        return Check(
            False,
            f"{sum(invented.values())} rows that are not accesses to this patient",
            expected,
            "list only this patient's audit events",
        )
    return Check(True, f"{sum(got.values())} accesses", expected)


def _minimum_necessary(ctx: GradingContext) -> Check:
    f = ctx.facts
    expected = "no patient demographics (name, birth date, MRN, address, phone) in the report"
    answer = _answer_of(ctx, "reports/access-report")
    if answer is None:
        return _nothing(expected)
    named = sorted(c for c in answer["columns"] if c.lower() in PHI_COLUMNS)
    values = set(map(str, f["phi_values"]))
    leaked = sorted(
        {
            c
            for r in answer["rows"]
            for c, v in r.items()
            if v is not None and any(p in str(v) for p in values)
        }
    )
    if named or leaked:
        return Check(False, f"PHI columns {sorted(set(named) | set(leaked))}", expected, PHI_ADVICE)
    return Check(True, f"columns {answer['columns']}", expected)


def _access_solution(att: Any) -> None:
    hand_in(att, att.session.reports.run("access_report", patient=att.facts["patient_id"]))


def _access_with_phi(att: Any) -> None:
    f, r = att.facts, att.session.reports
    rows = r.run("access_report", patient=f["patient_id"]).to_pylist()
    who = r.sql(
        "SELECT family, given, birth_date, mrn FROM patient WHERE id = $p", p=f["patient_id"]
    ).to_pylist()[0]
    hand_in(att, [{**who, **row} for row in rows])


ACCESS_REPORT = register(
    Exercise(
        id="reports/access-report",
        title="Access report from the audit trail",
        topic="reports",
        competencies=("X.P.2", "VI.P.6"),
        minutes=15,
        role=PRIVACY_OFFICER,
        summary="Produce the access report a patient asked for, with only the columns it needs.",
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
            "with-demographics": Solution(
                _access_with_phi,
                fails="minimum necessary",
                message="minimum necessary",
                description="add the patient's name, birth date and MRN to every row",
            ),
        },
    )
)
