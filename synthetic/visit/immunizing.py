"""Visit step: immunizations due under the CDC schedule as of the visit date - only licensed
products (specific CVX with their MVX manufacturer), within each dose's age limits, at the
injection site for the age, Tdap at 27-36 weeks of every pregnancy, Medicare admin codes.

>>> Immunizing.name
'immunizing'
"""

from __future__ import annotations

from typing import Any

from synthetic.builders import billing, immunizations
from synthetic.context import RecordContext
from synthetic.vaccination import WindowIndex, is_due
from synthetic.visit.state import PatientState, VisitState

INJECTED = frozenset({"IM", "SQ"})


class Immunizing:
    """The visit's vaccine doses and their administration lines.

    Examples
    --------
    >>> from synthetic.engine import engine_for
    >>> e = engine_for(seed=1, reference_date="2026-01-01", years=1, population="family-practice")
    >>> recs = [e.patient(i) for i in range(12)]
    >>> of = lambda t: [r for rec in recs for r in rec.by_type(t)]
    >>> code = lambda r: r["code"]["coding"][0]["code"]
    >>> {i["vaccineCode"]["coding"][0]["system"] for i in of("Immunization")}, {i["status"] for i in of("Immunization")}
    ({'http://hl7.org/fhir/sid/cvx'}, {'completed'})
    """

    name = "immunizing"

    def __init__(self, eng: Any) -> None:
        self.eng = eng
        self.by_key = {vac.key: vac for vac in eng.cat.vaccines}
        self.windows = WindowIndex(eng.vaccine_windows)
        # vaccines with a maximum age per dose (the others have none: no lookup per visit)
        self.limited = frozenset(key for key, _dose in eng.rules.limits)

    def run(self, ctx: RecordContext, st: PatientState, vs: VisitState) -> None:
        """Give the doses that are due.

        Examples
        --------
        >>> from synthetic.engine import engine_for
        >>> e = engine_for(seed=1, reference_date="2026-01-01", years=1, population="family-practice")
        >>> recs = [e.patient(i) for i in range(12)]
        >>> of = lambda t: [r for rec in recs for r in rec.by_type(t)]
        >>> code = lambda r: r["code"]["coding"][0]["code"]
        >>> all(i["encounter"]["reference"].startswith("Encounter/") for i in of("Immunization"))
        True
        """
        eng = self.eng
        if vs.virtual or not eng.preset.immunizations and vs.preg is None:
            return
        rng = ctx.rng
        v = vs.v
        day = vs.day
        age_days = day - st.birth
        sex = st.person.sex
        rules = eng.rules
        given: list[str] = []
        if eng.preset.immunizations:
            limited = self.limited
            for vac in self.windows.at(age_days, sex):
                n = st.doses.get(vac.key, 0)
                if n >= len(vac.doses) and not vac.repeat_days:
                    continue  # series complete (or none) and not recurring: never due (is_due)
                if vac.key in limited and age_days > rules.max_age(vac.key, n + 1):
                    continue  # past the dose's maximum age: the series stops here
                due = is_due(
                    rng,
                    vac,
                    n,
                    st.vaccine_last.get(vac.key),
                    day=day,
                    age_days=age_days,
                    wellness=v.wellness,
                )
                if not due:
                    continue
                product = rules.product(vac.key, day, age_days)
                if product is None:
                    continue  # not licensed or not recommended for this age on this date
                # each due dose is given at this opportunity with the content's coverage; the
                # rest are gaps (the dose may still be caught up at a later visit)
                if rng.random() >= vac.coverage:
                    if vac.repeat_days:
                        st.vaccine_last[vac.key] = day  # skipped this season
                    continue
                self.give(ctx, st, vac, product, n + 1, age_days, len(given), vs)
                given.append(self.admin_code(vac, vs))
        preg_rules = rules.pregnancy
        if (
            vs.preg is not None
            and preg_rules is not None
            and preg_rules.tdap_week_min <= v.week <= preg_rules.tdap_week_max
            and vs.preg_lmp not in st.pregnancy_tdap
        ):
            vac = self.by_key.get(preg_rules.tdap_vaccine)
            product = rules.product(preg_rules.tdap_vaccine, day, age_days) if vac else None
            if vac is not None and product is not None:
                st.pregnancy_tdap.add(vs.preg_lmp)
                if rng.random() < vac.coverage:
                    n = st.doses.get(vac.key, 0)
                    self.give(ctx, st, vac, product, n + 1, age_days, len(given), vs)
                    given.append(self.admin_code(vac, vs))
        cat = eng.cat
        for i, ref in enumerate(given):
            if i > 0 and "procedure|IMM-ADMIN-ADD" in cat.fees and ref == "procedure|IMM-ADMIN":
                ref = "procedure|IMM-ADMIN-ADD"
            if ref in cat.fees:
                fee = cat.fees[ref]
                vs.lines.append(billing.ClaimLine(fee.code, fee.price, (1,)))

    def admin_code(self, vac: Any, vs: VisitState) -> str:
        """Administration billing code (Medicare's G codes for Medicare patients).

        Examples
        --------
        >>> from types import SimpleNamespace as N
        >>> from synthetic.engine import engine_for
        >>> from synthetic.visit.state import Visit, VisitState
        >>> e = engine_for(seed=1, reference_date="2026-01-01", years=1, population="family-practice")
        >>> imm = next(s for s in e.steps if s.name == "immunizing")
        >>> flu = N(admin_code="IMM-ADMIN", medicare_admin_code="G0008")
        >>> vs = VisitState(Visit(1, "wellness"), 1, 70.0)
        >>> plain = imm.admin_code(flu, vs)
        >>> vs.payer = N(key=e.rules.payer.medicare_payer)
        >>> plain, imm.admin_code(flu, vs), imm.admin_code(N(admin_code="IMM-ADMIN", medicare_admin_code=""), vs)
        ('IMM-ADMIN', 'G0008', 'IMM-ADMIN')
        """
        rules = self.eng.rules.payer
        if (
            vac.medicare_admin_code
            and vs.payer is not None
            and rules is not None
            and vs.payer.key == rules.medicare_payer
        ):
            return str(vac.medicare_admin_code)
        return str(vac.admin_code)

    def give(
        self,
        ctx: RecordContext,
        st: PatientState,
        vac: Any,
        product: dict[str, Any],
        dose: int,
        age_days: int,
        index: int,
        vs: VisitState,
    ) -> None:
        """Record one dose.

        Examples
        --------
        >>> from synthetic.engine import engine_for
        >>> e = engine_for(seed=1, reference_date="2026-01-01", years=1, population="family-practice")
        >>> recs = [e.patient(i) for i in range(12)]
        >>> of = lambda t: [r for rec in recs for r in rec.by_type(t)]
        >>> code = lambda r: r["code"]["coding"][0]["code"]
        >>> lines = [l["productOrService"]["coding"][0]["code"] for c in of("Claim") for l in c["item"]]
        >>> len(of("Immunization")) > 0 and "IMM-ADMIN" in lines
        True
        """
        site = vac.site
        route_code = vac.route.get("coding", [{}])[0].get("code") if vac.route else None
        if route_code in INJECTED:
            site = self.eng.rules.site(age_days, index % 2 == 1) or site
        ctx.add(
            immunizations.immunization(
                ctx,
                code=product["code"],
                route=vac.route,
                site=site,
                performer=vs.ma_ref,
                dose_number=dose,
                manufacturer=product["manufacturer"],
                series=vac.display,
            )
        )
        st.doses[vac.key] = dose
        st.vaccine_last[vac.key] = vs.day
