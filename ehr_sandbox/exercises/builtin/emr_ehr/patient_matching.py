"""Catalogue item 25, ``emr-ehr/patient-matching``: only true duplicates (a transposed birth date)
are linked with Patient.link; twins are kept apart.
"""

from __future__ import annotations

import copy
from typing import Any

from ehr_sandbox.exercises.builtin.common import (
    changed_fields,
    patient_facts,
    ref_id,
    rewrite_answer_key,
)
from ehr_sandbox.exercises.builtin.emr_ehr.common import FRONT_DESK, adult_patients
from ehr_sandbox.exercises.grading import GradingContext
from ehr_sandbox.exercises.model import Check, Criterion, Exercise, Expect, Hint, Solution
from synthetic.systems import MRN

__all__ = ["LINK_ADVICE", "PATIENT_MATCHING", "TWIN_ADVICE"]

LINK_ADVICE = (
    "link the duplicate to the original: the duplicate's Patient.link type 'replaced-by' the "
    "original (the original 'replaces' it, or has no link); both stay on file"
)
TWIN_ADVICE = (
    "never merge on name + DOB alone: twins share both; never link, deactivate or change a "
    "twin's record"
)


def _setup_matching(sandbox: Any, variant: Any) -> dict[str, Any]:
    from ehr_sandbox.network.journey import birth_date_typo
    from ehr_sandbox.network.matching import score_pair

    s = sandbox.system_session()
    adults = [p for p in adult_patients(sandbox) if birth_date_typo(p["birthDate"])]
    original = variant.pick(adults, salt="patient")
    dup = {
        k: copy.deepcopy(v)
        for k, v in original.items()
        if k not in ("id", "meta", "text", "generalPractitioner")
    }
    dup["birthDate"] = birth_date_typo(original["birthDate"])
    dup["identifier"] = [{"system": MRN, "value": f"MRN9{variant.seed % 10**6:06d}"}]
    dup = s.create(dup, reason="registered at the front desk")
    twin_base = {
        k: copy.deepcopy(v)
        for k, v in variant.pick(adults, salt="twins").items()
        if k not in ("id", "meta", "text", "generalPractitioner", "extension")
    }
    twins = []
    for n, (given, gender) in enumerate((("Jordan", "female"), ("Jamie", "male"))):
        t = copy.deepcopy(twin_base)
        t["name"] = [{"use": "official", "family": "Okoro", "given": [given]}]
        t["gender"], t["birthDate"] = gender, "2003-07-21"
        t["identifier"] = [
            {
                "system": MRN,
                "value": f"MRN8{n}{variant.seed % 10**5:05d}",
            }
        ]
        twins.append(s.create(t, reason="registered at the front desk"))
    pair = score_pair(original, dup)
    twin_score = score_pair(twins[0], twins[1])
    return {
        **patient_facts(original, "original"),
        **patient_facts(dup, "dup"),
        "twin_a": twins[0]["id"],
        "twin_b": twins[1]["id"],
        "dup_score": round(pair.total, 1),
        "twin_score": round(twin_score.total, 1),
        "dup_explanation": pair.explanation,
        "twin_explanation": twin_score.explanation,
    }


def _links_between(ctx: GradingContext, a: str, b: str) -> list[str]:
    out = []
    for x, y in ((a, b), (b, a)):
        p = ctx.read(f"Patient/{x}") or {}
        out += [lk.get("type", "") for lk in p.get("link", []) if ref_id(lk.get("other")) == y]
    return out


def _link_types(ctx: GradingContext, src: str, dst: str) -> list[str]:
    p = ctx.read(f"Patient/{src}") or {}
    return [lk.get("type", "") for lk in p.get("link", []) or [] if ref_id(lk.get("other")) == dst]


def _match_dup(ctx: GradingContext) -> Check:
    f = ctx.facts
    dup_to_orig = _link_types(ctx, f["dup_id"], f["original_id"])
    orig_to_dup = _link_types(ctx, f["original_id"], f["dup_id"])
    expected = f"Patient/{f['dup_id']} replaced-by Patient/{f['original_id']} (the original kept as the record)"
    found = f"duplicate -> original: {dup_to_orig or 'none'}; original -> duplicate: {orig_to_dup or 'none'}"
    if not dup_to_orig and not orig_to_dup:
        return Check(
            False,
            found,
            expected,
            "a transposed birth date is still the same person: look at every field, not only DOB",
        )
    original = ctx.read(f"Patient/{f['original_id']}") or {}
    edited = _edited_beyond_link(ctx, (f["dup_id"], f["original_id"]))
    if edited:
        return Check(
            False,
            f"{found}; also changed: {'; '.join(edited)}",
            expected,
            "link the records and change nothing else: the duplicate stays on file as it was "
            "registered (its typo is the evidence), the original keeps its own data",
        )
    if (
        dup_to_orig != ["replaced-by"]
        or any(t != "replaces" for t in orig_to_dup)
        or original.get("active") is False
    ):
        return Check(False, found, expected, LINK_ADVICE)
    return Check(True, found, expected)


