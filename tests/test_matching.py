"""Probabilistic patient matching: known-truth pairs, the twin and transposed-DOB cases, the MPI."""

from __future__ import annotations

import copy
import functools
import random
from typing import Any

import pytest

from ehr_sandbox.errors import ValidationError
from ehr_sandbox.network import (
    MasterPatientIndex,
    MatchConfig,
    evaluate,
    jaro_winkler,
    score_pair,
    soundex,
)
from ehr_sandbox.network.matching import NICKNAMES

SEED = 20240611
PRECISION_FLOOR = 0.95  # automatic links that are truly one person
# Duplicates in the main sample carry no (25%) or one (75%) registration error.
RECALL_FLOOR = 0.90  # true duplicates linked automatically
REVIEW_RECALL_FLOOR = 0.97  # true duplicates that at least reach the review queue
TWO_ERROR_REVIEW_FLOOR = 0.90  # duplicates with two errors that still reach review

# A fallback population, used only when the generator's person module is unavailable.
_GIVEN = {
    "female": ["Elizabeth", "Margaret", "Katherine", "Jennifer", "Patricia", "Maria", "Aisha", "Mei", "Rebecca",
               "Susan", "Victoria", "Guadalupe", "Priya", "Olga", "Deborah", "Nora"],
    "male": ["William", "Robert", "James", "Michael", "Joseph", "Thomas", "Daniel", "Jose", "Wei", "Kwame",
             "Anthony", "Richard", "Samuel", "Ivan", "Omar", "Theodore"],
}  # fmt: skip
_FAMILY = ["Smith", "Johnson", "Garcia", "Nguyen", "Okafor", "Kowalski", "Patel", "Kim", "Rossi", "Haddad",
           "Martinez", "Brown", "Lee", "Walker", "Cohen", "Schmidt", "Ivanova", "Hernandez", "Clark", "Lopez"]  # fmt: skip
_STREETS = [
    "Oak St",
    "Maple Ave",
    "High St",
    "Elm Rd",
    "Cedar Ln",
    "Park Blvd",
    "Lake Dr",
    "Hill Ct",
]
_ZIPS = ["43004", "43085", "43210", "43215", "43229", "44101", "45202"]


def _builder() -> Any:
    """The generator's own demographics and Patient builder (cheap: no clinical history)."""
    try:
        from synthetic.builders.patient import patient_resource
        from synthetic.person import make_person, name_pools

        pools = name_pools()

        def build(rng: random.Random, birth: int, sex: str, i: int) -> dict[str, Any]:
            person = make_person(rng, pools, birth=birth, sex=sex)
            return patient_resource(
                f"p{i}",
                person,
                mrn=f"MRN{i:08d}",
                physician_id="prac-dr.patel",
                organization_id="practice-1",
            )

        if not _usable(build(random.Random(0), 720000, "female", 0)):
            return None
        return build
    except Exception:  # noqa: BLE001 - fall back to the local population above
        return None


@functools.cache
def generated_patients(n: int, seed: int) -> tuple[dict[str, Any], ...] | None:
    """Patients from ``synthetic.generate`` (one year of history, the cheapest), or None."""
    try:
        import synthetic

        return tuple(rec.patient for rec in synthetic.generate(n, seed=seed, years=1))
    except Exception:  # noqa: BLE001 - the generator reports its own failures
        return None


def make_patients(n: int, seed: int = SEED) -> list[dict[str, Any]]:
    """``n`` distinct Patients (deterministic), built like the generator builds them (its
    person and Patient builders), or from a local population when those are unavailable."""
    from datetime import date

    rng = random.Random(seed)
    build = _builder()
    patients = []
    for i in range(n):
        sex = rng.choice(["female", "male"])
        birth = rng.randrange(date(1930, 1, 1).toordinal(), date(2020, 1, 1).toordinal())
        if build is not None:
            patients.append(build(rng, birth, sex, i))
            continue
        given, family = rng.choice(_GIVEN[sex]), rng.choice(_FAMILY)
        street, postal = f"{rng.randrange(1, 9999)} {rng.choice(_STREETS)}", rng.choice(_ZIPS)
        patients.append(
            {
                "resourceType": "Patient",
                "id": f"p{i}",
                "name": [{"use": "official", "family": family, "given": [given]}],
                "gender": sex,
                "birthDate": date.fromordinal(birth).isoformat(),
                "address": [
                    {"line": [street], "city": "Columbus", "state": "OH", "postalCode": postal}
                ],
                "telecom": [{"system": "phone", "value": f"614-555-{rng.randrange(10000):04d}"}],
            }
        )
    return patients


