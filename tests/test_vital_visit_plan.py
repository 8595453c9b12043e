"""A visit's cached plan hands out the bands ``VitalSampler.draw`` would look up itself, and
the blood pressure's cached components are the plain ones (frozen: they are shared).

The blood pressure and body measures are drawn from the bands of :meth:`VitalSampler.visit_plan`
(cached per age segment) instead of a band lookup per draw: for every age and sex, each cached
band is the band at that age, and a plan serves only ages whose bands are all equal.
"""

from __future__ import annotations

import random
from functools import cache
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as hs

from synthetic.builders.common import qty
from synthetic.compile import compile_catalog
from synthetic.content import load_content
from synthetic.context import RecordContext
from synthetic.frozen import FrozenDict
from synthetic.measures import VitalSampler
from synthetic.profile import Profile


@cache
def _catalog() -> Any:
    return compile_catalog(load_content())


@cache
def _sampler() -> VitalSampler:
    return VitalSampler(_catalog(), 30.0)


def test_drawn_bands_of_a_plan_are_the_bands_at_every_tenth_of_a_year() -> None:
    sampler = VitalSampler(_catalog(), 30.0)
    assert any(vd is not None for vd in sampler.drawn)
    for sex in ("male", "female", "other"):
        for tenth in range(0, 1260):
            for age in (tenth / 10, tenth / 10 + 0.05, tenth / 10 + 0.099):
                _plan, bands = sampler.visit_plan(sex, age)
                want = tuple(
                    None if vd is None else sampler.band(vd, age, sex) for vd in sampler.drawn
                )
                assert bands == want, (sex, age)


@settings(deadline=None)
@given(
    age=hs.floats(min_value=0.0, max_value=125.0),
    sex=hs.sampled_from(["male", "female"]),
    z=hs.one_of(hs.none(), hs.floats(-3.0, 3.0)),
    seed=hs.integers(0, 2**32),
)
def test_a_draw_from_the_plan_is_the_plain_draw(
    age: float, sex: str, z: float | None, seed: int
) -> None:
    sampler = _sampler()
    _plan, bands = sampler.visit_plan(sex, age)
    for vd, band in zip(sampler.drawn, bands, strict=True):
        if vd is None:
            continue
        got = sampler.draw_in(random.Random(seed), vd, band, None, z)
        want = sampler.draw(random.Random(seed), vd, age, sex, {}, z)
        assert type(got) is type(want) and got == want, (vd.loinc, age)


@given(which=hs.sampled_from([0, 1]), value=hs.integers(20, 300))
def test_a_blood_pressure_part_is_frozen_shared_and_the_plain_part(which: int, value: int) -> None:
    sampler = _sampler()
    vd = sampler.bp[which]
    assert vd is not None
    part = sampler.bp_part(vd.code, which, value)
    assert type(part) is FrozenDict and part is sampler.bp_part(vd.code, which, value)
    want = {"code": vd.code, "valueQuantity": qty(value, "mm[Hg]")}
    assert orjson.dumps(part) == orjson.dumps(want)


def test_recorded_blood_pressure_parts_are_the_plain_parts() -> None:
    sampler = VitalSampler(_catalog(), 30.0)
    sys_def, dia_def = sampler.bp
    assert sys_def is not None and dia_def is not None
    for i in range(300):
        ctx = RecordContext(f"{i:016x}", random.Random(i))
        ctx.encounter, ctx.when = FrozenDict(reference="Encounter/e"), "t"
        sampler.record(ctx, random.Random(i), Profile(), 739253, "female", 20.0 + i / 10, None)
        bp = ctx.out[0]
        s, d = sampler.last["systolic"], sampler.last["diastolic"]
        want = [
            {"code": sys_def.code, "valueQuantity": qty(s, "mm[Hg]")},
            {"code": dia_def.code, "valueQuantity": qty(d, "mm[Hg]")},
        ]
        assert orjson.dumps(bp["component"]) == orjson.dumps(want)
        assert all(type(c) is FrozenDict for c in bp["component"])


def test_recorded_quantities_are_the_shared_quantities_of_their_vital() -> None:
    cat = _catalog()
    by_code = {orjson.dumps(vd.code): vd for vd in cat.vitals.values()}
    sampler = VitalSampler(cat, 30.0)
    seen = 0
    for i in range(300):
        ctx = RecordContext(f"{i:016x}", random.Random(i))
        ctx.encounter, ctx.when = FrozenDict(reference="Encounter/e"), "t"
        prof = Profile(adult_bmi=18.0 + i / 10, obese=i % 3 == 0)
        sampler.record(ctx, random.Random(i), prof, 739253, "male", 18.0 + i / 5, None)
        for o in ctx.out:
            if "valueQuantity" not in o:
                continue
            vd = by_code[orjson.dumps(o["code"])]
            q = o["valueQuantity"]
            assert q["unit"] == vd.unit and type(q) is FrozenDict
            assert q is qty(q["value"], vd.unit)
            seen += 1
    assert seen > 300 * 4
