"""Clinical realism rules (issue 14): each rule checked on 1,000 default patients and 300 per preset.

Every expectation comes from the content (rules.toml, immunizations.toml, growth tables, staff),
never from a constant here; the samples are generated once per session (realism_sample).
"""

from __future__ import annotations

import math
import statistics
from collections import Counter, defaultdict
from datetime import date
from typing import Any

import pytest
from realism_sample import (
    REF_ISO,
    age_days,
    age_years,
    all_samples,
    code_of,
    day,
    default_sample,
    keyed,
    long_sample,
    practice,
    preset_sample,
    specialty_presets,
)

from synthetic.clinical_rules import compile_rules
from synthetic.content import load_content
from synthetic.growth import growth_tables

pytestmark = [pytest.mark.realism, pytest.mark.slow]

CVX = "http://hl7.org/fhir/sid/cvx"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
LOINC = "http://loinc.org"
HCPCS = "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
MVX = "http://hl7.org/fhir/sid/mvx"


def content() -> Any:
    return load_content()


def rules() -> Any:
    return compile_rules(load_content())


def every_record() -> list[tuple[str, Any]]:
    return [(p, rec) for p, recs in all_samples() for rec in recs]


def claim_codes(claim: dict[str, Any]) -> list[str]:
    return [code_of(d["diagnosisCodeableConcept"], ICD10) for d in claim.get("diagnosis", [])]


# --------------------------------------------------------------------------- vaccines


def test_no_vaccine_before_its_product_was_licensed_and_specific_cvx_with_mvx() -> None:
    c = content()
    allowed: dict[str, list[Any]] = defaultdict(list)
    for p in c.rules.vaccine_product:
        allowed[p.cvx].append(p)
    unspecified = {code for code, text in c.codes["cvx"].codes.items() if "UNSPECIFIED" in text}
    doses = bad = 0
    for _, rec in every_record():
        for imm in rec.by_type("Immunization"):
            doses += 1
            cvx = code_of(imm["vaccineCode"], CVX)
            when = imm["occurrenceDateTime"][:10]
            a = age_days(rec, when)
            ok = any(
                p.from_ <= when < p.until and p.min_age_days <= a <= p.max_age_days
                for p in allowed[cvx]
            )
            mvx = imm.get("manufacturer", {}).get("identifier", {})
            if not ok or cvx in unspecified or mvx.get("system") != MVX or not mvx.get("value"):
                bad += 1
    assert doses > 2000
    assert bad == 0


def test_cdc_schedule_windows_age_limits_and_infant_site() -> None:
    c = content()
    r = rules()
    series_key = {v.display: v.id for v in c.immunizations}
    doses = infants = bad = 0
    deltoid = {"left arm", "right arm", "left deltoid", "right deltoid"}
    for _, rec in every_record():
        for imm in rec.by_type("Immunization"):
            applied = imm["protocolApplied"][0]
            key = series_key[applied["series"]]
            n = applied["doseNumberPositiveInt"]
            a = age_days(rec, imm["occurrenceDateTime"])
            doses += 1
            if a > r.max_age(key, n):
                bad += 1
            if code_of(imm["route"]) in ("IM", "SQ") and a < 365:
                infants += 1
                if imm["site"].get("text") in deltoid:
                    bad += 1
    assert doses > 2000 and infants > 50
    assert bad == 0


# --------------------------------------------------------------------------- prescribing


def test_no_drug_of_a_class_the_patients_allergy_rules_out() -> None:
    c = content()
    r = rules()
    snomed_allergy = {a.snomed: a.id for a in c.allergies}
    checked = bad = 0
    for _, rec in every_record():
        allergies = []
        for ai in rec.by_type("AllergyIntolerance"):
            key = snomed_allergy.get(code_of(ai["code"]))
            if key:
                allergies.append((ai["onsetDateTime"][:10], key))
        if not allergies:
            continue
        for mr in rec.by_type("MedicationRequest"):
            rx = code_of(mr["medicationCodeableConcept"], RXNORM)
            active = {k for onset, k in allergies if onset <= mr["authoredOn"][:10]}
            checked += bool(active)
            if active and r.blocked_by_allergies(rx, active):
                bad += 1
    assert checked > 50
    assert bad == 0