def _usable(p: dict[str, Any]) -> bool:
    try:
        return bool(
            p["name"][0]["given"][0] and p["name"][0]["family"] and p["birthDate"] and p["address"]
        )
    except (KeyError, IndexError, TypeError):
        return False


# --- perturbations of a copy (what a second registration gets wrong) ------------------------


def nickname(p: dict[str, Any], rng: random.Random) -> bool:
    given = p["name"][0]["given"][0]
    options = [
        n for n, formal in NICKNAMES.items() if given.lower() in formal and n != given.lower()
    ]
    if not options:
        return False
    p["name"][0]["given"][0] = rng.choice(sorted(options)).title()
    return True


def transpose_dob(p: dict[str, Any], rng: random.Random) -> bool:
    y, m, d = p["birthDate"].split("-")
    if int(d) > 12 or d == m:
        return False
    p["birthDate"] = f"{y}-{d}-{m}"
    return True


def dob_typo(p: dict[str, Any], rng: random.Random) -> bool:
    y, m, d = p["birthDate"].split("-")
    new_d = int(d) + rng.choice([-1, 1])
    if not 1 <= new_d <= 28:
        return False
    p["birthDate"] = f"{y}-{m}-{new_d:02d}"
    return True


def moved(p: dict[str, Any], rng: random.Random) -> bool:
    p["address"] = [{"line": [f"{rng.randrange(1, 9999)} New Home Way"], "city": "Dayton", "state": "OH",
                     "postalCode": rng.choice(["45402", "45419", "45432"])}]  # fmt: skip
    return True


def family_typo(p: dict[str, Any], rng: random.Random) -> bool:
    family = p["name"][0]["family"]
    if len(family) < 4:
        return False
    i = rng.randrange(1, len(family) - 2)
    p["name"][0]["family"] = family[:i] + family[i + 1] + family[i] + family[i + 2 :]
    return True


def new_phone(p: dict[str, Any], rng: random.Random) -> bool:
    p["telecom"] = [{"system": "phone", "value": f"937-555-{rng.randrange(10000):04d}"}]
    return True


def no_phone(p: dict[str, Any], rng: random.Random) -> bool:
    p.pop("telecom", None)
    return True


PERTURBATIONS = [nickname, transpose_dob, dob_typo, moved, family_typo, new_phone, no_phone]


def duplicate_of(p: dict[str, Any], rng: random.Random, errors: int) -> dict[str, Any]:
    dup = copy.deepcopy(p)
    dup["id"] = "dup-" + p["id"]
    for change in rng.sample(PERTURBATIONS, errors):
        change(dup, rng)
    return dup


def twin_of(p: dict[str, Any], rng: random.Random, others: list[dict[str, Any]]) -> dict[str, Any]:
    twin = copy.deepcopy(p)
    twin["id"] = "twin-" + p["id"]
    twin["gender"] = "male" if p["gender"] == "female" else "female"
    given = p["name"][0]["given"][0]
    twin["name"][0]["given"] = [
        next(o["name"][0]["given"][0] for o in others if o["name"][0]["given"][0] != given)
    ]
    return twin


