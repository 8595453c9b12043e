"""Realism and coherence of generated patients (CONTENT.md targets), over one shared sample."""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import date
from typing import Any

import pytest
from realism_sample import N_DEFAULT, default_sample

import synthetic
from synthetic.content import load_content

REF = date(2026, 1, 1)
REF_ISO = REF.isoformat()
N_SAMPLE = N_DEFAULT
pytestmark = [pytest.mark.slow, pytest.mark.realism]


def sample() -> list[synthetic.PatientRecord]:
    return default_sample()  # generated once per session, shared with test_realism_rules


def by_key(rec: synthetic.PatientRecord) -> dict[str, dict[str, Any]]:
    return {f"{r['resourceType']}/{r['id']}": r for r in rec.all()}


def age_at(birth: str, when: str) -> float:
    b, w = date.fromisoformat(birth), date.fromisoformat(when[:10])
    return (w - b).days / 365.2425


def module_by_icd() -> dict[str, Any]:
    """Modules by ICD-10-CM code, including the codes the rules substitute (trimester, side)."""
    content = load_content()
    out = {m.icd10: m for m in content.conditions.values()}
    for t in content.rules.trimester_code:
        for code in (t.first, t.second, t.third):
            out[code] = out[t.unspecified]
    for lat in content.rules.laterality:
        for code in lat.alternatives:
            out[code] = out[lat.icd10]
    return out


def conditions_of(rec: synthetic.PatientRecord) -> dict[str, dict[str, Any]]:
    """Condition resources by module id."""
    icd = module_by_icd()
    out = {}
    for c in rec.by_type("Condition"):
        m = icd.get(c["code"]["coding"][0]["code"])
        if m is not None:
            out.setdefault(m.id, c)
    return out


EVENT_FIELDS = (
    "effectiveDateTime",
    "onsetDateTime",
    "recordedDate",
    "authoredOn",
    "occurrenceDateTime",
    "performedDateTime",
    "issued",
    "abatementDateTime",
)


def event_dates(r: dict[str, Any]) -> list[str]:
    out = [r[f] for f in EVENT_FIELDS if f in r]
    t = r["resourceType"]
    if t == "Encounter":
        out += [r["period"]["start"], r["period"]["end"]]
    elif t in ("Claim", "ClaimResponse"):
        out.append(r["created"])
    elif t == "DocumentReference":
        out.append(r["date"])
    elif t == "Specimen":
        out.append(r["collection"]["collectedDateTime"])
    elif t == "Appointment" and r["status"] in ("proposed", "waitlist"):
        out.append(r["created"])  # a recall or waitlist request: made by now, for later
    elif t == "Appointment" and r["status"] != "booked":
        out.append(r["start"])
    return out


def test_nothing_before_birth_or_after_death_or_the_reference_date() -> None:
    bad = []
    deceased = 0
    for rec in sample():
        birth = rec.patient["birthDate"]
        last = rec.patient.get("deceasedDateTime", REF_ISO)[:10]
        deceased += "deceasedDateTime" in rec.patient
        for r in rec.resources:
            for d in event_dates(r):
                if not birth <= d[:10] <= last:
                    bad.append((r["resourceType"], d, birth, last))
            if r["resourceType"] == "Appointment" and r["status"] in ("proposed", "waitlist"):
                assert "deceasedDateTime" not in rec.patient
            if r["resourceType"] == "Appointment" and r["status"] == "booked":
                assert "deceasedDateTime" not in rec.patient
                assert r["start"][:10] >= REF_ISO
    assert bad == []
    assert 0 < deceased < N_SAMPLE * 0.2


