"""Compile validated content into the engine's :class:`~synthetic.catalog.Catalog` (once per load).

Every coding, category and dosage dict is built here, once, and shared by the resources that
use it; the engine never looks up a code on its hot path.

>>> from synthetic.content import load_content
>>> cat = compile_catalog(load_content())
>>> cat.conditions["hypertension"].code["coding"][0]["code"]
'I10'
>>> compile_catalog(load_content()) is cat
True
"""

from __future__ import annotations

import dataclasses
from typing import Any

from synthetic.builders.common import (
    ENCOUNTER_DX,
    PROBLEM_LIST,
    UCUM,
    coding,
)
from synthetic.catalog import (
    AllergyDefC,
    Catalog,
    ConditionDef,
    Dist,
    Drug,
    FeeDef,
    Json,
    LabPanelDef,
    LabTestDef,
    PayerDef,
    PresetDef,
    VaccineDef,
    VitalDef,
)
from synthetic.frozen import freeze
from synthetic.labels import CONF_R, actcode
from synthetic.systems import (
    COVERAGE_SELFPAY,
    V2_0487,
    V3_ACT_CODE,
    V3_ACT_SITE,
    V3_ROUTE_OF_ADMINISTRATION,
)

ROUTE_SYSTEM = V3_ROUTE_OF_ADMINISTRATION
ACT_SITE = V3_ACT_SITE
SPECIMEN_TYPE = V2_0487
COVERAGE_TYPE = V3_ACT_CODE
SELF_PAY = COVERAGE_SELFPAY

_ROUTES = {
    "oral": ("PO", "Swallow, oral"),
    "inhaled": ("IPINHL", "Inhalation, oral"),
    "subcutaneous": ("SQ", "Injection, subcutaneous"),
    "intramuscular": ("IM", "Injection, intramuscular"),
    "sublingual": ("SUBLING", "Sublingual"),
    "nasal": ("NASINHL", "Inhalation, nasal"),
    "intra-articular": ("IARTINJ", "Injection, intraarticular"),
    "soft tissue": ("SOFTISINJ", "Injection, soft tissue"),
}
_SITES = {
    "left deltoid": ("LD", "left deltoid"),
    "right deltoid": ("RD", "right deltoid"),
    "left thigh": ("LT", "left thigh"),
    "right thigh": ("RT", "right thigh"),
    "left arm": ("LA", "left arm"),
    "right arm": ("RA", "right arm"),
}
_COVERAGE_TYPES = {
    "medicare": coding(COVERAGE_TYPE, "SUBSIDIZ", "subsidized health program"),
    "medicaid": coding(COVERAGE_TYPE, "SUBSIDIZ", "subsidized health program"),
    "commercial": coding(COVERAGE_TYPE, "EHCPOL", "extended healthcare"),
    "self-pay": coding(SELF_PAY, "pay", "Pay"),
}


def route_cc(route: str) -> Json:
    """CodeableConcept for a content route name (HL7 v3 RouteOfAdministration when we have one).

    >>> route_cc("oral")["coding"][0]["code"], route_cc("topical")
    ('PO', {'text': 'topical'})
    """
    if route in _ROUTES:
        code, display = _ROUTES[route]
        return {"coding": [coding(ROUTE_SYSTEM, code, display)], "text": route}
    return {"text": route}


def site_cc(site: str) -> Json:
    """CodeableConcept for a body site name (HL7 v3 ActSite when we have one).

    >>> site_cc("left deltoid")["coding"][0]["code"]
    'LD'
    """
    if site in _SITES:
        code, display = _SITES[site]
        return {"coding": [coding(ACT_SITE, code, display)], "text": site}
    return {"text": site}


def _cc(content: Any, key: str, code: str, extra: Json | None = None) -> Json:
    c = content.codes[key].coding(code)
    codings = [c] if extra is None else [c, extra]
    return {"coding": codings, "text": c["display"]}


def _dist(d: Any) -> Dist:
    return Dist(d.mean, d.sd, d.low, d.high, d.decimals)


def _security(content: Any, codings: list[Json], extra: list[str]) -> tuple[Json, ...] | None:
    level, codes = content.labels_for(codings)
    codes = sorted(set(codes) | set(extra))
    if level == "N" and not codes:
        return None
    conf = (
        CONF_R
        if level in ("N", "R")
        else {
            "system": CONF_R["system"],
            "code": "V",
            "display": "very restricted",
        }
    )
    return (conf, *(actcode(c) for c in codes))