def labelled_pairs(
    n: int = 300, errors: tuple[int, ...] = (0, 1, 1, 1)
) -> list[tuple[dict[str, Any], dict[str, Any], bool]]:
    """``n`` true duplicate pairs (each with a number of registration errors drawn from
    ``errors``), ``n`` random stranger pairs, strangers sharing a family name, and n/10 twins."""
    rng = random.Random(SEED + 1)
    people = make_patients(n)
    pairs: list[tuple[dict[str, Any], dict[str, Any], bool]] = []
    for p in people:
        pairs.append((p, duplicate_of(p, rng, rng.choice(errors)), True))
    for _ in range(n):
        a, b = rng.sample(people, 2)
        pairs.append((a, b, False))
    by_family: dict[str, list[dict[str, Any]]] = {}
    for p in people:
        by_family.setdefault(p["name"][0]["family"], []).append(p)
    for group in by_family.values():  # strangers sharing a family name: the hard negatives
        pairs.extend((a, b, False) for a, b in zip(group, group[1:], strict=False))
    for p in people[: n // 10]:
        pairs.append((p, twin_of(p, rng, people), False))
    return pairs


# --- the comparators ------------------------------------------------------------------------


def test_jaro_winkler_orders_similarity() -> None:
    assert jaro_winkler("katherine", "katherine") == 1.0
    assert (
        jaro_winkler("katherine", "kathrine")
        > jaro_winkler("katherine", "karen")
        > jaro_winkler("katherine", "bob")
    )
    assert jaro_winkler("abc", "xyz") == 0.0


def test_soundex_groups_spelling_variants() -> None:
    assert soundex("Schmidt") == soundex("Schmitt")
    assert soundex("Okafor") != soundex("Kowalski")


# --- labelled sample: precision and recall against stated floors -------------------------------


def test_precision_and_recall_on_known_truth_pairs() -> None:
    # Duplicates with no or one registration error: the everyday case.
    pairs = labelled_pairs()
    assert sum(t for *_, t in pairs) >= 250 and sum(not t for *_, t in pairs) >= 300
    precision, recall, f1 = evaluate(pairs)
    assert precision >= PRECISION_FLOOR, (precision, recall)
    assert recall >= RECALL_FLOOR, (precision, recall)
    assert f1 >= min(PRECISION_FLOOR, RECALL_FLOOR)
    with_review = evaluate(pairs, review_as_match=True)
    assert with_review.recall >= REVIEW_RECALL_FLOOR
    assert with_review.recall >= recall  # counting reviews can only find more


def test_generated_patients_and_their_second_registrations() -> None:
    people = generated_patients(40, SEED)
    if people is None:
        pytest.skip("synthetic.generate does not run here yet")
    rng = random.Random(SEED + 4)
    people = [copy.deepcopy(p) for p in people]
    assert all(_usable(p) for p in people)
    pairs = [(p, duplicate_of(p, rng, rng.choice((0, 1, 1, 1))), True) for p in people]
    pairs += [(a, b, False) for a, b in zip(people, people[1:], strict=False)]
    pairs += [(p, twin_of(p, rng, people), False) for p in people[:8]]
    precision, recall, _ = evaluate(pairs)
    assert precision >= PRECISION_FLOOR and recall >= RECALL_FLOOR, (precision, recall)


def test_two_errors_go_to_review_rather_than_auto_link() -> None:
    one = evaluate(labelled_pairs(200, errors=(1,)))
    two = evaluate(labelled_pairs(200, errors=(2,)))
    two_reviewed = evaluate(labelled_pairs(200, errors=(2,)), review_as_match=True)
    assert two.recall < one.recall  # documented: a second error usually costs the automatic link
    assert two_reviewed.recall >= TWO_ERROR_REVIEW_FLOOR  # ... but a person still sees the pair
    assert two.precision >= PRECISION_FLOOR


def test_stricter_link_threshold_trades_recall_for_precision() -> None:
    pairs = labelled_pairs(150)
    loose = evaluate(pairs, MatchConfig(link_threshold=15.0, review_threshold=10.0))
    strict = evaluate(pairs, MatchConfig(link_threshold=50.0, review_threshold=20.0))
    assert strict.recall < loose.recall
    assert strict.precision >= loose.precision
    assert loose.fp > 0  # a loose threshold merges different people (twins among them)


def test_name_and_birth_date_alone_merge_twins() -> None:
    # The "wrong solution" of the matching exercise: trusting family name + birth date.
    naive = MatchConfig(
        m_probs={"given": {"exact": 0.5}, "family": {"exact": 0.9}, "birthDate": {"exact": 0.9},
                 "gender": {"agree": 0.5}, "address": {"exact": 0.5}, "phone": {"exact": 0.5}},
        u_probs={"given": {"exact": 0.5}, "family": {"exact": 0.002}, "birthDate": {"exact": 0.00005},
                 "gender": {"agree": 0.5}, "address": {"exact": 0.5}, "phone": {"exact": 0.5}},
        link_threshold=20.0,
        review_threshold=10.0,
    )  # fmt: skip
    rng = random.Random(3)
    people = make_patients(20, seed=5)
    twins = [(p, twin_of(p, rng, people), False) for p in people]
    assert evaluate(twins, naive).fp == len(twins)
    assert evaluate(twins).fp == 0


# --- the documented hard cases --------------------------------------------------------------


def base_person() -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": "a",
        "name": [{"family": "Okafor", "given": ["William"]}],
        "gender": "male",
        "birthDate": "1980-04-12",
        "address": [{"line": ["12 Oak Street"], "postalCode": "43210"}],
        "telecom": [{"system": "phone", "value": "(614) 555-0142"}],
    }