def test_no_impossible_values() -> None:
    content = load_content()
    problems = []
    for rec in sample():
        birth = rec.patient["birthDate"]
        for o in rec.by_type("Observation"):
            code = o["code"]["coding"][0]["code"]
            if code == "85354-9":
                sys_, dia = (c["valueQuantity"]["value"] for c in o["component"])
                if not (isinstance(sys_, int) and isinstance(dia, int) and sys_ > dia > 0):
                    problems.append(("bp", sys_, dia))
                continue
            q = o.get("valueQuantity")
            if q is None:
                continue
            if q["value"] < 0:
                problems.append((code, q["value"]))
            try:
                low, high, unit = content.plausible_range(code)
            except KeyError:
                continue
            if not low <= q["value"] <= high or q["code"] != unit:
                problems.append((code, q["value"], q["code"]))
            if (
                code == "8302-2"
                and age_at(birth, o["effectiveDateTime"]) >= 18
                and q["value"] < 120
            ):
                problems.append(("adult height", q["value"]))
    assert problems == []


def test_diabetes_a1c_coherence() -> None:
    a1c = "4548-4"
    diabetics = 0
    for rec in sample():
        dm = conditions_of(rec).get("type2_diabetes")
        values = sorted(
            (o["effectiveDateTime"][:10], o["valueQuantity"]["value"])
            for o in rec.by_type("Observation")
            if o["code"]["coding"][0]["code"] == a1c
        )
        # the diagnosis date is when it entered the chart (onset may precede the records)
        onset = dm["recordedDate"][:10] if dm else None
        for day, value in values:
            if onset is None or day < onset:
                assert value < 6.5, "non-diabetic with a diabetic A1c"
        if dm is None:
            continue
        diabetics += 1
        assert any(d <= onset and v >= 6.5 for d, v in values), "no diagnostic A1c"
        ref = f"Condition/{dm['id']}"
        follow_ups = [
            e
            for e in rec.by_type("Encounter")
            if e["period"]["start"][:10] > onset
            and any(x["condition"]["reference"] == ref for x in e.get("diagnosis", []))
        ]
        if len(follow_ups) >= 2:
            assert any(d > onset for d, _ in values), "diabetic without follow-up A1c"
    assert diabetics > 20


def test_hypertension_readings_and_treatment() -> None:
    hypertensives = treated = 0
    for rec in sample():
        htn = conditions_of(rec).get("hypertension")
        if htn is None:
            continue
        hypertensives += 1
        ref = f"Condition/{htn['id']}"
        assert any(
            o["code"]["coding"][0]["code"] == "85354-9"
            and o["effectiveDateTime"][:10] >= htn["onsetDateTime"][:10]
            for o in rec.by_type("Observation")
        )
        treated += any(
            any(x["reference"] == ref for x in m.get("reasonReference", []))
            for m in rec.by_type("MedicationRequest")
        )
    assert hypertensives > 100
    assert treated / hypertensives >= 0.8


def test_complications_only_with_their_disease() -> None:
    modules = load_content().conditions
    seen = 0
    for rec in sample():
        have = conditions_of(rec)
        for mid in have:
            for required in modules[mid].requires:
                seen += 1
                assert required in have, f"{mid} without {required}"
    assert seen >= 0  # presence is optional; absence of the parent never is


def test_medications_match_an_indication_and_refills_follow_repeats() -> None:
    content = load_content()
    allowed: dict[str, set[str]] = defaultdict(set)
    refills: dict[tuple[str, str], int] = {}
    icd_modules = module_by_icd()
    for m in content.conditions.values():
        for med in m.medications:
            for icd, mod in icd_modules.items():
                if mod.id == m.id:
                    allowed[icd].add(med.rxnorm)
                    refills[(icd, med.rxnorm)] = med.refills
    schedule = {c: a.get("schedule") for c, a in content.codes["rxnorm"].attributes.items()}
    checked = 0
    for rec in sample():
        keys = by_key(rec)
        for mr in rec.by_type("MedicationRequest"):
            rx = mr["medicationCodeableConcept"]["coding"][0]["code"]
            if "reasonReference" in mr:
                cond = keys[mr["reasonReference"][0]["reference"]]
                icd = cond["code"]["coding"][0]["code"]
            else:
                icd = mr["reasonCode"][0]["coding"][0]["code"]
            assert rx in allowed[icd], f"{rx} prescribed for {icd}"
            repeats = mr["dispenseRequest"]["numberOfRepeatsAllowed"]
            assert repeats == refills[(icd, rx)]
            if schedule.get(rx) == "II":
                assert repeats == 0
            if "priorPrescription" in mr:
                prior = keys[mr["priorPrescription"]["reference"]]
                assert prior["status"] == "completed"
                earliest = (
                    date.fromisoformat(
                        prior["dispenseRequest"]["validityPeriod"]["end"]
                    ).toordinal()
                    - 30
                )
                assert date.fromisoformat(mr["authoredOn"][:10]).toordinal() >= earliest
            checked += 1
    assert checked > 100