def _links_to_twins(ctx: GradingContext) -> list[str]:
    """Every Patient version written since setup that links to a twin (from any record, the
    pair's original included): each one merged a twin into someone, for as long as it stood."""
    twins = {ctx.facts["twin_a"], ctx.facts["twin_b"]}
    return sorted(
        {
            f"Patient/{v['id']} -> Patient/{ref_id(lk.get('other'))}"
            for v in ctx.versions_since_setup()
            if v.get("resourceType") == "Patient"
            for lk in v.get("link", []) or []
            if ref_id(lk.get("other")) in twins
        }
    )


def _edited_beyond_link(ctx: GradingContext, ids: tuple[str, ...]) -> list[str]:
    """What a linking changed on ``ids`` besides the link (and ``active``): each record
    compared with its version at setup."""
    out = []
    for pid in ids:
        ref = f"Patient/{pid}"
        written = {v.get("meta", {}).get("versionId") for v in ctx.versions_since_setup(ref)}
        history = ctx.history(ref)
        before = next(
            (v for v in history if v.get("meta", {}).get("versionId") not in written), None
        )
        if before is None or not history:
            continue
        fields = changed_fields(before, history[0], ignore=("meta", "text", "link", "active"))
        if fields:
            out.append(f"{ref} {', '.join(fields)}")
    return out


def _match_twins(ctx: GradingContext) -> Check:
    f = ctx.facts
    found = _links_between(ctx, f["twin_a"], f["twin_b"]) + _links_to_twins(ctx)
    expected = (
        "the twins left as two active people (no Patient.link between them or to either of "
        "them, records unchanged)"
    )
    changed = [
        t
        for t in (f["twin_a"], f["twin_b"])
        if ctx.versions_since_setup(f"Patient/{t}")
        or (ctx.read(f"Patient/{t}") or {}).get("active") is False
    ]
    ok = not found and not changed
    return Check(
        ok,
        f"links between the twins: {found or 'none'}; twin records changed: {changed or 'none'}",
        expected,
        "" if ok else TWIN_ADVICE,
    )


def _link(att: Any, keep: str, dup: str) -> None:
    s = att.session
    d = s.read("Patient", dup)
    d["link"] = [{"other": {"reference": f"Patient/{keep}"}, "type": "replaced-by"}]
    s.update(
        d,
        reason="duplicate registration: same person (birth date typed with day and month swapped)",
    )
    k = s.read("Patient", keep)
    k["link"] = [*k.get("link", []), {"other": {"reference": f"Patient/{dup}"}, "type": "replaces"}]
    s.update(k, reason="duplicate registration linked")


def _match_solution(att: Any) -> None:
    _link(att, att.facts["original_id"], att.facts["dup_id"])


def _match_name_dob(att: Any) -> None:
    s = att.session
    everyone = sorted(s.search("Patient").fetch(), key=lambda p: p["id"])
    seen: dict[tuple[str, str], str] = {}
    for p in everyone:
        key = ((p.get("name") or [{}])[0].get("family", ""), p.get("birthDate", ""))
        if key in seen:
            _link(att, seen[key], p["id"])
        else:
            seen[key] = p["id"]


def _match_wrong_direction(att: Any) -> None:
    _link(att, att.facts["dup_id"], att.facts["original_id"])


def _match_seealso(att: Any) -> None:
    f, s = att.facts, att.session
    d = s.read("Patient", f["dup_id"])
    d["link"] = [{"other": {"reference": f"Patient/{f['original_id']}"}, "type": "seealso"}]
    s.update(
        d, reason="possible duplicate registration: same person, birth date day and month swapped"
    )


def _match_deactivate_twin(att: Any) -> None:
    """Harm: the right link, and one twin 'cleaned up' as a duplicate (deactivated)."""
    _match_solution(att)
    s = att.session
    twin = s.read("Patient", att.facts["twin_b"])
    twin["active"] = False
    s.update(twin, reason="duplicate of the other twin record")


