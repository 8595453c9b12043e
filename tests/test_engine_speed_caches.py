"""The engine's per-record and per-engine speed caches change no value.

Record ids, note texts and the other answers the engine keeps instead of recomputing are the
answers of the plain computation, for any input (see ``synthetic.context``,
``synthetic.engine``, ``synthetic.visit``).
"""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as hs

from synthetic.context import RecordContext
from synthetic.dates import instant, weekday
from synthetic.engine import engine_for, render_template, specialise_template
from synthetic.frozen import FrozenDict
from synthetic.ids import resource_id
from synthetic.labels import CONF_N, meta
from synthetic.practice import Practice
from synthetic.templates import Templates

KINDS = hs.sampled_from(["obs", "enc", "apt", "doc", "mr", "claim", "x-y", "msg"])


@given(
    base=hs.text(alphabet="0123456789abcdef", min_size=1, max_size=16),
    kinds=hs.lists(KINDS, max_size=60),
    start=hs.sampled_from([0, 1, 4094, 4095, 4096, 10**6]),
)
def test_new_id_is_the_resource_id_of_the_kinds_next_ordinal(
    base: str, kinds: list[str], start: int
) -> None:
    ctx = RecordContext(base, random.Random(0))
    ctx.counters.update({k: start for k in ("obs", "msg")})  # counters set by other builders
    seen: dict[str, int] = {"obs": start, "msg": start}
    for kind in kinds:
        n = seen.get(kind, 0)
        seen[kind] = n + 1
        assert ctx.new_id(kind) == resource_id(base, kind, n)
    assert {k: ctx.counters[k] for k in seen} == seen


NAMES = ["age", "condition", "icd10", "follow_up_months", "systolic", "x"]
PIECES = hs.one_of(
    hs.sampled_from([f"{{{n}}}" for n in NAMES]),
    hs.sampled_from(["{", "}", "{{", "}}", "{0}", "{x!r}", "{x:>4}", "{x.real}"]),
    hs.text(alphabet="ab {}é\n", max_size=5),
)
TEXTS = hs.text(alphabet="ab {}%é", max_size=6)


class _Fields(dict):  # type: ignore[type-arg]
    """Like the note's fields: an unknown placeholder renders as empty text."""

    def __missing__(self, key: str) -> str:
        return ""


@given(
    template=hs.lists(PIECES, max_size=10).map("".join),
    own=hs.dictionaries(hs.sampled_from(NAMES), TEXTS),
    other=hs.dictionaries(hs.sampled_from(NAMES), TEXTS),
)
def test_a_specialised_template_renders_as_the_template_with_its_own_fields(
    template: str, own: dict[str, str], other: dict[str, str]
) -> None:
    special = specialise_template(template, own)
    expected = render_template(template, _Fields(other | own))
    if special is None:  # not plain placeholders: the engine renders it as written
        return
    assert render_template(special, _Fields(other)) == expected
    assert render_template(special, _Fields(other)) == expected  # again, from the cache


def test_every_note_template_of_the_content_renders_as_with_the_condition_fields() -> None:
    eng = engine_for(seed=1, reference_date="2026-01-01", years=2, population="family-practice")
    fields = _Fields(patient_name="Ann Lee", age="40", systolic="150", condition="shadowed")
    templated = [c for c in eng.cat.conditions.values() if c.note_template]
    assert templated
    for c in templated:
        own = {
            "condition": c.display,
            "display": c.display,
            "icd10": c.icd10,
            "follow_up_months": str(max(1, round(c.follow_up_days / 30.4)))
            if c.follow_up_days
            else "12",
        }
        template, left = eng.note_template(c)
        assert eng.note_template(c) == (template, left)  # cached: the same answer
        got = render_template(template, _Fields(fields | left))
        assert got == render_template(c.note_template, _Fields(fields | own))


