"""Errors over HTTP: every sandbox error becomes a FHIR OperationOutcome with its status.

Each error class knows its HTTP status and issue code (``http_status``, ``issue_code`` on the
class, :mod:`ehr_sandbox.errors`); this module adds the typed fields a client needs to raise
the same error, and maps them back for the remote client (:mod:`ehr_sandbox.remote`), so a
student's code sees the same typed errors against a server as in-process.

>>> status, body = outcome_for(NotFound("Patient/1 was not found"))
>>> status, body["issue"][0]["code"]
(404, 'not-found')
"""

from __future__ import annotations

import json
from typing import Any

from ehr_sandbox.errors import (
    AccessDenied,
    AllergyConflict,
    ConflictError,
    NotFound,
    SandboxError,
    ScopeError,
    SearchError,
    ValidationError,
)
from synthetic.systems import SANDBOX_EXT_ERROR

ERROR_EXTENSION = SANDBOX_EXT_ERROR
"""Extension on an OperationOutcome issue that carries the typed error's fields."""

HIDDEN_OR_ABSENT = "the resource was not found"
"""The one body for a 404: hidden and absent look exactly the same (no existence oracle)."""


def operation_outcome(
    code: str,
    diagnostics: str,
    *,
    severity: str = "error",
    expression: list[str] | None = None,
    fields: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A one-issue OperationOutcome.

    Parameters
    ----------
    code : str
        The FHIR ``issue-type`` code (``invalid``, ``not-found``, ``forbidden`` ...).
    diagnostics : str
        The message a person reads.
    severity : str
        ``error`` (default), ``warning`` or ``information``.
    expression : list of str, optional
        FHIRPath of the element at fault.
    fields : dict, optional
        The typed error's fields, carried in an extension for the remote client.

    Returns
    -------
    dict
        The OperationOutcome resource.

    Examples
    --------
    >>> operation_outcome("invalid", "bad", expression=["Patient.gender"])["issue"][0]["expression"]
    ['Patient.gender']
    """
    issue: dict[str, Any] = {"severity": severity, "code": code, "diagnostics": diagnostics}
    if expression:
        issue["expression"] = expression
    if fields:
        issue["extension"] = [
            {
                "url": ERROR_EXTENSION,
                "extension": [
                    {"url": k, "valueString": str(v)} for k, v in fields.items() if v is not None
                ],
            }
        ]
    return {"resourceType": "OperationOutcome", "issue": [issue]}


def outcome_for(exc: BaseException) -> tuple[int, dict[str, Any]]:
    """The HTTP status and OperationOutcome for an exception raised behind the API.

    Parameters
    ----------
    exc : BaseException
        What a Session (or the server) raised.

    Returns
    -------
    tuple of (int, dict)
        Status code and OperationOutcome body. Errors that are not sandbox errors become a
        500 with a generic message (nothing internal leaks).

    Examples
    --------
    >>> outcome_for(ConflictError("Patient/1", expected="1", current="2"))[0]
    412
    >>> outcome_for(ValidationError("Patient", "gender", "a code"))[1]["issue"][0]["expression"]
    ['Patient.gender']
    >>> outcome_for(RuntimeError("secret internals"))[1]["issue"][0]["diagnostics"]
    'internal error'
    """
    if not isinstance(exc, SandboxError):
        return 500, operation_outcome("exception", "internal error")
    status, code = exc.http_status, exc.issue_code  # each error knows its status and issue
    if isinstance(exc, NotFound):
        return status, operation_outcome(code, HIDDEN_OR_ABSENT, fields={"type": "NotFound"})
    if isinstance(exc, ConflictError):
        return status, operation_outcome(
            code,
            str(exc),
            fields={
                "type": "ConflictError",
                "ref": exc.ref,
                "expected": exc.expected,
                "current": exc.current,
            },
        )
    if isinstance(exc, ValidationError):
        kind = "SearchError" if isinstance(exc, SearchError) else "ValidationError"
        return status, _validation_outcome(exc, kind, code)
    if isinstance(exc, AllergyConflict):
        return status, operation_outcome(
            code,
            str(exc),
            fields={
                "type": "AllergyConflict",
                **{f.replace("_", "-"): getattr(exc, f) for f in _ALLERGY_FIELDS},
            },
        )
    name = "AccessDenied" if isinstance(exc, AccessDenied) else type(exc).__name__
    return status, operation_outcome(code, str(exc), fields={"type": name})


_ALLERGY_FIELDS = ("resource", "patient", "drug", "drug_class", "allergy", "allergy_ref", "via")
"""What an AllergyConflict names (sent as extension fields; the client raises it again)."""


def _validation_outcome(exc: ValidationError, kind: str, code: str = "invalid") -> dict[str, Any]:
    rtype = str(exc.resource).split("/", 1)[0]
    expression = [f"{rtype}.{exc.path}"] if exc.path else None
    return operation_outcome(
        code,
        str(exc),
        expression=expression,
        fields={
            "type": kind,
            "resource": exc.resource,
            "path": exc.path,
            "expected": exc.expected,
            "found": exc.found,
            "found-json": _json_or_none(exc.found),
            "why": exc.why or None,
            **_rule_fields(exc),
        },
    )


def _json_or_none(value: Any) -> str | None:
    """``value`` as JSON when it is plain JSON data (so the client gets back the same value,
    and the same message, as in-process), else None.

    >>> _json_or_none(["name"]), _json_or_none(None), _json_or_none(object())
    ('["name"]', None, None)
    """
    if value is None:
        return None
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return None


def _found(fields: dict[str, str]) -> Any:
    """What the server's error found: the JSON value when it sent one, else its text.

    >>> _found({"found-json": "[1, 2]", "found": "[1, 2]"}), _found({"found": "x"})
    ([1, 2], 'x')
    """
    if "found-json" in fields:
        try:
            return json.loads(fields["found-json"])
        except ValueError:
            pass
    return fields.get("found")


def _rule_fields(exc: ValidationError) -> dict[str, Any]:
    """A business rule's id, text and source, when the error is a workflow's refusal."""
    from ehr_sandbox.workflows.base import RuleRefused

    if not isinstance(exc, RuleRefused):
        return {}
    rule = exc.rule
    return {"rule": rule.id, "rule-text": rule.text, "rule-source": rule.source}


def error_from_outcome(status: int, body: Any) -> SandboxError:
    """The typed error a remote client raises for an error response (the inverse mapping).

    Parameters
    ----------
    status : int
        The HTTP status.
    body : Any
        The decoded JSON body (an OperationOutcome, or anything else).

    Returns
    -------
    SandboxError
        ``NotFound``, ``AccessDenied``, ``ConflictError``, ``ValidationError`` ... with the
        server's message.

    Examples
    --------
    >>> s, b = outcome_for(ValidationError("Patient/1", "gender", "a code", found="x"))
    >>> str(error_from_outcome(s, b))
    "Patient/1: gender: expected a code (found 'x')"
    >>> type(error_from_outcome(404, {})).__name__
    'NotFound'

    A workflow's refusal comes back as the same :class:`RuleRefused`, naming its rule:

    >>> from ehr_sandbox.workflows.base import Rule, RuleRefused
    >>> refused = RuleRefused(Rule("x.y", "no", "policy"), resource="Slot", path="status", expected="free")
    >>> err = error_from_outcome(*outcome_for(refused))
    >>> type(err).__name__, err.rule_id, str(err) == str(refused)
    ('RuleRefused', 'x.y', True)

    and a drug-allergy alert as the same :class:`AllergyConflict`:

    >>> alert = AllergyConflict("MedicationRequest", "p1", "amoxicillin", "Penicillins", "Penicillin", "AllergyIntolerance/a1")
    >>> back = error_from_outcome(*outcome_for(alert))
    >>> type(back).__name__, back.drug_class, str(back) == str(alert)
    ('AllergyConflict', 'Penicillins', True)
    """
    fields: dict[str, str] = {}
    message = f"HTTP {status}"
    if isinstance(body, dict) and body.get("resourceType") == "OperationOutcome":
        issue = (body.get("issue") or [{}])[0]
        message = issue.get("diagnostics") or message
        for ext in issue.get("extension", []):
            if ext.get("url") == ERROR_EXTENSION:
                fields = {e["url"]: e.get("valueString", "") for e in ext.get("extension", [])}
    kind = fields.get("type")
    if status == 404 or kind == "NotFound":
        return NotFound(message)
    if kind == "ConflictError" or status in (409, 412):
        return ConflictError(
            fields.get("ref", "?"),
            expected=fields.get("expected", "?"),
            current=fields.get("current", "?"),
        )
    if kind == "ValidationError" and "rule" in fields:
        from ehr_sandbox.workflows.base import Rule, RuleRefused

        rule = Rule(fields["rule"], fields.get("rule-text", ""), fields.get("rule-source", ""))
        return RuleRefused(
            rule,
            resource=fields.get("resource", "?"),
            path=fields.get("path", "?"),
            expected=fields.get("expected", "?"),
            found=_found(fields),
        )
    if kind in ("ValidationError", "SearchError") or status in (400, 422) and "path" in fields:
        err = ValidationError(
            fields.get("resource", "?"),
            fields.get("path", "?"),
            fields.get("expected", "?"),
            found=_found(fields),
            why=fields.get("why", ""),
        )
        return err
    if kind == "ScopeError":
        return ScopeError(message)
    if kind == "AllergyConflict" and all(f.replace("_", "-") in fields for f in _ALLERGY_FIELDS):
        values = [fields[f.replace("_", "-")] for f in _ALLERGY_FIELDS]
        return AllergyConflict(*values[:-1], via=values[-1])
    if status in (401, 403) or kind == "AccessDenied":
        return AccessDenied(message)
    return _named_error(kind, message)


def _named_error(kind: str | None, message: str) -> SandboxError:
    """The sandbox error class the server named (one with a message-only constructor).

    >>> type(_named_error("ExerciseError", "limit")).__name__, type(_named_error("os.system", "x")).__name__
    ('ExerciseError', 'SandboxError')
    """
    from ehr_sandbox import errors

    cls = getattr(errors, kind or "", None) if (kind or "").isidentifier() else None
    if isinstance(cls, type) and issubclass(cls, SandboxError):
        try:
            return cls(message)
        except TypeError:
            pass
    return SandboxError(message)
