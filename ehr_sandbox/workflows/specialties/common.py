"""Pieces the specialty workflows share: the billing-modifier extension.

>>> modifier("AT")["valueCoding"]["code"]
'AT'
"""

from __future__ import annotations

from typing import Any

from synthetic.systems import SANDBOX_EXT_BILLING_MODIFIER, SANDBOX_HCPCS_MODIFIER

__all__ = ["HCPCS_MODIFIER", "MODIFIERS", "MODIFIER_URL", "modifier", "modifiers_of"]

MODIFIER_URL = SANDBOX_EXT_BILLING_MODIFIER
"""Extension on a Procedure carrying a HCPCS Level II modifier for the claim (AT, GA, Q7...)."""
HCPCS_MODIFIER = SANDBOX_HCPCS_MODIFIER
"""HCPCS Level II modifiers (CMS, public). The shipped HCPCS code set holds the five-character
codes only, so the two-character modifiers are carried under this sandbox system; the ones the
workflows use are listed, with their CMS descriptors, in :data:`MODIFIERS`."""
MODIFIERS = {
    "AT": "Acute treatment (active/corrective chiropractic manipulative treatment)",
    "GA": "Waiver of liability statement issued as required by payer policy, individual case",
    "Q7": "One class A finding",
    "Q8": "Two class B findings",
    "Q9": "One class B and two class C findings",
}


def modifier(code: str) -> dict[str, Any]:
    """The billing-modifier extension for HCPCS modifier ``code``.

    Examples
    --------
    >>> modifier("Q8")["url"] == MODIFIER_URL
    True
    """
    return {
        "url": MODIFIER_URL,
        "valueCoding": {"system": HCPCS_MODIFIER, "code": code, "display": MODIFIERS[code]},
    }


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