def test_one_antibiotic_per_visit_and_drugs_fit_the_age() -> None:
    c = content()
    r = rules()
    ages: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for m in c.conditions.values():
        for med in m.medications:
            ages[med.rxnorm].append((med.age_min, med.age_max))
    visits = bad = 0
    for _, rec in every_record():
        per_encounter: Counter[str] = Counter()
        for mr in rec.by_type("MedicationRequest"):
            rx = code_of(mr["medicationCodeableConcept"], RXNORM)
            if "encounter" in mr and r.is_antibiotic(rx):
                per_encounter[mr["encounter"]["reference"]] += 1
            if "priorPrescription" in mr:
                continue  # a renewal of a drug started at a fitting age
            a = age_years(rec, mr["authoredOn"])
            if not any(lo <= a <= hi + 1 for lo, hi in ages[rx]):
                bad += 1
        visits += len(per_encounter)
        bad += sum(1 for n in per_encounter.values() if n > 1)
    assert visits > 300
    assert bad == 0


def test_pediatric_liquid_doses_follow_the_weight() -> None:
    r = rules()
    weight_loinc = "29463-7"
    checked = bad = 0
    for _, rec in every_record():
        weights = sorted(
            (o["effectiveDateTime"], o["valueQuantity"]["value"])
            for o in rec.by_type("Observation")
            if code_of(o["code"], LOINC) == weight_loinc
        )
        for mr in rec.by_type("MedicationRequest"):
            rule = r.weight_doses.get(code_of(mr["medicationCodeableConcept"], RXNORM))
            if rule is None:
                continue
            # the weight measured at that visit, or the last one before it (video visits)
            before = [w for when, w in weights if when <= mr["authoredOn"]]
            w = before[-1] if before else None
            inst = mr["dosageInstruction"][0]
            dose = inst["doseAndRate"][0]["doseQuantity"]["value"]
            checked += 1
            if w is None or abs(dose - rule.ml(float(round(w)))) > 0.01:
                bad += 1
            elif inst["timing"]["repeat"]["frequency"] != rule.doses_per_day:
                bad += 1  # the schedule must be the rule's, as the dose text says
    assert checked > 20
    assert bad == 0


def test_monitoring_rules_are_followed() -> None:
    c = content()
    panels = {p.id: p.loinc for p in c.labs.values()}
    checked = missing = 0
    for _, rec in every_record():
        reports = defaultdict(list)
        for dr in rec.by_type("DiagnosticReport"):
            reports[code_of(dr["code"], LOINC)].append(dr["effectiveDateTime"][:10])
        for rule in c.rules.monitoring:
            starts = sorted(
                mr["authoredOn"][:10]
                for mr in rec.by_type("MedicationRequest")
                if code_of(mr["medicationCodeableConcept"], RXNORM) in rule.rxnorm
            )
            if not starts:
                continue
            first = starts[0]
            last = rec.patient.get("deceasedDateTime", REF_ISO)[:10]
            if day(last) - day(first) < rule.every_days * 1.5:
                continue
            checked += 1
            if not any(first <= d for d in reports.get(panels[rule.panel], [])):
                missing += 1
    assert checked > 20
    assert missing == 0


def _periods(rec: Any) -> list[tuple[str, int, int]]:
    out = []
    for mr in rec.by_type("MedicationRequest"):
        rx = code_of(mr["medicationCodeableConcept"], RXNORM)
        start = day(mr["authoredOn"])
        end = day(mr["dispenseRequest"]["validityPeriod"]["end"])
        out.append((rx, start, end))
    return out


def test_no_duplicate_therapy_classes() -> None:
    r = rules()
    checked = bad = 0
    for _, rec in every_record():
        periods = [p for p in _periods(rec) if r.classes(p[0])]
        for i, (a, s1, e1) in enumerate(periods):
            for b, s2, e2 in periods[i + 1 :]:
                if a == b or not (s1 < e2 and s2 < e1):
                    continue
                checked += 1
                if r.duplicate_of(a, {b}):
                    bad += 1
    assert checked > 50
    assert bad == 0


def test_renewals_are_timely() -> None:
    late = renewals = 0
    for _, rec in every_record():
        keys = keyed(rec)
        for mr in rec.by_type("MedicationRequest"):
            if "priorPrescription" not in mr:
                continue
            prior = keys[mr["priorPrescription"]["reference"]]
            renewals += 1
            ran_out = day(prior["dispenseRequest"]["validityPeriod"]["end"])
            late += day(mr["authoredOn"]) > ran_out + 30
    assert renewals > 200
    assert late / renewals < 0.05


# --------------------------------------------------------------------------- growth


