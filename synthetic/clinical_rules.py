"""The content's rules (``rules.toml``) compiled into fast lookups for the engine.

>>> from synthetic.content import load_content
>>> r = compile_rules(load_content())
>>> r.product("zoster", 736000, 25000) is None   # 2016: before Shingrix was licensed
True
>>> r.product("zoster", 739000, 25000)["code"]["coding"][0]["code"]
'187'
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Any

from synthetic.builders.common import coding
from synthetic.compile import route_cc, site_cc
from synthetic.frozen import freeze
from synthetic.systems import ICD10CM, MVX, UCUM

Json = dict[str, Any]
MVX_SYSTEM = MVX
ICD10 = ICD10CM


def _day(iso: str) -> int:
    if iso.startswith("9999"):
        return 10**7
    return _dt.date.fromisoformat(iso).toordinal()


@dataclass(slots=True)
class CompiledRules:
    """Rules ready for the hot path (see the module docstring).

    >>> CompiledRules().classes("1")
    frozenset()
    """

    products: dict[str, list[tuple[int, int, int, int, Json]]] = field(default_factory=dict)
    limits: dict[tuple[str, int], int] = field(default_factory=dict)
    sites: list[tuple[int, Json, Json]] = field(default_factory=list)
    drug_classes: dict[str, frozenset[str]] = field(default_factory=dict)
    antibiotic_classes: frozenset[str] = frozenset()
    duplicate_groups: list[frozenset[str]] = field(default_factory=list)
    allergy_classes: dict[str, frozenset[str]] = field(default_factory=dict)
    weight_doses: dict[str, Any] = field(default_factory=dict)
    monitoring: list[tuple[frozenset[str], str, int]] = field(default_factory=list)
    trimester: dict[str, Any] = field(default_factory=dict)
    claim_edits: list[tuple[str, str]] = field(default_factory=list)
    payer: Any = None
    screenings: list[Any] = field(default_factory=list)
    pregnancy: Any = None
    growth: Any = None
    awareness: Any = None
    engine: Any = None
    scheduling: Any = None
    remittance: Any = None
    portal: Any = None
    holiday_rules: Any = None
    laterality: dict[str, list[tuple[str, float]]] = field(default_factory=dict)
    office_drugs: dict[str, tuple[Json, Json, Json, Json]] = field(default_factory=dict)
    eras: list[tuple[int, int, float, float]] = field(default_factory=list)
    _holidays: dict[int, frozenset[int]] = field(default_factory=dict)

    def product(self, vaccine: str, day: int, age_days: int) -> Json | None:
        """The product (CVX code, manufacturer) of ``vaccine`` available on ``day`` at that age.

        None when the vaccine was not licensed/recommended yet for that age on that day.

        >>> CompiledRules().product("x", 1, 1) is None
        True
        """
        for start, until, lo, hi, prod in self.products.get(vaccine, ()):
            if start <= day < until and lo <= age_days <= hi:
                return prod
        return None

    def era(self, day: int) -> tuple[float, float]:
        """(share of visits kept, telehealth share) on ``day``.

        >>> CompiledRules().era(1)
        (1.0, 0.0)
        """
        for start, until, keep, tele in self.eras:
            if start <= day < until:
                return keep, tele
        return 1.0, 0.0

    def max_age(self, vaccine: str, dose: int) -> int:
        """Oldest age (days) at which dose number ``dose`` (1-based) may be given.

        >>> CompiledRules(limits={("rv", 1): 104}).max_age("rv", 1)
        104
        """
        a = self.limits.get((vaccine, dose))
        b = self.limits.get((vaccine, 0))
        if a is None:
            return 10**6 if b is None else b
        return a if b is None or a <= b else b

    def site(self, age_days: int, alternate: bool) -> Json | None:
        """Injection site for an age (thigh in infants, arm later).

        >>> CompiledRules().site(10, False) is None
        True
        """
        for limit, site, alt in self.sites:
            if age_days <= limit:
                return alt if alternate else site
        return None

    def classes(self, rxnorm: str) -> frozenset[str]:
        """Drug classes of an RxNorm code.

        >>> CompiledRules(drug_classes={"1": frozenset({"statin"})}).classes("1")
        frozenset({'statin'})
        """
        return self.drug_classes.get(rxnorm, frozenset())

    def is_antibiotic(self, rxnorm: str) -> bool:
        """Whether the drug is an antibiotic.

        >>> CompiledRules().is_antibiotic("1")
        False
        """
        return bool(self.classes(rxnorm) & self.antibiotic_classes)

    def duplicate_of(self, rxnorm: str, taken: frozenset[str] | set[str]) -> bool:
        """Whether adding ``rxnorm`` duplicates the therapy class of a drug in ``taken``.

        >>> r = CompiledRules(drug_classes={"1": frozenset({"s"}), "2": frozenset({"s"})},
        ...                   duplicate_groups=[frozenset({"s"})])
        >>> r.duplicate_of("2", {"1"}), r.duplicate_of("1", {"1"})
        (True, False)
        """
        mine = self.classes(rxnorm)
        if not mine:
            return False
        for group in self.duplicate_groups:
            if mine & group:
                for other in taken:
                    if other != rxnorm and self.classes(other) & group:
                        return True
        return False

    def blocked_by_allergies(self, rxnorm: str, allergies: frozenset[str] | set[str]) -> bool:
        """Whether one of the patient's allergies (by allergy id) rules out the drug.

        >>> CompiledRules(drug_classes={"1": frozenset({"pen"})},
        ...               allergy_classes={"penicillin": frozenset({"pen"})}).blocked_by_allergies("1", {"penicillin"})
        True
        """
        mine = self.classes(rxnorm)
        return any(mine & self.allergy_classes.get(a, frozenset()) for a in allergies)

    def edit_claim(self, codes: list[str]) -> set[str]:
        """ICD-10-CM codes a claim must drop under the claim edits (excludes-type rules).

        >>> CompiledRules(claim_edits=[("E11.9", "E11.4")]).edit_claim(["E11.9", "E11.42"])
        {'E11.9'}
        """
        drop: set[str] = set()
        for prefix, when in self.claim_edits:
            if any(c.startswith(when) for c in codes):
                drop.update(c for c in codes if c.startswith(prefix) and not c.startswith(when))
        return drop

    def holidays(self, year: int) -> frozenset[int]:
        """Ordinal days of the federal holidays observed in ``year``.

        >>> from synthetic.content import load_content
        >>> import datetime
        >>> datetime.date(2025, 12, 25).toordinal() in compile_rules(load_content()).holidays(2025)
        True
        """
        hit = self._holidays.get(year)
        if hit is not None:
            return hit
        out: set[int] = set()
        rules = self.holiday_rules
        for md in rules.fixed if rules else ():
            m, d = (int(x) for x in md.split("-"))
            if (m, d) == (6, 19) and year < 2021:
                continue
            day = _dt.date(year, m, d)
            if day.weekday() == 5:
                day -= _dt.timedelta(days=1)
            elif day.weekday() == 6:
                day += _dt.timedelta(days=1)
            out.add(day.toordinal())
        for spec in rules.nth if rules else ():
            m, wd, n = (int(x) for x in spec.split(":"))
            if n > 0:
                day = _dt.date(year, m, 1)
                day += _dt.timedelta(days=(wd - day.weekday()) % 7 + 7 * (n - 1))
            else:
                nxt = _dt.date(year + (m == 12), m % 12 + 1, 1)
                day = nxt - _dt.timedelta(days=1)
                day -= _dt.timedelta(days=(day.weekday() - wd) % 7)
            out.add(day.toordinal())
        hit = self._holidays[year] = frozenset(out)
        return hit

    def is_holiday(self, day: int) -> bool:
        """Whether the ordinal ``day`` is a federal holiday.

        >>> CompiledRules().is_holiday(739617)
        False
        """
        return day in self.holidays(_dt.date.fromordinal(day).year)


def compile_rules(content: Any) -> CompiledRules:
    """Compile ``content.rules`` against the content's code sets.

    >>> from synthetic.content import load_content
    >>> compile_rules(load_content()).max_age("rotavirus", 1)
    104
    """
    r = content.rules
    out = CompiledRules()
    cvx = content.codes["cvx"]
    for p in r.vaccine_product:
        c = cvx.coding(p.cvx)
        prod = freeze(  # shared by every resource that uses it (see synthetic.frozen)
            {
                "code": {"coding": [c], "text": c["display"]},
                "manufacturer": {
                    "identifier": {"system": MVX_SYSTEM, "value": p.mvx},
                    "display": r.mvx.get(p.mvx, p.mvx),
                },
            }
        )
        out.products.setdefault(p.vaccine, []).append(
            (_day(p.from_), _day(p.until), p.min_age_days, p.max_age_days, prod)
        )
    for lim in r.vaccine_limit:
        out.limits[(lim.vaccine, lim.dose)] = lim.max_age_days
    out.sites = [
        (s.age_max_days, freeze(site_cc(s.site)), freeze(site_cc(s.alternate)))
        for s in r.injection_site
    ]
    by_code: dict[str, set[str]] = {}
    for cls, codes in r.drug_classes.items():
        for code in codes:
            by_code.setdefault(code, set()).add(cls)
    out.drug_classes = {k: frozenset(v) for k, v in by_code.items()}
    out.antibiotic_classes = frozenset(r.antibiotic_classes)
    out.duplicate_groups = [frozenset(g.classes) for g in r.duplicate_group]
    out.allergy_classes = {a.allergy: frozenset(a.classes) for a in r.allergy_class}
    out.weight_doses = {w.rxnorm: w for w in r.weight_dose}
    out.monitoring = [(frozenset(m.rxnorm), m.panel, m.every_days) for m in r.monitoring]
    out.trimester = {t.unspecified: t for t in r.trimester_code}
    out.claim_edits = [(e.prefix, e.when_prefix) for e in r.claim_edit]
    out.payer = r.payer_rules
    # USPSTF procedure screenings of wellness.toml that name their claim diagnosis
    out.screenings = [
        sc for sc in content.wellness.screenings if sc.kind == "procedure" and sc.icd10
    ]
    out.pregnancy = r.pregnancy
    out.growth = r.growth
    out.awareness = r.awareness
    out.engine = r.engine
    out.scheduling = r.scheduling
    out.remittance = r.remittance
    out.portal = r.portal
    out.holiday_rules = r.holidays
    icd = content.codes["icd10cm"]
    for lat in r.laterality:
        out.laterality[lat.icd10] = [
            (
                {"coding": [coding(ICD10, code, icd.display(code))], "text": icd.display(code)},
                share,
            )
            for code, share in lat.alternatives.items()
        ]
    out.eras = [(_day(e.from_), _day(e.until), e.keep, e.telehealth) for e in r.era]
    rx = content.codes["rxnorm"]
    for d in r.office_drug:
        med = (
            {"coding": [rx.coding(d.rxnorm)], "text": d.text}
            if d.rxnorm and d.rxnorm in rx
            else {"text": d.text}
        )
        dose = {
            "value": d.dose_mg,
            "unit": "mg",
            "system": UCUM,
            "code": "mg",
        }
        out.office_drugs[d.hcpcs] = freeze((med, route_cc(d.route), site_cc(d.site), dose))
    return out