def _drug(content: Any, med: Any) -> Drug:
    ucum = content.codes["ucum"]
    d = med.dosage
    unit_display = ucum.codes.get(d.unit, d.unit)
    freq = d.frequency_per_day
    if freq >= 1:
        repeat: Json = {"frequency": int(round(freq)), "period": 1, "periodUnit": "d"}
    else:
        repeat = {"frequency": 1, "period": int(round(1 / freq)), "periodUnit": "d"}
    instruction: Json = {
        "sequence": 1,
        "text": med.dose_text,
        "timing": {"repeat": repeat},
        "route": route_cc(d.route),
        "doseAndRate": [
            {
                "doseQuantity": {
                    "value": d.value,
                    "unit": unit_display,
                    "system": UCUM,
                    "code": d.unit,
                }
            }
        ],
    }
    if d.as_needed:
        instruction["asNeededBoolean"] = True
    qty = round(d.value * freq * med.days_supply)
    dispense = {
        "numberOfRepeatsAllowed": med.refills,
        "quantity": {"value": max(1, qty), "unit": unit_display, "system": UCUM, "code": d.unit},
        "expectedSupplyDuration": {
            "value": med.days_supply,
            "unit": "days",
            "system": UCUM,
            "code": "d",
        },
    }
    return Drug(
        key=med.rxnorm,
        code=_cc(content, "rxnorm", med.rxnorm),
        dosage=[instruction],
        dispense=dispense,
        days_supply=med.days_supply,
        refills=med.refills,
        controlled=med.schedule is not None,
        probability=med.probability,
        group=med.group,
        indication=_cc(content, "icd10cm", med.indication),
        display=med.display,
        age_min=med.age_min,
        age_max=med.age_max,
    )


def _lab_effect(content: Any, e: Any) -> tuple[Dist | None, Dist | None, Json | None]:
    diag = _dist(e.at_diagnosis) if getattr(e, "at_diagnosis", None) is not None else None
    follow = _dist(e.follow_up) if getattr(e, "follow_up", None) is not None else diag
    answer = getattr(e, "answer", None)
    answer_cc = (
        {
            "coding": [content.codes["snomed"].coding(answer)],
            "text": content.codes["snomed"].display(answer),
        }
        if answer
        else None
    )
    return diag or follow, follow, answer_cc


def _condition(content: Any, m: Any) -> ConditionDef:
    snomed = content.codes["snomed"].coding(m.snomed) if m.snomed else None
    code = _cc(content, "icd10cm", m.icd10, snomed)
    security = _security(content, code["coding"], list(m.sensitivity))
    groups: dict[str, list[Drug]] = {}
    singles: list[Drug] = []
    for med in m.medications:
        drug = _drug(content, med)
        if med.group:
            groups.setdefault(med.group, []).append(drug)
        else:
            singles.append(drug)
    acute = m.acute
    return ConditionDef(
        key=m.id,
        kind=m.kind,
        icd10=m.icd10,
        display=code["text"],
        code=code,
        category=PROBLEM_LIST if m.category == "problem-list-item" else ENCOUNTER_DX,
        security=security,
        bands=tuple((b.age_min, b.age_max, b.sex, b.rate) for b in m.prevalence),
        onset_min=m.onset_age.min,
        onset_max=m.onset_age.max,
        requires=tuple(m.requires),
        excludes=tuple(m.excludes),
        criterion=(m.criterion.loinc, m.criterion.at_least) if m.criterion else None,
        vitals_effects={
            e.loinc: (e.shift, e.floor, e.ceiling, dict(getattr(e, "answers", {}) or {}))
            for e in m.vitals_effects
        },
        lab_effects={e.loinc: _lab_effect(content, e) for e in m.lab_effects},
        drug_groups=tuple(tuple(g) for g in groups.values()),
        drug_singles=tuple(singles),
        follow_up_days=int((m.follow_up_months or 0) * 30.4),
        diagnosis_labs=tuple(m.diagnosis_labs),
        follow_up_labs=tuple(m.follow_up_labs),
        observations=tuple(m.observations),
        procedures=tuple(m.procedures),
        visit_codes=tuple(m.visit_codes),
        note_template=m.note_template,
        reason=acute.reason if acute else "",
        duration=(int(acute.duration_days.min), int(acute.duration_days.max)) if acute else (0, 0),
        visit_probability=acute.visit_probability if acute else 1.0,
        acute_labs=tuple(acute.labs) if acute else (),
        pregnancy=m.pregnancy,
    )


