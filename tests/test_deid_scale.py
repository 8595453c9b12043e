"""Safe Harbor at scale: a de-identified export of 1,000 generated patients carries no
identifier of theirs, while the same scanner finds plenty in the originals."""

from __future__ import annotations

from collections import Counter
from datetime import date

import pytest

import synthetic
from ehr_sandbox.deid import deidentify, scan_for_identifiers

PATIENTS = 1000

pytestmark = pytest.mark.slow  # about half a minute: the 1,000 patients are the point


@pytest.fixture(scope="module")
def originals() -> list[dict]:
    # one year of history keeps the run short; every identifier class is still present
    return [r for rec in synthetic.generate(PATIENTS, seed=3, years=1) for r in rec.all()]


def test_export_of_1000_patients_has_no_identifier(originals: list[dict]) -> None:
    assert sum(1 for r in originals if r["resourceType"] == "Patient") == PATIENTS
    result = deidentify(originals, reference_date=date(2026, 1, 1), seed_or_rng=1)
    assert len(result.resources) > PATIENTS
    findings = scan_for_identifiers(result.resources, originals)
    assert findings == [], findings[:10]


def test_the_scanner_does_find_identifiers_in_the_originals(originals: list[dict]) -> None:
    sample = [r for r in originals if r["resourceType"] in ("Patient", "Coverage", "Encounter")][
        :600
    ]
    kinds = Counter(f.kind for f in scan_for_identifiers(sample, originals))
    assert {"name", "date", "phone", "zip", "street"} <= set(kinds), kinds
