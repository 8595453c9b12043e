"""Exercises 13-20 (privacy and access control): the record of what happened cannot be faked.

The reference and every wrong solution of each exercise run for 8 students (30 with
``EHR_SANDBOX_TRAP_STUDENTS=30``) in ``test_exercise_traps.py``. Here: hand-ins, the accounting
of disclosures and break-the-glass reviews come from the tamper-evident audit trail, so
editing state does not change a grade; the hand-in helpers refuse bad input without partial
writes; each planted trap is in the data for several students; free text is judged by a
rubric; the instructions show names, not Python lists.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from ehr_sandbox import exercises
from ehr_sandbox.errors import ExerciseError, NotFound, ValidationError
from ehr_sandbox.exercises.builtin import privacy
from ehr_sandbox.exercises.builtin.privacy.deidentification import folder_tag
from ehr_sandbox.exercises.variants import DEFAULT_SALT, Variant

PRIVACY_IDS = [
    "privacy/role-policy",
    "privacy/minimum-necessary",
    "privacy/release-of-information",
    "privacy/break-the-glass",
    "privacy/restriction",
    "privacy/deidentification",
    "privacy/snooping-review",
    "privacy/encryption-keys",
]
STUDENTS = [f"student-{i:02d}" for i in range(4)]


def _answer(att: exercises.Attempt) -> dict[str, Any]:
    """The answer fixed at setup (the tests play the instructor)."""
    return att._Attempt__derived.answer  # noqa: SLF001


@pytest.fixture()
def work_files():
    """Remove, after the test, the files the encryption and research exercises wrote under
    the work folder for the students the test names (``work_files.append(student)``): its own
    only, and right after it (a module-wide clean-up at one xdist worker's teardown removed
    files a test on another worker was still grading)."""
    students: list[str] = []
    yield students
    base = privacy.work_dir()
    for student in students:
        seed = Variant.of(DEFAULT_SALT, student, "privacy/encryption-keys").seed
        for tag in (f"{seed:016x}", folder_tag(student)):
            for folder in base.glob(f"*{tag}"):
                shutil.rmtree(folder, ignore_errors=True)


def test_the_eight_privacy_exercises_are_catalogued():
    ids = [row["id"] for row in exercises.catalog(topic="privacy")]
    assert ids[: len(PRIVACY_IDS)] == PRIVACY_IDS
    for ex_id in PRIVACY_IDS:
        ex = exercises.get(ex_id)
        assert len(ex.wrong_solutions) >= 4 and ex.hints and ex.competencies


@pytest.mark.parametrize("exercise_id", ["privacy/minimum-necessary", "privacy/restriction"])
def test_payer_and_plan_are_shown_by_name(exercise_id: str):
    for student in STUDENTS:
        att = exercises.start(exercise_id, student)
        name = att.facts["payer_name" if "payer_name" in att.facts else "plan_name"]
        assert isinstance(name, str) and name[:1] not in "[{(" and "resourceType" not in name
        assert name in att.instructions


def test_the_accounting_of_disclosures_is_the_audit_trail():
    att = exercises.start("privacy/minimum-necessary", "alice")
    att.exercise.wrong_solutions["whole-record"].apply(att)
    assert len(privacy.accounting_of_disclosures(att.sandbox)) == 1
    # Editing the sandbox's state (where the accounting used to live) changes nothing.
    att.sandbox.state["privacy/disclosures"] = []
    assert len(privacy.accounting_of_disclosures(att.sandbox)) == 1
    result = att.check()
    assert not result.criterion("only that encounter").passed


def test_disclose_refuses_bad_input_and_records_nothing_partial():
    att = exercises.start("privacy/minimum-necessary", "alice")
    f, s = att.facts, att.session
    claim = f"Claim/{f['claim_id']}"
    for kwargs, field in (
        ({"recipient": "payer", "purpose": "HPAYMT", "refs": [claim]}, "recipient"),
        ({"recipient": f["payer_ref"], "purpose": "pay", "refs": [claim]}, "purpose"),
        ({"recipient": f["payer_ref"], "purpose": "HPAYMT", "refs": []}, "refs"),
        ({"recipient": "Organization/nowhere", "purpose": "HPAYMT", "refs": [claim]}, "recipient"),
        (
            {
                "recipient": f["payer_ref"],
                "purpose": "HPAYMT",
                "refs": [claim],
                "authorization": "Patient/x",
            },
            "authorization",
        ),
    ):
        with pytest.raises(ValidationError, match=field):
            privacy.disclose(s, **kwargs)
    notes = att.sandbox.system_session().search("DocumentReference", _count="1").first()
    with pytest.raises(NotFound):  # billing may not read notes: the whole release is refused
        privacy.disclose(
            s,
            recipient=f["payer_ref"],
            purpose="HPAYMT",
            refs=[claim, f"DocumentReference/{notes['id']}"],
        )
    assert privacy.accounting_of_disclosures(att.sandbox) == []


def test_submit_needs_json_ready_data_and_is_audited():
    att = exercises.start("privacy/role-policy", "alice")
    before = att.sandbox.audit.count()
    with pytest.raises(ExerciseError, match="JSON"):
        privacy.submit(att, {"Patient": object()})
    assert att.sandbox.audit.count() == before
    privacy.submit(att, {"Patient": "rs"})
    assert privacy.submitted(att.sandbox, "privacy/role-policy", "alice") == {"Patient": "rs"}
    assert privacy.submitted(att.sandbox, "privacy/role-policy", "bob") is None


def test_a_hand_in_written_into_state_is_not_graded():
    att = exercises.start("privacy/snooping-review", "alice")
    truth = _answer(att)["truth"]
    att.sandbox.state[f"handin/{att.exercise.id}|alice"] = truth
    att.session.audit_events()
    assert (
        "no list of flagged event ids handed in"
        in att.check().criterion("curiosity look-ups flagged").feedback
    )
    privacy.submit(att, truth)
    assert att.check().criterion("curiosity look-ups flagged").passed


def test_role_policy_group_and_delete_grants_are_caught():
    att = exercises.start("privacy/role-policy", "bob")
    att.exercise.solution.apply(att)
    matrix = privacy.submitted(att.sandbox, "privacy/role-policy", att.student)
    broad = {k: v for k, v in matrix.items() if k not in att.facts["clinical_types"]}
    privacy.submit(att, {**broad, "clinical_record": "rs", "Patient": "cruds"})
    result = att.check()
    assert not result.criterion("clinical data denied").passed
    wildcard = result.criterion("no wildcard grants")
    assert not wildcard.passed and "clinical_record" in wildcard.feedback
    assert not result.criterion("no delete rights").passed
    assert result.criterion("demographics and schedule allowed").passed


def test_release_of_information_refusal_is_judged_by_a_rubric():
    att = exercises.start("privacy/release-of-information", "bob")
    a = _answer(att)
    assert a["expired_end"] < att.sandbox.reference_date.isoformat()
    for letter, passes in (
        ("No.", False),
        ("We cannot release the records you asked for at this time, sorry.", False),
        ("The authorization expired, so we cannot release the records.", False),
        ("The authorization expired; please send a new signed authorization.", True),
    ):
        privacy.submit(att, {"refused": a["expired_ref"], "letter": letter})
        assert att.check().criterion("refusal with grounds").passed is passes, letter
    privacy.submit(
        att, {"refused": a["valid_ref"], "letter": "It expired; send a new authorization."}
    )
    assert not att.check().criterion("refusal with grounds").passed


def test_break_the_glass_review_must_be_audited_and_reasoned():
    att = exercises.start("privacy/break-the-glass", "bob")
    f = att.facts
    with pytest.raises(NotFound):
        att.session.read("Patient", f["emergency_id"])  # closed chart before the override
    att.exercise.wrong_solutions["unreviewed"].apply(att)
    po = att.sandbox.login("po.wilson")
    queue = att.sandbox.btg_review_queue(po)
    assert [q["patient"] for q in queue] == [f["emergency_id"]]
    with pytest.raises(ValidationError, match="index"):
        privacy.review_override(po, 3, appropriate=True, note="x")
    privacy.review_override(po, 0, appropriate=True, note="fine")
    assert not att.check().criterion("override reviewed").passed  # a meaningless note
    att.reset()
    att.exercise.solution.apply(att)
    assert att.check().criterion("override reviewed").passed


@pytest.mark.parametrize("student", [f"student-{i:02d}" for i in range(12)])
def test_break_the_glass_setup_succeeds_with_a_closed_chart(student: str):
    att = exercises.start("privacy/break-the-glass", student)
    with pytest.raises(NotFound):
        att.session.read("Patient", att.facts["emergency_id"])
    assert att.facts["routine_id"] != att.facts["emergency_id"]


def test_restriction_is_enforced_once_recorded_and_history_counts():
    att = exercises.start("privacy/restriction", "alice")
    f = att.facts
    att.exercise.wrong_solutions["bill-then-repoint"].apply(att)
    with pytest.raises(NotFound):
        att.session.read("Encounter", f["self_pay_id"])  # billing no longer sees the visit
    assert att.session.read("Encounter", f["covered_id"])["id"] == f["covered_id"]
    # The current claims reference only the covered visit, yet the history shows the bill.
    crit = att.check().criterion("self-pay visit not billed to the plan")
    assert not crit.passed and "history" in crit.feedback


@pytest.mark.parametrize("student", STUDENTS)
def test_snooping_review_has_a_refused_attempt_in_every_variant(student: str):
    att = exercises.start("privacy/snooping-review", student)
    a = _answer(att)
    assert a["refused"] and set(a["refused"]) < set(a["truth"])


def test_snooping_review_scores_partial_flags_without_naming_the_missed_event():
    att = exercises.start("privacy/snooping-review", "alice")
    truth = _answer(att)["truth"]
    att.session.audit_events()
    privacy.submit(att, truth[1:])
    result = att.check()
    recall = result.criterion("curiosity look-ups flagged")
    assert not recall.passed and "1 look-up(s) missed" in recall.feedback
    assert truth[0] not in recall.feedback
    assert result.criterion("treatment access not flagged").passed


def test_deidentification_catches_us_dates_and_member_ids(work_files):
    work_files.append("alice")
    att = exercises.start("privacy/deidentification", "alice")
    for name in ("us-birth-dates", "member-ids"):
        att.reset()
        att.exercise.wrong_solutions[name].apply(att)
        assert not att.check().criterion("no Safe Harbor identifiers").passed, name


def test_encryption_covers_backups_and_the_instructions_say_so(work_files):
    from ehr_sandbox.errors import CryptoError
    from ehr_sandbox.sandbox import Sandbox

    work_files.append("alice")
    att = exercises.start("privacy/encryption-keys", "alice")
    assert "backup" in att.instructions and "every copy" in att.instructions
    att.exercise.solution.apply(att)
    path = Path(att.facts["clinic"])
    with pytest.raises(CryptoError):
        Sandbox.open(path, passphrase=att.facts["old_passphrase"])
    assert att.check().passed
    att.reset()
    again = privacy.clinic_database(att)
    Sandbox.open(again, passphrase=att.facts["old_passphrase"]).close()
    shutil.copyfile(again, again.with_name("snapshot.bin"))
    att.exercise.solution.apply(att)
    crit = att.check().criterion("no copy under the old passphrase")
    assert not crit.passed and "snapshot.bin" in crit.feedback