def _lab_test(content: Any, t: Any) -> LabTestDef:
    code = _cc(content, "loinc", t.loinc)
    dist: dict[str, Dist] = {}
    ref: dict[str, list[Json]] = {}
    low: dict[str, float | None] = {}
    high: dict[str, float | None] = {}
    ucum = content.codes["ucum"]

    def _q(v: float) -> Json:
        return {"value": v, "unit": ucum.codes.get(t.unit, t.unit), "system": UCUM, "code": t.unit}

    def _rr(lo: float | None, hi: float | None) -> list[Json]:
        r: Json = {}
        if lo is not None:
            r["low"] = _q(lo)
        if hi is not None:
            r["high"] = _q(hi)
        return [r] if r else []

    plo = t.plausible_low if t.plausible_low is not None else 0.0
    phi = t.plausible_high if t.plausible_high is not None else 1e9
    if t.value_type == "quantity":
        dist["any"] = Dist(t.mean, t.sd, plo, phi, t.decimals)
        ref["any"], low["any"], high["any"] = _rr(t.low, t.high), t.low, t.high
        for sex, sv in t.by_sex.items():
            dist[sex] = Dist(sv.mean, sv.sd, plo, phi, t.decimals)
            ref[sex], low[sex], high[sex] = _rr(sv.low, sv.high), sv.low, sv.high
    answers = tuple(
        ({"coding": [content.codes["snomed"].coding(a.snomed)], "text": a.display}, a.probability)
        for a in t.answers
    )
    return LabTestDef(t.loinc, code, t.unit, t.value_type == "coded", dist, ref, low, high, answers)


def _panel(content: Any, p: Any) -> LabPanelDef:
    spec = {
        "coding": [coding(SPECIMEN_TYPE, p.specimen.code, p.specimen.display)],
        "text": p.specimen.display,
    }
    return LabPanelDef(
        key=p.id,
        code=_cc(content, "loinc", p.loinc),
        display=p.display,
        specimen_type=spec,
        specimen_note=p.specimen.tube,
        collection=p.specimen.collection,
        turnaround_days=p.turnaround_days,
        procedure=p.procedure,
        tests=tuple(_lab_test(content, t) for t in p.tests),
    )


PULSE_OXIMETRY = ("59408-5", "2708-6")
"""US Core pulse oximetry needs both codes on the Observation."""


def _vital(content: Any, v: Any) -> VitalDef:
    code = _cc(content, "loinc", v.loinc)
    if v.loinc == PULSE_OXIMETRY[0] and PULSE_OXIMETRY[1] in content.codes["loinc"]:
        code = _cc(content, "loinc", v.loinc, content.codes["loinc"].coding(PULSE_OXIMETRY[1]))
    return VitalDef(
        key=v.id,
        loinc=v.loinc,
        code=code,
        unit=v.unit or "",
        decimals=v.decimals,
        low=v.plausible_low,
        high=v.plausible_high,
        age_min=v.age_min,
        age_max=v.age_max,
        bands=tuple(
            (
                b.age_min,
                b.age_max,
                b.sex,
                b.mean,
                b.mean_at_max,
                b.sd,
                v.plausible_low if getattr(b, "low", None) is None else b.low,
                v.plausible_high if getattr(b, "high", None) is None else b.high,
            )
            for b in v.bands
        ),
        panel=v.panel,
        answers=dict(getattr(v, "answers", {}) or {}),
    )


def _vaccine(content: Any, v: Any) -> VaccineDef:
    doses = []
    for d in v.doses:
        due = int(d.age_months * 30.44)
        latest = int((d.latest_months if d.latest_months is not None else d.age_months + 4) * 30.44)
        doses.append((max(due, d.min_age_days), max(latest, due), d.min_interval_days))
    return VaccineDef(
        key=v.id,
        code=_cc(content, "cvx", v.cvx),
        display=v.display,
        group=v.group,
        doses=tuple(doses),
        repeat_days=int(v.repeat_every_years * 365.25) if v.repeat_every_years else None,
        start_days=int((v.start_age_years or 0) * 365.25),
        end_days=int((v.end_age_years if v.end_age_years is not None else 120) * 365.25),
        sex=v.sex,
        coverage=v.coverage,
        route=route_cc(v.route),
        site=site_cc(v.site),
        admin_code=v.admin_code,
        medicare_admin_code=v.medicare_admin_code,
    )


_COMPILED: dict[int, tuple[Any, Catalog]] = {}


def compile_rules(content: Any) -> Any:
    """The content's rules compiled for the engine (:mod:`synthetic.clinical_rules`).

    >>> from synthetic.content import load_content
    >>> compile_rules(load_content()).max_age("dtap", 1) < 3000
    True
    """
    from synthetic.clinical_rules import compile_rules as _compile_rules

    return _compile_rules(content)


