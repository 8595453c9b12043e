"""The one exception hierarchy of ehr-sandbox.

Every error the library raises for bad input derives from :class:`SandboxError` (defined in
:mod:`synthetic.errors`, the bottom layer, and re-exported here), the generator's
:class:`~synthetic.errors.GenerationError` included. Messages name the thing, the field and
what was expected, so a student can act on them.

>>> issubclass(ConflictError, SandboxError) and issubclass(AccessDenied, SandboxError)
True
"""

from __future__ import annotations

from synthetic.errors import ArgumentError, ContentError, GenerationError, SandboxError

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


class ValidationError(SandboxError, ValueError):
    """A resource or an argument failed validation.

    ``resource`` names the resource (``Observation/abc`` or its type), ``path`` the field
    (FHIRPath-like, e.g. ``component[0].valueQuantity.unit``) and ``expected`` what would
    have been accepted.

    >>> str(ValidationError("Observation/1", "valueQuantity.unit", "UCUM 'mm[Hg]'", found="mmHg"))
    "Observation/1: valueQuantity.unit: expected UCUM 'mm[Hg]' (found 'mmHg')"
    """

    http_status = 422
    issue_code = "invalid"

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
    """A search parameter is unknown or its value is malformed (never silently ignored).

    Raised by :meth:`ehr_sandbox.session.Session.search` (and the server's search routes);
    ``resource`` is the searched type, ``path`` the parameter. Over HTTP: status 400, issue
    code ``invalid``.

    Parameters
    ----------
    resource_type : str
        The type searched, e.g. ``"Patient"``.
    param : str
        The parameter that was refused.
    expected : str
        What would have been accepted.
    found : object, optional
        What was given.

    Examples
    --------
    >>> from ehr_sandbox import Sandbox
    >>> s = Sandbox.generate(patients=1, seed=1, years=1).login("dr.patel")
    >>> try:
    ...     s.search("Patient", bogus="x")
    ... except SearchError as e:
    ...     print(e.path, "|", e)
    bogus | Patient: bogus: expected a search parameter of Patient (found 'bogus')
    >>> from ehr_sandbox.server.outcomes import outcome_for
    >>> outcome_for(SearchError("Patient", "bogus", "a search parameter"))[0]
    400
    """

    http_status = 400
    issue_code = "invalid"

    def __init__(
        self, resource_type: str, param: str, expected: str, *, found: object = None
    ) -> None:
        super().__init__(resource_type, param, expected, found=found)


class NotFound(SandboxError, LookupError):
    """The resource does not exist **or the session may not see it** (the two look the same).

    Raised by :meth:`~ehr_sandbox.session.Session.read`, ``vread``, ``update`` and the other
    calls that name one resource. Hiding and absence give the same error on purpose, so a
    refusal never confirms that a record exists. Over HTTP: status 404, issue code
    ``not-found``, with the same text whichever the cause.

    Examples
    --------
    >>> from ehr_sandbox import Sandbox
    >>> s = Sandbox.generate(patients=1, seed=1, years=1).login("dr.patel")
    >>> try:
    ...     s.read("Patient/nope")
    ... except NotFound as e:
    ...     print(e)
    Patient/nope was not found
    >>> from ehr_sandbox.server.outcomes import outcome_for
    >>> status, body = outcome_for(NotFound("Patient/nope was not found"))
    >>> status, body["issue"][0]["code"]
    (404, 'not-found')
    """

    http_status = 404
    issue_code = "not-found"


class AccessDenied(SandboxError, PermissionError):
    """A write or an action was refused by the policy; the message says what would allow it.

    Raised by the session's writes (``create``, ``update``, ``sign`` ...) and actions
    (``break_glass``, reviews, exports) when the user's role, relationship or scopes do not
    allow them. Reads that are not allowed raise :class:`NotFound` instead. Over HTTP: status
    403, issue code ``forbidden``.

    Examples
    --------
    >>> from ehr_sandbox import Sandbox
    >>> fd = Sandbox.generate(patients=1, seed=1, years=1).login("fd.smith")
    >>> try:
    ...     fd.create({"resourceType": "Observation", "status": "final", "code": {"text": "x"}})
    ... except AccessDenied as e:
    ...     print(e)
    front_desk may not create Observation: that needs a medical_assistant, nurse or physician
    >>> from ehr_sandbox.server.outcomes import outcome_for
    >>> status, body = outcome_for(AccessDenied("no"))
    >>> status, body["issue"][0]["code"]
    (403, 'forbidden')
    """

    http_status = 403
    issue_code = "forbidden"


