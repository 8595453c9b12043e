"""Generated data passes the write-time gate in strict mode (what the Session enforces)."""

from __future__ import annotations

import copy
import functools
from typing import Any

import pytest

from ehr_sandbox.validation import problems


@functools.cache
def _generate() -> tuple[dict[str, Any], ...] | str:
    try:
        import synthetic

        resources = list(synthetic.practice_resources(seed=11))
        for record in synthetic.generate(6, seed=11, years=3):
            resources.append(record.patient)
            resources.extend(record.resources)
    except Exception as exc:  # noqa: BLE001 - the generator's own tests report its failures
        return f"synthetic.generate does not run here yet: {exc}"
    return tuple(resources)


def _generated() -> list[dict[str, Any]]:
    """A copy of the cached generated resources (tests may change them)."""
    made = _generate()
    if isinstance(made, str):
        pytest.skip(made)
    return copy.deepcopy(list(made))


def test_every_generated_resource_passes_every_rule() -> None:
    resources = _generated()
    stored = {f"{r['resourceType']}/{r['id']}" for r in resources}
    found = [
        f"{r['resourceType']}/{r['id']}: {p.path}: {p.expected}"
        for r in resources
        for p in problems(r, exists=stored.__contains__)
    ]
    assert len(resources) > 200
    assert found == []


def test_a_broken_copy_of_generated_data_is_caught() -> None:
    resources = _generated()
    stored = {f"{r['resourceType']}/{r['id']}" for r in resources}
    # the reading with the highest diastolic: swapped, both values stay in the human range, so
    # only the swap itself can be the finding
    bp = max(
        (
            r
            for r in resources
            if r["resourceType"] == "Observation"
            and r["code"]["coding"][0].get("code") == "85354-9"
        ),
        key=lambda r: r["component"][1]["valueQuantity"]["value"],
    )
    systolic, diastolic = (c["valueQuantity"]["value"] for c in bp["component"][:2])
    bp["component"][0]["valueQuantity"]["value"], bp["component"][1]["valueQuantity"]["value"] = (
        diastolic,
        systolic,
    )
    assert any("swapped" in p.why for p in problems(bp, exists=stored.__contains__))
