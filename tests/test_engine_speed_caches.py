"""The engine's per-record and per-engine speed caches change no value.

Record ids, note texts and the other answers the engine keeps instead of recomputing are the
answers of the plain computation, for any input (see ``synthetic.context``,
``synthetic.engine``, ``synthetic.visit``).
"""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as hs

from synthetic.context import RecordContext
from synthetic.ids import resource_id

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
