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

from bisect import bisect_right
from typing import Any

from synthetic.builders import vitals
from synthetic.builders.common import qty, qty_tables
from synthetic.catalog import (
    NORMAL_STEPS,
    NORMALS,
    Catalog,
    ConditionDef,
    VitalDef,
    decimal_scale,
    round_to,
)
from synthetic.context import RecordContext
from synthetic.frozen import freeze
from synthetic.growth import growth_tables
from synthetic.profile import Profile

_PLAIN = object()
PERSISTENT_VITALS = frozenset({"9843-4", "8287-5"})
"""Vitals drawn from the person's fixed growth score (head circumference) rather than noise."""
BODY = ("8302-2", "29463-7", "39156-5")
"""Height, weight and BMI (LOINC)."""

Band = tuple[float, float, float, float]
Row = tuple[float, float, float, float, float, float, float]


def band_segments(
    vd: VitalDef, sex: str
) -> tuple[list[float], list[tuple[Band | None, Row | None]]]:
    """The ages where ``vd``'s band for ``sex`` may change, and each age segment's band.

    Segment ``i`` holds the ages ``a`` with ``bisect_right(breaks, a) == i``: no band row
    starts or ends inside it, so one row is in force all along (the first that matches, as
    in :meth:`VitalDef.band`). A segment holds ``(band, None)`` when that band is constant
    (already clamped to the vital's limits), ``(None, row)`` when its mean is interpolated
    with age (``row`` = lo, hi, mean, mean_max, sd and the clamped limits), ``(None, None)``
    outside every band.

    >>> vd = VitalDef("hr", "8867-4", {}, "/min", 0, 20, 250, 0, 120,
    ...               ((0, 1, "any", 130, None, 12, 100, 170), (1, 3, "any", 115, 125, 12, 85, 300)))
    >>> band_segments(vd, "male")
    ([0, 1, 3], [(None, None), ((130.0, 12, 100, 170), None), (None, (1, 3, 115, 125, 12, 85, 250)), (None, None)])
    """
    rows = [r for r in vd.bands if r[2] == "any" or r[2] == sex]
    breaks = sorted({r[0] for r in rows} | {r[1] for r in rows})
    segments: list[tuple[Band | None, Row | None]] = [(None, None)]  # below every band
    for age in breaks:  # the segment starting at ``age``
        seg: tuple[Band | None, Row | None] = (None, None)
        for lo, hi, _sex, mean, mean_max, sd, blo, bhi in rows:
            if lo <= age < hi:
                clamped = (max(blo, vd.low), min(bhi, vd.high))
                if mean_max is None or hi <= lo:
                    seg = ((float(mean), sd, *clamped), None)
                else:
                    seg = (None, (lo, hi, mean, mean_max, sd, *clamped))
                break
        segments.append(seg)
    return breaks, segments


