"""Output formats: FHIR Bulk Data NDJSON and per-patient Bundles."""
