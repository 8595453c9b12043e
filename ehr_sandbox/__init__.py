"""ehr-sandbox: a small, real teaching EHR over synthetic FHIR R4 patients."""

__version__ = "0.1.0"
