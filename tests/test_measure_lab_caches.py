"""The vital sign and lab speed-ups change no value: each answers what the plain code would.

``round_to`` and ``Dist.draw`` round with float arithmetic instead of ``round``; vital sign bands
are looked up by age segment (``band_segments``) instead of being recomputed per tenth of a
year; lab results are copies of the previous result of their shape. The rules, for any input:
the fast answer serialises exactly like the plain one (ints stay ints, floats keep every digit),
and a result built as a copy carries exactly its own test's fields.
"""

from __future__ import annotations

import random
from functools import cache
from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as hs

from synthetic.builders.common import INTERP, qty
from synthetic.builders.labs import lab_order
from synthetic.catalog import Dist, LabPanelDef, LabTestDef, VitalDef, round_to
from synthetic.compile import compile_catalog
from synthetic.content import load_content
from synthetic.context import RecordContext
from synthetic.frozen import FrozenDict, FrozenList
from synthetic.measures import VitalSampler, band_segments

FLOATS = hs.floats(allow_nan=False, allow_infinity=False)
NEAR_TIES = hs.tuples(hs.integers(-(10**7), 10**7), hs.integers(0, 4)).map(
    lambda t: (t[0] + 0.5) / 10 ** t[1]
)
NUMBERS = hs.one_of(
    FLOATS,
    NEAR_TIES,
    hs.floats(min_value=-1e4, max_value=1e4),
    hs.integers(-(10**6), 10**6),
    hs.sampled_from([0.0, -0.0, 0.05, 0.15, 0.25, 2.675, 1.005, 1e-9, 5e-324, 1e13, 2.0**51]),
)


def _same(fast: Any, plain: Any) -> bool:
    return type(fast) is type(plain) and orjson.dumps(fast) == orjson.dumps(plain)


@given(x=NUMBERS, decimals=hs.integers(min_value=0, max_value=17))
def test_round_to_is_round(x: float, decimals: int) -> None:
    assert _same(round_to(x, decimals), round(x, decimals))


BOUND = hs.one_of(hs.floats(min_value=-1e3, max_value=1e3), hs.integers(-1000, 1000))


@given(
    mean=BOUND,
    sd=hs.one_of(hs.just(0.0), hs.floats(min_value=0.0, max_value=50.0)),
    low=BOUND,
    high=BOUND,
    decimals=hs.integers(min_value=0, max_value=4),
    seed=hs.integers(0, 2**32),
)
def test_a_draw_is_the_plain_clamped_rounded_draw(
    mean: float, sd: float, low: float, high: float, decimals: int, seed: int
) -> None:
    from synthetic.catalog import NORMAL_STEPS, NORMALS

    rng = random.Random(seed)
    v = mean + NORMALS[int(rng.random() * NORMAL_STEPS)] * sd if sd else mean
    v = min(max(v, low), high)
    plain = round(v) if decimals == 0 else round(v, decimals)
    assert _same(Dist(mean, sd, low, high, decimals).draw(random.Random(seed)), plain)


@cache
def _catalog() -> Any:
    return compile_catalog(load_content())


def _plain_band(vd: VitalDef, age: float, sex: str) -> Any:
    band = vd.band(int(age * 10) / 10, sex)
    if band is None:
        return None
    mean, sd, lo, hi = band
    return (mean, sd, max(lo, vd.low), min(hi, vd.high))


def test_shipped_vital_bands_by_segment_are_the_bands_at_every_tenth_of_a_year() -> None:
    cat = _catalog()
    sampler = VitalSampler(cat, 30.0)
    vds = list(cat.vitals.values()) + list(cat.observations.values())
    for sex in ("male", "female", "other"):
        for tenth in range(0, 1260):
            age = tenth / 10 + 0.05
            for vd in vds:
                assert _same(sampler.band(vd, age, sex), _plain_band(vd, age, sex)), (vd.loinc, age)


def test_a_plan_lists_the_plain_vitals_of_the_age_with_their_bands() -> None:
    cat = _catalog()
    sampler = VitalSampler(cat, 30.0)
    for sex in ("male", "female"):
        for tenth in range(0, 1260, 3):
            age = tenth / 10 + 0.07
            got = [(vd.loinc, band) for vd, band, *_ in sampler.plan(sex, age)]
            want = [
                (vd.loinc, _plain_band(vd, age, sex))
                for vd in sampler.plain_vitals
                if vd.age_min <= int(age * 10) / 10 < vd.age_max
                and _plain_band(vd, age, sex) is not None
            ]
            assert got == want, (sex, age)