def _measures(rec: Any, loinc: str) -> list[tuple[str, float]]:
    return sorted(
        (o["effectiveDateTime"][:10], o["valueQuantity"]["value"])
        for o in rec.by_type("Observation")
        if code_of(o["code"], LOINC) == loinc
    )


def test_infants_follow_the_cdc_growth_reference() -> None:
    g = growth_tables()
    low: Counter[str] = Counter()
    n: Counter[str] = Counter()
    for _, rec in every_record():
        sex = rec.patient["gender"]
        for loinc, table in (
            ("8302-2", "length"),
            ("29463-7", "weight_infant"),
            ("9843-4", "head"),
        ):
            for when, value in _measures(rec, loinc):
                months = age_days(rec, when) / 30.4375
                if 2 <= months <= 12:
                    n[table] += 1
                    low[table] += g.zscore(table, sex, months, value) < -2
    for table in ("length", "weight_infant", "head"):
        assert n[table] > 100, table
        # about 2.3 % below -2 SD in the reference population; allow for sampling
        assert low[table] / n[table] < 0.06, (table, low[table], n[table])


def test_childhood_obesity_prevalence_and_no_jump_at_18() -> None:
    g = growth_tables()
    target = 0.197  # NHANES 2017-March 2020, children 2-19 (rules.toml [growth] source)
    z95 = rules().growth.obesity_z
    obese = children = 0
    jumps = pairs = 0
    for _, rec in every_record():
        bmis = _measures(rec, "39156-5")
        weights = _measures(rec, "29463-7")
        if "deceasedDateTime" not in rec.patient and bmis:
            when, bmi = bmis[-1]
            a = age_years(rec, when)
            if 2 <= a < 20 and day(when) > day(REF_ISO) - 400:
                children += 1
                obese += g.zscore("bmi", rec.patient["gender"], a * 12, bmi) >= z95
        for (d0, w0), (d1, w1) in zip(weights, weights[1:], strict=False):
            if age_years(rec, d0) < 18 <= age_years(rec, d1) and day(d1) - day(d0) < 400:
                pairs += 1
                jumps += abs(w1 - w0) / w0 > 0.25
    assert children > 200
    p = obese / children
    assert abs(p - target) < 4 * math.sqrt(target * (1 - target) / children) + 0.02, p
    assert pairs > 3 and jumps == 0


# --------------------------------------------------------------------------- payers


def test_payers_by_age_with_coverage_periods() -> None:
    r = rules()
    medicare = r.payer.medicare_payer
    c = content()
    payer_names = {p.id: p.name for p in c.practice.payers}
    claims = bad = 0
    for _, rec in every_record():
        keys = keyed(rec)
        death = rec.patient.get("deceasedDateTime", "9999")[:10]
        for cov in rec.by_type("Coverage"):
            if cov["period"].get("end", "9999") > death:
                bad += 1
        for claim in rec.by_type("Claim"):
            claims += 1
            cov = keys[claim["insurance"][0]["coverage"]["reference"]]
            is_medicare = cov["payor"][0].get("display") == payer_names[medicare]
            a = age_years(rec, claim["created"])
            if is_medicare != (a >= r.payer.medicare_age):
                bad += 1
            if not cov["period"]["start"] <= claim["created"] <= cov["period"].get("end", "9999"):
                bad += 1
    assert claims > 5000
    assert bad == 0


def test_medicare_wellness_and_admin_codes() -> None:
    c = content()
    r = rules()
    medicare_name = next(p.name for p in c.practice.payers if p.id == r.payer.medicare_payer)
    awv = {r.payer.awv_initial.split("|")[1], r.payer.awv_subsequent.split("|")[1]}
    flu_medicare = next(v.medicare_admin_code for v in c.immunizations if v.id == "influenza")
    physicals = {"WELL-ADULT", "WELL-SENIOR"}
    seen_awv = seen_g0008 = bad = 0
    for _, rec in every_record():
        keys = keyed(rec)
        for claim in rec.by_type("Claim"):
            cov = keys[claim["insurance"][0]["coverage"]["reference"]]
            codes = {code_of(i["productOrService"]) for i in claim["item"]}
            if cov["payor"][0].get("display") != medicare_name:
                continue
            bad += bool(codes & physicals)
            seen_awv += bool(codes & awv)
            seen_g0008 += flu_medicare.split("|")[1] in codes
    assert seen_awv > 20 and seen_g0008 > 5
    assert bad == 0


