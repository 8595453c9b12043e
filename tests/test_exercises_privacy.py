"""Exercises 13-20 (privacy and access control) on real generated sandboxes.

For several students: doing nothing does not pass, the reference solution scores full marks,
every wrong solution fails the criterion it is meant to fail with the intended message, reset
restores the start state, and two students get different variants. Plus the hand-in helpers
(``submit``, ``disclose``) refuse bad input without partial writes.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from exercise_checks import AttemptCache, check_reference_and_wrong_solutions

from ehr_sandbox import exercises
from ehr_sandbox.errors import ExerciseError, NotFound, ValidationError
from ehr_sandbox.exercises.builtin import privacy

STUDENTS = ("alice", "bob")
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
# Types the eight exercises write; reset must bring every one of them back exactly.
TOUCHED = ("Consent", "Claim", "Organization", "Encounter", "Provenance")

_attempt = AttemptCache()


def _state(att: exercises.Attempt) -> dict[str, object]:
    store = att.sandbox._store
    rows: dict[str, object] = {
        t: {(r["id"], r["meta"]["versionId"]) for r in store.iter_type(t)} for t in TOUCHED
    }
    rows["state"] = {
        "disclosures": privacy.accounting_of_disclosures(att.sandbox),
        "handed in": privacy.submitted(att.sandbox, att.exercise.id, att.student),
    }
    rows["btg_review"] = att.sandbox.private.get("btg_review", [])
    rows["audit"] = len(att.sandbox.audit.events())
    return rows


@pytest.fixture(scope="module", autouse=True)
def _clean_workspaces():
    """The encryption and research exercises write files under the temp dir: remove them."""
    yield
    base = Path(tempfile.gettempdir()) / "ehr-sandbox-exercises"
    for att in _attempt.started.values():
        if "workspace" in att.facts:
            shutil.rmtree(att.facts["workspace"], ignore_errors=True)
        shutil.rmtree(base / f"research-{att.variant.seed:016x}", ignore_errors=True)


def test_the_eight_privacy_exercises_are_catalogued():
    assert [row["id"] for row in exercises.catalog(topic="privacy")] == PRIVACY_IDS
    for ex_id in PRIVACY_IDS:
        ex = exercises.get(ex_id)
        assert ex.wrong_solutions and ex.hints and ex.minutes > 0, ex_id
        assert "X.P.2" in ex.competencies, ex_id
        assert "CMA" in ex.exams, ex_id


@pytest.mark.parametrize("student", STUDENTS)
@pytest.mark.parametrize("exercise_id", PRIVACY_IDS)
def test_reference_and_wrong_solutions(exercise_id: str, student: str):
    check_reference_and_wrong_solutions(_attempt(exercise_id, student), _state)


@pytest.mark.parametrize("exercise_id", PRIVACY_IDS)
def test_two_students_get_different_variants(exercise_id: str):
    a = _attempt(exercise_id, "alice")
    b = _attempt(exercise_id, "bob")
    assert a.facts != b.facts
    assert a.instructions != b.instructions


def test_the_variant_is_reproducible():
    again = exercises.start("privacy/snooping-review", "alice")
    assert again.facts == _attempt("privacy/snooping-review", "alice").facts


def test_snooping_review_scores_partial_flags():
    att = _attempt("privacy/snooping-review", "alice")
    att.reset()
    att.exercise.solution.apply(att)
    flagged = privacy.submitted(att.sandbox, "privacy/snooping-review", att.student)
    assert len(flagged) >= 2
    privacy.submit(att, flagged[1:])  # one curiosity look-up missed
    result = att.check()
    recall = result.criterion("curiosity look-ups flagged")
    assert not recall.passed and flagged[0] in recall.feedback
    assert result.criterion("treatment access not flagged").passed


def test_break_the_glass_is_audited_and_queued():
    att = _attempt("privacy/break-the-glass", "bob")
    att.reset()
    f = att.facts
    with pytest.raises(NotFound):
        att.session.read("Patient", f["emergency_id"])  # closed chart before the override
    att.exercise.wrong_solutions["unreviewed"].apply(att)
    po = att.sandbox.login("po.wilson")
    queue = att.sandbox.btg_review_queue(po)
    assert [q["patient"] for q in queue] == [f["emergency_id"]]
    assert queue[0]["reason"]


def test_restriction_is_enforced_once_recorded():
    att = _attempt("privacy/restriction", "alice")
    att.reset()
    f = att.facts
    privacy._restriction_consent(att)
    with pytest.raises(NotFound):
        att.session.read("Encounter", f["self_pay_id"])  # billing no longer sees the visit
    assert att.session.read("Encounter", f["covered_id"])["id"] == f["covered_id"]


def test_release_of_information_has_one_expired_authorization():
    att = _attempt("privacy/release-of-information", "bob")
    today = att.sandbox.reference_date.isoformat()
    grader = att.sandbox.system_session()
    valid = [
        privacy._roi_valid_on(grader.read(att.facts[f"auth{i}"]), att.facts[f"org{i}_ref"], today)
        for i in (1, 2)
    ]
    assert sorted(valid) == [False, True]


def test_encryption_reset_gives_a_fresh_clinic_under_the_old_passphrase():
    from ehr_sandbox.errors import CryptoError
    from ehr_sandbox.sandbox import Sandbox

    att = _attempt("privacy/encryption-keys", "alice")
    att.reset()
    att.exercise.solution.apply(att)
    path = Path(att.facts["clinic"])
    with pytest.raises(CryptoError):
        Sandbox.open(path, passphrase=att.facts["old_passphrase"])
    att.reset()
    again = privacy.clinic_database(att)
    Sandbox.open(again, passphrase=att.facts["old_passphrase"]).close()


def test_disclose_refuses_bad_input_and_records_nothing_partial():
    att = _attempt("privacy/minimum-necessary", "alice")
    att.reset()
    f, s = att.facts, att.session
    for kwargs, field in (
        (
            {"recipient": "payer", "purpose": "HPAYMT", "refs": [f"Claim/{f['claim_id']}"]},
            "recipient",
        ),
        (
            {"recipient": f["payer_ref"], "purpose": "pay", "refs": [f"Claim/{f['claim_id']}"]},
            "purpose",
        ),
        ({"recipient": f["payer_ref"], "purpose": "HPAYMT", "refs": []}, "refs"),
        (
            {
                "recipient": "Organization/nowhere",
                "purpose": "HPAYMT",
                "refs": [f"Claim/{f['claim_id']}"],
            },
            "recipient",
        ),
        (
            {
                "recipient": f["payer_ref"],
                "purpose": "HPAYMT",
                "refs": [f"Claim/{f['claim_id']}"],
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
            refs=[f"Claim/{f['claim_id']}", f"DocumentReference/{notes['id']}"],
        )
    assert privacy.accounting_of_disclosures(att.sandbox) == []


def test_submit_needs_json_ready_data():
    att = _attempt("privacy/role-policy", "alice")
    with pytest.raises(ExerciseError, match="JSON"):
        privacy.submit(att, {"Patient": object()})


def test_role_policy_group_grant_is_caught():
    att = _attempt("privacy/role-policy", "bob")
    att.reset()
    att.exercise.solution.apply(att)
    matrix = privacy.submitted(att.sandbox, "privacy/role-policy", att.student)
    broad = {k: v for k, v in matrix.items() if k not in att.facts["clinical_types"]}
    privacy.submit(att, {**broad, "clinical_record": "rs"})
    result = att.check()
    assert not result.criterion("clinical data denied").passed
    wildcard = result.criterion("no wildcard grants")
    assert not wildcard.passed and "clinical_record" in wildcard.feedback
    assert result.criterion("demographics and schedule allowed").passed


def test_hand_ins_are_kept_per_student_in_a_shared_clinic():
    from ehr_sandbox.sandbox import Sandbox

    clinic = Sandbox.generate(patients=8, seed=5, years=1)
    alice = exercises.start("privacy/role-policy", "alice", sandbox=clinic)
    bob = exercises.start("privacy/role-policy", "bob", sandbox=clinic)
    alice.exercise.solution.apply(alice)
    assert alice.check().passed
    assert privacy.submitted(clinic, "privacy/role-policy", "bob") is None
    assert not bob.check().criterion("no wildcard grants").passed