def _match_dob_overwritten(att: Any) -> None:
    """Linked right, and the duplicate's birth date 'fixed' to the original's in the same
    update (the registration as typed is gone)."""
    f, s = att.facts, att.session
    d = s.read("Patient", f["dup_id"])
    d["link"] = [{"other": {"reference": f"Patient/{f['original_id']}"}, "type": "replaced-by"}]
    d["birthDate"] = s.read("Patient", f["original_id"])["birthDate"]
    s.update(d, reason="duplicate registration: same person, birth date day and month swapped")
    k = s.read("Patient", f["original_id"])
    k["link"] = [{"other": {"reference": f"Patient/{f['dup_id']}"}, "type": "replaces"}]
    s.update(k, reason="duplicate registration linked")


def _match_twin_into_original(att: Any) -> None:
    """Harm: the right pair linked, and the original also 'replaces' one twin (a twin merged
    into someone else's chart, with neither twin's record touched; two updates, as expected)."""
    f, s = att.facts, att.session
    d = s.read("Patient", f["dup_id"])
    d["link"] = [{"other": {"reference": f"Patient/{f['original_id']}"}, "type": "replaced-by"}]
    s.update(d, reason="duplicate registration: same person, birth date day and month swapped")
    k = s.read("Patient", f["original_id"])
    k["link"] = [
        {"other": {"reference": f"Patient/{x}"}, "type": "replaces"}
        for x in (f["dup_id"], f["twin_b"])
    ]
    s.update(k, reason="duplicate registrations linked")


def _match_answer_key(att: Any) -> None:
    """Answer-key change: point the facts' duplicate pair at the twins and link them."""
    f = rewrite_answer_key(att, original_id=att.facts["twin_a"], dup_id=att.facts["twin_b"])
    _link(att, f["original_id"], f["dup_id"])


PATIENT_MATCHING = Exercise(
    id="emr-ehr/patient-matching",
    title="Patient matching: a transposed birth date and a pair of twins",
    topic="emr-ehr",
    topics=("emr-vs-ehr", "ehr-maintenance", "patient-intake"),
    competencies=("VI.P.7", "VI.P.4", "X.P.3"),
    minutes=15,
    role=FRONT_DESK,
    patients=8,
    summary="Link only true duplicates (Patient.link); keep twins apart.",
    setup=_setup_matching,
    instructions=(
        "The data-quality report flags two pairs:\n\n1. **{original_name}** (DOB {original_dob}, `Patient/{original_id}`) "
        "and **{dup_name}** (DOB {dup_dob}, `Patient/{dup_id}`): match score {dup_score}.\n"
        "2. `Patient/{twin_a}` and `Patient/{twin_b}` (same family name, birth date, address and phone): score {twin_score}."
        "\n\nThe explanations are in `att.facts['dup_explanation']` and `att.facts['twin_explanation']`. Link only records "
        "that are the same person (`Patient.link`: the duplicate `replaced-by` the original; the original may "
        "`replaces` the duplicate). Keep both records on file and change nothing else."
    ),
    criteria=(
        Criterion(
            "true duplicate linked",
            2,
            _match_dup,
            "Two charts for one person split allergies and results between them (MAERB VI.P.7).",
        ),
        Criterion(
            "twins kept apart",
            3,
            _match_twins,
            "A false merge puts one person's data in another's chart: worse than a missed match (patient safety).",
        ),
    ),
    hints=(Hint("Read the explanation: which fields agree, which disagree, and why."),),
    expects=(Expect("Patient", ops=("update",), patients=("dup_id", "original_id"), at_most=2),),
    solution=Solution(_match_solution, description="link the transposed-DOB duplicate only"),
    wrong_solutions={
        "name-dob-merge": Solution(
            _match_name_dob,
            fails="twins kept apart",
            message="name + DOB alone",
            description="link every pair with the same family name and birth date",
        ),
        "wrong-direction": Solution(
            _match_wrong_direction,
            fails="true duplicate linked",
            message=LINK_ADVICE,
            description="the original replaced-by the duplicate",
        ),
        "seealso-link": Solution(
            _match_seealso,
            fails="true duplicate linked",
            message=LINK_ADVICE,
            description="any link type (seealso) instead of replaced-by",
        ),
        "deactivate-twin": Solution(
            _match_deactivate_twin,
            fails="twins kept apart",
            message=TWIN_ADVICE,
            description="link the duplicate, and deactivate one twin as a 'duplicate'",
        ),
        "dob-overwritten": Solution(
            _match_dob_overwritten,
            fails="true duplicate linked",
            message="change nothing else",
            description="link the pair and overwrite the duplicate's birth date with the original's",
        ),
        "twin-into-original": Solution(
            _match_twin_into_original,
            fails="twins kept apart",
            message=TWIN_ADVICE,
            description="link the pair, and let the original 'replace' one twin too",
        ),
        "answer-key": Solution(
            _match_answer_key,
            fails="twins kept apart",
            message=TWIN_ADVICE,
            description="point the facts' duplicate pair at the twins and link them",
        ),
    },
)
