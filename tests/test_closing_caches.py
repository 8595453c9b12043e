"""The closing step's speed caches change no value: a cached answer is the answer it replaces.

``Closing.scrubbed`` keeps a claim's scrubbed diagnoses by the identity of its (catalog-owned)
diagnosis concepts. The rule, for any list of concepts: the first (computed) and the later
(cached) answers are :meth:`Closing.scrub` of the list, every pointer of the map lands on the
same diagnosis (or on 1 when the diagnosis was dropped), the claim's shared ``diagnosis`` element
is frozen and serialises as the plain one, and the cache stays bounded.
"""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from synthetic.builders import billing
from synthetic.engine import engine_for
from synthetic.frozen import FrozenList
from synthetic.visit import closing as closing_module
from synthetic.visit.closing import Closing, icd_codes

ENGINE = engine_for(seed=1, reference_date="2026-01-01", years=2, population="family-practice")
# claim-edit pairs (E11.9 / E11.42), trimester-free codes and duplicates of each
CODES = ["E11.9", "E11.42", "I10", "E78.5", "J06.9", "Z00.00"]
POOL = [ENGINE.icd_cc(c) for c in CODES]
PICKS = hs.lists(hs.integers(0, len(POOL) - 1), min_size=1, max_size=5)


def _check(closing: Closing, claim_dx: list[dict]) -> None:
    expected = closing.scrub(claim_dx)
    for _ in range(2):  # computed, then cached
        kept, remap, diagnosis, _ = closing.scrubbed(list(claim_dx))
        assert [icd_codes(d) for d in kept] == [icd_codes(d) for d in expected]
        assert all(a is b for a, b in zip(kept, expected, strict=True))
        assert orjson.dumps(diagnosis) == orjson.dumps(billing.diagnosis_element(expected))
        assert type(diagnosis) is FrozenList  # shared by the claims with these diagnoses
        if len(kept) == len(claim_dx):
            assert remap == {}
            continue
        assert sorted(remap) == list(range(1, len(claim_dx) + 1))
        for old, new in remap.items():
            d = claim_dx[old - 1]
            if any(d is k for k in kept) or icd_codes(d) in [icd_codes(k) for k in kept]:
                assert icd_codes(kept[new - 1]) == icd_codes(d)
            else:
                assert new == 1


@settings(max_examples=200, deadline=None)
@given(picks=PICKS)
def test_scrubbed_is_the_scrub_of_the_list_first_time_and_every_time(picks: list[int]) -> None:
    _check(Closing(ENGINE), [POOL[i] for i in picks])


def test_a_shared_closing_answers_every_list_as_a_fresh_one_does() -> None:
    shared = Closing(ENGINE)
    lists = [[POOL[i]] for i in range(len(POOL))]
    lists += [[POOL[i], POOL[j]] for i in range(len(POOL)) for j in range(len(POOL))]
    for claim_dx in lists + lists[::-1]:
        _check(shared, claim_dx)
        assert shared.scrubbed(claim_dx)[0] == Closing(ENGINE).scrubbed(claim_dx)[0]


def test_the_scrub_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(closing_module, "SCRUB_CACHE_SIZE", 3)
    closing = Closing(ENGINE)
    for i in range(len(POOL)):
        for j in range(len(POOL)):
            _check(closing, [POOL[i], POOL[j]])
    assert 0 < len(closing._scrubbed) <= 3
