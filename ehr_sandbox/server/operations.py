"""The FHIR operations of the classroom server: a ``Parameters`` body in, a Session method out.

Each ``$operation`` on a record (``OPERATIONS``) or on a resource type (``TYPE_OPERATIONS``)
reads its inputs from the request's ``Parameters`` and calls the Session method a script would
call in-process; the Session checks, writes, audits and raises. ``$whoami`` answers with the
session's user and clock (:func:`whoami_parameters`).

>>> sorted(OPERATIONS)[:3]
['addendum', 'amend', 'break-glass']
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ehr_sandbox.errors import ValidationError

if TYPE_CHECKING:
    from ehr_sandbox.session import Session

__all__ = ["OPERATIONS", "TYPE_OPERATIONS", "Parameters", "whoami_parameters"]


class Parameters:
    """Read a FHIR ``Parameters`` body (the input of an operation).

    >>> p = Parameters({"resourceType": "Parameters", "parameter": [{"name": "reason", "valueString": "typo"}]})
    >>> p.text("reason")
    'typo'
    >>> p.text("other")
    Traceback (most recent call last):
    ...
    ehr_sandbox.errors.ValidationError: Parameters: parameter[other]: expected a value for 'other'
    >>> Parameters({"resourceType": "Parameters", "parameter": 3})
    Traceback (most recent call last):
    ...
    ehr_sandbox.errors.ValidationError: Parameters: parameter: expected a list of parameters, each an object with a name (found 3)
    """

    def __init__(self, body: Any) -> None:
        if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
            raise ValidationError("request", "resourceType", "a Parameters resource")
        self._items: dict[str, dict[str, Any]] = {}
        items = body.get("parameter") or []
        bad = (
            [i for i in items if not (isinstance(i, dict) and isinstance(i.get("name"), str))]
            if isinstance(items, list)
            else [items]
        )
        if bad:
            raise ValidationError(
                "Parameters",
                "parameter",
                "a list of parameters, each an object with a name",
                found=bad[0],
            )
        for item in items:
            self._items[item["name"]] = item

    def _value(self, name: str) -> Any:
        item = self._items.get(name)
        if item is None:
            return None
        if "resource" in item:
            return item["resource"]
        for key, value in item.items():
            if key.startswith("value"):
                return value
        return None

    def value(self, name: str) -> Any:
        """A parameter's value of any type (None when absent).

        >>> Parameters({"resourceType": "Parameters", "parameter": [{"name": "n", "valueInteger": 2}]}).value("n")
        2
        """
        return self._value(name)

    def values(self) -> dict[str, Any]:
        """Every parameter's value by name."""
        return {name: self._value(name) for name in self._items}

    def text(self, name: str, *, required: bool = True) -> str:
        """A string parameter (required by default)."""
        value = self._value(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                raise ValidationError("Parameters", f"parameter[{name}]", f"a value for {name!r}")
            return ""
        return str(value)

    def resource(self, name: str = "resource") -> dict[str, Any]:
        """A resource parameter."""
        value = self._value(name)
        if not isinstance(value, dict) or "resourceType" not in value:
            raise ValidationError("Parameters", f"parameter[{name}]", "a resource")
        return value


def _op_entered_in_error(s: Session, ref: str, p: Parameters) -> Any:
    return s.mark_entered_in_error(ref, p.text("reason"))


def _same_target(ref: str, resource: dict[str, Any]) -> dict[str, Any]:
    if f"{resource.get('resourceType')}/{resource.get('id')}" != ref:
        raise ValidationError(ref, "resource", f"the resource at {ref}")
    return resource


def _op_correct(s: Session, ref: str, p: Parameters) -> Any:
    return s.correct(_same_target(ref, p.resource()), p.text("reason"))


def _op_amend(s: Session, ref: str, p: Parameters) -> Any:
    return s.amend(_same_target(ref, p.resource()), p.text("reason"))


def _op_addendum(s: Session, ref: str, p: Parameters) -> Any:
    return s.addendum(ref, p.text("text"), reason=p.text("reason", required=False) or None)


def _op_late_entry(s: Session, ref: str, p: Parameters) -> Any:
    # the target of $late-entry is the patient it concerns; the resource is new
    return s.late_entry(p.resource(), event_time=p.text("event-time"), reason=p.text("reason"))


def _op_sign(s: Session, ref: str, p: Parameters) -> Any:
    return s.sign(ref)


def _op_break_glass(s: Session, ref: str, p: Parameters) -> Any:
    if not ref.startswith("Patient/"):
        raise ValidationError(
            ref, "target", "a Patient (break-the-glass opens one patient's chart)"
        )
    s.break_glass(ref, p.text("reason"))
    return None


def _op_end_break_glass(s: Session, ref: str, p: Parameters) -> Any:
    s.end_break_glass(ref.split("/", 1)[1])
    return None


def _op_identify(s: Session, ref: str, p: Parameters) -> Any:
    """``care.identify`` run here, on the server: the chart is compared with what the patient
    states and the check is audited as this user (a client never records it itself)."""
    from ehr_sandbox.workflows.care import identify

    if not ref.startswith("Patient/"):
        raise ValidationError(ref, "target", "a Patient (identification concerns one patient)")
    done = identify(
        s,
        ref,
        name=p.text("name", required=False) or None,
        birth_date=p.text("birth-date", required=False) or None,
        mrn=p.text("mrn", required=False) or None,
    )
    return {"resourceType": "Parameters", "parameter": [{"name": "patient", "valueString": done}]}


def _op_relabel(s: Session, ref: str, p: Parameters) -> Any:
    sensitivity = p.text("sensitivity", required=False)
    return s.relabel(
        ref,
        p.value("confidentiality"),
        reason=p.value("reason"),  # the Session checks it
        sensitivity=[c.strip() for c in sensitivity.split(",") if c.strip()] or None,
    )


def _op_verify_signature(s: Session, ref: str, p: Parameters) -> Any:
    verified = s.verify_signature(ref)
    return {
        "resourceType": "Parameters",
        "parameter": [{"name": "verified", "valueBoolean": verified}],
    }


def _op_update_address(s: Session, ref: str, p: Parameters) -> Any:
    if not ref.startswith("Patient/"):
        raise ValidationError(ref, "target", "a Patient (an address belongs to one patient)")
    return s.update_address(
        ref,
        p.value("address"),  # the Session checks it, with its own error
        reason=p.value("reason"),  # the Session checks it
        effective=p.text("effective", required=False) or None,
    )


def _op_update_coverage(s: Session, ref: str, p: Parameters) -> Any:
    if not ref.startswith("Patient/"):
        raise ValidationError(ref, "target", "a Patient (a coverage belongs to one patient)")
    order = p.value("order")
    if order is None:
        order = 1
    if isinstance(order, bool) or not isinstance(order, int):
        raise ValidationError(
            "Parameters", "parameter[order]", "an integer (1 = primary)", found=order
        )
    return s.update_coverage(
        ref,
        p.value("coverage"),  # the Session checks it, with its own error
        reason=p.value("reason"),  # the Session checks it
        order=order,
        effective=p.text("effective", required=False) or None,
    )


def _type_op_find(s: Session, p: Parameters) -> list[dict[str, Any]]:
    return s.find_patient(
        name=p.text("name", required=False) or None,
        birthdate=p.text("birthdate", required=False) or None,
        identifier=p.text("identifier", required=False) or None,
    )


OPERATIONS: dict[str, Callable[[Session, str, Parameters], Any]] = {
    "entered-in-error": _op_entered_in_error,
    "correct": _op_correct,
    "amend": _op_amend,
    "addendum": _op_addendum,
    "late-entry": _op_late_entry,
    "sign": _op_sign,
    "break-glass": _op_break_glass,
    "end-break-glass": _op_end_break_glass,
    "identify": _op_identify,
    "relabel": _op_relabel,
    "verify-signature": _op_verify_signature,
    "update-address": _op_update_address,
    "update-coverage": _op_update_coverage,
}
"""The legal-record operations, each a Session method; a reason is required where the
Session requires one (it raises the same ValidationError). ``$identify`` on a Patient runs
``care.identify`` here, so the comparison with the chart happens on the server;
``$update-address`` and ``$update-coverage`` on a Patient are the Session's registration
updates (the address as ``valueAddress``, the Coverage as a resource, ``order`` as
``valueInteger``)."""

TYPE_OPERATIONS: dict[tuple[str, str], Callable[[Session, Parameters], list[dict[str, Any]]]] = {
    ("Patient", "find"): _type_op_find,
}
"""Operations on a resource type, each a Session method returning resources (a searchset)."""


def whoami_parameters(s: Session) -> dict[str, Any]:
    """The session's user and sandbox clock as a ``Parameters`` resource.

    >>> from ehr_sandbox.sandbox import Sandbox
    >>> s = Sandbox.generate(patients=1, seed=1, years=1).login("ma.garcia")
    >>> p = {i["name"]: i["valueString"] for i in whoami_parameters(s)["parameter"]}
    >>> readable = [i["valueString"] for i in whoami_parameters(s)["parameter"] if i["name"] == "readable-type"]
    >>> readable == s.readable_types()
    True
    >>> p["username"], p["role"], p["now"] == s.now().isoformat()
    ('ma.garcia', 'medical_assistant', True)
    """
    user = s.user
    values = {
        "now": s.now().isoformat(),
        "reference-date": s.reference_date.isoformat(),
        "username": user.username,
        "role": user.role,
        "display": user.display,
        "practitioner-id": user.practitioner_id,
        "patient-id": user.patient_id,
    }
    params = [{"name": k, "valueString": v} for k, v in values.items() if v]
    params += [{"name": "readable-type", "valueString": t} for t in s.readable_types()]
    return {"resourceType": "Parameters", "parameter": params}