def test_immunizations_follow_the_schedule_with_gaps() -> None:
    content = load_content()
    series_interval = {}
    for v in content.immunizations:
        series_interval[v.display] = [d.min_interval_days for d in v.doses]
    children = complete = 0
    for rec in sample():
        # doses are numbered per series (a series may change product: PCV13 -> PCV20)
        doses: dict[str, list[tuple[str, int]]] = defaultdict(list)
        for imm in rec.by_type("Immunization"):
            doses[imm["protocolApplied"][0]["series"]].append(
                (imm["occurrenceDateTime"][:10], imm["protocolApplied"][0]["doseNumberPositiveInt"])
            )
        for series, given in doses.items():
            given.sort()
            assert [n for _, n in given] == list(range(1, len(given) + 1))
            intervals = series_interval.get(series, [])
            for (d0, _), (d1, n1) in zip(given, given[1:], strict=False):
                gap = date.fromisoformat(d1).toordinal() - date.fromisoformat(d0).toordinal()
                if n1 - 1 < len(intervals):
                    assert gap >= intervals[n1 - 1]
        age = age_at(rec.patient["birthDate"], REF_ISO)
        if 3 <= age < 6 and "deceasedDateTime" not in rec.patient:
            children += 1
            complete += len(doses.get("DTaP", [])) >= 4
    assert children > 5
    assert 0 < complete < children or children < 10  # most, but not all (gaps)


def test_labs_have_order_specimen_and_report() -> None:
    for rec in sample():
        keys = by_key(rec)
        reported = {r["reference"] for d in rec.by_type("DiagnosticReport") for r in d["result"]}
        for o in rec.by_type("Observation"):
            if o["category"][0]["coding"][0]["code"] != "laboratory":
                continue
            assert keys[o["basedOn"][0]["reference"]]["resourceType"] == "ServiceRequest"
            assert keys[o["specimen"]["reference"]]["resourceType"] == "Specimen"
            assert f"Observation/{o['id']}" in reported


def test_claims_carry_the_encounter_diagnoses() -> None:
    from synthetic.clinical_rules import compile_rules

    rules = compile_rules(load_content())
    family = module_by_icd()
    claims = 0
    for rec in sample():
        keys = by_key(rec)
        for claim in rec.by_type("Claim"):
            claims += 1
            codes = {d["diagnosisCodeableConcept"]["coding"][0]["code"] for d in claim["diagnosis"]}
            enc = keys[claim["item"][0]["encounter"][0]["reference"]]
            enc_codes = [
                keys[dx["condition"]["reference"]]["code"]["coding"][0]["code"]
                for dx in enc.get("diagnosis", [])
            ]
            dropped = rules.edit_claim(enc_codes)  # claim edits (content) remove these
            for code in enc_codes:
                if code in dropped:
                    assert code not in codes
                    continue
                # the claim may carry the code of today's trimester for the same condition
                assert code in codes or any(
                    family.get(c) is not None and family.get(c) is family.get(code) for c in codes
                ), code
            n = len(claim["diagnosis"])
            total = 0.0
            for item in claim["item"]:
                assert item["diagnosisSequence"] and all(
                    1 <= p <= n for p in item["diagnosisSequence"]
                )
                total += item["net"]["value"]
            assert abs(total - claim["total"]["value"]) < 0.01
        for resp in rec.by_type("ClaimResponse"):
            claim = keys[resp["request"]["reference"]]
            assert resp["created"] >= claim["created"]
            benefit = sum(
                a["amount"]["value"]
                for it in resp["item"]
                for a in it["adjudication"]
                if a["category"]["coding"][0]["code"] == "benefit"
            )
            assert abs(benefit - resp["payment"]["amount"]["value"]) < 0.011
    assert claims > 1000


