"""synthetic: a fast, deterministic generator of coherent synthetic patients as FHIR R4 JSON."""
