"""Many AuditEvents of one interaction, serialised cheaply: one per patient a search returned.

A search that returns 900 patients writes 900 AuditEvents that differ only in the patient and
the ``recorded`` instant. :func:`prepare_events` builds and canonicalises the event **once**
(with :func:`~ehr_sandbox.audit.events.build_event` and
:func:`~ehr_sandbox.crypto.canonical.canonical_json`, so every check they make still applies),
then splices each patient id and instant into those bytes. The result is byte-for-byte
``canonical_json(build_event(..., patient_id=pid, recorded=when))`` for every item
(tests/test_audit_batch.py checks it on random inputs); anything the splice cannot vouch for
(an id or instant outside the plain ASCII forms, a template whose markers are not unique)
takes the per-event path instead.

>>> user = {"username": "dr.patel", "role": "physician", "practitioner_id": "d1"}
>>> prepared = prepare_events(action="E", interaction="search", outcome="0", user=user,
...     purpose="TREAT", query="Patient?", items=[("p1", "2026-01-01T08:00:00+00:00"),
...                                                ("p2", "2026-01-01T08:00:01+00:00")])
>>> [p.patient for p in prepared], prepared[0].username, prepared[1].action
(['p1', 'p2'], 'dr.patel', 'E')
>>> from ehr_sandbox.crypto.canonical import canonical_json
>>> prepared[1].record == canonical_json(build_event(action="E", interaction="search",
...     outcome="0", user=user, purpose="TREAT", query="Patient?", patient_id="p2",
...     recorded="2026-01-01T08:00:01+00:00"))
True
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from ehr_sandbox.audit.events import build_event, event_patient, event_username
from ehr_sandbox.crypto.canonical import canonical_json

__all__ = ["PreparedEvent", "prepare_event", "prepare_events"]

# Values the splice writes as they are: JSON and RFC 8785 give them no escapes.
_PLAIN_ID = re.compile(r"[A-Za-z0-9.\-]{1,64}")
_PLAIN_INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")
# Markers that pass build_event's checks and are not FHIR ids (so never a real patient id).
_PID_MARK = "~pid~"
_WHEN_MARK = "0000-00-00T00:00:00Z"


class PreparedEvent(NamedTuple):
    """An AuditEvent ready for the trail: its canonical bytes and the columns it is filtered by.

    >>> PreparedEvent(b"{}", None, "rn.kim", "R").username
    'rn.kim'
    """

    record: bytes
    patient: str | None
    username: str | None
    action: str


def prepare_event(event: Mapping[str, Any]) -> PreparedEvent:
    """One event dict, canonicalised (the trail's general path).

    Raises :class:`~ehr_sandbox.errors.CryptoError` for values canonical JSON cannot hold.

    >>> prepare_event({"resourceType": "AuditEvent", "action": "R"})
    PreparedEvent(record=b'{"action":"R","resourceType":"AuditEvent"}', patient=None, username=None, action='R')
    """
    return PreparedEvent(
        canonical_json(dict(event)),
        event_patient(event),
        event_username(event),
        str(event.get("action", "")),
    )


def prepare_events(
    *,
    items: Sequence[tuple[str | None, str]],
    **common: Any,
) -> list[PreparedEvent]:
    """Events that share every :func:`build_event` argument but ``patient_id`` and ``recorded``.

    Parameters
    ----------
    items
        ``(patient_id or None, recorded instant)`` per event, in the order they are written.
    **common
        The other keyword arguments of :func:`build_event` (action, interaction, outcome,
        user, purpose, entity_ref, version, labels, query, detail).

    Returns
    -------
    list[PreparedEvent]
        One per item, in order; each ``record`` equals
        ``canonical_json(build_event(**common, patient_id=pid, recorded=when))``.

    Raises
    ------
    ValidationError
        When ``build_event`` refuses the arguments (nothing is prepared).

    Examples
    --------
    >>> u = {"username": "rn.kim", "role": "nurse", "practitioner_id": "n1"}
    >>> out = prepare_events(action="E", interaction="search", outcome="0", user=u,
    ...                      purpose="TREAT", items=[(None, "2026-01-01T08:00:00+00:00")])
    >>> out[0].patient is None, b'"recorded":"2026-01-01T08:00:00+00:00"' in out[0].record
    (True, True)
    """
    if not items:
        return []
    # Built (and so validated) once with markers; canonical_json checks every value in it.
    model = build_event(**common, patient_id=_PID_MARK, recorded=_WHEN_MARK)
    template = canonical_json(model)
    username = event_username(model)
    action = str(model.get("action", ""))
    pid_token = f'"Patient/{_PID_MARK}"'.encode()
    when_token = f'"recorded":"{_WHEN_MARK}"'.encode()
    # Unescaped quotes delimit JSON strings, so each token can only be the value it names; a
    # caller's text holding a marker is escaped inside its string or makes a token repeat.
    splice = template.count(pid_token) == 1 and template.count(when_token) == 1
    if splice:
        # The entity (patient) sorts before "recorded": head PID middle WHEN tail.
        head, _, rest = template.partition(pid_token)
        middle, _, tail = rest.partition(when_token)
        splice = when_token not in head
    out: list[PreparedEvent] = []
    for pid, when in items:
        if (
            splice
            and pid
            and isinstance(pid, str)
            and isinstance(when, str)
            and _PLAIN_ID.fullmatch(pid)
            and _PLAIN_INSTANT.fullmatch(when)
        ):
            record = b"".join(
                (
                    head,
                    b'"Patient/',
                    pid.encode(),
                    b'"',
                    middle,
                    b'"recorded":"',
                    when.encode(),
                    b'"',
                    tail,
                )
            )
            out.append(PreparedEvent(record, pid, username, action))
        else:
            out.append(prepare_event(build_event(**common, patient_id=pid, recorded=when)))
    return out
