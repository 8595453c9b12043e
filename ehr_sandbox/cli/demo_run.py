"""What ``ehr-sandbox demo`` shows a newcomer: a clinic, a chart, a report and an exercise."""

from __future__ import annotations

from collections import Counter

from rich.console import Console
from rich.table import Table

from synthetic.systems import LOINC

DEMO_REPORT = "problem_list"
CLINIC_TYPES = (
    "Organization",
    "Location",
    "Practitioner",
    "PractitionerRole",
    "Schedule",
    "Slot",
    "Patient",
    "Encounter",
    "Observation",
    "Condition",
    "AllergyIntolerance",
    "MedicationRequest",
    "MedicationAdministration",
    "Immunization",
    "Procedure",
    "ServiceRequest",
    "Specimen",
    "DiagnosticReport",
    "DocumentReference",
    "Appointment",
    "Coverage",
    "Claim",
    "ClaimResponse",
    "Provenance",
)


def run_demo(*, patients: int, seed: int, console: Console | None = None) -> None:
    """Build a small clinic and walk through what a course does with it.

    >>> from io import StringIO
    >>> out = Console(file=StringIO(), width=100)
    >>> run_demo(patients=3, seed=1, console=out)
    >>> "Staff accounts" in out.file.getvalue()
    True
    """
    from ehr_sandbox.sandbox import Sandbox

    con = console or Console()
    con.rule("[bold]ehr-sandbox demo")
    con.print(f"Generating a family practice with {patients} synthetic patients (seed {seed})...")
    sb = Sandbox.generate(patients=patients, seed=seed)
    _show_holdings(con, sb)
    _show_staff(con, sb)
    _show_chart(con, sb)
    _show_report(con, sb)
    _show_front_office(con, sb)
    _show_exercise(con)
    ok = sb.audit.verify()
    con.print(f"Audit trail: {sb.audit.count()} events, chain verifies: [bold]{ok.ok}[/bold]")
    con.rule()
    con.print(
        "Next: [bold]ehr-sandbox exercises list[/bold], or in Python: "
        "[bold]from ehr_sandbox import Sandbox; sb = Sandbox.generate()[/bold]"
    )


def _show_holdings(con: Console, sb: object) -> None:
    from ehr_sandbox.sandbox import Sandbox

    assert isinstance(sb, Sandbox)
    counts: Counter[str] = Counter()
    for rtype in CLINIC_TYPES:
        n = sb.grader_session().search(rtype).count()
        if n:
            counts[rtype] = n
    table = Table(title="What the clinic holds")
    table.add_column("Resource type")
    table.add_column("Count", justify="right")
    for rtype, n in sorted(counts.items()):
        table.add_row(rtype, str(n))
    con.print(table)


def _show_staff(con: Console, sb: object) -> None:
    table = Table(title="Staff accounts (sandbox.login(username))")
    table.add_column("Username")
    table.add_column("Role")
    table.add_column("Name")
    for u in sb.users:  # type: ignore[attr-defined]
        table.add_row(u.username, u.role, u.display)
    con.print(table)


def _show_chart(con: Console, sb: object) -> None:
    session = sb.login("dr.patel")  # type: ignore[attr-defined]
    patient = session.search("Patient").first()
    if patient is None:
        con.print("dr.patel has no patients in this small clinic.")
        return
    name = patient["name"][0]
    who = " ".join([*name.get("given", []), name.get("family", "")])
    con.print(
        f"\n[bold]dr.patel[/bold] opens the chart of [bold]{who}[/bold] (born {patient.get('birthDate')}):"
    )
    problems = session.search("Condition", patient=f"Patient/{patient['id']}").fetch()
    for c in problems[:8]:
        coding = (c.get("code") or {}).get("coding", [{}])[0]
        con.print(f"  problem: {coding.get('display', '?')} ({coding.get('code', '')})")
    bps = session.search("Observation", patient=f"Patient/{patient['id']}", code=f"{LOINC}|85354-9")
    latest = bps.sort("-date").first()
    if latest:
        parts = {
            c["code"]["coding"][0]["code"]: c["valueQuantity"]["value"]
            for c in latest.get("component", [])
        }
        con.print(
            f"  latest BP: {parts.get('8480-6')}/{parts.get('8462-4')} mmHg on {latest.get('effectiveDateTime', '')[:10]}"
        )
    front = sb.login("fd.smith")  # type: ignore[attr-defined]
    hidden = front.search("Observation", patient=f"Patient/{patient['id']}").count()
    con.print(
        f"  the front desk, asking for the same Observations, sees {hidden} (minimum necessary)."
    )


def _show_report(con: Console, sb: object) -> None:
    session = sb.login("dr.patel")  # type: ignore[attr-defined]
    report = session.reports.run(DEMO_REPORT)
    frame = report.to_pandas()
    con.print(
        f"\nReport [bold]{DEMO_REPORT}[/bold] as dr.patel: {len(frame)} rows; the SQL it ran:"
    )
    con.print(report.sql.strip().splitlines()[0] + " ...")


def _show_front_office(con: Console, sb: object) -> None:
    from ehr_sandbox.workflows.demo import front_office_flow

    con.print("\n[bold]A front-office day[/bold] (ehr_sandbox.workflows):")
    for line in front_office_flow(sb):  # type: ignore[arg-type]
        con.print(f"  {line}")


def _show_exercise(con: Console) -> None:
    from ehr_sandbox import exercises

    ids = [e["id"] for e in exercises.catalog()]
    con.print(f"\n{len(ids)} exercises grade themselves, e.g. {', '.join(ids[:3])}.")
    att = exercises.start(ids[0], student="demo-student")
    result = att.check()
    con.print(
        f"Before doing anything, '{ids[0]}' scores {result.score}/{result.max_score}; "
        "att.hint() and att.instructions tell the student what to do."
    )
