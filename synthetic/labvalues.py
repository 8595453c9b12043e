"""Lab result values: disease effects, diagnostic criteria and panel consistency.

A person with a condition gets its lab effect (diagnostic values at diagnosis, follow-up values
later); people without a condition stay under its diagnostic criterion (no diabetic A1c without
diabetes); panels stay internally consistent (eGFR computed from creatinine with CKD-EPI 2021,
total cholesterol = LDL + HDL + triglycerides / 5).

>>> import random
>>> from synthetic.content import load_content
>>> from synthetic.compile import compile_catalog
>>> from synthetic.profile import Profile
>>> panel = compile_catalog(load_content()).labs["a1c"]
>>> [v < 6.5 for v in lab_values(random.Random(1), Profile(), panel, day=1, age=50, sex="male",
...                               ordered_for=None, criteria={"4548-4": [("type2_diabetes", 6.5)]})]
[True]
"""

from __future__ import annotations

import random
from typing import Any, NamedTuple

from synthetic.catalog import ConditionDef, Dist, LabPanelDef, LabTestDef
from synthetic.profile import Profile

EGFR_CODES = frozenset(
    {"98979-8", "62238-1", "33914-3", "48642-3", "48643-1", "88293-6", "88294-4"}
)
LDL_CODES = ("18262-6", "13457-7", "2089-1")


def ckd_epi_2021(creatinine: float, age: float, female: bool) -> float:
    """eGFR (mL/min/1.73 m2) by the race-free CKD-EPI 2021 creatinine equation.

    >>> int(ckd_epi_2021(1.0, 50, False))
    91
    """
    k, a = (0.7, -0.241) if female else (0.9, -0.302)
    r = creatinine / k
    egfr = 142 * min(r, 1.0) ** a * max(r, 1.0) ** -1.200 * 0.9938**age
    return egfr * 1.012 if female else egfr


def creatinine_for_egfr(egfr: float, age: float, female: bool) -> float:
    """The creatinine giving ``egfr`` (inverse of :func:`ckd_epi_2021`, by bisection).

    >>> round(ckd_epi_2021(creatinine_for_egfr(45, 70, True), 70, True))
    45
    """
    lo, hi = 0.05, 25.0
    for _ in range(40):
        mid = (lo + hi) / 2
        if ckd_epi_2021(mid, age, female) > egfr:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


class PanelPlan(NamedTuple):
    """What :func:`lab_values` needs of a panel for one sex, worked out once (see :func:`panel_plan`).

    Examples
    --------
    >>> from synthetic.content import load_content
    >>> from synthetic.compile import compile_catalog
    >>> labs = compile_catalog(load_content()).labs
    >>> lipid, a1c = panel_plan(labs["lipid"], "male"), panel_plan(labs["a1c"], "male")
    >>> isinstance(lipid, PanelPlan), lipid.ldl is not None, a1c.ldl, a1c.egfr
    (True, True, None, None)
    >>> [t.loinc for t, _ in lipid.tests] == lipid.codes  # the lipid panel needs the consistency step
    True
    """

    tests: tuple[tuple[LabTestDef, Dist | None], ...]
    """Each test with its distribution for the sex (None for a coded test)."""
    codes: list[str]
    """The tests' LOINC codes when the panel needs a consistency step (else empty)."""
    egfr: str | None
    """The eGFR code computed from creatinine (2160-0), if the panel has both."""
    ldl: str | None
    """The LDL code when total cholesterol is LDL + HDL + triglycerides / 5."""


_PLANS: dict[tuple[int, str], tuple[LabPanelDef, PanelPlan]] = {}


