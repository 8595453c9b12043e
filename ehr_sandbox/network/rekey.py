"""Re-keying: a person types a received document into the receiving organization's chart.

Re-keying is where paper loses information. Each item of the document is typed in through
the receiving user's own Session (so the policy, validation, Provenance and audit all apply)
and can go wrong, deterministically for a seed:

* ``omitted`` — the item was skipped (the most common error: a second page, a busy inbox);
* ``digits-transposed`` — a lab value typed with two digits swapped (187 -> 817);
* ``wrong-sig`` — a medication's directions typed from the wrong line.

Every re-keyed resource carries the tag ``rekeyed`` and a note naming the document, and its
Provenance gives the reason "re-keyed from <document> of <organization>". Each error is
returned as a :class:`RekeyingError` (the network keeps the list): the *sandbox* knows what
went wrong even though the chart does not.

>>> transpose_digits("187")
'817'
>>> transpose_digits("7") is None
True
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from ehr_sandbox.network import fhir_builders as fb
from ehr_sandbox.network.documents import Document, DocumentItem
from synthetic.systems import SANDBOX_TAGS

__all__ = [
    "REKEY_ERROR_RATE",
    "REKEYED_TAG",
    "RekeyResult",
    "RekeyingError",
    "rekey",
    "transpose_digits",
]

TAGS = SANDBOX_TAGS
REKEYED_TAG = {"system": TAGS, "code": "rekeyed", "display": "Re-keyed from a received document"}
REKEY_ERROR_RATE = 0.25
"""Share of items typed wrong or skipped. Published studies of manual transcription report
error rates from a few percent per field to over 20 % per document; a teaching network errs
on the visible side."""


@dataclass(frozen=True)
class RekeyingError:
    """One error made while re-keying: where, which item, what kind, expected vs typed.

    >>> RekeyingError("doc-1", "clinic", "allergy Penicillin", "omitted", "Penicillin", "(nothing)", None).kind
    'omitted'
    """

    document: str
    org: str
    item: str
    kind: str
    expected: str
    keyed: str
    resource: str | None


@dataclass
class RekeyResult:
    """What re-keying one document produced: the created references and the errors made.

    Parameters
    ----------
    created : list of str
        ``Type/id`` of each resource typed into the chart.
    errors : list of RekeyingError
        What the person typing got wrong (the sandbox's own record).
    steps : int
        Items typed.

    Examples
    --------
    >>> RekeyResult()
    RekeyResult(created=[], errors=[], steps=0)
    """

    created: list[str] = field(default_factory=list)
    errors: list[RekeyingError] = field(default_factory=list)
    steps: int = 0


def transpose_digits(text: str) -> str | None:
    """The first two different adjacent digits of ``text`` swapped (None if there are none).

    A typing error the re-keying simulation makes in doses and values.

    Parameters
    ----------
    text : str

    Returns
    -------
    str or None

    Examples
    --------
    >>> transpose_digits("aspirin 81 MG"), transpose_digits("take 1 daily"), transpose_digits("100")
    ('aspirin 18 MG', None, '010')
    """
    for i in range(len(text) - 1):
        a, b = text[i], text[i + 1]
        if a.isdigit() and b.isdigit() and a != b:
            return text[:i] + b + a + text[i + 2 :]
    return None


def _tagged(resource: dict[str, Any], doc: Document) -> dict[str, Any]:
    resource.setdefault("meta", {})["tag"] = [REKEYED_TAG]
    note = f"Re-keyed from {doc.kind} {doc.id} of {doc.source_org} dated {doc.created}"
    resource.setdefault("note", []).append({"text": note})
    return resource


def _concept(item: DocumentItem) -> dict[str, Any]:
    coding = (
        {"system": item.system, "code": item.code, "display": item.display} if item.system else None
    )
    return {"coding": [coding], "text": item.display} if coding else {"text": item.display}


def _build(
    item: DocumentItem, patient_ref: str, doc: Document, error: str | None
) -> tuple[dict[str, Any] | None, str]:
    """The resource typed for ``item`` (None for a problem: not re-keyed) and the value as typed."""
    if item.kind == "allergy":
        res = fb.allergy(patient_ref, item.date, None)
        res["code"] = _concept(item)
        res["reaction"][0]["manifestation"] = [{"text": item.value or "unknown reaction"}]
        if item.code != fb.PENICILLIN[0]:
            res["criticality"] = "low"
        return _tagged(res, doc), item.display
    if item.kind == "medication":
        sig = item.value
        if error == "wrong-sig":
            sig = (
                "1 tablet by mouth twice daily" if "twice" not in sig else "1 tablet by mouth daily"
            )
        res = fb.medication_statement(
            patient_ref, "aspirin", item.date, dosage=sig, source=doc.source_org
        )
        res["medicationCodeableConcept"] = _concept(item)
        return _tagged(res, doc), sig
    if item.kind == "lab" and item.code in fb.LIPID_CODES:
        number = item.value.split()[0]
        if error == "digits-transposed":
            number = transpose_digits(number) or number
        value = float(number)
        obs = fb.lipid_panel(patient_ref, f"{item.date}T08:00:00-05:00", (0, 0, 0))
        chosen = next(o for o in obs if o["code"]["coding"][0]["code"] == item.code)
        chosen["valueQuantity"]["value"] = int(value) if value.is_integer() else value
        return _tagged(chosen, doc), f"{number} mg/dL"
    return None, ""


def _error_kind(item: DocumentItem, rng: random.Random, rate: float) -> str | None:
    if rng.random() >= rate:
        return None
    options = ["omitted"]
    if item.kind == "lab" and transpose_digits(item.value.split()[0] if item.value else ""):
        options.append("digits-transposed")
    if item.kind == "medication":
        options.append("wrong-sig")
    return rng.choice(options)


def rekey(
    document: Document,
    session: Any,
    patient_id: str,
    *,
    seed: int,
    error_rate: float = REKEY_ERROR_RATE,
) -> RekeyResult:
    """Type ``document`` into ``patient_id``'s chart through ``session``, as a person would.

    Each item becomes a resource tagged as re-keyed (with a Provenance naming the document);
    with probability ``error_rate`` an item is omitted, a lab value's digits are transposed, or
    a sig is mistyped. The choices are deterministic for ``seed`` and the document.
    ``Network.rekey`` calls this (and checks the document was sent to the session's
    organization).

    Parameters
    ----------
    document : Document
    session : Session
        The person typing, at the receiving organization.
    patient_id : str
        The chart to type into.
    seed : int
    error_rate : float, default REKEY_ERROR_RATE

    Returns
    -------
    RekeyResult

    Examples
    --------
    >>> from ehr_sandbox.network.network import Network
    >>> net = Network.generate(seed=3, mode="emr", patients=8, people=2)
    >>> p = net.person("P1")
    >>> doc = net.send("fhir-document", net.login("hospital", "dr.okafor"), "hospital",
    ...                p.records["hospital"], "clinic", created="2025-12-18")
    >>> perfect = rekey(doc, net.login("clinic", "ma.garcia"), p.records["clinic"], seed=1, error_rate=0.0)
    >>> perfect.errors, perfect.steps == len(perfect.created)
    ([], True)
    """
    out = RekeyResult()
    ref = f"Patient/{patient_id}"
    for n, item in enumerate(document.items):
        if item.kind not in ("allergy", "medication", "lab"):
            continue
        rng = random.Random(f"rekey:{seed}:{document.id}:{n}")
        error = _error_kind(item, rng, error_rate)
        label = f"{item.kind} {item.display}" + (f" = {item.value}" if item.kind == "lab" else "")
        out.steps += 1
        if error == "omitted":
            out.errors.append(
                RekeyingError(
                    document.id,
                    document.target_org,
                    label,
                    "omitted",
                    item.value or item.display,
                    "(nothing)",
                    None,
                )
            )
            continue
        resource, typed = _build(item, ref, document, error)
        if resource is None:
            continue
        saved = session.create(
            resource, reason=f"re-keyed from {document.kind} {document.id} of {document.source_org}"
        )
        created = f"{saved['resourceType']}/{saved['id']}"
        out.created.append(created)
        if error is not None:
            out.errors.append(
                RekeyingError(
                    document.id, document.target_org, label, error, item.value, typed, created
                )
            )
    return out