def test_twins_are_not_merged_automatically_and_the_reason_is_visible() -> None:
    a = base_person()
    twin = copy.deepcopy(a)
    twin["name"][0]["given"] = ["Grace"]
    twin["gender"] = "female"
    score = score_pair(a, twin)
    assert score.decision == "review"
    assert (
        score.fields["given"].agreement == "disagree"
        and score.fields["gender"].agreement == "disagree"
    )
    for agreed in ("family", "birthDate", "address", "phone"):
        assert score.fields[agreed].weight > 0
    assert "Against: given name, sex" in score.explanation
    assert f"{score.total:+.1f}" in score.explanation
    # A lower link threshold turns the same pair into a false merge.
    assert (
        score_pair(
            a, twin, MatchConfig(link_threshold=score.total - 1, review_threshold=10)
        ).decision
        == "match"
    )


def test_transposed_birth_date_with_nickname_and_move_is_not_auto_linked() -> None:
    a = base_person()
    b = copy.deepcopy(a)
    b["name"][0]["given"] = ["Bill"]
    b["birthDate"] = "1980-12-04"
    b["address"] = [{"line": ["77 River Rd"], "postalCode": "45402"}]
    b["telecom"] = [{"system": "phone", "value": "937-555-0199"}]
    score = score_pair(a, b)
    assert score.fields["birthDate"].agreement == "transposed"
    assert score.fields["given"].agreement == "nickname"
    assert score.fields["address"].agreement == "disagree"
    assert score.decision == "review"  # documented: reaches a person, not an automatic link
    assert "day and month swapped" in score.fields["birthDate"].detail
    assert "transposed" in score.explanation
    assert "birth date" in score.explanation and "nickname" in score.explanation
    assert "REVIEW" in score.explanation
    # One more error (a misspelled family name) and it is missed altogether.
    b["name"][0]["family"] = "Okafro"
    missed = score_pair(a, b)
    assert missed.decision == "non-match" and missed.total < score.total


def test_single_typo_in_birth_date_is_recognised() -> None:
    a = base_person()
    b = copy.deepcopy(a)
    b["birthDate"] = "1980-04-21"  # neighbours swapped within the day
    assert score_pair(a, b).fields["birthDate"].agreement == "one-digit"
    b["birthDate"] = "1981-04-12"
    assert score_pair(a, b).fields["birthDate"].agreement == "one-digit"
    b["birthDate"] = "1975-09-30"
    assert score_pair(a, b).fields["birthDate"].agreement == "disagree"


def test_missing_fields_weigh_nothing() -> None:
    a = base_person()
    b = {"resourceType": "Patient", "name": [{"family": "Okafor", "given": ["William"]}]}
    score = score_pair(a, b)
    assert {n: f.agreement for n, f in score.fields.items() if f.weight == 0} == {
        "birthDate": "missing", "gender": "missing", "address": "missing", "phone": "missing"
    }  # fmt: skip
    assert score.total == pytest.approx(
        score.fields["given"].weight + score.fields["family"].weight
    )


def test_address_normalisation_and_old_addresses() -> None:
    a = base_person()
    b = copy.deepcopy(a)
    b["address"] = [{"line": ["12 OAK ST."], "postalCode": "43210-4411"}]
    assert score_pair(a, b).fields["address"].agreement == "exact"
    b["address"] = [
        {"line": ["9 Pine Ct"], "postalCode": "45402"},
        {"use": "old", "line": ["12 Oak St"], "postalCode": "43210"},
    ]
    assert score_pair(a, b).fields["address"].agreement == "exact"


def test_bad_config_is_a_validation_error() -> None:
    with pytest.raises(ValidationError, match="m_probs.given.exact"):
        MatchConfig(m_probs={**MatchConfig().m_probs, "given": {"exact": 1.5}})
    with pytest.raises(ValidationError, match="review_threshold"):
        MatchConfig(link_threshold=5, review_threshold=6)