def panel_plan(panel: LabPanelDef, sex: str) -> PanelPlan:
    """The :class:`PanelPlan` of ``panel`` for ``sex`` (cached per panel and sex, bounded).

    >>> from synthetic.content import load_content
    >>> from synthetic.compile import compile_catalog
    >>> plan = panel_plan(compile_catalog(load_content()).labs["lipid"], "female")
    >>> plan.egfr, plan.ldl is not None, len(plan.codes) == len(plan.tests)
    (None, True, True)
    """
    key = (id(panel), sex)
    hit = _PLANS.get(key)
    if hit is not None and hit[0] is panel:  # the entry keeps its panel alive: ids stay unique
        return hit[1]
    tests = tuple((t, None if t.coded else (t.dist.get(sex) or t.dist["any"])) for t in panel.tests)
    measured = {t.loinc for t in panel.tests if not t.coded}
    codes = [t.loinc for t in panel.tests] if "2160-0" in measured or "2093-3" in measured else []
    egfr = next((c for c in codes if c in EGFR_CODES), None) if "2160-0" in measured else None
    ldl = next((c for c in LDL_CODES if c in measured), None) if "2093-3" in measured else None
    if not ("2085-9" in measured and "2571-8" in measured):
        ldl = None
    plan = PanelPlan(tests, codes, egfr, ldl)
    if len(_PLANS) < 1024:
        _PLANS[key] = (panel, plan)
    return plan


def lab_values(
    rng: random.Random,
    prof: Profile,
    panel: LabPanelDef,
    *,
    day: int,
    age: float,
    sex: str,
    ordered_for: ConditionDef | None,
    criteria: dict[str, list[tuple[str, float]]],
) -> list[Any]:
    """One value per test of ``panel`` (numbers, or coded answers) for this person on ``day``.

    ``criteria`` maps a LOINC code to the (condition, threshold) pairs that people without the
    condition must stay under; ``ordered_for`` is the acute or pregnancy module the panel was
    ordered for (its effects apply too).

    >>> from synthetic.content import load_content
    >>> from synthetic.compile import compile_catalog
    >>> cmp = compile_catalog(load_content()).labs["cmp"]
    >>> len(lab_values(random.Random(0), Profile(), cmp, day=1, age=40, sex="female",
    ...                ordered_for=None, criteria={})) == len(cmp.tests)
    True
    """
    plan = panel_plan(panel, sex)
    values: list[Any] = []
    by_loinc: dict[str, Any] = {}
    # the chart knows a condition from its recorded day (labs before it look undiagnosed)
    fx: dict[str, Any] = {}
    for dx in prof.diagnoses.values():
        if dx.recorded <= day < dx.until:
            c = dx.condition
            for loinc, e in c.lab_effects.items():
                fx.setdefault(loinc, (c, e))
    if ordered_for is not None and ordered_for.kind != "chronic":
        for loinc, e in ordered_for.lab_effects.items():
            fx.setdefault(loinc, (ordered_for, e))
    for t, dist in plan.tests:
        effect = fx.get(t.loinc) if fx else None
        if dist is None:  # a coded test
            if effect is not None and effect[1][2] is not None:
                ans = effect[1][2]
            else:
                x = rng.random()
                ans = t.answers[-1][0]
                for a, p in t.answers:
                    x -= p
                    if x < 0:
                        ans = a
                        break
            values.append(ans)
            continue
        if effect is not None:
            c, (diag, follow, _) = effect
            dx = prof.diagnoses.get(c.key)
            dist = (diag if dx is None or dx.recorded == day else follow) or dist
        val = dist.draw(rng)
        for key, at_least in criteria.get(t.loinc, ()):
            if val >= at_least and not prof.has(key, day):
                val = round(at_least - 0.1 - rng.random() * 0.6, dist.decimals)
        by_loinc[t.loinc] = val
        values.append(val)
    # keep the panel internally consistent: eGFR from creatinine, total cholesterol
    codes = plan.codes
    egfr = plan.egfr
    if egfr:
        effect_on_egfr = any(
            egfr in dx.condition.lab_effects
            for dx in prof.diagnoses.values()
            if dx.recorded <= day < dx.until
        )
        female = sex == "female"
        if effect_on_egfr:
            cr = round(creatinine_for_egfr(by_loinc[egfr], max(age, 18), female), 2)
            values[codes.index("2160-0")] = cr
        else:
            values[codes.index(egfr)] = int(
                round(min(150, ckd_epi_2021(by_loinc["2160-0"], max(age, 18), female)))
            )
    ldl = plan.ldl
    if ldl:
        values[codes.index("2093-3")] = int(
            round(by_loinc[ldl] + by_loinc["2085-9"] + by_loinc["2571-8"] / 5)
        )
    return values
