"""synthetic: a fast, deterministic generator of coherent synthetic patients as FHIR R4 JSON.

>>> import synthetic
>>> rec = next(synthetic.generate(1, seed=1, years=1))
>>> rec.patient["resourceType"]
'Patient'
"""

from synthetic.api import (
    GENERATED_TYPES,
    Summary,
    generate,
    practice_resources,
    write_dataset,
)
from synthetic.record import PatientRecord

__all__ = [
    "GENERATED_TYPES",
    "PatientRecord",
    "Summary",
    "generate",
    "practice_resources",
    "write_dataset",
]
