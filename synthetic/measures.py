"""Vital signs at a visit: values from the content's age/sex bands, condition effects, and
each person's fixed growth scores (height, weight and head circumference track between visits).

>>> import random
>>> from synthetic.content import load_content
>>> from synthetic.compile import compile_catalog
>>> from synthetic.context import RecordContext
>>> from synthetic.profile import Profile
>>> vs = VitalSampler(compile_catalog(load_content()), 30.0)
>>> ctx = RecordContext("0123456789abcdef", random.Random(0))
>>> ctx.encounter, ctx.when = {"reference": "Encounter/e"}, "2025-01-02T09:00:00-05:00"
>>> _ = vs.record(ctx, random.Random(0), Profile(), 739253, "female", 40.0, None)
>>> vs.last["systolic"] > vs.last["diastolic"], len(ctx.out) >= 7
(True, True)
"""

from __future__ import annotations

from typing import Any

from synthetic.builders import vitals
from synthetic.builders.common import VITAL_SIGNS, qty
from synthetic.catalog import NORMAL_STEPS, NORMALS, Catalog, ConditionDef
from synthetic.context import RecordContext
from synthetic.growth import growth_tables
from synthetic.labels import meta
from synthetic.profile import Profile

_MISSING = object()
PERSISTENT_VITALS = frozenset({"9843-4", "8287-5"})
"""Vitals drawn from the person's fixed growth score (head circumference) rather than noise."""


