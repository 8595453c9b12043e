"""Clinical content: it loads, it is licence-safe, it is coherent, and bad files fail clearly."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from synthetic.content import (
    DEFAULT_ROOT,
    Content,
    iter_content_files,
    load_content,
    plausible_range,
)
from synthetic.content.loader import CODE_SETS
from synthetic.content.models import NOTE_FIELDS, template_fields
from synthetic.errors import ContentError

CONTENT_ROOT = DEFAULT_ROOT.parent


@pytest.fixture(scope="module")
def content() -> Content:
    return load_content()


# --------------------------------------------------------------------------- loading


def test_loads_and_is_cached(content: Content) -> None:
    assert load_content() is content
    assert re.fullmatch(r"[0-9.]+\+[0-9a-f]{12}", content.version)


def test_every_code_set_declares_system_version_licence(content: Content) -> None:
    assert set(content.codes) == set(CODE_SETS)
    for key, cs in content.codes.items():
        assert cs.key == key
        assert cs.system.startswith(("http://", "https://")), key
        assert cs.version and cs.licence, key
        assert len(cs) > 0


def test_codeset_display_and_membership(content: Content) -> None:
    icd = content.codes["icd10cm"]
    assert "I10" in icd
    assert icd.display("I10") == icd.codes["I10"]
    assert "NOT-A-CODE" not in icd
    with pytest.raises(KeyError):
        icd.display("NOT-A-CODE")


def test_version_changes_when_a_file_changes(tmp_path: Path) -> None:
    copy = tmp_path / "content"
    shutil.copytree(DEFAULT_ROOT, copy)
    first = load_content(copy).version
    fees = copy / "fees.toml"
    fees.write_text(fees.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
    edited = tmp_path / "edited"
    shutil.copytree(copy, edited)
    assert load_content(edited).version != first
    assert first.split("+")[0] == load_content(edited).version.split("+")[0]


# --------------------------------------------------------------------------- sizes (CONTENT.md)

VITAL_SIGNS_LOINC = {
    "8867-4", "9279-1", "8310-5", "29463-7", "8302-2", "39156-5", "2708-6", "59408-5",
    "85354-9", "8480-6", "8462-4", "9843-4", "8287-5", "8289-1", "72166-2",
}  # fmt: skip


def test_sizes_meet_content_md(content: Content) -> None:
    codes = content.codes
    assert len(codes["icd10cm"]) >= 55
    assert len(codes["rxnorm"]) >= 45
    assert len(codes["cvx"]) >= 18
    assert len(codes["hcpcs"]) >= 23
    assert set(codes["loinc"].codes) >= VITAL_SIGNS_LOINC
    quantity_or_coded_tests = content.lab_tests()
    assert len(quantity_or_coded_tests) >= 30
    for panel in ("cmp", "cbc", "lipid", "a1c", "tsh", "ua", "hcg", "inr"):
        assert panel in content.labs
    assert "4548-4" in quantity_or_coded_tests


def test_required_modules_exist_with_their_kind(content: Content) -> None:
    required = {
        "hypertension": "chronic", "type2_diabetes": "chronic", "hyperlipidemia": "chronic",
        "obesity": "chronic", "asthma": "chronic", "copd": "chronic", "depression": "chronic",
        "anxiety": "chronic", "gerd": "chronic", "osteoarthritis": "chronic",
        "hypothyroidism": "chronic", "pregnancy": "pregnancy", "uri": "acute",
        "pharyngitis": "acute", "otitis_media": "acute", "uti": "acute", "ankle_sprain": "acute",
        "opioid_use_disorder": "chronic", "hiv": "chronic", "myopia": "chronic",
        "glaucoma": "chronic", "cataract": "chronic", "plantar_fasciitis": "chronic",
        "low_back_pain": "chronic", "atrial_fibrillation": "chronic", "heart_failure": "chronic",
        "coronary_artery_disease": "chronic",
    }  # fmt: skip
    for module_id, kind in required.items():
        assert content.conditions[module_id].kind == kind, module_id


def test_specialty_observations_are_defined(content: Content) -> None:
    for loinc in ("98499-7", "98498-9", "79892-6", "79893-4", "11881-0", "72514-3"):
        assert content.observation_for(loinc) is not None, loinc
    assert content.conditions["pregnancy"].pregnancy is not None
    assert "procedure|CHIRO-ASSESS" in content.populations["chiropractic"].visit_procedures
    assert "procedure|FOOT-EXAM-DM" in content.populations["podiatry"].visit_procedures


# --------------------------------------------------------------------------- licence safety


def test_no_cpt_or_cdt_anywhere_in_content() -> None:
    files = list(iter_content_files(CONTENT_ROOT))
    assert any(p.name == "LICENSES.md" for p in files)
    for path in files:
        if path.name == "LICENSES.md":
            continue  # it explains the rule and so names the systems
        text = path.read_text(encoding="utf-8").lower()
        assert "ama-assn.org/go/cpt" not in text, path
        assert "ada.org/cdt" not in text, path


def test_no_hcpcs_d_codes_and_no_cpt_shaped_codes(content: Content) -> None:
    for code in content.codes["hcpcs"].codes:
        assert not code.startswith("D"), code
        assert re.fullmatch(r"[A-CE-V]\d{4}", code), code
    cpt_shape = re.compile(r"\d{4}[0-9FTU]")
    for key in ("procedure", "hcpcs"):
        for code in content.codes[key].codes:
            assert not cpt_shape.fullmatch(code), (key, code)


def test_licences_file_names_every_code_system(content: Content) -> None:
    text = (CONTENT_ROOT / "LICENSES.md").read_text(encoding="utf-8")
    for cs in content.codes.values():
        assert cs.system in text, cs.system
    assert "CC BY 4.0" in text and "Regenstrief" in text


# --------------------------------------------------------------------------- coherence


def test_medications_match_their_module(content: Content) -> None:
    schedules = set()
    for module in content.conditions.values():
        for med in module.medications:
            assert med.indication == module.icd10, (module.id, med.rxnorm)
            schedules.add(med.schedule)
            if med.schedule == "II":
                assert med.refills == 0
    assert "II" in schedules


def test_allergy_drugs_are_prescribable(content: Content) -> None:
    allergies = {a.id: a for a in content.allergies}
    assert {"penicillin", "sulfonamide", "peanut", "shellfish", "latex", "pollen"} <= set(allergies)
    prescribed = {m.rxnorm for mod in content.conditions.values() for m in mod.medications}
    for allergy_id in ("penicillin", "sulfonamide"):
        conflicts = set(allergies[allergy_id].conflicts_with_rxnorm)
        assert conflicts & prescribed, allergy_id
    rxnorm = content.codes["rxnorm"]
    assert any(
        "amoxicillin" in rxnorm.display(c) for c in allergies["penicillin"].conflicts_with_rxnorm
    )
    assert any(
        "sulfamethoxazole" in rxnorm.display(c)
        for c in allergies["sulfonamide"].conflicts_with_rxnorm
    )


def test_complications_require_their_disease(content: Content) -> None:
    assert "type2_diabetes" in content.conditions["diabetic_neuropathy"].requires
    assert "pregnancy" in content.conditions["gestational_diabetes"].requires
    for module in content.conditions.values():
        for dep in module.requires + module.excludes:
            assert dep in content.conditions


def test_diabetes_is_defined_by_a1c(content: Content) -> None:
    diabetes = content.conditions["type2_diabetes"]
    assert diabetes.criterion is not None and diabetes.criterion.loinc == "4548-4"
    effect = next(e for e in diabetes.lab_effects if e.loinc == "4548-4")
    assert (
        effect.at_diagnosis is not None and effect.at_diagnosis.low >= diabetes.criterion.at_least
    )
    assert (
        effect.follow_up is not None and effect.follow_up.low >= 6.5 and effect.follow_up.high <= 10
    )
    normal = content.lab_tests()["4548-4"]
    assert normal.mean is not None and normal.mean < diabetes.criterion.at_least


def test_blood_pressure_bands_keep_systolic_above_diastolic(content: Content) -> None:
    systolic, diastolic = content.vitals["systolic"], content.vitals["diastolic"]
    for age in range(3, 100):
        for sex in ("male", "female"):
            s, d = systolic.band_for(age, sex), diastolic.band_for(age, sex)
            assert s is not None and d is not None, (age, sex)
            assert s.mean_at(age) - d.mean_at(age) >= 20
    assert systolic.decimals == 0 and diastolic.decimals == 0
    assert systolic.unit == "mm[Hg]"


def test_vital_bands_cover_every_age_and_sex(content: Content) -> None:
    for vital in content.vitals.values():
        for tenth in range(int(vital.age_min * 10), int(min(vital.age_max, 110) * 10)):
            for sex in ("male", "female"):
                assert vital.band_for(tenth / 10, sex) is not None, (vital.id, tenth / 10, sex)


def test_adult_heights_cannot_be_impossible(content: Content) -> None:
    for sex in ("male", "female"):
        band = content.vitals["height"].band_for(30, sex)
        assert band is not None and band.low is not None and band.low >= 120


def test_plausible_range_helper(content: Content) -> None:
    low, high, unit = plausible_range("8480-6")
    assert (low, high) == (
        content.vitals["systolic"].plausible_low,
        content.vitals["systolic"].plausible_high,
    )
    assert unit == "mm[Hg]"
    assert plausible_range("2345-7")[2] == "mg/dL"
    with pytest.raises(KeyError):
        plausible_range("0000-0")


def test_note_templates_use_known_placeholders(content: Content) -> None:
    for module in content.conditions.values():
        names = template_fields(module.note_template)
        assert names, module.id
        assert set(names) <= set(NOTE_FIELDS), module.id


def test_every_billable_reference_has_a_fee(content: Content) -> None:
    refs = {r for m in content.conditions.values() for r in m.procedures + m.visit_codes}
    refs |= {v.admin_code for v in content.immunizations}
    for ref in refs:
        assert content.fee(ref).price > 0, ref
    for fee in content.fees.values():
        assert fee.price == fee.price.quantize(fee.price.__class__("0.01"))


# --------------------------------------------------------------------------- privacy labels


def test_sensitivity_labels(content: Content) -> None:
    icd = "http://hl7.org/fhir/sid/icd-10-cm"
    assert content.labels_for([{"system": icd, "code": "F11.20"}]) == ("R", ["OPIOIDUD", "SUD"])
    assert content.labels_for([{"system": icd, "code": "B20"}]) == ("R", ["HIV"])
    # nicotine dependence is not Part 2 substance use disorder data
    assert content.labels_for([{"system": icd, "code": "F17.210"}]) == ("N", [])
    assert content.labels_for([{"system": icd, "code": "I10"}]) == ("N", [])
    assert content.labels_for([{"system": icd, "code": "F20.9"}]) == ("R", ["MH", "PSY"])
    assert content.labels_for([{"system": icd, "code": "F41.1"}]) == ("R", ["MH"])
    assert content.labels_for([{"system": icd, "code": "F90.9"}]) == ("N", [])
    assert content.labels_for([{"system": icd, "code": "A53.9"}]) == ("R", ["STD"])
    rx = content.codes["rxnorm"].system
    assert content.labels_for([{"system": rx, "code": "1010600"}])[0] == "R"


def test_sensitive_modules_are_labelled_by_the_rules(content: Content) -> None:
    for module in content.conditions.values():
        level, labels = content.labels_for([content.coding("icd10cm", module.icd10)])
        assert set(module.sensitivity) <= set(labels), module.id
        if module.sensitivity:
            assert level == "R"


# --------------------------------------------------------------------------- presets and targets

CONTRACT_ROSTER = {
    "dr.patel": "physician", "dr.nguyen": "physician", "dr.okafor": "physician",
    "rn.kim": "nurse", "rn.lopez": "nurse", "ma.garcia": "medical_assistant",
    "ma.chen": "medical_assistant", "ma.johnson": "medical_assistant", "fd.smith": "front_desk",
    "fd.brown": "front_desk", "billing.davis": "billing", "po.wilson": "privacy_officer",
    "instructor.lee": "instructor", "admin.root": "admin",
}  # fmt: skip


def _npi_valid(npi: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed("80840" + npi)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d * 2 > 9 else d * 2
        total += d
    return total % 10 == 0


def test_staff_roster_matches_contract(content: Content) -> None:
    assert {m.username: m.role for m in content.staff} == CONTRACT_ROSTER
    for member in content.staff:
        assert _npi_valid(member.npi), member.username


def test_every_population_preset_loads(content: Content) -> None:
    expected = {
        "family-practice",
        "pediatrics",
        "ob-gyn",
        "ophthalmology",
        "podiatry",
        "chiropractic",
        "cardiology",
    }
    assert expected <= set(content.populations)
    types = {t.code for t in content.practice.appointment_types}
    for pop_id, pop in content.populations.items():
        modules = content.modules_for(pop_id)
        assert modules, pop_id
        assert set(pop.visit_types) <= types
        assert abs(sum(a.share for a in pop.age_distribution) - 1) < 0.011
    assert content.populations["ob-gyn"].female_share == 1.0
    assert max(a.age_max for a in content.populations["pediatrics"].age_distribution) <= 17


def test_prevalence_targets_have_source_and_year(content: Content) -> None:
    measures = {t.measure for t in content.prevalence_targets}
    for needed in (
        "hypertension",
        "diagnosed diabetes",
        "obesity",
        "current cigarette smoking",
        "current asthma",
    ):
        assert needed in measures
    for target in content.prevalence_targets:
        assert target.source and 1990 <= target.year <= 2100


def _adult_shares(content: Content, age_min: int, age_max: int) -> dict[int, float]:
    """Share of each single year of age within [age_min, age_max] in the family-practice preset."""
    shares: dict[int, float] = {}
    for band in content.populations["family-practice"].age_distribution:
        years = range(band.age_min, band.age_max + 1)
        for age in years:
            if age_min <= age <= age_max:
                shares[age] = band.share / len(years)
    total = sum(shares.values())
    return {age: s / total for age, s in shares.items()}


def test_module_bands_agree_with_prevalence_targets(content: Content) -> None:
    female = content.populations["family-practice"].female_share
    for target in content.prevalence_targets:
        if target.module is None:
            continue
        module = content.conditions[target.module]
        expected = 0.0
        for age, share in _adult_shares(content, target.age_min, min(target.age_max, 100)).items():
            rate = female * module.rate(age, "female") + (1 - female) * module.rate(age, "male")
            expected += share * rate
        assert abs(expected - target.value) <= target.tolerance, (target.measure, expected)


def test_smoking_bands_agree_with_target(content: Content) -> None:
    target = next(t for t in content.prevalence_targets if t.measure == "current cigarette smoking")
    female = content.populations["family-practice"].female_share
    expected = 0.0
    for age, share in _adult_shares(content, target.age_min, 100).items():
        for sex, weight in (("female", female), ("male", 1 - female)):
            band = next(
                b
                for b in content.social.smoking
                if b.age_min <= age <= b.age_max and b.sex in ("any", sex)
            )
            current = sum(
                band.probabilities[c]
                for c in content.social.current_smoker_codes
                if c in band.probabilities
            )
            expected += share * weight * current
    assert abs(expected - target.value) <= target.tolerance


# --------------------------------------------------------------------------- bad content


def _copy(tmp_path: Path) -> Path:
    root = tmp_path / "content"
    shutil.copytree(DEFAULT_ROOT, root)
    return root


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"test setup: {old!r} not in {path.name}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


BAD_CASES = [
    # (file, old text, new text, expected file in error, expected key fragment, message fragment)
    ("vitals.toml", 'id = "heart_rate"\nloinc = "8867-4"\ndisplay = "Heart rate"\nunit = "/min"\ndecimals = 0',
     'id = "heart_rate"\nloinc = "8867-4"\ndisplay = "Heart rate"\nunit = "/min"\ndecimals = "zero"',
     "vitals.toml", "vital[heart_rate].decimals", "expected"),
    ("conditions/hypertension.toml", 'icd10 = "I10"', 'icd10 = "I99.99"',
     "conditions/hypertension.toml", "icd10", "codes/icd10cm.csv"),
    ("allergies.toml", 'criticality = "low"\nicd10 = "Z91.040"', 'icd10 = "Z91.040"',
     "allergies.toml", "allergy[latex].criticality", "missing"),
    ("codes/loinc.csv", "8867-4,Heart rate\n", "8867-4,Heart rate,extra\n",
     "codes/loinc.csv", "line ", "columns"),
    ("codes/cvx.csv", "# licence: public domain (CDC); see LICENSES.md\n", "",
     "codes/cvx.csv", "licence", "header"),
    ("conditions/diabetic_neuropathy.toml", 'requires = ["type2_diabetes"]', 'requires = ["diabetes_type_9"]',
     "conditions/diabetic_neuropathy.toml", "requires[0]", "module id"),
    ("populations/cardiology.toml", '"heart_failure", "coronary', '"heart_attack", "coronary',
     "populations/cardiology.toml", "modules", "module id"),
    ("conditions/asthma.toml", "{control}", "{mood}",
     "conditions/asthma.toml", "note_template", "placeholders"),
    ("conditions/copd.toml", "follow_up_months = 6", "follow_up_monthz = 6",
     "conditions/copd.toml", "follow_up_monthz", "unknown key"),
    ("conditions/hypertension.toml", 'display = "amlodipine 5 MG Oral Tablet"', 'display = "amlodipine 5mg"',
     "conditions/hypertension.toml", "medications[197361].display", "expected display"),
    ("labs.toml", 'procedure = "procedure|UA-DIP"\nturnaround_days = 0', 'procedure = "procedure|UA-DIPSTICK"\nturnaround_days = 0',
     "labs.toml", "panel[ua].procedure", "codes/procedure.csv"),
    ("practice.toml", 'utc_offset = "-05:00"', 'utc_offset = "EST"',
     "practice.toml", "utc_offset", "expected"),
    ("prevalence.toml", "year = 2024", 'year = "last year"',
     "prevalence.toml", "target[hypertension].year", "expected"),
    ("staff.toml", 'username = "ma.chen"', 'username = "ma.garcia"',
     "staff.toml", "member[ma.garcia]", "unique"),
    ("conditions/low_back_pain.toml", "refills = 0\nprobability = 0.04", "refills = 2\nprobability = 0.04",
     "conditions/low_back_pain.toml", "medications[1049221]", "Schedule II"),
    ("social.toml", '"266919005" = 0.53', '"266919005" = 0.93',
     "social.toml", "smoking[6]", "sum to 1"),
    ("clinical_ma.toml", 'test = "rapid-strep"', 'test = "rapid-flu"',
     "clinical_ma.toml", "poc_device[0].test", "poc_tests.toml"),
    ("clinical_ma.toml", 'test = "urine-hcg"', 'test = "urine-hcg"\ncontrol_levels = ["positive"]',
     "clinical_ma.toml", "poc_device[2].control_levels", "poc_tests.toml"),
    ("rules.toml", 'carc = "16"', 'carc = "999"',
     "rules.toml", "remittance.denial[1].carc", "carc.csv"),
    ("rules.toml", 'rarc = "N54"', 'rarc = "N54"\nremark = "Authorization missing"',
     "rules.toml", "remittance.denial[2].remark", "rarc.csv"),
]  # fmt: skip


@pytest.mark.parametrize(("file", "old", "new", "err_file", "err_key", "message"), BAD_CASES)
def test_bad_content_names_file_and_key(
    tmp_path: Path, file: str, old: str, new: str, err_file: str, err_key: str, message: str
) -> None:
    root = _copy(tmp_path)
    _edit(root / file, old, new)
    with pytest.raises(ContentError) as info:
        load_content(root)
    err = info.value
    assert err.file == err_file
    assert err_key in err.key, err
    assert message in err.detail, err
    assert err_file in str(err)


def test_bad_toml_syntax_names_the_line(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    _edit(root / "fees.toml", 'price = "110.00"', "price = = 110")
    with pytest.raises(ContentError) as info:
        load_content(root)
    assert info.value.file == "fees.toml"
    assert "line" in info.value.detail


def test_missing_file_and_folder(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    (root / "practice.toml").unlink()
    with pytest.raises(ContentError) as info:
        load_content(root)
    assert info.value.file == "practice.toml"
    with pytest.raises(ContentError):
        load_content(tmp_path / "nowhere")


def test_duplicate_code_in_csv(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    _edit(root / "codes/ucum.csv", "cm,centimeter\n", "cm,centimeter\ncm,centimetre\n")
    with pytest.raises(ContentError) as info:
        load_content(root)
    assert info.value.file == "codes/ucum.csv"
    assert info.value.key.startswith("line ")


def test_module_id_must_match_file_name(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    _edit(root / "conditions/gerd.toml", 'id = "gerd"', 'id = "reflux"')
    with pytest.raises(ContentError) as info:
        load_content(root)
    assert (info.value.file, info.value.key) == ("conditions/gerd.toml", "id")


def test_an_instructor_folder_adds_a_scenario(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    scenario = (root / "conditions/gerd.toml").read_text(encoding="utf-8")
    scenario = scenario.replace('id = "gerd"', 'id = "gerd_teaching"').replace(
        "general = false\n", ""
    )
    (root / "conditions/gerd_teaching.toml").write_text(scenario, encoding="utf-8")
    loaded = load_content(root)
    assert "gerd_teaching" in loaded.conditions
    assert "gerd_teaching" not in load_content().conditions


def test_wellness_schedule_covers_every_age(content: Content) -> None:
    visits = sorted(content.wellness.visits, key=lambda v: v.age_min)
    assert visits[0].age_min == 0
    for before, after in zip(visits, visits[1:], strict=False):
        assert before.age_max == after.age_min, (before.id, after.id)
    assert visits[-1].age_max >= 110
    for visit in visits:
        assert all(visit.age_min * 12 <= m < visit.age_max * 12 for m in visit.at_months), visit.id
        assert content.fee(visit.procedure).price > 0
    screenings = {s.id: s for s in content.wellness.screenings}
    assert screenings["lipids"].ref in content.labs
    assert screenings["prediabetes_diabetes"].only_with == ["obesity"]


def test_bad_wellness_reference(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    _edit(root / "wellness.toml", 'ref = "lipid"', 'ref = "lipids_panel"')
    with pytest.raises(ContentError) as info:
        load_content(root)
    assert (info.value.file, info.value.key) == ("wellness.toml", "screenings[lipids].ref")


def test_overlapping_prevalence_bands_are_rejected(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    _edit(
        root / "conditions/hypertension.toml",
        "{ age_min = 40, age_max = 59",
        "{ age_min = 30, age_max = 59",
    )
    with pytest.raises(ContentError) as info:
        load_content(root)
    assert (info.value.file, info.value.key) == ("conditions/hypertension.toml", "prevalence")
    assert "non-overlapping" in info.value.detail


def test_note_templates_render_with_every_field(content: Content) -> None:
    values = {name: f"<{name}>" for name in NOTE_FIELDS}
    for module in content.conditions.values():
        text = module.note_template.format(**values)
        assert "{" not in text and "}" not in text, module.id
        assert module.icd10 in text, module.id  # the assessment names the coded diagnosis


def test_qualitative_tests_are_positive_with_their_condition(content: Content) -> None:
    positive = "10828004"
    expectations = {
        "pregnancy": "2106-3",
        "hiv": "56888-1",
        "strep_pharyngitis": "78012-2",
        "uti": "5802-4",
    }
    for module_id, loinc in expectations.items():
        effects = {e.loinc: e.answer for e in content.conditions[module_id].lab_effects}
        assert effects.get(loinc) == positive, module_id
        default = {a.snomed: a.probability for a in content.lab_tests()[loinc].answers}
        assert default.get(positive, 0) < 0.5  # without the condition the test is mostly negative