@settings(deadline=None)  # the first example builds the engine
@given(ages=hs.lists(hs.floats(min_value=0.0, max_value=120.0), min_size=1, max_size=20))
def test_clinicians_for_is_the_roster_filter_as_a_shared_tuple(ages: list[float]) -> None:
    pr = engine_for(seed=1, reference_date="2026-01-01", years=2, population="pediatrics").practice
    for age in ages:
        years = int(age)
        plain = [c for c, lo, hi in pr.clinicians if lo <= years < hi + 1] or pr.physicians
        got = pr.clinicians_for(age)
        assert type(got) is tuple and list(got) == plain
        assert pr.clinicians_for(age) is got  # kept per whole year of age


@settings(deadline=None)  # the first example builds the engine
@given(days=hs.lists(hs.integers(min_value=739000, max_value=740000), min_size=1, max_size=30))
def test_open_day_answers_the_same_whatever_was_asked_before(days: list[int]) -> None:
    eng = engine_for(seed=1, reference_date="2026-01-01", years=2, population="family-practice")
    warm = eng.practice  # has answered for many days already
    fresh = Practice(eng.cat, "family-practice", eng.ref)
    for day in days:
        got = warm.open_day(day)
        assert got == fresh.open_day(day) and warm.is_open(got) == fresh.is_open(got)
        assert warm.open_day(day, random.Random(day)) == fresh.open_day(day, random.Random(day))


def test_the_acute_rate_constants_are_the_preset_multiplier_and_visit_probability() -> None:
    for population in ("family-practice", "pediatrics", "ob-gyn"):
        eng = engine_for(seed=1, reference_date="2026-01-01", years=2, population=population)
        assert [m for m, _, _ in eng._acute_scales] == eng.acute
        for m, mult, visit_p in eng._acute_scales:
            assert mult == eng.preset.multipliers.get(m.key, 1.0)
            assert visit_p == m.visit_probability


@settings(deadline=None)  # the first example builds the engine
@given(
    days=hs.lists(hs.integers(min_value=739000, max_value=740000), min_size=1, max_size=20),
    who=hs.sampled_from(["prac-dr.nguyen", "prac-dr.okafor", "prac-dr.patel", "prac-locum-01"]),
)
def test_a_clinicians_day_layout_is_their_templates_layout_of_the_weekday(
    days: list[int], who: str
) -> None:
    pr = engine_for(seed=1, reference_date="2026-01-01", years=2, population="pediatrics").practice
    fresh = Templates(pr.templates.hours)
    for day in days:
        got = pr.layout(who, day)
        assert got == fresh.layout(pr.template_of(who), weekday(day))
        assert type(got) is tuple and pr.layout(who, day + 7) is got  # kept per weekday


KINDS_WITH_META = ("Slot", "Appointment", "Encounter", "DocumentReference", "Communication")


def test_resources_carry_the_frozen_meta_of_their_type_and_labels() -> None:
    eng = engine_for(seed=3, reference_date="2026-01-01", years=3, population="family-practice")
    seen: dict[tuple[str, bool], int] = {}
    for i in range(12):
        rec = eng.patient(i)
        for kind in (*KINDS_WITH_META, "MedicationRequest"):
            for r in rec.by_type(kind):
                labels = r["meta"]["security"]
                restricted = labels != [CONF_N]
                assert r["meta"] == meta(kind, tuple(labels) if restricted else None)
                assert isinstance(r["meta"], FrozenDict)
                seen[kind, restricted] = seen.get((kind, restricted), 0) + 1
    assert all(seen.get((kind, False)) for kind in KINDS_WITH_META)


@settings(deadline=None)  # the first example builds the engine
@given(day=hs.integers(min_value=1, max_value=3_000_000))
def test_a_renewal_is_signed_at_three_in_the_afternoon_practice_time(day: int) -> None:
    for population in ("family-practice", "pediatrics"):
        eng = engine_for(seed=1, reference_date="2026-01-01", years=2, population=population)
        assert eng.renewal_instant(day) == instant(day, 15 * 60, eng.offset)
