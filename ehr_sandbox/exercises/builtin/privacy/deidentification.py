"""Catalogue item 18 of EXERCISES.md: De-identification (Safe Harbor).

Defines and registers ``privacy/deidentification`` (section "Privacy and access control").
The package ``__init__`` imports the exercise modules in catalogue order; helpers shared
within the section are in ``common``.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ehr_sandbox.audit.events import event_username
from ehr_sandbox.errors import ExerciseError, SandboxError
from ehr_sandbox.exercises.builtin.common import patient_label
from ehr_sandbox.exercises.builtin.privacy.common import (
    CONFIDENTIALITY,
    PRIVACY_OFFICER,
    SUBMIT_KIND,
    event_subtype,
    living_patients,
    submit,
    submitted_answer,
    work_dir,
)
from ehr_sandbox.exercises.grading import GradingContext
from ehr_sandbox.exercises.model import (
    COLLATERAL,
    Check,
    Criterion,
    Exercise,
    Expect,
    Hint,
    Scenario,
    Solution,
)
from ehr_sandbox.exercises.registry import register

DEID_ID = "privacy/deidentification"

# ------------------------------------------------------------------------------------------
# 18. De-identification (Safe Harbor)
# ------------------------------------------------------------------------------------------
STUDIES = (
    "blood pressure control in family practice",
    "seasonal patterns of respiratory visits",
    "diabetes screening rates by age group",
    "vaccination coverage in adults",
)
DEID_ADVICE = "years only (no birthDate), ZIP3 only, no names, ids or free text"


def _setup_deid(sandbox: Any, variant: Any) -> Scenario:
    patients = [
        p for p in living_patients(sandbox) if (p.get("address") or [{}])[0].get("postalCode")
    ]
    if not patients:
        raise ExerciseError("setup: no patient with a postal code")
    example = variant.pick(patients, salt="example")
    return Scenario(
        facts={
            "study": variant.pick(STUDIES, salt="study"),
            "example_name": patient_label(example),
            "example_dob": str(example.get("birthDate", "")),
            "example_zip": str((example.get("address") or [{}])[0].get("postalCode", "")),
            "patients": len(living_patients(sandbox)),
        },
    )


def _dataset(folder: Path) -> list[dict[str, Any]]:
    """Every record in a research folder: NDJSON/JSON resources and CSV rows."""
    rows: list[dict[str, Any]] = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        text = path.read_text(encoding="utf-8", errors="replace")
        if path.suffix == ".csv":
            for i, row in enumerate(csv.DictReader(text.splitlines())):
                rows.append({"resourceType": "Row", "id": f"{path.name}-{i}", **row})
            continue
        try:
            docs = [json.loads(line) for line in text.splitlines() if line.strip()]
        except ValueError:
            try:
                docs = [json.loads(text)]
            except ValueError:
                docs = [{"resourceType": "Text", "id": path.name, "text": text}]
        for doc in docs:
            if isinstance(doc, dict) and doc.get("resourceType") == "Bundle":
                rows += [e.get("resource", {}) for e in doc.get("entry", [])]
            elif isinstance(doc, dict):
                rows.append(doc)
    return rows


_WRITTEN_DATE = re.compile(
    r"(?<![\d.])(0?[1-9]|1[0-2])/(0?[1-9]|[12]\d|3[01])/(\d{4}|\d{2})(?![\d.])"
    r"|(?<![\d.])(0?[1-9]|[12]\d|3[01])\.(0?[1-9]|1[0-2])\.\d{4}(?![\d.])"
    r"|(?<!\d)(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])-\d{4}(?!\d)"
)


def _written_dates(rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """Dates finer than a year written as people write them (MM/DD/YYYY, M/D/YY, DD.MM.YYYY):
    Safe Harbor keeps only the year of any date about a person, however it is spelled.

    >>> _written_dates([{"dob": "02/03/1980"}, {"x": "2 of 3"}])
    [('date', 'dob')]
    """
    out: list[tuple[str, str]] = []

    def walk(value: Any, where: str) -> bool:
        if isinstance(value, dict):
            return any(walk(v, where or str(k)) for k, v in value.items())
        if isinstance(value, list):
            return any(walk(v, where) for v in value)
        if isinstance(value, str) and _WRITTEN_DATE.search(value):
            out.append(("date", where))
            return True
        return False

    for row in rows:
        walk({k: v for k, v in row.items() if k not in ("resourceType", "id")}, "")
    return out


_MONTHS = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)


def _birth_spellings(birth: str) -> list[str]:
    """A birth date's month (and day) as people write it besides the ISO and slashed forms
    :func:`_written_dates` reads: compact, month and year, month names.

    >>> _birth_spellings("1980-04-02")[:5]
    ['19800402', '198004', '04/1980', '4/1980', '1980/04']
    """
    if len(birth) != 10 or not birth[:4].isdigit():
        return []
    y, m, d = birth[:4], birth[5:7], birth[8:10]
    month = _MONTHS[int(m) - 1]
    return [
        f"{y}{m}{d}",
        f"{y}{m}",
        f"{m}/{y}",
        f"{int(m)}/{y}",
        f"{y}/{m}",
        *(
            f"{name} {day}{y}"
            for name in (month, month[:3])
            for day in (f"{int(d)} ", f"{int(d)}, ", "")
        ),
        f"{int(d)} {month} {y}",
        f"{int(d)} {month[:3]} {y}",
    ]


def _birth_dates(
    rows: list[dict[str, Any]], patients: list[dict[str, Any]]
) -> list[tuple[str, str]]:
    """Where the dataset keeps a patient's birth month (or day) however it is spelled:
    the grader knows the real birth dates, so it looks for each of them in every form.

    >>> _birth_dates([{"born": "Apr 1980"}, {"code": "198004120"}], [{"birthDate": "1980-04-02"}])
    [('date', 'born')]
    """
    forms = sorted({s for p in patients for s in _birth_spellings(str(p.get("birthDate") or ""))})
    if not forms:
        return []
    pattern = re.compile(
        r"(?<![\w/.])(?:" + "|".join(re.escape(s) for s in forms) + r")(?![\w/])", re.I
    )
    out: list[tuple[str, str]] = []

    def walk(value: Any, where: str) -> bool:
        if isinstance(value, dict):
            return any(walk(v, where or str(k)) for k, v in value.items())
        if isinstance(value, list):
            return any(walk(v, where) for v in value)
        if isinstance(value, str) and pattern.search(" ".join(value.split())):
            out.append(("date", where))
            return True
        return False

    for row in rows:
        walk({k: v for k, v in row.items() if k not in ("resourceType", "id")}, "")
    return out


def _deid_folder(ctx: GradingContext) -> tuple[Path | None, str]:
    value = submitted_answer(ctx, "privacy/deidentification")
    if not isinstance(value, str) or not value:
        return None, "no folder handed in (privacy.submit(att, 'path/to/folder'))"
    folder = Path(value)
    try:
        is_folder = folder.is_dir()
    except (OSError, ValueError):  # not a path at all (a text, a name too long)
        is_folder = False
    if not is_folder:
        return None, f"{value[:60]!r} is not a folder"
    return folder, ""


def _deid_handed_in(ctx: GradingContext) -> Check:
    expected = "a folder with the dataset, one record per patient at least"
    folder, why = _deid_folder(ctx)
    if folder is None:
        return Check(False, why, expected)
    rows = _dataset(folder)
    patients = [r for r in rows if r.get("resourceType") in ("Patient", "Row")]
    if len(patients) < ctx.facts["patients"]:
        return Check(False, f"{len(patients)} patient records", expected)
    return Check(True, f"{len(rows)} records", expected)


def _deid_no_identifiers(ctx: GradingContext) -> Check:
    from ehr_sandbox.deid import scan_for_identifiers

    expected = "none of the 18 Safe Harbor identifiers"
    folder, why = _deid_folder(ctx)
    if folder is None:
        return Check(False, why, expected)
    originals = [
        r for t in ("Patient", "RelatedPerson", "Practitioner", "Coverage") for r in ctx.all(t)
    ]
    rows = _dataset(folder)
    findings = [
        (x.kind, x.path.split("[")[0].split(".")[0]) for x in scan_for_identifiers(rows, originals)
    ]
    findings += _written_dates(rows)
    findings += _birth_dates(rows, ctx.all("Patient"))
    if findings:
        kinds = sorted(set(findings))
        shown = ", ".join(f"{k} in {p}" for k, p in kinds[:6])
        return Check(False, f"{len(findings)} identifiers: {shown}", expected, DEID_ADVICE)
    return Check(True, "no identifier found", expected)


def _deid_audited(ctx: GradingContext) -> Check:
    expected = f"the data taken out through the EHR as {ctx.user.username} (in the audit trail)"
    done = [
        e
        for e in ctx.events()
        if event_username(e) == ctx.user.username
        and str(e.get("outcome")) == "0"
        and event_subtype(e) in ("deidentify", "export", "search-type", "search", "read", "report")
    ]
    if not done:
        return Check(
            False,
            "no research export or read by you in the audit trail",
            expected,
            "data leaves the EHR only through audited paths",
        )
    kinds = sorted({event_subtype(e) for e in done})
    return Check(True, f"{len(done)} audited events ({', '.join(kinds)})", expected)


def _deid_labelled(ctx: GradingContext) -> Check:
    expected = "every resource labelled confidentiality L (de-identified)"
    folder, why = _deid_folder(ctx)
    if folder is None:
        return Check(False, why, expected)
    resources = [r for r in _dataset(folder) if r.get("resourceType") not in ("Row", "Text")]
    unlabelled = [
        r
        for r in resources
        if not any(
            s.get("system") == CONFIDENTIALITY and s.get("code") == "L"
            for s in (r.get("meta") or {}).get("security", [])
        )
    ]
    if not resources or unlabelled:
        return Check(
            False,
            f"{len(unlabelled)} of {len(resources)} resources without label L",
            expected,
            "use session.deidentify(folder)",
        )
    return Check(True, f"{len(resources)} resources labelled L", expected)


def folder_tag(student: str) -> str:
    """The suffix of a student's scripted research folders: from what the student knows (their
    id and this exercise), never from the variant behind the attempt.

    >>> folder_tag("alice") == folder_tag("alice") != folder_tag("bob")
    True
    """
    return hashlib.sha256(f"{DEID_ID}|{student}".encode()).hexdigest()[:16]


def _research_folder(att: Any) -> Path:
    """A fresh, empty folder for this student's research dataset (scripted solutions write
    here)."""
    folder = work_dir() / f"research-{folder_tag(att.student)}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def _deid_solution(att: Any) -> None:
    folder = _research_folder(att)
    att.session.deidentify(str(folder))
    submit(att, str(folder))


def _deid_with_member_ids(att: Any) -> None:
    # The Safe Harbor export, plus a linkage file of insurance member ids "for the analysts".
    folder = _research_folder(att)
    att.session.deidentify(str(folder))
    with contextlib.suppress(SandboxError):
        covers = att.sandbox.login("billing.davis").search("Coverage").fetch()
        lines = ["row,member_id"] + [
            f"{i},{c.get('subscriberId', '')}"
            for i, c in enumerate(covers)
            if c.get("subscriberId")
        ]
        (folder / "linkage.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    submit(att, str(folder))


def _deid_with_birth_table(att: Any, written: Callable[[str], str]) -> None:
    """The export, plus an age table with each birth date (YYYY-MM-DD) as ``written`` spells it."""
    folder = _research_folder(att)
    att.session.deidentify(str(folder))
    rows = ["row,born"]
    for i, p in enumerate(att.session.search("Patient").fetch()):
        b = str(p.get("birthDate") or "")
        if len(b) == 10:
            rows.append(f"{i},{written(b)}")
    (folder / "ages.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    submit(att, str(folder))


def _deid_us_dates(att: Any) -> None:
    # birth dates written MM/DD/YYYY
    _deid_with_birth_table(att, lambda b: f"{b[5:7]}/{b[8:10]}/{b[:4]}")


def _deid_month_names(att: Any) -> None:
    # birth month and year written out ("Apr 1980")
    _deid_with_birth_table(att, lambda b: f"{_MONTHS[int(b[5:7]) - 1][:3].title()} {b[:4]}")


def _deid_identified_export_too(att: Any) -> None:
    # Harm: a full identified export is made "to compare", then the de-identified one handed in.
    scratch = work_dir() / f"identified-{folder_tag(att.student)}"
    shutil.rmtree(scratch, ignore_errors=True)
    with contextlib.suppress(SandboxError):
        att.sandbox.login("instructor.lee").export(str(scratch))
    shutil.rmtree(scratch, ignore_errors=True)
    _deid_solution(att)


def _deid_state_hand_in(att: Any) -> None:
    # Answer-key attack: the folder is written into the sandbox's state, around the EHR.
    folder = _research_folder(att)
    att.session.deidentify(str(folder))
    att.sandbox.state[f"handin/{att.exercise.id}|{att.student}"] = str(folder)


def _deid_names_only(att: Any) -> None:
    folder = _research_folder(att)
    out = []
    for p in att.session.search("Patient").fetch():
        p = {
            k: v
            for k, v in p.items()
            if k not in ("name", "telecom", "identifier", "text", "contact")
        }
        p["address"] = [
            {"state": a.get("state"), "postalCode": a.get("postalCode")}
            for a in p.get("address", [])
        ]
        out.append(json.dumps(p))
    (folder / "Patient.ndjson").write_text("\n".join(out) + "\n", encoding="utf-8")
    submit(att, str(folder))


DEIDENTIFICATION = register(
    Exercise(
        id=DEID_ID,
        local_only=(
            "the student writes the de-identified research extract to a folder on their own machine, which the classroom server cannot read"
        ),
        skip_traps=(
            "done-twice",
            "one-more-record",
        ),  # de-identified exports carry no detail to tell two apart
        title="De-identification: a Safe Harbor research dataset",
        topic="privacy",
        competencies=("X.P.2",),
        minutes=15,
        role=PRIVACY_OFFICER,
        summary="Export a research dataset with none of the 18 Safe Harbor identifiers.",
        setup=_setup_deid,
        instructions=(
            "A research team studying *{study}* asks for the clinic's data for all {patients} "
            "patients, without an IRB waiver: it must be **de-identified** (HIPAA Safe Harbor).\n\n"
            "Write the dataset to a folder of your choice and hand the folder in with "
            "`privacy.submit(att, 'path/to/folder')` (`from ehr_sandbox.exercises.builtin import privacy`). "
            "The grader scans every file for the 18 identifiers. For example, nothing may reveal "
            "that {example_name} was born on {example_dob} or lives in ZIP {example_zip}. "
            "Then call `att.check()`."
        ),
        criteria=(
            Criterion(
                "dataset handed in",
                1,
                _deid_handed_in,
                "A research dataset must still be useful: one record per patient (MAERB X.P.2).",
            ),
            Criterion(
                "no Safe Harbor identifiers",
                4,
                _deid_no_identifiers,
                "Safe Harbor removes all 18 identifiers: dates except the year, geography below the state except ZIP3 (HIPAA 164.514(b)(2)).",
            ),
            Criterion(
                "labelled de-identified",
                1,
                _deid_labelled,
                "De-identified data is labelled as such (confidentiality L) so it is not mistaken for PHI (PRIVACY.md).",
            ),
            Criterion(
                "export audited",
                1,
                _deid_audited,
                "Every use and disclosure of PHI, research exports included, is traceable (HIPAA 164.312(b)).",
            ),
        ),
        hints=(
            Hint("The privacy officer's session has `deidentify(folder)` (HIPAA Safe Harbor)."),
            Hint(
                "Removing names is not enough: birthDate and the 5-digit ZIP are identifiers too.",
                cost=1,
            ),
        ),
        solution=Solution(_deid_solution, description="session.deidentify(folder)"),
        topics=("privacy-security",),
        expects=(Expect("deidentify"), Expect(SUBMIT_KIND)),
        wrong_solutions={
            "member-ids": Solution(
                _deid_with_member_ids,
                fails="no Safe Harbor identifiers",
                message="identifier in",
                description="adds a file of insurance member ids",
            ),
            "us-birth-dates": Solution(
                _deid_us_dates,
                fails="no Safe Harbor identifiers",
                message="date in",
                description="adds birth dates written MM/DD/YYYY",
            ),
            "birth-month-named": Solution(
                _deid_month_names,
                fails="no Safe Harbor identifiers",
                message="date in",
                description="adds birth month and year written out ('Apr 1980')",
            ),
            "identified-export-too": Solution(
                _deid_identified_export_too,
                fails=COLLATERAL,
                message="instructor.lee's login",
                description="makes a full identified export under another login first (harm)",
            ),
            "hand-in-around-the-ehr": Solution(
                _deid_state_hand_in,
                fails="dataset handed in",
                message="no folder handed in",
                description="writes the folder into the sandbox state instead of handing it in (answer-key attack)",
            ),
            "keeps-dates": Solution(
                _deid_names_only,
                fails="no Safe Harbor identifiers",
                message="birthDate",
                description="drops names but keeps birthDate and the 5-digit ZIP",
            ),
        },
        patients=8,
    )
)
