"""Specialty workflows: ophthalmic, podiatric, OB-GYN and chiropractic visits.

Import the module you need (nothing is imported eagerly)::

    from ehr_sandbox.workflows.specialties import ophthalmic, podiatric, obgyn, chiropractic

Each follows the clinical rules of :mod:`ehr_sandbox.workflows.care` (two-identifier
identification first; writes through the Session with Provenance; refusals name their rule),
with the specialty's content in ``ehr_sandbox/workflows/data/specialties.toml``.

>>> import ehr_sandbox.workflows.specialties as sp
>>> sp.__name__
'ehr_sandbox.workflows.specialties'
"""
