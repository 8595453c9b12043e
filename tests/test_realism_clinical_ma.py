"""Realism of the clinical MA's generated records (issue 16) and issue 14's clinical leftovers.

Rooms, point-of-care kits and their QC log, screening questionnaires, family history, refill
requests, delivery admissions and pregnancy losses, lithium levels, GERD and glaucoma
treatment, COVID-19 vaccine products. Every expectation is computed from the content
(``clinical_ma.toml``, ``rules.toml``, ``labs.toml``) or from the workflows' own tables, never
copied from the generator; the samples are the shared session samples (realism_sample).
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from typing import Any

import pytest
from realism_sample import (
    REF_ISO,
    SEED,
    YEARS,
    age_years,
    all_samples,
    code_of,
    day,
    default_sample,
    keyed,
    practice,
    preset_sample,
)

from synthetic.content import load_content

pytestmark = [pytest.mark.realism, pytest.mark.slow]

LOINC = "http://loinc.org"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
CVX = "http://hl7.org/fhir/sid/cvx"
NEW_TYPES = ("QuestionnaireResponse", "FamilyMemberHistory", "Task", "Device", "Location")


def cm() -> Any:
    return load_content().clinical_ma


def every_record() -> list[tuple[str, Any]]:
    return [(p, rec) for p, recs in all_samples() for rec in recs]


def value_of(obs: dict[str, Any]) -> float:
    if "valueInteger" in obs:
        return obs["valueInteger"]
    return obs["valueQuantity"]["value"]


# --------------------------------------------------------------------------- POC and QC


def _qc_log(population: str) -> tuple[dict[str, dict[str, Any]], dict[tuple[str, str], list]]:
    kits: dict[str, dict[str, Any]] = {}
    runs: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    for r in practice(population):
        if r["resourceType"] == "Device" and r.get("type", {}).get("coding"):  # a POC kit lot
            kits[f"Device/{r['id']}"] = r
        elif r["resourceType"] == "Task" and code_of(r["code"]) == "poc-qc":
            when = r["executionPeriod"]["start"]
            runs[(r["focus"]["reference"], when[:10])].append((when, r["businessStatus"]["text"]))
    return kits, runs


def test_poc_results_run_on_a_kit_whose_qc_passed_earlier_that_day() -> None:
    c = load_content()
    poc_tests = {t.loinc: d.panel for d in c.clinical_ma.poc_device for t in c.labs[d.panel].tests}
    first_qc_day = day(REF_ISO) - c.clinical_ma.qc.retention_days
    checked = unlinked = no_qc = failed_last = expired = 0
    for population, recs in all_samples():
        kits, runs = _qc_log(population)
        for rec in recs:
            for obs in rec.by_type("Observation"):
                if code_of(obs["code"], LOINC) not in poc_tests:
                    continue
                if "device" not in obs:
                    unlinked += 1
                    continue
                kit = kits.get(obs["device"]["reference"])
                when = obs["effectiveDateTime"]
                if kit is None or kit["expirationDate"] < when[:10]:
                    expired += 1
                    continue
                if day(when) < first_qc_day:
                    continue  # before the retained QC log (CLIA: two years)
                checked += 1
                before = sorted(r for r in runs.get((obs["device"]["reference"], when[:10]), []))
                before = [r for r in before if r[0] < when]
                if not before:
                    no_qc += 1
                elif before[-1][1] != "pass":
                    failed_last += 1
    assert checked > 500
    assert (unlinked, expired, no_qc, failed_last) == (0, 0, 0, 0)


def test_failed_qc_is_repeated_and_passes_before_patients() -> None:
    c = load_content()
    kits, runs = _qc_log("family-practice")
    days = failed = 0
    for _, day_runs in runs.items():
        days += 1
        ordered = sorted(day_runs)
        failed += sum(1 for _, s in ordered if s == "fail")
        assert ordered[-1][1] == "pass"  # the day's last run passed
    share = failed / days
    # the share of failed first runs is the content's, within sampling error
    assert (
        abs(share - c.clinical_ma.qc.failure_share)
        < 4 * (c.clinical_ma.qc.failure_share / days) ** 0.5
    )
    assert failed > 0
    assert {k["type"]["coding"][0]["code"] for k in kits.values()} == {
        d.test for d in c.clinical_ma.poc_device
    }


def test_generated_qc_runs_log_the_control_levels_the_workflow_grades() -> None:
    """The generated QC log and the EHR's QC workflow read one table of control levels: every
    generated run has one output per level the workflow's ``controls`` lists for the kit's
    test, each once."""
    from ehr_sandbox.workflows.poc_testing import controls

    kits, _ = _qc_log("family-practice")
    seen = 0
    for r in practice("family-practice"):
        if r["resourceType"] != "Task" or code_of(r["code"]) != "poc-qc":
            continue
        seen += 1
        kit = kits[r["focus"]["reference"]]
        test = code_of(kit["type"])
        levels = [
            o["type"]["text"].split(" (expected", 1)[0].removeprefix("control ")
            for o in r["output"]
            if o["type"]["text"].startswith("control ")
        ]
        assert sorted(levels) == sorted(controls(test)), (r["id"], test, levels)
        assert len(set(levels)) == len(levels)
    assert seen > 100


def test_poc_kit_types_are_workflow_test_ids() -> None:
    from ehr_sandbox.workflows.poc_testing import poc_test

    for d in cm().poc_device:
        t = poc_test(d.test)  # raises for an id the workflows do not know
        assert t["loinc"] in {x.loinc for x in load_content().labs[d.panel].tests} | {
            load_content().labs[d.panel].loinc
        }


# --------------------------------------------------------------------------- rooms


def test_office_visits_are_roomed_in_an_exam_room_of_the_practice() -> None:
    checked = bad = 0
    for population, recs in all_samples():
        rooms = {
            f"Location/{r['id']}"
            for r in practice(population)
            if r["resourceType"] == "Location"
            and r.get("physicalType", {}).get("coding", [{}])[0].get("code") == "ro"
        }
        assert rooms
        for rec in recs:
            for enc in rec.by_type("Encounter"):
                if enc["class"]["code"] != "AMB" or "appointment" not in enc:
                    continue
                checked += 1
                locs = [x["location"].get("reference") for x in enc["location"]]
                roomed = [x for x in locs if x in rooms]
                if len(roomed) != 1:
                    bad += 1
    assert checked > 1000
    assert bad == 0


# --------------------------------------------------------------------------- questionnaires


def _screen_table() -> dict[str, dict[str, Any]]:
    from ehr_sandbox.workflows.history import SCREEN

    return {spec["panel"]: spec for spec in SCREEN.values()}


def test_questionnaire_totals_equal_the_sum_of_their_items() -> None:
    table = _screen_table()
    checked = 0
    for _, rec in every_record():
        derived: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for obs in rec.by_type("Observation"):
            for ref in obs.get("derivedFrom", []):
                derived[ref["reference"]].append(obs)
        for qr in rec.by_type("QuestionnaireResponse"):
            spec = table[qr["questionnaire"].rsplit("/", 1)[1]]
            items = [i["linkId"] for i in qr["item"]]
            answers = [i["answer"][0]["valueInteger"] for i in qr["item"]]
            assert items == spec["items"]
            assert all(0 <= a <= spec["max"] for a in answers)
            scores = derived[f"QuestionnaireResponse/{qr['id']}"]
            assert len(scores) == 1
            assert code_of(scores[0]["code"], LOINC) == spec["total"]
            assert value_of(scores[0]) == sum(answers)
            checked += 1
    assert checked > 1000


def test_questionnaires_at_the_ages_and_visits_uspstf_names() -> None:
    q = cm().questionnaires
    phq2, phq9, audit = "55757-9", "44249-1", "72109-2"
    pr = load_content().rules.payer_rules
    awv = {pr.awv_initial.split("|")[1], pr.awv_subsequent.split("|")[1]}
    wellness_adults = screened = 0
    for _, rec in every_record():
        encs = keyed(rec)
        by_enc: dict[str, list[tuple[str, list[int]]]] = defaultdict(list)
        for qr in rec.by_type("QuestionnaireResponse"):
            panel = qr["questionnaire"].rsplit("/", 1)[1]
            age = age_years(rec, qr["authored"])
            minimum = q.alcohol_min_age if panel == audit else q.depression_min_age
            assert age >= minimum, (panel, age)
            answers = [i["answer"][0]["valueInteger"] for i in qr["item"]]
            by_enc[qr["encounter"]["reference"]].append((panel, answers))
            assert qr["encounter"]["reference"] in encs
        for given in by_enc.values():
            for panel, answers in given:
                if panel == phq2 and sum(answers) >= q.phq2_positive:
                    # a positive PHQ-2 goes on to the PHQ-9, which repeats its two answers
                    follow = [a for p, a in given if p == phq9]
                    assert follow and follow[0][:2] == answers
        for enc in rec.by_type("Encounter"):
            t = code_of(enc["type"][0]) if enc.get("type") else ""
            wellness = t.startswith("WELL-") or t in awv
            if not wellness or age_years(rec, enc["period"]["start"]) < 18:
                continue
            wellness_adults += 1
            ref = f"Encounter/{enc['id']}"
            if any(p in (phq2, phq9) for p, _ in by_enc.get(ref, [])):
                screened += 1
    share = screened / wellness_adults
    assert wellness_adults > 300
    assert abs(share - q.uptake) < 0.08, share


# --------------------------------------------------------------------------- family history


def test_family_history_once_per_relative_and_condition_at_content_rates() -> None:
    rows = cm().family_history
    recs = default_sample()
    seen = Counter()
    with_visits = 0
    for rec in recs:
        if not rec.by_type("Encounter"):
            assert not rec.by_type("FamilyMemberHistory")
            continue
        with_visits += 1
        pairs = [
            (f["relationship"]["coding"][0]["code"], code_of(f["condition"][0]["code"], ICD10))
            for f in rec.by_type("FamilyMemberHistory")
        ]
        assert len(pairs) == len(set(pairs))
        seen.update(pairs)
        for f in rec.by_type("FamilyMemberHistory"):
            row = next(
                r
                for r in rows
                if (r.relationship, r.icd10)
                == (f["relationship"]["coding"][0]["code"], code_of(f["condition"][0]["code"]))
            )
            assert row.onset_age[0] <= f["condition"][0]["onsetAge"]["value"] <= row.onset_age[1]
    for row in rows:
        share = seen[(row.relationship, row.icd10)] / with_visits
        sd = (row.share * (1 - row.share) / with_visits) ** 0.5
        assert abs(share - row.share) < 4 * sd + 0.005, (row, share)


# --------------------------------------------------------------------------- refills


def test_refill_requests_reference_the_renewal_and_its_prior_prescription() -> None:
    checked = 0
    for _, rec in every_record():
        res = keyed(rec)
        # refill requests: fulfill Tasks about a renewal (a forwarded portal message is a
        # fulfill Task about a Communication)
        tasks = [
            t
            for t in rec.by_type("Task")
            if code_of(t["code"]) == "fulfill"
            and t["focus"]["reference"].startswith("MedicationRequest/")
        ]
        renewals = {
            f"MedicationRequest/{m['id']}"
            for m in rec.by_type("MedicationRequest")
            if "priorPrescription" in m and "encounter" not in m
        }
        assert {t["focus"]["reference"] for t in tasks} == renewals
        assert len(tasks) == len(renewals)
        for t in tasks:
            renewal = res[t["focus"]["reference"]]
            prior_ref = t["input"][0]["valueReference"]["reference"]
            assert renewal["priorPrescription"]["reference"] == prior_ref
            prior = res[prior_ref]
            assert prior["authoredOn"] < renewal["authoredOn"]
            assert t["authoredOn"] <= renewal["authoredOn"]
            assert t["owner"] == renewal["requester"]
            assert code_of(prior["medicationCodeableConcept"], RXNORM) == code_of(
                renewal["medicationCodeableConcept"], RXNORM
            )
            checked += 1
    assert checked > 200


# --------------------------------------------------------------------------- pregnancy outcomes


def _pregnancies(rec: Any) -> list[dict[str, Any]]:
    return [c for c in rec.by_type("Condition") if code_of(c["code"], ICD10).startswith("Z34")]


def test_every_ended_pregnancy_ends_in_a_delivery_or_a_loss() -> None:
    d = cm().delivery
    outcomes = Counter()
    for rec in preset_sample("ob-gyn"):
        conds = rec.by_type("Condition")
        for preg in _pregnancies(rec):
            end = preg.get("abatementDateTime")
            if end is None:
                continue
            near = [
                code_of(c["code"], ICD10)
                for c in conds
                if 0 <= day(c["onsetDateTime"]) - day(end) <= 7
            ]
            if d.outcome_icd10 in near:
                assert d.term_icd10 in near or d.preterm_icd10 in near
                outcomes["delivery"] += 1
            elif d.loss_icd10 in near:
                outcomes["loss"] += 1
            else:
                outcomes["none"] += 1
    assert outcomes["delivery"] > 30 and outcomes["loss"] > 0
    assert outcomes["none"] == 0


def test_delivery_admissions_are_inpatient_with_discharge_after_admit() -> None:
    d = cm().delivery
    checked = 0
    for rec in preset_sample("ob-gyn"):
        res = keyed(rec)
        docs = defaultdict(list)
        for doc in rec.by_type("DocumentReference"):
            docs[doc["context"]["encounter"][0]["reference"]].append(code_of(doc["type"], LOINC))
        lmps = sorted(day(p["onsetDateTime"]) for p in _pregnancies(rec))
        for enc in rec.by_type("Encounter"):
            if enc["class"]["code"] != "IMP":
                continue
            checked += 1
            start, end = enc["period"]["start"], enc["period"]["end"]
            assert start < end
            stay = day(end) - day(start)
            assert stay in (d.stay_days_vaginal, d.stay_days_cesarean)
            codes = [
                code_of(res[x["condition"]["reference"]]["code"], ICD10) for x in enc["diagnosis"]
            ]
            lmp = max(x for x in lmps if x <= day(start))
            week = (day(start) - lmp) // 7
            want = d.term_icd10 if week >= d.term_week else d.preterm_icd10
            assert codes == [want, d.outcome_icd10]
            assert "18842-5" in docs[f"Encounter/{enc['id']}"]
            assert age_years(rec, start) >= load_content().rules.pregnancy.age_min
    assert checked > 30


# --------------------------------------------------------------------------- drugs


def test_lithium_patients_have_lithium_levels_in_range() -> None:
    c = load_content()
    rule = next(m for m in c.rules.monitoring if m.panel == "lithium")
    panel = c.labs["lithium"]
    checked = 0
    for _, rec in every_record():
        starts = sorted(
            mr["authoredOn"][:10]
            for mr in rec.by_type("MedicationRequest")
            if code_of(mr["medicationCodeableConcept"], RXNORM) in rule.rxnorm
        )
        levels = [
            o
            for o in rec.by_type("Observation")
            if code_of(o["code"], LOINC) == panel.tests[0].loinc
        ]
        if not starts:
            assert not levels  # no lithium level without lithium
            continue
        last = rec.patient.get("deceasedDateTime", REF_ISO)[:10]
        if day(last) - day(starts[0]) < rule.every_days * 1.5:
            continue
        checked += 1
        after = [o for o in levels if o["effectiveDateTime"][:10] >= starts[0]]
        assert after, rec.patient["id"]
        t = panel.tests[0]
        assert all(t.plausible_low <= value_of(o) <= t.plausible_high for o in after)
    assert checked > 0


def test_gerd_and_glaucoma_patients_are_treated_with_verified_drugs() -> None:
    c = load_content()
    treated = Counter()
    patients = Counter()
    for _, rec in every_record():
        problems = {code_of(x["code"], ICD10) for x in rec.by_type("Condition")}
        drugs = {
            code_of(m["medicationCodeableConcept"], RXNORM)
            for m in rec.by_type("MedicationRequest")
        }
        for key in ("gerd", "glaucoma"):
            cond = c.conditions[key]
            if cond.icd10 in problems:
                patients[key] += 1
                if drugs & {m.rxnorm for m in cond.medications}:
                    treated[key] += 1
    for key in ("gerd", "glaucoma"):
        want = max(m.probability for m in c.conditions[key].medications)
        assert patients[key] > 10
        assert abs(treated[key] / patients[key] - want) < 0.2, (key, treated, patients)


def test_covid19_doses_after_september_2023_are_2023_formula_products() -> None:
    c = load_content()
    new = {
        p.cvx for p in c.rules.vaccine_product if p.vaccine == "covid19" and p.from_ >= "2023-09-12"
    }
    assert new
    late = Counter()
    for _, rec in every_record():
        for imm in rec.by_type("Immunization"):
            when = imm["occurrenceDateTime"][:10]
            cvx = code_of(imm["vaccineCode"], CVX)
            covid = {p.cvx for p in c.rules.vaccine_product if p.vaccine == "covid19"}
            if cvx in covid and when >= "2023-09-12":
                late[cvx in new] += 1
    assert late[True] > 50 and late[False] == 0


# --------------------------------------------------------------------------- validity, determinism


def test_every_new_resource_validates() -> None:
    from fhir.resources.R4B import get_fhir_model_class

    from ehr_sandbox.validation import problems

    resources = list(practice("ob-gyn"))
    for rec in preset_sample("ob-gyn")[:150]:
        resources.append(rec.patient)
        resources.extend(rec.resources)
    stored = {f"{r['resourceType']}/{r['id']}" for r in resources}
    new = [
        r
        for r in resources
        if r["resourceType"] in NEW_TYPES
        or (r["resourceType"] == "Encounter" and r["class"]["code"] in ("IMP", "EMER"))
        or "derivedFrom" in r
        or "device" in r
    ]
    assert len({r["resourceType"] for r in new}) >= len(NEW_TYPES)
    found = [
        f"{r['resourceType']}/{r['id']}: {p.path}: {p.expected}"
        for r in new
        for p in problems(r, exists=stored.__contains__)
    ]
    assert found == []
    for r in new:
        get_fhir_model_class(r["resourceType"]).model_validate(r)


def test_clinical_ma_records_are_deterministic_and_independent_of_order() -> None:
    from synthetic.engine import Engine

    def build(indices: list[int]) -> dict[int, str]:
        eng = Engine(
            seed=SEED,
            reference_day=day(REF_ISO),
            years=YEARS,
            population="ob-gyn",
            content=load_content(),
        )
        out = {}
        for i in indices:
            rec = eng.patient(i)
            out[i] = json.dumps(rec.resources, sort_keys=True)
        return out

    forward = build([0, 1, 2, 3, 4, 5])
    backward = build([5, 3, 1, 4, 2, 0])
    assert forward == backward
    logs = [
        json.dumps(
            Engine(
                seed=SEED,
                reference_day=day(REF_ISO),
                years=YEARS,
                population="ob-gyn",
                content=load_content(),
            ).practice_resources(),
            sort_keys=True,
        )
        for _ in range(2)
    ]
    assert logs[0] == logs[1]


# --------------------------------------------------------------------------- diagnostic tests


def _reports(rec: Any, code: str) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    res = keyed(rec)
    return [
        (dr, [res[r["reference"]] for r in dr["result"]])
        for dr in rec.by_type("DiagnosticReport")
        if code_of(dr["code"]) == code
    ]


def test_vision_and_hearing_screens_only_at_the_content_ages_of_preventive_visits() -> None:
    screens = {s.kind: s for s in cm().sensory_screen}
    codes = {"vision": "VISION-SCREEN", "hearing": "AUDIOMETRY"}
    seen = Counter()
    for _, rec in every_record():
        encs = keyed(rec)
        for kind, code in codes.items():
            for dr, results in _reports(rec, code):
                enc = encs[dr["encounter"]["reference"]]
                assert code_of(enc["type"][0]).startswith("WELL-")
                age = int(age_years(rec, dr["effectiveDateTime"]))
                assert age in screens[kind].ages, (kind, age)
                assert len(results) == 2
                seen[kind] += 1
                if kind == "hearing":
                    high = any(
                        c["valueQuantity"]["value"] > 25 for o in results for c in o["component"]
                    )
                    assert dr["conclusion"].startswith("refer") == high
                else:
                    worse = any(int(o["valueString"].split("/")[1]) > 40 for o in results)
                    assert (dr["conclusion"] != "pass") == worse
    assert seen["vision"] > 50 and seen["hearing"] > 50


def test_ecg_qtc_is_bazett_and_rhythm_matches_atrial_fibrillation() -> None:
    checked = 0
    for rec in preset_sample("cardiology"):
        af = any(
            code_of(c["code"], ICD10) == load_content().conditions["atrial_fibrillation"].icd10
            for c in rec.by_type("Condition")
        )
        for dr, results in _reports(rec, "11524-6"):
            ecg = next(o for o in results if code_of(o["code"]) == "11524-6")
            rhythm = next(o for o in results if code_of(o["code"]) == "8884-9")
            comp = {code_of(c["code"]): c["valueQuantity"]["value"] for c in ecg["component"]}
            rr = 60.0 / comp["8867-4"]
            assert comp["8636-3"] == round(comp["8634-8"] / rr**0.5)
            assert dr["status"] == "final" and dr["resultsInterpreter"]
            if rhythm["valueString"] == "Atrial fibrillation":
                assert af and "8625-6" not in comp  # no PR interval without P waves
            checked += 1
    assert checked > 50


def test_spirometry_ratio_is_fev1_over_fvc_and_obstruction_matches_copd() -> None:
    from ehr_sandbox.workflows.content import table

    spiro = table("spirometry")
    checked = obstructed_copd = copd = 0
    for _, rec in every_record():
        has_copd = any(
            code_of(c["code"], ICD10) == load_content().conditions["copd"].icd10
            for c in rec.by_type("Condition")
        )
        for dr, results in _reports(rec, "SPIRO"):
            v = {code_of(o["code"]): o["valueQuantity"]["value"] for o in results}
            assert v["19926-5"] == round(100 * v["20150-9"] / v["19868-9"])
            obstructed = v["20150-9"] / v["19868-9"] < spiro["obstruction_ratio"]
            assert dr["conclusion"].startswith("airflow obstruction") == obstructed
            checked += 1
            if has_copd:
                copd += 1
                obstructed_copd += obstructed
    assert checked > 10
    assert copd == 0 or obstructed_copd == copd


def test_hospital_admissions_discharge_after_admit_and_no_office_visit_during_a_stay() -> None:
    rows = {load_content().conditions[a.condition].icd10: a for a in cm().admission}
    delivery = cm().delivery
    checked = Counter()
    for _, rec in every_record():
        res = keyed(rec)
        summaries = {
            d["context"]["encounter"][0]["reference"]
            for d in rec.by_type("DocumentReference")
            if code_of(d["type"], LOINC) == "18842-5"
        }
        stays = []
        for enc in rec.by_type("Encounter"):
            if enc["class"]["code"] != "IMP":
                continue
            start, end = enc["period"]["start"], enc["period"]["end"]
            assert start < end
            assert f"Encounter/{enc['id']}" in summaries
            cited = [res[x["condition"]["reference"]] for x in enc["diagnosis"]]
            first = code_of(cited[0]["code"], ICD10)
            if first in rows:
                lo, hi = rows[first].stay_days
                assert lo <= day(end) - day(start) <= hi
                assert cited[0]["recordedDate"][:10] < start[:10]  # a known chronic condition
                checked["medical"] += 1
            else:
                assert first in (delivery.term_icd10, delivery.preterm_icd10)
                checked["delivery"] += 1
            stays.append((day(start), day(end)))
        for enc in rec.by_type("Encounter"):
            if enc["class"]["code"] == "AMB":
                d = day(enc["period"]["start"])
                assert not any(s <= d <= e for s, e in stays)
    assert checked["medical"] > 10 and checked["delivery"] > 10


def test_emergency_visits_are_same_day_for_a_known_condition_at_the_content_rate() -> None:
    from datetime import date, datetime

    rows = {
        load_content().conditions[a.condition].icd10: a
        for a in cm().admission
        if a.setting == "emergency"
    }
    assert rows, "the content names emergency-department visits"
    ref = date.fromisoformat(REF_ISO).toordinal()
    seen = 0
    expected = 0.0
    for rec in default_sample():
        res = keyed(rec)
        notes = {
            d["context"]["encounter"][0]["reference"]
            for d in rec.by_type("DocumentReference")
            if code_of(d["type"], LOINC) == "18842-5"
        }
        office_days = {
            day(e["period"]["start"])
            for e in rec.by_type("Encounter")
            if e["class"]["code"] == "AMB"
        }
        for enc in rec.by_type("Encounter"):
            if enc["class"]["code"] != "EMER":
                continue
            start, end = enc["period"]["start"], enc["period"]["end"]
            cited = res[enc["diagnosis"][0]["condition"]["reference"]]
            row = rows[code_of(cited["code"], ICD10)]
            hours = (datetime.fromisoformat(end) - datetime.fromisoformat(start)).seconds / 3600
            assert start[:10] == end[:10] and row.stay_hours[0] <= hours <= row.stay_hours[1]
            assert cited["recordedDate"][:10] < start[:10]
            assert f"Encounter/{enc['id']}" in notes
            assert day(start) not in office_days
            seen += 1
        # years at risk of each condition with an emergency rate: recorded + 30 days to the end
        for cond in rec.by_type("Condition"):
            row = rows.get(code_of(cond["code"], ICD10))
            if row is None or "recordedDate" not in cond:
                continue
            end = min(ref, day(rec.patient.get("deceasedDateTime", REF_ISO)))
            if (cond.get("abatementDateTime") or "")[:10]:
                end = min(end, day(cond["abatementDateTime"]))
            at_risk = max(0, end - day(cond["recordedDate"]) - 30) / 365.25
            expected += row.rate_per_year * at_risk
    assert expected > 5
    # office visits on a drawn day cancel that ED visit, so fewer than the raw rate, not many fewer
    assert 0.4 * expected <= seen <= 1.3 * expected, (seen, expected)


def _tasks(code: str) -> list[dict[str, Any]]:
    return [
        r
        for r in practice("family-practice")
        if r["resourceType"] == "Task" and r["code"]["coding"][0]["code"] == code
    ]


def _out(task: dict[str, Any], name: str) -> Any:
    for o in task.get("output", []):
        if o["type"]["text"] == name:
            return next(v for k, v in o.items() if k.startswith("value"))
    return None


def test_autoclave_cycles_meet_the_cycle_limits_with_a_spore_test_every_week() -> None:
    from ehr_sandbox.workflows.content import table
    from ehr_sandbox.workflows.sterilization import cycle_ok

    spec = table("sterilization")
    cycles = sorted(_tasks("sterilization-cycle"), key=lambda t: t["authoredOn"])
    assert len(cycles) > 50
    bi_days = [day(t["authoredOn"]) for t in cycles if _out(t, "biological indicator") == "pass"]
    for t in cycles:
        d = day(t["authoredOn"])
        assert date_of(d).weekday() in spec["generator"]["weekdays"]
        assert cycle_ok(
            _out(t, "cycle"),
            _out(t, "temperature")["value"],
            _out(t, "exposure time")["value"],
            _out(t, "pressure")["value"],
        )
        assert _out(t, "chemical indicator") == "pass"
        # the EHR's weekly-BI rule: a spore test within the interval, this load included
        assert any(0 <= d - b < spec["bi_interval_days"] for b in bi_days), t["authoredOn"]
    packs = {
        r["id"]: r
        for r in practice("family-practice")
        if r["resourceType"] == "Device" and r["type"]["text"] == "instrument pack"
    }
    last: dict[str, str] = {}
    for t in cycles:
        for i in t["input"]:
            last[i["valueReference"]["reference"].split("/")[1]] = _out(t, "load")
    assert set(last) == set(packs)
    assert all(packs[p].get("lotNumber") == load for p, load in last.items())


def test_maintenance_logs_follow_their_intervals_on_open_days() -> None:
    from ehr_sandbox.workflows.content import table

    kinds = table("sterilization")["maintenance"]
    logged = table("sterilization")["generator"]["logged"]
    for kind in logged:
        checks = sorted(day(t["authoredOn"]) for t in _tasks(f"maintenance-{kind}"))
        assert checks, kind
        gaps = [b - a for a, b in zip(checks, checks[1:], strict=False)]
        every = kinds[kind]["days"]
        # on time: the next check on the first open day once the interval has passed
        assert all(every <= g <= every + 4 for g in gaps), (kind, max(gaps, default=0))


def date_of(ordinal: int):
    from datetime import date

    return date.fromordinal(ordinal)


def test_generated_packs_pass_the_ehrs_pack_check() -> None:
    from ehr_sandbox.sandbox import Sandbox
    from ehr_sandbox.workflows.sterilization import check_pack

    ma = Sandbox.generate(patients=2, seed=SEED, years=1).login("ma.garcia")
    packs = [d for d in ma.search("Device").fetch() if d["type"].get("text") == "instrument pack"]
    assert packs
    for p in packs:
        assert check_pack(ma, f"Device/{p['id']}")["id"] == p["id"]
