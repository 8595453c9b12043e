"""Builders: each turns part of a patient's story into FHIR resource dicts."""
