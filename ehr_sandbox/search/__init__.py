"""FHIR search for the sandbox: parameter registry, parsing, SQL over the index, includes.

>>> q = parse("Patient", {"family": "smith"})
>>> q.resource_type, q.clauses[0].param.type
('Patient', 'string')
"""

from __future__ import annotations

from ehr_sandbox.search.includes import resolve_includes
from ehr_sandbox.search.query import Include, SearchQuery, SortKey, parse
from ehr_sandbox.search.registry import REGISTRY, SearchParam, lookup, params_for
from ehr_sandbox.search.sort import sort_resources

__all__ = [
    "REGISTRY",
    "Include",
    "SearchParam",
    "SearchQuery",
    "SortKey",
    "lookup",
    "params_for",
    "parse",
    "resolve_includes",
    "sort_resources",
]