def test_payer_lag_varies() -> None:
    lags: dict[str, set[int]] = defaultdict(set)
    for _, rec in every_record():
        keys = keyed(rec)
        for resp in rec.by_type("ClaimResponse"):
            claim = keys[resp["request"]["reference"]]
            lags[resp["insurer"]["reference"]].add(day(resp["created"]) - day(claim["created"]))
    assert lags and all(len(v) >= 5 for v in lags.values())


# --------------------------------------------------------------------------- coding


def scrub(claim: dict[str, Any], encounter_obs: set[str]) -> list[str]:
    """A claim scrubber: the content's coding edits a claim violates (empty when clean)."""
    c = content()
    codes = claim_codes(claim)
    problems = []
    r = rules()
    for code in r.edit_claim(codes):
        problems.append(f"{code} with an excluding code")
    ga = c.conditions["pregnancy"].pregnancy.gestational_age_loinc
    for t in c.rules.trimester_code:
        if t.unspecified in codes and ga in encounter_obs:
            problems.append(f"{t.unspecified} although gestational age is recorded")
    return problems


def test_claim_scrubber_finds_nothing() -> None:
    claims = 0
    problems: list[str] = []
    for _, rec in every_record():
        obs: dict[str, set[str]] = defaultdict(set)
        for o in rec.by_type("Observation"):
            if "encounter" in o:
                obs[o["encounter"]["reference"]].add(code_of(o["code"], LOINC))
        for claim in rec.by_type("Claim"):
            claims += 1
            enc = claim["item"][0]["encounter"][0]["reference"]
            problems += scrub(claim, obs[enc])
    assert claims > 5000
    assert problems == []


def test_scrubber_catches_each_coding_error() -> None:
    """The scrubber itself fails bad claims (so a clean run above means something)."""
    c = content()

    def claim(*codes: str) -> dict[str, Any]:
        return {
            "diagnosis": [
                {"diagnosisCodeableConcept": {"coding": [{"system": ICD10, "code": x}]}}
                for x in codes
            ]
        }

    ga = c.conditions["pregnancy"].pregnancy.gestational_age_loinc
    assert scrub(claim("E11.9", "E11.42"), set())
    assert scrub(claim("Z34.82", "O24.410"), set())
    assert scrub(claim("Z34.80"), {ga})
    assert scrub(claim("Z34.82", "E11.42"), {ga}) == []


# --------------------------------------------------------------------------- ob-gyn


def _pregnancies(rec: Any) -> list[tuple[str, str]]:
    out = []
    for cond in rec.by_type("Condition"):
        if code_of(cond["code"], ICD10).startswith("Z34"):
            out.append((cond["onsetDateTime"][:10], cond.get("abatementDateTime", "9999")[:10]))
    return out


def test_ob_gyn_prenatal_care_only_in_pregnancy() -> None:
    c = content()
    preg = c.conditions["pregnancy"].pregnancy
    fetal = {preg.fundal_height_loinc, preg.fetal_heart_rate_loinc, preg.gestational_age_loinc}
    rules_ = c.rules.pregnancy
    obs = bad = 0
    for rec in preset_sample("ob-gyn"):
        spans = _pregnancies(rec)
        for lo, _ in spans:
            a = age_years(rec, lo)
            bad += not rules_.age_min <= a < rules_.age_max
        for o in rec.by_type("Observation"):
            if code_of(o["code"], LOINC) in fetal:
                obs += 1
                when = o["effectiveDateTime"][:10]
                bad += not any(lo <= when <= hi for lo, hi in spans)
        for e in rec.by_type("Encounter"):
            if code_of(e["type"][0]) == "PRENATAL":
                when = e["period"]["start"][:10]
                bad += not any(lo <= when <= hi for lo, hi in spans)
    assert obs > 200
    assert bad == 0


