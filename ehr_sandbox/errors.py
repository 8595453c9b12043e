"""The one exception hierarchy of ehr-sandbox.

Every error the library raises for bad input derives from :class:`SandboxError` (or, for the
generator, :class:`synthetic.errors.GenerationError`, re-exported here). Messages name the
thing, the field and what was expected, so a student can act on them.

>>> issubclass(ConflictError, SandboxError) and issubclass(AccessDenied, SandboxError)
True
"""

from __future__ import annotations

from synthetic.errors import ArgumentError, ContentError, GenerationError

__all__ = [
    "AccessDenied",
    "AllergyConflict",
    "ArgumentError",
    "AuditError",
    "ConflictError",
    "DataQualityWarning",
    "ContentError",
    "CryptoError",
    "ExerciseError",
    "GenerationError",
    "ImportFailed",
    "NotFound",
    "SandboxError",
    "ScopeError",
    "SearchError",
    "ValidationError",
    "ViewDefinitionError",
]


class SandboxError(Exception):
    """Root of every error the sandbox raises."""


class ValidationError(SandboxError, ValueError):
    """A resource or an argument failed validation.

    ``resource`` names the resource (``Observation/abc`` or its type), ``path`` the field
    (FHIRPath-like, e.g. ``component[0].valueQuantity.unit``) and ``expected`` what would
    have been accepted.

    >>> str(ValidationError("Observation/1", "valueQuantity.unit", "UCUM 'mm[Hg]'", found="mmHg"))
    "Observation/1: valueQuantity.unit: expected UCUM 'mm[Hg]' (found 'mmHg')"
    """

    def __init__(
        self,
        resource: str,
        path: str,
        expected: str,
        *,
        found: object = None,
        why: str = "",
        errors: list[ValidationError] | None = None,
    ) -> None:
        self.resource = resource
        self.path = path
        self.expected = expected
        self.found = found
        self.why = why
        self.errors = errors or []
        msg = f"{resource}: {path}: expected {expected}"
        if found is not None:
            msg += f" (found {found!r})"
        if why:
            msg += f". {why}"
        super().__init__(msg)


class ImportFailed(ValidationError):
    """Some files of an import were refused; the others went in.

    ``imported`` maps each file that went in to its counts by resource type; ``refused``
    maps each file that did not to its problems (each a :class:`ValidationError` naming
    the file, line or entry, the resource and the field). ``errors`` lists every problem.

    >>> e = ImportFailed({"a.json": {"Patient": 1}}, {"b.json": [ValidationError("b.json", "x", "1")]})
    >>> str(e)
    'b.json: x: expected 1. imported: a.json (1 resources); not imported: b.json (1 problems)'
    """

    def __init__(
        self, imported: dict[str, dict[str, int]], refused: dict[str, list[ValidationError]]
    ) -> None:
        self.imported = imported
        self.refused = refused
        errors = [e for errs in refused.values() for e in errs]
        first = errors[0]
        went_in = ", ".join(f"{k} ({sum(v.values())} resources)" for k, v in imported.items())
        left_out = ", ".join(f"{k} ({len(v)} problems)" for k, v in refused.items())
        why = f"{first.why + '. ' if first.why else ''}imported: {went_in or 'nothing'}; not imported: {left_out}"
        super().__init__(
            first.resource, first.path, first.expected, found=first.found, why=why, errors=errors
        )


class SearchError(ValidationError):
    """A search parameter is unknown or its value is malformed (never silently ignored)."""

    def __init__(
        self, resource_type: str, param: str, expected: str, *, found: object = None
    ) -> None:
        super().__init__(resource_type, param, expected, found=found)


class NotFound(SandboxError, LookupError):
    """The resource does not exist **or the session may not see it** (the two look the same)."""


class AccessDenied(SandboxError, PermissionError):
    """A write or an action was refused by the policy; the message says what would allow it."""


class ConflictError(SandboxError):
    """An update named a stale version (optimistic concurrency, like FHIR's ``If-Match``).

    >>> str(ConflictError("Patient/1", expected="1", current="2"))
    'Patient/1: version conflict: you edited version 1 but the record is now at version 2; read it again and reapply your change'
    """

    def __init__(self, ref: str, *, expected: str, current: str) -> None:
        self.ref = ref
        self.expected = expected
        self.current = current
        super().__init__(
            f"{ref}: version conflict: you edited version {expected} but the record is now at "
            f"version {current}; read it again and reapply your change"
        )


class AllergyConflict(SandboxError):
    """An order or administration of a drug the patient is recorded as allergic to (directly
    or through a cross-reactive class). Override only with a documented reason.

    >>> e = AllergyConflict("MedicationRequest", "p1", "amoxicillin 500 MG Oral Tablet", "Penicillins",
    ...                     "Penicillin", "AllergyIntolerance/a1")
    >>> e.drug_class, "override_reason" in str(e)
    ('Penicillins', True)
    """

    def __init__(
        self,
        resource: str,
        patient: str,
        drug: str,
        drug_class: str,
        allergy: str,
        allergy_ref: str,
        *,
        via: str = "",
    ) -> None:
        self.resource = resource
        self.patient = patient
        self.drug = drug
        self.drug_class = drug_class
        self.allergy = allergy
        self.allergy_ref = allergy_ref
        self.via = via
        cross = f" (cross-reactive with {via})" if via else ""
        super().__init__(
            f"{resource}: medication: {drug} is a {drug_class.lower()} drug{cross} and Patient/{patient} "
            f"has a recorded allergy to {allergy} ({allergy_ref}); hold the order and tell the "
            "prescriber, choose another drug, or override with a documented clinical reason "
            "(override_reason=...)"
        )


class ScopeError(SandboxError, ValueError):
    """A SMART scope string is malformed or not allowed here."""


class AuditError(SandboxError):
    """The audit trail failed verification or could not be written."""


class CryptoError(SandboxError):
    """A key is wrong, missing, or a ciphertext failed authentication."""


class ViewDefinitionError(SandboxError, ValueError):
    """A SQL on FHIR ViewDefinition is invalid (names the path and what was expected)."""


class ExerciseError(SandboxError):
    """An exercise cannot be started, checked or reset as asked."""


class DataQualityWarning(UserWarning):
    """Imported outside data was accepted with a documented change (e.g. a non-UCUM unit
    kept as text only); the message says what and how often.

    >>> issubclass(DataQualityWarning, UserWarning)
    True
    """