ROW = hs.tuples(
    hs.integers(0, 30).map(float),
    hs.integers(1, 30).map(float),
    hs.sampled_from(["any", "male", "female"]),
    hs.floats(min_value=1.0, max_value=200.0),
    hs.one_of(hs.none(), hs.floats(min_value=1.0, max_value=200.0)),
    hs.floats(min_value=0.1, max_value=20.0),
    hs.floats(min_value=0.0, max_value=100.0),
    hs.floats(min_value=50.0, max_value=300.0),
).map(lambda r: (r[0], r[0] + r[1], *r[2:]))


@given(
    rows=hs.lists(ROW, max_size=6),
    limits=hs.tuples(hs.floats(0.0, 80.0), hs.floats(60.0, 400.0)),
    sex=hs.sampled_from(["male", "female"]),
)
def test_any_band_table_by_segment_is_the_band_at_every_tenth(
    rows: list[Any], limits: tuple[float, float], sex: str
) -> None:
    vd = VitalDef("x", "0000-0", {}, "u", 1, limits[0], limits[1], 0, 120, tuple(rows))
    sampler = VitalSampler(_catalog(), 30.0)
    breaks, segments = band_segments(vd, sex)
    assert breaks == sorted(breaks) and len(segments) == len(breaks) + 1
    for tenth in range(0, 650):
        age = tenth / 10
        assert _same(sampler.band(vd, age, sex), _plain_band(vd, age, sex)), age


def _test(loinc: str, coded: bool, low: float | None, high: float | None, ranges: bool) -> Any:
    rr = [FrozenDict(low=qty(low or 0.0, "u"), high=qty(high or 1.0, "u"))] if ranges else []
    return LabTestDef(
        loinc,
        FrozenDict(text=loinc),
        None if coded else "u",
        coded,
        {"any": Dist(5.0, 1.0, 0.0, 10.0, 1)},
        {"any": FrozenList(rr)},
        {"any": low},
        {"any": high},
    )


TESTS = hs.lists(
    hs.tuples(
        hs.booleans(),
        hs.one_of(hs.none(), hs.floats(0.0, 5.0)),
        hs.one_of(hs.none(), hs.floats(5.0, 10.0)),
        hs.booleans(),
        hs.one_of(hs.floats(0.0, 10.0), hs.integers(0, 10)),
    ),
    max_size=8,
)


@given(tests=TESTS)
def test_each_lab_result_carries_its_own_test_value_and_interpretation(tests: list[Any]) -> None:
    defs = [_test(f"{i}-0", c, lo, hi, rr) for i, (c, lo, hi, rr, _) in enumerate(tests)]
    values = [FrozenDict(text=f"answer {i}") if t[0] else t[4] for i, t in enumerate(tests)]
    panel = LabPanelDef("x", {}, "X", {}, "tube", "venipuncture", 1, None, tuple(defs))
    ctx = RecordContext("p", random.Random(0))
    ctx.encounter, ctx.when, ctx.day = FrozenDict(reference="Encounter/e"), "t", 739000
    lab_order(
        ctx, panel, values, requester="Practitioner/d", collector="Practitioner/m", offset="Z"
    )
    results = [r for r in ctx.out if r["resourceType"] == "Observation"]
    assert [r["id"] for r in results] == [f"p-obs-{i}" for i in range(len(tests))]
    for r, t, value, (coded, lo, hi, ranges, _) in zip(results, defs, values, tests, strict=True):
        keys = ["resourceType", "id", "meta", "basedOn", "status", "category", "code"]
        keys += ["subject", "encounter", "effectiveDateTime", "issued"]
        keys.append("valueCodeableConcept" if coded else "valueQuantity")
        interp = None
        if not coded:
            if hi is not None and value > hi:
                interp = INTERP["H"]
            elif lo is not None and value < lo:
                interp = INTERP["L"]
            elif lo is not None or hi is not None:
                interp = INTERP["N"]
        keys += ["interpretation"] if interp is not None else []
        keys.append("specimen")
        keys += ["referenceRange"] if ranges and not coded else []
        assert list(r) == keys
        assert r["code"] is t.code and r.get("interpretation") is interp
        got = r["valueCodeableConcept"] if coded else r["valueQuantity"]
        assert orjson.dumps(got) == orjson.dumps(value if coded else qty(value, "u"))
        if ranges and not coded:
            assert r["referenceRange"] is t.ref_range["any"]
    for a in results:  # copies: no result shares its own dict with another
        assert all(a is not b for b in results if b is not a)