# --- master patient index -------------------------------------------------------------------


def test_mpi_links_true_duplicates_across_organizations() -> None:
    rng = random.Random(SEED + 2)
    people = make_patients(400, seed=SEED + 3)
    mpi = MasterPatientIndex()
    eids = {p["id"]: mpi.add("clinic", p) for p in people}
    assert len(set(eids.values())) == len(people)  # distinct people stay apart
    dups = [duplicate_of(p, rng, 1) for p in people[:200]]
    linked = sum(mpi.add("hospital", d) == eids[d["id"][4:]] for d in dups)
    assert linked / len(dups) >= RECALL_FLOOR
    wrong = [
        eid
        for eid, refs in mpi.links().items()
        if len({r.split("/")[-1].removeprefix("dup-") for r in refs}) > 1
    ]
    assert len(wrong) / len(dups) <= 1 - PRECISION_FLOOR
    # Blocking: far fewer comparisons than all pairs.
    n = len(mpi)
    assert mpi.comparisons < n * (n - 1) / 2 / 10


def test_mpi_review_queue_link_and_unlink() -> None:
    a = base_person()
    b = copy.deepcopy(a)
    b["id"] = "b"
    b["name"][0]["given"] = ["Bill"]
    b["birthDate"] = "1980-12-04"
    b["address"] = [{"line": ["77 River Rd"], "postalCode": "45402"}]
    b["telecom"] = []
    mpi = MasterPatientIndex()
    ea, eb = mpi.add("clinic", a), mpi.add("hospital", b)
    assert ea != eb
    [(ref_a, ref_b, score)] = mpi.reviews()
    assert {ref_a, ref_b} == {
        "clinic/Patient/a",
        "hospital/Patient/b",
    } and score.decision == "review"
    assert "clinic/Patient/a" in [ref for ref, _ in mpi.candidates(b)]
    kept = mpi.link(ref_a, ref_b)
    assert mpi.reviews() == [] and mpi.links()[kept] == ["clinic/Patient/a", "hospital/Patient/b"]
    link = mpi.patient_links("hospital/Patient/b")
    assert link == [{"other": {"reference": f"{mpi.base_url}/clinic/Patient/a"}, "type": "seealso"}]
    mpi.unlink("hospital/Patient/b")
    assert mpi.patient_links("hospital/Patient/b") == []


def test_mpi_same_organization_duplicate_is_replaced_by_the_first_record() -> None:
    a = base_person()
    b = copy.deepcopy(a)
    b["id"] = "b"
    mpi = MasterPatientIndex()
    assert mpi.add("clinic", a) == mpi.add("clinic", b)
    assert mpi.patient_links("clinic/Patient/b") == [
        {"other": {"reference": "Patient/a"}, "type": "replaced-by"}
    ]
    assert mpi.patient_links("clinic/Patient/a") == [
        {"other": {"reference": "Patient/b"}, "type": "replaces"}
    ]


def test_mpi_rejects_bad_input_with_named_fields() -> None:
    mpi = MasterPatientIndex()
    with pytest.raises(ValidationError, match="id"):
        mpi.add("clinic", {"resourceType": "Patient"})
    with pytest.raises(ValidationError, match="source_org"):
        mpi.add("bad org!", base_person())
    with pytest.raises(ValidationError, match="ref"):
        mpi.patient_links("clinic/Patient/nope")


def test_mpi_sends_an_ambiguous_second_match_to_review() -> None:
    a = base_person()
    b = copy.deepcopy(a)
    b["id"] = "b"
    mpi = MasterPatientIndex()
    ea = mpi.add("clinic", a)
    assert mpi.add("clinic", b) == ea
    eb = mpi.unlink("clinic/Patient/b")  # a person decided these are two people
    c = copy.deepcopy(a)
    c["id"] = "c"
    assert mpi.add("hospital", c) == ea  # joins the best (earliest on a tie) ...
    pending = {(x, y) for x, y, _ in mpi.reviews()}
    assert (
        "clinic/Patient/b",
        "hospital/Patient/c",
    ) in pending  # ... and the other match waits for a person
    assert mpi.enterprise_id("clinic/Patient/b") == eb
