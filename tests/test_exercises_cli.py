"""``ehr-sandbox exercises ...`` and ``ehr-sandbox gradebook`` end to end (files, exit codes)."""

from __future__ import annotations

import pandas as pd

from ehr_sandbox import exercises
from ehr_sandbox.cli.app import main


def test_list_and_show(capsys):
    assert main(["exercises", "list", "--topic", "records"]) == 0
    out = capsys.readouterr().out
    assert all(row["id"] in out for row in exercises.catalog(topic="records"))
    assert main(["exercises", "show", "records/correction"]) == 0
    out = capsys.readouterr().out
    assert all(c.name in out for c in exercises.get("records/correction").criteria)


def test_user_errors_are_one_line_without_traceback(capsys, tmp_path):
    assert main(["exercises", "show", "records/nope"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and "records/nope" in err
    assert main(["gradebook", "--course", str(tmp_path / "missing.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "missing.json" in err
    assert (
        main(
            [
                "exercises",
                "check",
                "records/correction",
                "--student",
                "a",
                "--db",
                str(tmp_path / "no.db"),
            ]
        )
        == 2
    )
    assert "Traceback" not in capsys.readouterr().err


def test_start_work_check_and_gradebook_from_files(capsys, tmp_path):
    course = exercises.Course("MA 101", salt="cli-salt")
    course.enroll("alice", name="Alice Adams", email="alice@example.edu")
    course.enroll("bob", name="Bob Brown", email="bob@example.edu")
    course.assign("records/correction", max_attempts=3)
    course_file = course.save(tmp_path / "course.json")
    db = tmp_path / "alice.db"

    assert (
        main(
            [
                "exercises",
                "start",
                "records/correction",
                "--student",
                "alice",
                "--db",
                str(db),
                "--course",
                str(course_file),
            ]
        )
        == 0
    )
    started = capsys.readouterr().out
    assert "keyed the systolic" in started

    # the instructor regenerates alice's variant: the very same instructions
    assert (
        main(
            [
                "exercises",
                "show",
                "records/correction",
                "--student",
                "alice",
                "--course",
                str(course_file),
            ]
        )
        == 0
    )
    instructions = started.split("\n\nSaved to")[0]
    assert instructions in capsys.readouterr().out

    # nothing done yet: graded, recorded, exit 1
    assert (
        main(
            [
                "exercises",
                "check",
                "records/correction",
                "--student",
                "alice",
                "--db",
                str(db),
                "--course",
                str(course_file),
            ]
        )
        == 1
    )
    capsys.readouterr()

    att = exercises.open_attempt(db)
    att.exercise.solution.apply(att)
    att.sandbox.close()
    assert (
        main(
            [
                "exercises",
                "check",
                "records/correction",
                "--student",
                "alice",
                "--db",
                str(db),
                "--course",
                str(course_file),
            ]
        )
        == 0
    )
    assert "passed" in capsys.readouterr().out

    # the file belongs to alice: checking it as bob is a user error
    assert (
        main(["exercises", "check", "records/correction", "--student", "bob", "--db", str(db)]) == 2
    )
    assert "no attempt at records/correction by bob" in capsys.readouterr().err

    out = tmp_path / "grades.csv"
    assert main(["gradebook", "--course", str(course_file), "--out", str(out)]) == 0
    table = pd.read_csv(out, dtype=str, keep_default_na=False)
    column = [c for c in table.columns if "records/correction" in c]
    assert (
        list(table.columns[:5]) == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
        and column
    )
    alice = table[table["SIS Login ID"] == "alice"].iloc[0]
    assert float(alice[column[0]]) == exercises.get("records/correction").max_score
    assert table[table["SIS Login ID"] == "bob"].iloc[0][column[0]] == ""
    assert len(exercises.Course.load(course_file).results("alice")) == 2

    moodle = tmp_path / "moodle.csv"
    assert (
        main(
            ["gradebook", "--course", str(course_file), "--out", str(moodle), "--format", "moodle"]
        )
        == 0
    )
    assert list(pd.read_csv(moodle).columns[:2]) == ["Username", "Email address"]
