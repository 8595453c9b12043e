"""The value every rule returns: one problem, not yet bound to a resource name.

Rules return plain :class:`Problem` records (cheap: nothing is built on the happy path);
:func:`ehr_sandbox.validation.check` turns them into
:class:`ehr_sandbox.errors.ValidationError` with the resource's ``Type/id``.

>>> p = Problem("valueQuantity.code", "UCUM 'mm[Hg]'", found="mmHg", why="UCUM spells it mm[Hg]")
>>> str(p.to_error("Observation/1"))
"Observation/1: valueQuantity.code: expected UCUM 'mm[Hg]' (found 'mmHg'). UCUM spells it mm[Hg]"
"""

from __future__ import annotations

from dataclasses import dataclass

from ehr_sandbox.errors import ValidationError

__all__ = ["Problem"]


@dataclass(frozen=True, slots=True)
class Problem:
    """One failed rule: the field ``path``, what was ``expected``, what was ``found``, ``why``.

    ``rule`` names the rule family (structure, string, reference, code, vital) so callers and
    graders can group problems.

    >>> Problem("id", "an id", rule="structure").rule
    'structure'
    """

    path: str
    expected: str
    found: object = None
    why: str = ""
    rule: str = ""

    def to_error(self, resource: str) -> ValidationError:
        """Bind to a resource name and build the exception (with ``.rule`` attached).

        >>> Problem("status", "a status code", rule="structure").to_error("Observation").rule
        'structure'
        """
        err = ValidationError(
            resource, self.path, self.expected, found=_preview(self.found), why=self.why
        )
        err.rule = self.rule  # type: ignore[attr-defined]
        return err


def _preview(found: object) -> object:
    """Keep echoed values short: a message must not carry a megabyte of someone's input.

    >>> _preview("x" * 500)[-12:]
    '... (500 chars)'
    """
    if isinstance(found, str) and len(found) > 120:
        return f"{found[:100]}... ({len(found)} chars)"
    if isinstance(found, dict | list):
        text = repr(found)
        return text if len(text) <= 120 else f"{text[:100]}... ({type(found).__name__})"
    return found