def test_ob_gyn_pregnancies_vary_in_length_and_outcome_with_tdap() -> None:
    c = content()
    rules_ = c.rules.pregnancy
    tdap = next(v.display for v in c.immunizations if v.id == rules_.tdap_vaccine)
    lengths = []
    tdap_ok = tdap_bad = 0
    for rec in preset_sample("ob-gyn"):
        spans = _pregnancies(rec)
        for lo, hi in spans:
            if hi != "9999" and lo >= rec.patient["birthDate"]:
                lengths.append(day(hi) - day(lo))
        for imm in rec.by_type("Immunization"):
            if imm["protocolApplied"][0].get("series") != tdap:
                continue
            when = imm["occurrenceDateTime"][:10]
            weeks = [(day(when) - day(lo)) // 7 for lo, hi in spans if lo <= when <= hi]
            if weeks and rules_.tdap_week_min <= weeks[0] <= rules_.tdap_week_max:
                tdap_ok += 1
            else:
                tdap_bad += 1
    assert len(lengths) > 50
    assert len(set(lengths)) > 20  # no fixed 280 days
    losses = sum(n < 20 * 7 for n in lengths)
    assert 0 < losses < len(lengths) * 0.3
    assert tdap_ok > 10 and tdap_bad == 0


def test_ob_gyn_pap_smears_follow_uspstf_and_a1c_means_diabetes() -> None:
    c = content()
    sc = next(s for s in c.wellness.screenings if s.id == "cervical_cytology")
    code = sc.ref.split("|")[1]
    diabetes_codes = {
        c.conditions[k].icd10
        for k in ("type2_diabetes", "gestational_diabetes")
        if k in c.conditions
    }
    paps = bad = 0
    for rec in preset_sample("ob-gyn"):
        dates = sorted(
            p["performedDateTime"][:10]
            for p in rec.by_type("Procedure")
            if code_of(p["code"]) == code
        )
        paps += len(dates)
        for d in dates:
            bad += not sc.age_min <= age_years(rec, d) < sc.age_max + 1
        for d0, d1 in zip(dates, dates[1:], strict=False):
            bad += day(d1) - day(d0) < sc.every_years * 365.25 - 31
        diabetic = any(
            code_of(x["code"], ICD10) in diabetes_codes for x in rec.by_type("Condition")
        )
        for o in rec.by_type("Observation"):
            if code_of(o["code"], LOINC) == "4548-4" and o["valueQuantity"]["value"] >= 6.5:
                bad += not diabetic
    assert paps > 30
    assert bad == 0


# --------------------------------------------------------------------------- scheduling


def test_visits_spread_over_weekdays_off_holidays_inside_open_hours() -> None:
    c = content()
    r = rules()
    hours = {h.day: h for h in c.practice.hours}
    names = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

    def minute(text: str) -> int:
        return int(text[11:13]) * 60 + int(text[14:16])

    def hhmm(text: str) -> int:
        return int(text[:2]) * 60 + int(text[3:5])

    per_day: Counter[str] = Counter()
    bad = 0
    for _, rec in every_record():
        for e in rec.by_type("Encounter"):
            if e["class"]["code"] in ("IMP", "EMER"):
                continue  # a hospital stay or an ED visit keeps the hospital's hours
            start, end = e["period"]["start"], e["period"]["end"]
            d = date.fromisoformat(start[:10])
            wd = names[d.weekday()]
            per_day[wd] += 1
            h = hours.get(wd)
            if h is None or r.is_holiday(d.toordinal()):
                bad += 1
                continue
            s, t = minute(start), minute(end)
            if s < hhmm(h.open) or t > hhmm(h.close):
                bad += 1
            if h.lunch_start and s < hhmm(h.lunch_end) and t > hhmm(h.lunch_start):
                bad += 1
    for slot in practice():
        if slot["resourceType"] == "Slot":
            bad += r.is_holiday(day(slot["start"]))
    counts = [per_day[d] for d in names[:5]]
    assert min(counts) > 0 and max(counts) / min(counts) < 1.5, per_day
    assert bad == 0


# --------------------------------------------------------------------------- dates, hypertension, acute


def test_chronic_onsets_are_plausible() -> None:
    recorded: Counter[str] = Counter()
    onset: Counter[str] = Counter()
    n = bad = 0
    for rec in default_sample():
        for cond in rec.by_type("Condition"):
            if cond["category"][0]["coding"][0]["code"] != "problem-list-item":
                continue
            n += 1
            recorded[cond["recordedDate"]] += 1
            onset[cond["onsetDateTime"][:4]] += 1
            bad += cond["onsetDateTime"][:10] > cond["recordedDate"][:10]
    assert n > 1000 and bad == 0
    assert recorded.most_common(1)[0][1] < 0.02 * n
    assert onset.most_common(1)[0][1] < 0.4 * n  # onsets spread over the years


def test_undiagnosed_hypertension_exists() -> None:
    c = content()
    htn = c.conditions["hypertension"].icd10
    untreated_high = adults = 0
    for rec in default_sample():
        if age_years(rec, REF_ISO) < 30:
            continue
        adults += 1
        if any(code_of(x["code"], ICD10) == htn for x in rec.by_type("Condition")):
            continue
        sys_ = [
            o["component"][0]["valueQuantity"]["value"]
            for o in rec.by_type("Observation")
            if code_of(o["code"], LOINC) == "85354-9"
        ]
        if len(sys_) >= 2 and statistics.mean(sys_) >= 135:
            untreated_high += 1
    assert adults > 300
    assert untreated_high > 0.05 * adults


def test_acute_care_ages_and_sides() -> None:
    c = content()
    om = c.conditions["otitis_media"]
    sides: Counter[str] = Counter()
    lat = {code for x in c.rules.laterality for code in x.alternatives}
    bad = 0
    for _, rec in every_record():
        for cond in rec.by_type("Condition"):
            code = code_of(cond["code"], ICD10)
            if code == om.icd10 and age_years(rec, cond["onsetDateTime"]) < om.onset_age.min:
                bad += 1
            if code in lat:
                sides[code] += 1
    assert bad == 0
    assert len(sides) >= 2 and min(sides.values()) > 0.3 * sum(sides.values())


# --------------------------------------------------------------------------- staff


def test_clinicians_fit_the_patients_and_the_preset() -> None:
    c = content()
    members = {m.username: m for m in (*c.staff, *c.specialists)}
    bad = 0
    for preset, recs in all_samples():
        roles = {
            r["practitioner"]["reference"]: r
            for r in practice(preset)
            if r["resourceType"] == "PractitionerRole"
        }
        ident = {
            f"Practitioner/{r['id']}": r["identifier"][0]["value"]
            for r in practice(preset)
            if r["resourceType"] == "Practitioner"
        }
        for rec in recs:
            for e in rec.by_type("Encounter"):
                ref = e["participant"][0]["individual"]["reference"]
                m = members[ident[ref]]
                a = age_years(rec, e["period"]["start"])
                bad += not m.patient_age_min <= a <= m.patient_age_max + 1
                bad += bool(m.presets) and preset not in m.presets
                bad += ref not in roles
    assert bad == 0
    for preset in specialty_presets():
        assert any(preset in m.presets for m in c.specialists), preset


# --------------------------------------------------------------------------- other


def test_specimens_received_after_collection_and_office_drugs_named() -> None:
    c = content()
    routes = {d.hcpcs: d.route for d in c.rules.office_drug}
    specimens = bad = admin = 0
    for _, rec in every_record():
        for s in rec.by_type("Specimen"):
            specimens += 1
            bad += s["receivedTime"] <= s["collection"]["collectedDateTime"]
        for ma in rec.by_type("MedicationAdministration"):
            admin += 1
            med = ma["medicationCodeableConcept"]
            bad += any(x.get("system") == HCPCS for x in med.get("coding", []))
            bad += code_of(ma.get("dosage", {}).get("route", {})) in ("", None)
    assert specimens > 1000 and admin > 20
    assert bad == 0
    assert set(routes.values()) >= {"intra-articular", "soft tissue"}


def test_adult_visits_per_person_year_near_namcs() -> None:
    years = visits = 0.0
    for rec in default_sample():
        birth = rec.patient["birthDate"]
        end = rec.patient.get("deceasedDateTime", REF_ISO)[:10]
        start = max(birth, f"{int(REF_ISO[:4]) - 3}{REF_ISO[4:]}")
        if age_years(rec, start) < 18:
            continue
        years += (day(end) - day(start)) / 365.25
        visits += len(rec.by_type("Encounter"))
    rate = visits / years
    assert 2.5 <= rate <= 3.6, rate  # NAMCS: about 3 visits per adult per year


def test_2020_dip_and_telehealth_visits() -> None:
    r = rules()
    spring: Counter[str] = Counter()
    virtual = bad = 0
    for rec in long_sample():
        obs_by_enc = {
            o["encounter"]["reference"] for o in rec.by_type("Observation") if "encounter" in o
        }
        for e in rec.by_type("Encounter"):
            start = e["period"]["start"]
            if start[5:7] in ("04", "05"):
                spring[start[:4]] += 1
            if e["class"]["code"] == "VR":
                virtual += 1
                bad += f"Encounter/{e['id']}" in obs_by_enc  # no vitals or labs by video
    keep_2020 = r.era(date(2020, 4, 15).toordinal())[0]
    assert keep_2020 < 1.0
    # spring 2020 is well below the neighbouring years (content: the share of visits kept)
    assert spring["2020"] < 0.8 * min(spring["2019"], spring["2022"]), spring
    assert virtual > 20 and bad == 0
