"""Pieces the specialty workflows share: the billing-modifier extension.

>>> modifier("AT")["valueCoding"]["code"]
'AT'
"""

from __future__ import annotations

from typing import Any

__all__ = ["MODIFIER_URL", "modifier", "modifiers_of"]

MODIFIER_URL = "http://ehr-sandbox.org/fhir/StructureDefinition/billing-modifier"
"""Extension on a Procedure carrying a HCPCS Level II modifier for the claim (AT, GA, Q7...)."""
HCPCS = "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"


def modifier(code: str) -> dict[str, Any]:
    """The billing-modifier extension for HCPCS modifier ``code``.

    Examples
    --------
    >>> modifier("Q8")["url"] == MODIFIER_URL
    True
    """
    return {"url": MODIFIER_URL, "valueCoding": {"system": HCPCS, "code": code}}


def modifiers_of(resource: dict[str, Any]) -> list[str]:
    """HCPCS modifiers recorded on a resource.

    Examples
    --------
    >>> modifiers_of({"extension": [modifier("AT")]})
    ['AT']
    """
    return [
        (e.get("valueCoding") or {}).get("code", "")
        for e in resource.get("extension", [])
        if e.get("url") == MODIFIER_URL
    ]
