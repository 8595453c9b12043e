"""References to records the reader may not see carry no text of those records.

A record a user may read can point at one they may not: an Immunization given for a restricted
diagnosis (``reasonReference`` is exempt from label inheritance, see ``derived.py``), a
Composition section listing a sensitive result, a List entry, a Claim diagnosis. The pointer
itself says only that *something* is there (a dangling reference to a deleted record looks the
same), but a Reference may also quote its target: ``display`` ("HIV disease"), an
``identifier``, and the narrative (``text.div``) that repeats both.

The rule, for every channel (whatever the session releases passes through it): a reference
keeps its ``display`` and ``identifier`` only when the reader may see the record it points at;
otherwise they go, and so does the narrative of the resource (and of its contained resources),
which may quote them, and the resource is tagged ``REDACTED`` like a masked copy. "May see" is
asked through ``visible(ref)``, which says no for absent records too, so the redaction is the
same whether the target is hidden or absent (no existence oracle). References to a contained
resource (``#id``) are kept: it travels with the resource. Logical references (an
``identifier`` without a ``reference``) name nothing this sandbox can resolve and are content of
the record like any other field (labelled by its own codes).

>>> cond = "Condition/c1"
>>> imm = {"resourceType": "Immunization", "patient": {"reference": "Patient/p"},
...        "reasonReference": [{"reference": cond, "display": "HIV disease"}],
...        "text": {"status": "generated", "div": "<div>Given for HIV disease</div>"}}
>>> out = redact_references(imm, lambda ref: ref != cond)
>>> out["reasonReference"], "text" in out, out["meta"]["security"][0]["code"]
([{'reference': 'Condition/c1'}], False, 'REDACTED')
>>> redact_references(imm, lambda ref: True) is imm
True
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from ehr_sandbox.access.masking import deep_copy, tag_redacted

_QUOTES = ("display", "identifier")


def target_of(reference: str) -> str | None:
    """The ``Type/id`` a literal reference points at (relative, absolute or versioned); None
    for a reference to a contained resource (``#id``). Anything else (a ``urn:``, a search
    URL) is returned as it is: it resolves to no record, so it counts as unseen.

    >>> target_of("Condition/c1/_history/2"), target_of("https://x.org/fhir/Patient/p")
    ('Condition/c1', 'Patient/p')
    >>> target_of("#c1") is None, target_of("urn:uuid:1")
    (True, 'urn:uuid:1')
    """
    if reference.startswith("#"):
        return None
    parts = reference.split("/")
    if len(parts) >= 4 and parts[-2] == "_history":
        parts = parts[:-2]
    if len(parts) >= 2 and parts[-2][:1].isupper() and parts[-2].isalpha() and parts[-1]:
        return f"{parts[-2]}/{parts[-1]}"
    return reference


def _references(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        ref = node.get("reference")
        if isinstance(ref, str):
            yield node
        for value in node.values():
            if isinstance(value, dict | list):
                yield from _references(value)
    elif isinstance(node, list):
        for item in node:
            yield from _references(item)


def _has_narrative(resource: dict[str, Any]) -> bool:
    if "text" in resource:
        return True
    contained = resource.get("contained")
    return isinstance(contained, list) and any(
        isinstance(c, dict) and "text" in c for c in contained
    )


def quoted_targets(resource: dict[str, Any]) -> frozenset[str]:
    """The records whose text ``resource`` may quote: targets of references that carry a
    ``display`` or ``identifier``, and, when it has a narrative, of every reference.

    >>> r = {"resourceType": "List", "subject": {"reference": "Patient/p"},
    ...      "entry": [{"item": {"reference": "Observation/o", "display": "HIV-1 RNA"}}]}
    >>> sorted(quoted_targets(r)), sorted(quoted_targets({**r, "text": {"div": "<div/>"}}))
    (['Observation/o'], ['Observation/o', 'Patient/p'])
    """
    every = _has_narrative(resource)
    out = set()
    for node in _references(resource):
        if every or any(k in node for k in _QUOTES):
            target = target_of(node["reference"])
            if target is not None:
                out.add(target)
    return frozenset(out)


def redact_references(resource: dict[str, Any], visible: Callable[[str], bool]) -> dict[str, Any]:
    """``resource`` without the text of records ``visible`` says the reader may not see (a
    new dict; the input itself is returned when nothing is withheld).

    >>> obs = {"resourceType": "Observation", "hasMember": [
    ...     {"reference": "Observation/a", "display": "CD4"},
    ...     {"reference": "Observation/b", "display": "Pulse", "identifier": {"value": "7"}}]}
    >>> redact_references(obs, lambda ref: ref == "Observation/b")["hasMember"]
    [{'reference': 'Observation/a'}, {'reference': 'Observation/b', 'display': 'Pulse', 'identifier': {'value': '7'}}]
    """
    if not isinstance(resource, dict):
        return resource
    unseen = {t for t in quoted_targets(resource) if not visible(t)}
    if not unseen:
        return resource
    out = deep_copy(resource)
    for node in _references(out):
        target = target_of(node["reference"])
        if target in unseen:
            for key in _QUOTES:
                node.pop(key, None)
    # The narrative repeats the data in HTML and may quote what was withheld: it goes too.
    out.pop("text", None)
    for item in out.get("contained") or ():
        if isinstance(item, dict):
            item.pop("text", None)
    tag_redacted(out)
    return out