def test_social_history_is_observations_not_conditions() -> None:
    social = load_content().social
    smoking_codes = set(social.smoking[0].probabilities)
    smokers = 0
    for rec in sample():
        for c in rec.by_type("Condition"):
            assert c["code"]["coding"][0]["code"] not in smoking_codes
        status = [
            o
            for o in rec.by_type("Observation")
            if o["code"]["coding"][0]["code"] == social.smoking_loinc
        ]
        for o in status:
            assert o["category"][0]["coding"][0]["code"] == "social-history"
        smokers += bool(status)
    assert smokers > N_SAMPLE // 2


def test_sensitive_conditions_label_what_is_about_them() -> None:
    content = load_content()
    labelled = 0
    for rec in sample():
        keys = by_key(rec)
        for c in rec.by_type("Condition"):
            level, codes = content.labels_for(c["code"]["coding"])
            sec = {s["code"] for s in c["meta"]["security"]}
            if level == "N" and not codes:
                continue
            labelled += 1
            assert "R" in sec and set(codes) <= sec
            ref = f"Condition/{c['id']}"
            for r in rec.resources:
                about = any(x.get("reference") == ref for x in r.get("reasonReference", [])) or any(
                    x["condition"]["reference"] == ref
                    for x in r.get("diagnosis", [])
                    if "condition" in x
                )
                if about:
                    assert "R" in {s["code"] for s in r["meta"]["security"]}, r["resourceType"]
            for d in rec.by_type("DocumentReference"):
                enc = keys[d["context"]["encounter"][0]["reference"]]
                if any(x["condition"]["reference"] == ref for x in enc.get("diagnosis", [])):
                    assert "R" in {s["code"] for s in d["meta"]["security"]}
    assert labelled > 0


def _share(pred: list[bool]) -> float:
    return sum(pred) / len(pred)


def test_prevalence_matches_published_targets() -> None:
    content = load_content()
    current = set(content.social.current_smoker_codes)
    report = []
    for t in content.prevalence_targets:
        flags: list[bool] = []
        for rec in sample():
            if "deceasedDateTime" in rec.patient:
                continue
            age = age_at(rec.patient["birthDate"], REF_ISO)
            if not t.age_min <= age < t.age_max + 1:
                continue
            if t.sex != "any" and rec.patient["gender"] != t.sex:
                continue
            if t.module is not None:
                # diagnosed cases: the target times the share who are aware of it (content)
                c = conditions_of(rec).get(t.module)
                flags.append(c is not None and c["clinicalStatus"]["coding"][0]["code"] == "active")
            else:
                status = [
                    o
                    for o in rec.by_type("Observation")
                    if o["code"]["coding"][0]["code"] == content.social.smoking_loinc
                ]
                if status:
                    flags.append(status[-1]["valueCodeableConcept"]["coding"][0]["code"] in current)
        n = len(flags)
        if n < 40:
            continue
        p = _share(flags)
        value = t.value * (getattr(content.rules.awareness, t.module or "", None) or 1.0)
        se = math.sqrt(value * (1 - value) / n)
        tol = max(t.tolerance * math.sqrt(max(1.0, 1000 / n)), 3 * se)
        report.append((t.measure, n, round(p, 3), round(value, 3), round(tol, 3)))
        assert abs(p - value) <= tol, report[-1]
    assert len(report) >= 5


@pytest.mark.parametrize("population", sorted(load_content().populations))
def test_specialty_presets_add_their_observations(population: str) -> None:
    pop = load_content().populations[population]
    codes = set()
    for rec in synthetic.generate(40, seed=4, years=3, population=population):
        codes |= {o["code"]["coding"][0]["code"] for o in rec.by_type("Observation")}
    missing = set(pop.observations) - codes
    assert missing == set()
    if population == "ob-gyn":
        assert "11881-0" in codes  # fundal height at prenatal visits