class VitalSampler:
    """Draws and records a visit's vital signs for one engine (bands by tenth of a year).

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
        self.body = (v.get("8302-2"), v.get("29463-7"), v.get("39156-5"))
        """Height, weight and BMI: measured together, from the person's growth scores."""
        self.drawn = (*self.bp, *self.body)
        """The vitals drawn one by one (systolic, diastolic, height, weight, BMI; None when the
        content has no such vital): their bands come with the plan (see :meth:`visit_plan`)."""
        self.metas = {loinc: vitals.vital_meta(loinc) for loinc in ("85354-9", *BODY)}
        """The shared ``meta`` of the blood pressure panel and the body measures, by LOINC."""
        self.body_floats = tuple({} if x is None else qty_tables(x.unit)[1] for x in self.body)
        """:func:`qty`'s float tables of the height, weight and BMI units (their values are
        mostly floats): a shared quantity by one lookup, :func:`qty` on a miss."""
        self.plain_vitals = [x for x in v.values() if x.panel is None and x.loinc not in BODY]
        self.growth = growth_tables()
        rules = getattr(cat, "rules", None)
        self.growth_rules = rules.growth if rules is not None else None
        self.noise_sd = self.growth_rules.noise_sd if self.growth_rules else 0.12
        self.febrile_share = rules.engine.febrile_acute_share if rules is not None else 0.35
        self.last: dict[str, Any] = {}
        """Values recorded at the last visit by key (systolic, diastolic, weight, bmi, heart_rate...)."""
        # all bounded: one entry per vital and sex, per age segment (and tenth of a year where
        # a band's mean moves with age), per blood pressure value
        self._segments: dict[tuple[str, str], tuple[list[float], list[Any]]] = {}
        self._plan_segments: dict[str, tuple[list[float], list[bool]]] = {}
        self._plans: dict[tuple[Any, ...], tuple[list[Any], tuple[Band | None, ...]]] = {}
        self._bp_parts: tuple[dict[int, dict[str, Any]], ...] = ({}, {})  # systolic, diastolic
        self._observations = vitals.VisitVitals()
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
        plan, (sys_band, dia_band, h_band, w_band, b_band) = self.visit_plan(sex, age)
        metas = self.metas
        draw = self.draw_in
        obs = self._observations
        obs.begin(ctx)
        add = obs.add
        sys_def, dia_def = self.bp
        if sys_def and dia_def and self.bp_panel and age >= sys_def.age_min:
            s = draw(rng, sys_def, sys_band, effects, None)
            d = draw(rng, dia_def, dia_band, effects, None)
            if s is not None and d is not None:
                s, d = int(s), int(d)
                if d > s - 15:
                    d = s - 15 - rng.randrange(10)
                sys_parts, dia_parts = self._bp_parts  # bp_part's own tables: one lookup each
                parts = [
                    sys_parts.get(s) or self.bp_part(sys_def.code, 0, s),
                    dia_parts.get(d) or self.bp_part(dia_def.code, 1, d),
                ]
                obs.add_panel(metas["85354-9"], self.bp_panel, parts)
                vals["systolic"], vals["diastolic"] = s, d
        h_def, w_def, b_def = self.body
        h_qtys, w_qtys, b_qtys = self.body_floats  # (a float's table; qty itself otherwise)
        gz = prof.growth_z
        child = age < 18 and gz is not None
        height = None
        if h_def and h_def.age_min <= age < h_def.age_max:
            if child:
                agemos = age * 12
                table = "length" if agemos < 24 else "stature"
                height = self.growth.value(table, sex, agemos, gz[0] + self._noise(rng))
                height = round_to(clamp(height, h_def.low, h_def.high), h_def.decimals)
            else:  # adults keep the height percentile they grew up on
                height = draw(rng, h_def, h_band, None, gz[0] if gz is not None else z[0])
            if height is not None:
                q = (type(height) is float and h_qtys.get(height)) or qty(height, h_def.unit)
                add(metas["8302-2"], h_def.code, q)
        if w_def and height is not None:
            weight: Any = None
            bmi_v = None
            if age >= 2 and b_def is not None:
                if age >= 18:
                    bmi = prof.adult_bmi * (1 + rng.uniform(-0.015, 0.015))
                    # measurement noise never crosses the obesity line the profile decided
                    line = self.bmi_threshold
                    if prof.obese:
                        bmi = line if line > bmi else bmi  # max(bmi, line)
                    else:
                        line -= 0.2
                        bmi = line if line < bmi else bmi  # min(bmi, line)
                elif child:
                    bmi = self.growth.value("bmi", sex, age * 12, gz[1] + self._noise(rng))
                else:
                    bmi = draw(rng, b_def, b_band, None, z[1]) or 17.0
                weight = round_to(bmi * (height / 100) ** 2, w_def.decimals)
                weight = clamp(weight, w_def.low, w_def.high)
                bmi_v = round_to(weight / (height / 100) ** 2, b_def.decimals)
            elif child:
                weight = self.growth.value("weight_infant", sex, age * 12, gz[1] + self._noise(rng))
                weight = round_to(clamp(weight, w_def.low, w_def.high), w_def.decimals)
            else:
                weight = draw(rng, w_def, w_band, None, z[1])
            if weight is not None:
                q = (type(weight) is float and w_qtys.get(weight)) or qty(weight, w_def.unit)
                add(metas["29463-7"], w_def.code, q)
                vals["weight"] = weight
            if bmi_v is not None and b_def is not None:
                q = (type(bmi_v) is float and b_qtys.get(bmi_v)) or qty(bmi_v, b_def.unit)
                add(metas["39156-5"], b_def.code, q)
                vals["bmi"] = bmi_v
        febrile = acute is not None and rng.random() < self.febrile_share
        # the common case (no condition moves the sign, not persistent) in one tight loop
        random_ = rng.random
        for vd, band, m, special, qtys in plan:
            val: Any = _PLAIN
            if special or (febrile and vd.loinc == "8310-5") or (effects and vd.loinc in effects):
                val = self.special(rng, vd, sex, age, effects, febrile, child, gz)
                if val is None:
                    continue
            if val is not _PLAIN:  # a special value (any type)
                q = qty(val, vd.unit)
            else:
                mean, sd, lo, hi = band
                x = mean + NORMALS[int(random_() * NORMAL_STEPS)] * sd
                x = lo if x < lo else hi if x > hi else x
                # round(x) is int(round(x, 0)) without the slow decimal path
                val = round(x) if vd.decimals == 0 else round_to(x, vd.decimals)
                # qtys: qty's table of val's type (see plan), None when the type may vary
                q = (qtys is not None and qtys.get(val)) or qty(val, vd.unit)
            add(m, vd.code, q)
            vals[vd.key] = val
        obs.end(ctx)
        return effects

    def special(
        self,
        rng: Any,
        vd: VitalDef,
        sex: str,
        age: float,
        effects: dict[str, list[Any]],
        febrile: bool,
        child: bool,
        gz: tuple[float, float, float] | None,
    ) -> Any:
        """A plan vital's value when it is not the plain draw from its band: a febrile
        temperature, a head circumference from the growth score, a sign a condition moves.
        Returns the value (None: not measured), or ``_PLAIN`` for the plain draw after all.

        >>> import random
        >>> from synthetic.content import load_content
        >>> from synthetic.compile import compile_catalog
        >>> cat = compile_catalog(load_content())
        >>> t = VitalSampler(cat, 30.0).special(random.Random(0), cat.vitals["8310-5"], "male",
        ...                                     40.0, {}, True, False, None)
        >>> 38.0 <= t <= 39.4
        True
        """
        loinc = vd.loinc
        if loinc == "8310-5" and febrile:
            return round(rng.uniform(38.0, 39.4), vd.decimals)
        if child and loinc in PERSISTENT_VITALS and age * 12 <= 36:
            x = self.growth.value("head", sex, age * 12, gz[2] + self._noise(rng))  # type: ignore[index]
            return round(clamp(x, vd.low, vd.high), vd.decimals)
        if (effects and loinc in effects) or loinc in PERSISTENT_VITALS:
            persistent = self._z[2] if loinc in PERSISTENT_VITALS else None
            return self.draw(rng, vd, age, sex, effects, persistent)
        return _PLAIN

    def bp_part(self, code: dict[str, Any], which: int, value: int) -> dict[str, Any]:
        """A blood pressure component (``which``: 0 systolic, 1 diastolic), shared (frozen).

        >>> from synthetic.content import load_content
        >>> from synthetic.compile import compile_catalog
        >>> vs = VitalSampler(compile_catalog(load_content()), 30.0)
        >>> vs.bp_part({"text": "Systolic"}, 0, 120)["valueQuantity"]["value"]
        120
        """
        table = self._bp_parts[which]
        part = table.get(value)
        if part is None:
            part = freeze({"code": code, "valueQuantity": qty(value, "mm[Hg]")})
            if len(table) < 1024:
                table[value] = part
        return part  # type: ignore[no-any-return]

    def _noise(self, rng: Any) -> float:
        return NORMALS[int(rng.random() * NORMAL_STEPS)] * self.noise_sd

    @staticmethod
    def person_z(ctx: RecordContext) -> tuple[float, float, float]:
        """Growth z-scores of the person (height; weight and BMI; head circumference and the
        other persistent vitals), fixed per person.

        They come from the patient id, not the random stream, so every visit of the person draws
        around the same percentiles.

        Examples
        --------
        >>> import random
        >>> from synthetic.context import RecordContext
        >>> z = VitalSampler.person_z(RecordContext("00ff80aa", random.Random(1)))
        >>> z == VitalSampler.person_z(RecordContext("00ff80aa", random.Random(2))), all(-1.5 <= v <= 1.5 for v in z)
        (True, True)
        """
        # growth scores are fixed per person: derived from the patient id, not the stream
        h = int(ctx.base[:6], 16)
        return (
            ((h & 0xFF) / 255 - 0.5) * 3.0,
            (((h >> 8) & 0xFF) / 255 - 0.5) * 3.0,
            (((h >> 16) & 0xFF) / 255 - 0.5) * 3.0,
        )

    def plan(self, sex: str, age: float) -> list[tuple[Any, Band, dict[str, Any], bool, Any]]:
        """(vital, band, meta, persistent?, quantity table or None) of the plain
        vitals measured at this age (bands at the tenth of a year; one plan per age segment
        where no band moves with age): the first part of :meth:`visit_plan`.

        >>> from synthetic.content import load_content
        >>> from synthetic.compile import compile_catalog
        >>> vs = VitalSampler(compile_catalog(load_content()), 30.0)
        >>> vs.plan("male", 20.0) is vs.plan("male", 39.3), vs.plan("male", 1.2) is vs.plan("male", 1.3)
        (True, False)
        """
        return self.visit_plan(sex, age)[0]

    def visit_plan(
        self, sex: str, age: float
    ) -> tuple[list[tuple[Any, Band, dict[str, Any], bool, Any]], tuple[Band | None, ...]]:
        """The :meth:`plan` of the plain vitals at this age, and the band (see :meth:`band`) of
        each vital drawn one by one (:attr:`drawn`: systolic, diastolic, height, weight, BMI;
        None for a vital the content lacks), worked out once per age segment (per tenth of a
        year where a band moves with age; bounded).

        >>> from synthetic.content import load_content
        >>> from synthetic.compile import compile_catalog
        >>> cat = compile_catalog(load_content())
        >>> vs = VitalSampler(cat, 30.0)
        >>> vs.visit_plan("male", 40.0)[1][0] == vs.band(cat.vitals["8480-6"], 40.0, "male")
        True
        """
        tenth = int(age * 10)
        tenth_age = tenth / 10  # a pure function of the tenth, whatever the caller's age
        segs = self._plan_segments.get(sex)
        if segs is None:
            segs = self._plan_segments[sex] = self.plan_segments(sex)
        breaks, moving = segs
        seg = bisect_right(breaks, tenth_age)
        key = (sex, seg, tenth) if moving[seg] else (sex, seg)
        hit = self._plans.get(key)
        if hit is not None:
            return hit
        plan = []
        for vd in self.plain_vitals:
            if vd.age_min <= tenth_age < vd.age_max:
                band = self.band(vd, tenth_age, sex)
                if band is not None:
                    mean, _sd, lo, hi = band
                    floats = type(mean) is float and type(lo) is float and type(hi) is float
                    special = vd.loinc in PERSISTENT_VITALS  # (and a febrile temperature)
                    fast = bool(decimal_scale(vd.decimals)) and floats  # round_to's floats
                    # the plain draw's type: an int (no decimals) or a float (float band)
                    ints, floats_ = qty_tables(vd.unit)
                    qtys = ints if vd.decimals == 0 else floats_ if fast else None
                    plan.append((vd, band, vitals.vital_meta(vd.loinc), special, qtys))
        # the same bands as draw() would look up at this age (the segments cut at their changes)
        drawn = tuple(None if vd is None else self.band(vd, age, sex) for vd in self.drawn)
        hit = self._plans[key] = (plan, drawn)
        return hit

    def plan_segments(self, sex: str) -> tuple[list[float], list[bool]]:
        """The ages where the plain vitals' plan or a drawn vital's band may change (see
        :func:`band_segments`), and per segment whether a band's mean moves with age inside it.

        >>> from synthetic.content import load_content
        >>> from synthetic.compile import compile_catalog
        >>> breaks, moving = VitalSampler(compile_catalog(load_content()), 30.0).plan_segments("male")
        >>> moving[1], moving[-1]
        (True, False)
        """
        drawn = [vd for vd in self.drawn if vd is not None]
        cuts: set[float] = set()
        for vd in self.plain_vitals:
            cuts |= {vd.age_min, vd.age_max, *band_segments(vd, sex)[0]}
        for vd in drawn:  # drawn at any age their callers decide
            cuts |= set(band_segments(vd, sex)[0])
        breaks = sorted(cuts)
        moving = [False]  # below every break: nothing measured
        for age in breaks:
            moving.append(
                any(
                    self._band_segment(vd, sex, age)[1] is not None
                    for vd in self.plain_vitals
                    if vd.age_min <= age < vd.age_max
                )
                or any(self._band_segment(vd, sex, age)[1] is not None for vd in drawn)
            )
        return breaks, moving

    def _band_segment(self, vd: VitalDef, sex: str, age: float) -> tuple[Any, Any]:
        key = (vd.loinc, sex)
        segs = self._segments.get(key)
        if segs is None:
            segs = self._segments[key] = band_segments(vd, sex)
        return segs[1][bisect_right(segs[0], age)]  # type: ignore[no-any-return]

    def band(self, vd: Any, age: float, sex: str) -> Band | None:
        """(mean, sd, low, high) of ``vd`` at ``age`` (to the tenth of a year) for ``sex``,
        clamped to the vital's limits; None outside every band.

        >>> from synthetic.content import load_content
        >>> from synthetic.compile import compile_catalog
        >>> cat = compile_catalog(load_content())
        >>> VitalSampler(cat, 30.0).band(cat.vitals["8867-4"], 40.0, "male")
        (74.0, 10.0, 50.0, 110.0)
        """
        tenth_age = int(age * 10) / 10  # bands change slowly with age: by tenth of a year
        const, row = self._band_segment(vd, sex, tenth_age)
        if row is None:
            return const  # type: ignore[no-any-return]
        lo, hi, mean, mean_max, sd, blo, bhi = row
        frac = (tenth_age - lo) / (hi - lo)
        frac = 0.0 if frac < 0.0 else frac
        frac = 1.0 if frac > 1.0 else frac
        return mean + (mean_max - mean) * frac, sd, blo, bhi

    def draw(
        self,
        rng: Any,
        vd: Any,
        age: float,
        sex: str,
        effects: dict[str, list[Any]],
        z: float | None,
    ) -> Any:
        """One value of ``vd`` (the condition ``effects`` on it applied; ``z``: a fixed score).

        >>> import random
        >>> from synthetic.content import load_content
        >>> from synthetic.compile import compile_catalog
        >>> cat = compile_catalog(load_content())
        >>> VitalSampler(cat, 30.0).draw(random.Random(0), cat.vitals["8310-5"], 40.0, "male", {}, 0.0)
        36.8
        """
        return self.draw_in(rng, vd, self.band(vd, age, sex), effects, z)

    def draw_in(
        self,
        rng: Any,
        vd: Any,
        band: Band | None,
        effects: dict[str, list[Any]] | None,
        z: float | None,
    ) -> Any:
        """:meth:`draw` with ``vd``'s band already looked up (None: no value).

        >>> import random
        >>> from synthetic.content import load_content
        >>> from synthetic.compile import compile_catalog
        >>> cat = compile_catalog(load_content())
        >>> VitalSampler(cat, 30.0).draw_in(random.Random(0), cat.vitals["8867-4"], (74.0, 10.0, 50.0, 110.0), None, 0.0)
        74
        """
        if band is None:
            return None
        mean, sd, lo, hi = band
        eff = effects.get(vd.loinc) if effects else None
        if eff is None:
            val = mean + (z if z is not None else NORMALS[int(rng.random() * NORMAL_STEPS)]) * sd
            val = lo if val < lo else hi if val > hi else val
            return round(val) if vd.decimals == 0 else round_to(val, vd.decimals)
        floor = None
        ceiling = None
        for shift, f, c in eff:
            mean += shift
            if f is not None:
                floor = f if floor is None or f > floor else floor  # max(floor, f)
            if c is not None:
                ceiling = c if ceiling is None or c < ceiling else ceiling  # min(ceiling, c)
            hi = clamp(hi, mean + 2 * sd, vd.high)  # min(max(hi, mean + 2 sd), high)
        val = mean + (z if z is not None else NORMALS[int(rng.random() * NORMAL_STEPS)]) * sd
        if floor is not None and floor > val:
            val = floor
        if ceiling is not None and ceiling < val:
            val = ceiling
        val = clamp(val, lo, hi)
        return round(val) if vd.decimals == 0 else round_to(val, vd.decimals)


def clamp(x: Any, low: Any, high: Any) -> Any:
    """``min(max(x, low), high)``, the same object, without the builtins' call overhead.

    >>> clamp(5, 0.0, 3.0), clamp(-1.0, 0, 3), clamp(2.5, 3.0, 1.0)
    (3.0, 0, 1.0)
    """
    x = low if low > x else x
    return high if high < x else x
