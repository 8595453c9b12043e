"""A lab order's cached parts are the uncached ones, frozen where they reach resources.

``order_parts`` looks a panel's result specs, specimen note and the order's ``meta`` up once
per (panel, sex, security labels); whatever the combination, it answers what
``panel_specs`` and ``order_metas`` answer, and the parts that land in resources are frozen.
A value list that does not match the panel is refused before any resource is written.
"""

from __future__ import annotations

import random
from functools import cache
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from synthetic.builders.labs import lab_order, order_metas, order_parts, panel_specs
from synthetic.compile import compile_catalog
from synthetic.content import load_content
from synthetic.context import RecordContext
from synthetic.errors import ArgumentError
from synthetic.frozen import FrozenDict, FrozenList


@cache
def _catalog() -> Any:
    return compile_catalog(load_content())


def _securities() -> list[Any]:
    labels = {id(c.security): c.security for c in _catalog().conditions.values()}
    return [None, *(s for s in labels.values() if s is not None)]


@settings(deadline=None, max_examples=60)
@given(
    panel=hs.integers(0, 10**6),
    sex=hs.sampled_from(["male", "female", "other", "any"]),
    sec=hs.integers(0, 10**6),
    repeat=hs.booleans(),
)
def test_order_parts_are_the_specs_and_metas_of_the_panel(
    panel: int, sex: str, sec: int, repeat: bool
) -> None:
    panels = list(_catalog().labs.values())
    securities = _securities()
    p, security = panels[panel % len(panels)], securities[sec % len(securities)]
    if repeat:
        order_parts(p, sex, security)
    specs, note, metas = order_parts(p, sex, security)
    assert (specs, note) == panel_specs(p, sex)
    assert metas == order_metas(security)
    assert type(note) is FrozenList and all(type(m) is FrozenDict for m in metas)


def test_values_not_matching_the_panel_are_refused_before_anything_is_written() -> None:
    panel = _catalog().labs["lipid"]
    ctx = RecordContext("p", random.Random(0))
    ctx.encounter, ctx.when, ctx.day = FrozenDict(reference="Encounter/e"), "t", 739000
    for values in ([], [1.0] * (len(panel.tests) + 1)):
        with pytest.raises(ArgumentError, match="values"):
            lab_order(
                ctx,
                panel,
                values,
                requester="Practitioner/d",
                collector="Practitioner/m",
                offset="Z",
            )
        assert ctx.out == [] and ctx.counters == {}
