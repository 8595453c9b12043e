"""``last_score`` finds the visit's score Observation by its LOINC code, as a plain scan would.

It looks back from the newest resource to the visit's Encounter, for an Observation of the
current encounter whose first coding has the code; codings may be missing or empty.
"""

from __future__ import annotations

import random
from typing import Any

from hypothesis import given
from hypothesis import strategies as hs

from synthetic.context import RecordContext
from synthetic.visit.screening import last_score

ENCOUNTERS = [{"reference": "Encounter/a"}, {"reference": "Encounter/b"}]
CODES = ["1-1", "2-2", "3-3"]


def _code(choice: int) -> dict[str, Any]:
    if choice < len(CODES):
        return {"coding": [{"system": "http://loinc.org", "code": CODES[choice]}]}
    return [{"text": "no coding"}, {"coding": []}, {"coding": [{}]}][choice - len(CODES)]


RESOURCE = hs.one_of(
    hs.just({"resourceType": "Encounter"}),
    hs.builds(
        lambda enc, code: {
            "resourceType": "Observation",
            "encounter": ENCOUNTERS[enc],
            "code": _code(code),
        },
        hs.integers(0, 1),
        hs.integers(0, len(CODES) + 2),
    ),
    hs.builds(lambda code: {"resourceType": "Procedure", "code": _code(code)}, hs.integers(0, 2)),
)


def _plain(out: list[dict[str, Any]], encounter: Any, loinc: str) -> Any:
    for r in reversed(out):
        if r["resourceType"] == "Encounter":
            return None
        codings = r["code"].get("coding") or [{}]
        if (
            r["resourceType"] == "Observation"
            and r.get("encounter") == encounter
            and codings[0].get("code") == loinc
        ):
            return r
    return None


@given(out=hs.lists(RESOURCE, max_size=12), enc=hs.integers(0, 1), loinc=hs.sampled_from(CODES))
def test_last_score_is_the_newest_matching_observation_of_the_visit(
    out: list[dict[str, Any]], enc: int, loinc: str
) -> None:
    ctx = RecordContext("p", random.Random(0))
    ctx.encounter = ENCOUNTERS[enc]
    ctx.out = out
    assert last_score(ctx, loinc) is _plain(out, ENCOUNTERS[enc], loinc)