class ConflictError(SandboxError):
    """An update named a stale version (optimistic concurrency, like FHIR's ``If-Match``).

    >>> str(ConflictError("Patient/1", expected="1", current="2"))
    'Patient/1: version conflict: you edited version 1 but the record is now at version 2; read it again and reapply your change'
    """

    http_status = 412
    issue_code = "conflict"

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
    """A SMART scope string is malformed or not allowed here.

    Raised by :func:`ehr_sandbox.access.scopes.parse_scopes` (so by every login or token
    request that carries scopes). Nothing is granted from a partly valid string. Over HTTP:
    status 400, issue code ``invalid`` (the OAuth endpoints answer ``invalid_scope``).

    Examples
    --------
    >>> from ehr_sandbox.access.scopes import parse_scopes
    >>> try:
    ...     parse_scopes("patient/*.rx")
    ... except ScopeError as e:
    ...     print(e)
    scope 'patient/*.rx': permissions must be a non-empty subset of c, r, u, d, s in that order (found 'rx')
    >>> from ehr_sandbox.server.outcomes import outcome_for
    >>> outcome_for(ScopeError("bad scope"))[1]["issue"][0]["code"]
    'invalid'
    """

    http_status = 400
    issue_code = "invalid"


class AuditError(SandboxError):
    """The audit trail failed verification or could not be written.

    Raised by :class:`ehr_sandbox.audit.trail.AuditTrail` (bad settings, an event that is
    not an AuditEvent, and ``require_valid`` on a tampered trail). Over HTTP: status 400,
    issue code ``processing``.

    Examples
    --------
    >>> import sqlite3
    >>> from ehr_sandbox.audit.trail import AuditTrail
    >>> try:
    ...     AuditTrail(sqlite3.connect(":memory:"), bytes(32), batch=0)
    ... except AuditError as e:
    ...     print(e)
    batch: expected a positive number of entries per checkpoint, got 0
    """


class CryptoError(SandboxError):
    """A key is wrong, missing, or a ciphertext failed authentication.

    Raised by :mod:`ehr_sandbox.crypto` (keys, key files, sealed values) and so by
    ``Sandbox.open`` with the wrong key or passphrase. Over HTTP: status 400, issue code
    ``processing``.

    Examples
    --------
    >>> from ehr_sandbox.crypto import MasterKey
    >>> try:
    ...     MasterKey(b"short")
    ... except CryptoError as e:
    ...     print(e)
    master key: expected 32 bytes (256 bits), got 5 bytes
    """


class ViewDefinitionError(SandboxError, ValueError):
    """A SQL on FHIR ViewDefinition is invalid (names the path and what was expected).

    Raised by :meth:`ehr_sandbox.session.Session.run_view` and the view engine
    (:mod:`ehr_sandbox.views`) before any row is read. Over HTTP: status 400, issue code
    ``processing``.

    Examples
    --------
    >>> from ehr_sandbox import Sandbox
    >>> s = Sandbox.generate(patients=1, seed=1, years=1).login("dr.patel")
    >>> try:
    ...     s.run_view({"resource": "Patient"})
    ... except ViewDefinitionError as e:
    ...     print(e)
    select: expected a non-empty list of select objects (found None)
    """


class ExerciseError(SandboxError):
    """An exercise cannot be started, checked or reset as asked.

    Raised by :mod:`ehr_sandbox.exercises` (an unknown exercise id, a malformed exercise
    definition, a course setting out of range). Over HTTP: status 400, issue code
    ``processing``.

    Examples
    --------
    >>> from ehr_sandbox.exercises import registry
    >>> try:
    ...     registry.get("no-such-exercise")
    ... except ExerciseError as e:
    ...     print(e)
    exercise id: no exercise 'no-such-exercise'; see exercises.catalog()
    """


class DataQualityWarning(UserWarning):
    """Imported outside data was accepted with a documented change (e.g. a non-UCUM unit
    kept as text only); the message says what and how often.

    >>> issubclass(DataQualityWarning, UserWarning)
    True
    """