_NOT_CONTENT = frozenset({"rules", "practice", "social"})


def compile_catalog(content: Any) -> Catalog:
    """Build (and cache per content object) the engine's catalog from validated ``content``.

    >>> from synthetic.content import load_content
    >>> "family-practice" in compile_catalog(load_content()).presets
    True
    """
    hit = _COMPILED.get(id(content))
    if hit is not None and hit[0] is content:
        return hit[1]
    catalog = _compile(content)
    for f in dataclasses.fields(catalog):  # its JSON pieces are shared by every resource
        if f.name not in _NOT_CONTENT:
            setattr(catalog, f.name, freeze(getattr(catalog, f.name)))
    if len(_COMPILED) >= 4:
        _COMPILED.clear()
    # keep the content alive next to its catalog so that its id cannot be reused
    _COMPILED[id(content)] = (content, catalog)
    return catalog


def _compile(content: Any) -> Catalog:
    conditions = {m.id: _condition(content, m) for m in content.conditions.values()}
    fees = {
        ref: FeeDef(ref, {"coding": [content.coding(ref)], "text": f.display}, float(f.price))
        for ref, f in content.fees.items()
    }
    payers = tuple(
        PayerDef(
            key=p.id,
            name=p.name,
            type=p.type,
            type_code={"coding": [_COVERAGE_TYPES[p.type]], "text": p.type},
            share=p.share,
            age_min=p.age_min,
            age_max=p.age_max,
            allowed_ratio=p.allowed_ratio,
            lag_days=p.payment_lag_days,
            copay=float(p.copay),
            deductible_share=p.deductible_share,
            prefix=p.identifier_prefix,
        )
        for p in content.practice.payers
    )
    allergies = []
    for a in content.allergies:
        snomed = content.codes["snomed"].coding(a.snomed)
        codings = [snomed]
        if a.rxnorm:
            codings.append(content.codes["rxnorm"].coding(a.rxnorm))
        reactions = tuple(
            (
                {"coding": [content.codes["snomed"].coding(r.snomed)], "text": r.display},
                r.probability,
                r.severity,
            )
            for r in a.reactions
        )
        allergies.append(
            AllergyDefC(
                key=a.id,
                code={"coding": codings, "text": a.display},
                category=a.category,
                type=a.type,
                prevalence=a.prevalence,
                onset_min=a.onset_age.min,
                onset_max=a.onset_age.max,
                reactions=reactions,
                criticality=a.criticality,
                conflicts=frozenset(a.conflicts_with_rxnorm) | ({a.rxnorm} if a.rxnorm else set()),
            )
        )
    presets = {
        pid: PresetDef(
            key=pid,
            display=p.display,
            specialty=p.specialty,
            ages=tuple((a.age_min, a.age_max, a.share) for a in p.age_distribution),
            female_share=p.female_share,
            modules=tuple(m.id for m in content.modules_for(pid)),
            multipliers=dict(p.condition_multipliers),
            observations=tuple(p.observations),
            visit_procedures=tuple(p.visit_procedures),
            wellness=p.wellness,
            immunizations=p.immunizations,
            visit_types=tuple(p.visit_types),
        )
        for pid, p in content.populations.items()
    }
    loinc = content.codes["loinc"]
    snomed = content.codes["snomed"]
    return Catalog(
        conditions=conditions,
        labs={pid: _panel(content, p) for pid, p in content.labs.items()},
        vitals={v.loinc: _vital(content, v) for v in content.vitals.values()},
        observations={
            v.loinc: _vital(content, v) for v in getattr(content, "observations", {}).values()
        },
        vaccines=tuple(_vaccine(content, v) for v in content.immunizations),
        fees=fees,
        payers=payers,
        allergies=tuple(allergies),
        presets=presets,
        staff=tuple(content.staff),
        practice=content.practice,
        appointment_types={t.code: t for t in content.practice.appointment_types},
        social=content.social,
        targets=tuple(content.prevalence_targets),
        observation_codes={
            c: {"coding": [loinc.coding(c)], "text": loinc.display(c)} for c in loinc.codes
        },
        snomed={c: {"coding": [snomed.coding(c)], "text": snomed.display(c)} for c in snomed.codes},
        extra={"icd_display": dict(content.codes["icd10cm"].codes)},
        specialists=tuple(content.specialists),
        former=tuple(content.former),
        rules=compile_rules(content),
    )