class VitalSampler:
    """Draws and records a visit's vital signs for one engine (caches bands by tenth of a year).

    >>> from synthetic.content import load_content
    >>> from synthetic.compile import compile_catalog
    >>> VitalSampler(compile_catalog(load_content()), 30.0).bp_panel["coding"][0]["code"]
    '85354-9'
    """

    def __init__(self, cat: Catalog, bmi_threshold: float) -> None:
        v = cat.vitals
        self.cat = cat
        self.bmi_threshold = bmi_threshold
        self.bp = (v.get("8480-6"), v.get("8462-4"))
        self.bp_panel = cat.observation_codes.get("85354-9")
        self.plain_vitals = [
            x
            for x in v.values()
            if x.panel is None and x.loinc not in ("8302-2", "29463-7", "39156-5")
        ]
        self.growth = growth_tables()
        rules = getattr(cat, "rules", None)
        self.growth_rules = rules.growth if rules is not None else None
        self.noise_sd = self.growth_rules.noise_sd if self.growth_rules else 0.12
        self.febrile_share = rules.engine.febrile_acute_share if rules is not None else 0.35
        self.last: dict[str, Any] = {}
        """Values recorded at the last visit by key (systolic, diastolic, weight, bmi, heart_rate...)."""
        self._bands: dict[tuple[str, str, int], Any] = {}
        self._plans: dict[tuple[str, int], list[Any]] = {}
        self._z_base = ""
        self._z = (0.0, 0.0, 0.0)

    def record(
        self,
        ctx: RecordContext,
        rng: Any,
        prof: Profile,
        day: int,
        sex: str,
        age: float,
        acute: ConditionDef | None,
    ) -> dict[str, list[Any]]:
        """Record the visit's vitals; return the condition effects in force (for other measures)."""
        vals = self.last
        vals.clear()
        effects: dict[str, list[Any]] = {}
        for dx in prof.diagnoses.values():
            if dx.onset <= day < dx.until:
                treated = bool(dx.drugs)
                for loinc, (shift, floor, ceiling, _answers) in dx.condition.vitals_effects.items():
                    s = shift * (0.45 if treated else 1.0)
                    effects.setdefault(loinc, []).append(
                        (s, floor if not treated else None, ceiling)
                    )
        for key, onset in prof.undiagnosed.items():
            if onset <= day:  # never diagnosed, so never treated
                cond = self.cat.conditions[key]
                for loinc, (shift, floor, ceiling, _answers) in cond.vitals_effects.items():
                    effects.setdefault(loinc, []).append((shift, floor, ceiling))
        if ctx.base != self._z_base:  # fixed per person: computed once per record
            self._z_base, self._z = ctx.base, self.person_z(ctx)
        z = self._z
        cat = self.cat
        sys_def, dia_def = self.bp
        if sys_def and dia_def and self.bp_panel and age >= sys_def.age_min:
            s = self.draw(rng, sys_def, age, sex, effects, None)
            d = self.draw(rng, dia_def, age, sex, effects, None)
            if s is not None and d is not None:
                s, d = int(s), int(d)
                if d > s - 15:
                    d = s - 15 - rng.randrange(10)
                ctx.add(vitals.blood_pressure(ctx, self.bp_panel, sys_def.code, dia_def.code, s, d))
                vals["systolic"], vals["diastolic"] = s, d
        h_def = cat.vitals.get("8302-2")
        w_def = cat.vitals.get("29463-7")
        b_def = cat.vitals.get("39156-5")
        gz = prof.growth_z
        child = age < 18 and gz is not None
        height = None
        if h_def and h_def.age_min <= age < h_def.age_max:
            if child:
                agemos = age * 12
                table = "length" if agemos < 24 else "stature"
                height = self.growth.value(table, sex, agemos, gz[0] + self._noise(rng))
                height = round(min(max(height, h_def.low), h_def.high), h_def.decimals)
            else:  # adults keep the height percentile they grew up on
                height = self.draw(rng, h_def, age, sex, {}, gz[0] if gz is not None else z[0])
            if height is not None:
                ctx.add(vitals.vital(ctx, h_def.code, "8302-2", height, h_def.unit))
        if w_def and height is not None:
            if age >= 2 and b_def is not None:
                if age >= 18:
                    bmi = prof.adult_bmi * (1 + rng.uniform(-0.015, 0.015))
                    # measurement noise never crosses the obesity line the profile decided
                    bmi = (
                        max(bmi, self.bmi_threshold)
                        if prof.obese
                        else min(bmi, self.bmi_threshold - 0.2)
                    )
                elif child:
                    bmi = self.growth.value("bmi", sex, age * 12, gz[1] + self._noise(rng))
                else:
                    bmi = self.draw(rng, b_def, age, sex, {}, z[1]) or 17.0
                weight = round(bmi * (height / 100) ** 2, w_def.decimals)
                weight = min(max(weight, w_def.low), w_def.high)
                ctx.add(vitals.vital(ctx, w_def.code, "29463-7", weight, w_def.unit))
                bmi_v = round(weight / (height / 100) ** 2, b_def.decimals)
                ctx.add(vitals.vital(ctx, b_def.code, "39156-5", bmi_v, b_def.unit))
                vals["weight"], vals["bmi"] = weight, bmi_v
            else:
                if child:
                    weight = self.growth.value(
                        "weight_infant", sex, age * 12, gz[1] + self._noise(rng)
                    )
                    weight = round(min(max(weight, w_def.low), w_def.high), w_def.decimals)
                else:
                    weight = self.draw(rng, w_def, age, sex, {}, z[1])
                if weight is not None:
                    ctx.add(vitals.vital(ctx, w_def.code, "29463-7", weight, w_def.unit))
                    vals["weight"] = weight
        febrile = acute is not None and rng.random() < self.febrile_share
        # the common case (no condition moves the sign, not persistent) in one tight loop
        out = ctx.out
        counters = ctx.counters
        n = counters.get("obs", 0)
        prefix = f"{ctx.base}-obs-"
        subject, enc, when, performer = ctx.subject, ctx.encounter, ctx.when, ctx.performer
        random_ = rng.random
        for vd, band, m in self.plan(sex, age):
            loinc = vd.loinc
            if loinc == "8310-5" and febrile:
                val: Any = round(rng.uniform(38.0, 39.4), vd.decimals)
            elif child and loinc in PERSISTENT_VITALS and age * 12 <= 36:
                x = self.growth.value("head", sex, age * 12, gz[2] + self._noise(rng))
                val = round(min(max(x, vd.low), vd.high), vd.decimals)
            elif (effects and loinc in effects) or loinc in PERSISTENT_VITALS:
                persistent = z[2] if loinc in PERSISTENT_VITALS else None
                val = self.draw(rng, vd, age, sex, effects, persistent)
            else:
                mean, sd, lo, hi = band
                x = mean + NORMALS[int(random_() * NORMAL_STEPS)] * sd
                x = lo if x < lo else hi if x > hi else x
                # round(x) is int(round(x, 0)) without the slow decimal path
                val = round(x) if vd.decimals == 0 else round(x, vd.decimals)
            if val is None:
                continue
            out.append(
                {
                    "resourceType": "Observation",
                    "id": prefix + str(n),
                    "meta": m,
                    "status": "final",
                    "category": VITAL_SIGNS,
                    "code": vd.code,
                    "subject": subject,
                    "encounter": enc,
                    "effectiveDateTime": when,
                    "performer": performer,
                    "valueQuantity": qty(val, vd.unit),
                }
            )
            n += 1
            vals[vd.key] = val
        counters["obs"] = n
        return effects

    def _noise(self, rng: Any) -> float:
        return NORMALS[int(rng.random() * NORMAL_STEPS)] * self.noise_sd

    @staticmethod
    def person_z(ctx: RecordContext) -> tuple[float, float, float]:
        # growth scores are fixed per person: derived from the patient id, not the stream
        h = int(ctx.base[:6], 16)
        return (
            ((h & 0xFF) / 255 - 0.5) * 3.0,
            (((h >> 8) & 0xFF) / 255 - 0.5) * 3.0,
            (((h >> 16) & 0xFF) / 255 - 0.5) * 3.0,
        )

    def plan(self, sex: str, age: float) -> list[tuple[Any, Any, dict[str, Any]]]:
        """(vital, band, meta) of the plain vitals measured at this age (cached per tenth of a year)."""
        key = (sex, int(age * 10))
        plan = self._plans.get(key)
        if plan is None:
            plan = []
            tenth_age = key[1] / 10  # a pure function of the cache key, whatever the caller's age
            for vd in self.plain_vitals:
                if vd.age_min <= tenth_age < vd.age_max:
                    band = self.band(vd, tenth_age, sex)
                    if band is not None:
                        plan.append((vd, band, meta(vd.loinc)))
            self._plans[key] = plan
        return plan

    def band(self, vd: Any, age: float, sex: str) -> tuple[float, float, float, float] | None:
        # bands change slowly with age: cache them by tenth of a year
        tenth = int(age * 10)
        key = (vd.loinc, sex, tenth)
        hit = self._bands.get(key, _MISSING)
        if hit is _MISSING:
            # computed at the tenth of a year itself, so the cache never depends on call order
            band = vd.band(tenth / 10, sex)
            if band is not None:
                mean, sd, lo, hi = band
                band = (mean, sd, max(lo, vd.low), min(hi, vd.high))
            hit = self._bands[key] = band
        return hit  # type: ignore[return-value]

    def draw(
        self,
        rng: Any,
        vd: Any,
        age: float,
        sex: str,
        effects: dict[str, list[Any]],
        z: float | None,
    ) -> Any:
        band = self.band(vd, age, sex)
        if band is None:
            return None
        mean, sd, lo, hi = band
        eff = effects.get(vd.loinc) if effects else None
        if eff is None:
            val = mean + (z if z is not None else NORMALS[int(rng.random() * NORMAL_STEPS)]) * sd
            val = lo if val < lo else hi if val > hi else val
            return round(val) if vd.decimals == 0 else round(val, vd.decimals)
        floor = None
        ceiling = None
        for shift, f, c in eff:
            mean += shift
            if f is not None:
                floor = f if floor is None else max(floor, f)
            if c is not None:
                ceiling = c if ceiling is None else min(ceiling, c)
            hi = min(max(hi, mean + 2 * sd), vd.high)
        val = mean + (z if z is not None else NORMALS[int(rng.random() * NORMAL_STEPS)]) * sd
        if floor is not None:
            val = max(val, floor)
        if ceiling is not None:
            val = min(val, ceiling)
        val = min(max(val, lo), hi)
        return round(val) if vd.decimals == 0 else round(val, vd.decimals)
