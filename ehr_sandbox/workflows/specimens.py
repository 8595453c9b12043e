"""Specimen collection: venipuncture order of draw, tubes, labels, fasting, chain of custody.

:func:`collect_blood` draws the tubes the orders need, in the CLSI order of draw
(``data/specimens.toml``), checks the label's two identifiers against the chart, records the
fasting status when a test needs it, and writes one ``Specimen`` per tube linked to its
orders. :func:`send_to_lab` records the requisition (a ``Task`` to the outside lab with the
specimens) and the first chain-of-custody hand-off; :func:`hand_off` each later one.
:func:`check_label` is what the receiving desk does: a label that does not match the chart
rejects the specimen (status ``unsatisfactory``) and routes a recollection Task.

>>> [t["id"] for t in tubes_in_order(["lavender", "light-blue", "gold"])]
['light-blue', 'gold', 'lavender']
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ehr_sandbox.errors import NotFound
from ehr_sandbox.workflows.base import Rule, write
from ehr_sandbox.workflows.care import (
    LOINC,
    coding,
    demo_session,
    display_name,
    identify,
    mrn_of,
    now_text,
    provider_of,
    read_patient,
    refuse,
    require_identified,
    routed_task,
    user_ref,
    write_entries,
)
from ehr_sandbox.workflows.content import table
from synthetic.systems import V2_0487, V2_0916

if TYPE_CHECKING:
    from ehr_sandbox.session import Session

__all__ = [
    "RULES",
    "check_label",
    "collect_blood",
    "demo_session",
    "display_name",
    "hand_off",
    "identify",
    "mrn_of",
    "send_to_lab",
    "tube",
    "tube_for",
    "tubes_in_order",
]

SPECIMEN_TYPE = V2_0487
FASTING = V2_0916
FASTING_CODES = {"F": "Patient was fasting prior to the procedure.", "NF": "The patient indicated they did not fast prior to the procedure.", "NG": "Not Given - Patient was not asked at the time of the procedure."}  # fmt: skip
_CLSI = "CLSI GP41 (2017); CLSI GP33 (specimen labelling)"
RULES: dict[str, Rule] = {
    r.id: r
    for r in (
        Rule("specimens.order", "a specimen is collected only for an active order for this patient", _CLSI),
        Rule("specimens.tube", "each ordered test is drawn in the tube it needs", _CLSI),
        Rule("specimens.order-of-draw", "tubes are drawn in the CLSI order of draw (additive carry-over)", _CLSI),
        Rule("specimens.fasting", "the fasting status is recorded when a test needs it", "reference-lab requirements; HL7 v2-0916"),
        Rule("specimens.label", "the tube label carries two identifiers that match the chart (at the bedside, before the patient leaves)", "The Joint Commission NPSG.01.01.01; CLSI GP33"),
        Rule("specimens.custody", "every hand-off of a specimen is recorded (who, to whom, when); a rejected specimen is not sent", "CLIA 42 CFR 493.1241-1242 (specimen submission, handling and referral)"),
    )
}  # fmt: skip


def tube(tube_id: str) -> dict[str, Any]:
    """The tube ``tube_id`` of ``data/specimens.toml``.

    Examples
    --------
    >>> tube("lavender")["additive"]
    'K2EDTA'
    """
    for t in table("specimens")["tube"]:
        if t["id"] == tube_id:
            return t
    raise refuse(
        RULES["specimens.tube"],
        "Specimen",
        "container",
        "one of " + ", ".join(t["id"] for t in table("specimens")["tube"]),
        tube_id,
    )


def tube_for(loinc: str) -> dict[str, Any]:
    """The test entry (tube, fasting) for a LOINC code.

    Examples
    --------
    >>> tube_for("57698-3")["tube"], tube_for("57698-3")["fasting"]
    ('gold', 'required')
    """
    for t in table("specimens")["test"]:
        if t["loinc"] == loinc:
            return t
    raise refuse(
        RULES["specimens.tube"],
        "Specimen",
        "request",
        "a test the clinic draws (data/specimens.toml)",
        loinc,
    )


def tubes_in_order(tube_ids: list[str]) -> list[dict[str, Any]]:
    """``tube_ids`` sorted into the order of draw.

    Examples
    --------
    >>> [t["order"] for t in tubes_in_order(["gray", "red"])]
    [3, 7]
    """
    return sorted((tube(t) for t in dict.fromkeys(tube_ids)), key=lambda t: t["order"])


def _order_code(sr: dict[str, Any]) -> str | None:
    for c in (sr.get("code") or {}).get("coding", []):
        if c.get("system") == LOINC:
            return c.get("code")
    return None


def _label_ok(chart: dict[str, Any], name: str | None, birth_date: str | None) -> bool:
    return bool(name and birth_date) and (
        identify_matches(chart, name) and str(birth_date) == chart.get("birthDate")
    )


def identify_matches(chart: dict[str, Any], name: str) -> bool:
    """Whether ``name`` is the chart's name (given + family, any order, case-insensitive).

    Examples
    --------
    >>> identify_matches({"name": [{"family": "Lee", "given": ["Ann"]}]}, "lee ann")
    True
    """
    want = sorted(str(name).replace(",", " ").lower().split())
    for n in chart.get("name", []):
        first = (n.get("given") or [""])[0]
        if sorted(f"{first} {n.get('family', '')}".lower().split()) == want:
            return True
    return False


def collect_blood(
    session: Session,
    patient: str,
    orders: list[str],
    *,
    tubes: list[str],
    fasting: str | None,
    label_name: str,
    label_birth_date: str,
    site: str = "left antecubital vein",
) -> list[dict[str, Any]]:
    """Venipuncture for ``orders``: one Specimen per tube, in the order drawn.

    Parameters
    ----------
    orders : list of str
        ``ServiceRequest/<id>`` lab orders (LOINC-coded) for this patient.
    tubes : list of str
        Tube ids (``light-blue``, ``gold``, ``lavender``...) in the order you drew them.
    fasting : str or None
        v2-0916 ``F``, ``NF`` or ``NG``; required when a test needs fasting status.
    label_name, label_birth_date : str
        What you wrote on the labels (two identifiers).

    Raises
    ------
    RuleRefused
        ``specimens.*`` or ``care.two-identifiers``; nothing is written when refused.

    Examples
    --------
    >>> s = demo_session()
    >>> p = s.search("Patient").first()
    >>> ref = identify(s, p["id"], birth_date=p["birthDate"], mrn=mrn_of(p))
    >>> collect_blood(s, ref, [], tubes=["gold"], fasting="F", label_name=display_name(p),
    ...               label_birth_date=p["birthDate"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ehr_sandbox.workflows.base.RuleRefused: Specimen: request: expected at least one active lab order ...
    """
    ref = require_identified(session, patient, "Specimen")
    chart = read_patient(session, ref)
    if not orders:
        raise refuse(
            RULES["specimens.order"], "Specimen", "request", "at least one active lab order", orders
        )
    need: dict[str, list[str]] = {}
    fasting_needed = False
    for o in orders:
        try:
            sr = session.read(o)
        except NotFound:
            raise refuse(
                RULES["specimens.order"], "Specimen", "request", "an order you can open", o
            ) from None
        if (
            sr.get("resourceType") != "ServiceRequest"
            or sr.get("status") != "active"
            or (sr.get("subject") or {}).get("reference") != ref
        ):
            raise refuse(
                RULES["specimens.order"],
                "Specimen",
                "request",
                "an active ServiceRequest for this patient",
                o,
            )
        test = tube_for(_order_code(sr) or "")
        need.setdefault(test["tube"], []).append(f"ServiceRequest/{sr['id']}")
        fasting_needed |= test["fasting"] == "required"
    drawn = [tube(t) for t in tubes]
    missing = [t for t in need if t not in {d["id"] for d in drawn}]
    if missing:
        raise refuse(
            RULES["specimens.tube"],
            "Specimen",
            "container",
            "a tube for every ordered test (" + ", ".join(sorted(need)) + ")",
            tubes,
        )
    orders_seen = [d["order"] for d in drawn]
    if orders_seen != sorted(orders_seen):
        raise refuse(
            RULES["specimens.order-of-draw"],
            "Specimen",
            "container",
            "the CLSI order of draw: " + " -> ".join(t["id"] for t in tubes_in_order(tubes)),
            tubes,
        )
    if fasting_needed and fasting not in FASTING_CODES:
        raise refuse(
            RULES["specimens.fasting"],
            "Specimen",
            "collection.fastingStatusCodeableConcept",
            "F, NF or NG (a test here is read against fasting values)",
            fasting,
        )
    if not _label_ok(chart, label_name, label_birth_date):
        raise refuse(
            RULES["specimens.label"],
            "Specimen",
            "label",
            "the patient's name and date of birth exactly as on the chart",
            f"{label_name} / {label_birth_date}",
        )
    when = now_text(session)
    specimens = []
    for i, d in enumerate(drawn):
        sp: dict[str, Any] = {
            "resourceType": "Specimen",
            "status": "available",
            "type": coding(SPECIMEN_TYPE, d["specimen_type"]),
            "subject": {"reference": ref},
            "request": [{"reference": r} for r in need.get(d["id"], [])],
            "receivedTime": when,
            "collection": {
                "collector": user_ref(session),
                "collectedDateTime": when,
                "method": {"text": "venipuncture"},
                "bodySite": {"text": site},
            },
            "container": [
                {
                    "description": f"{d['cap']} top tube, drawn {i + 1} of {len(drawn)}",
                    "type": {"text": f"{d['cap']} evacuated tube"},
                    "additiveCodeableConcept": {"text": d["additive"]},
                }
            ],
            "note": [{"text": f"Label: {label_name}; DOB {label_birth_date}"}],
        }
        if fasting:
            sp["collection"]["fastingStatusCodeableConcept"] = coding(
                FASTING, fasting, FASTING_CODES.get(fasting)
            )
        specimens.append(sp)
    return write_entries(session, specimens, operation="specimens.collect")


def send_to_lab(
    session: Session, specimens: list[str], *, lab: str, courier: str
) -> dict[str, Any]:
    """Requisition to the outside lab (a Task with the specimens) and the first hand-off.

    Parameters
    ----------
    specimens : list of str
        ``Specimen/<id>`` collected for one patient.
    lab : str
        The performing laboratory (name; ``Organization/<id>`` when it is in the directory).
    courier : str
        Who takes the specimens (name of the courier).

    Examples
    --------
    >>> send_to_lab(demo_session(), [], lab="Reference Lab", courier="J. Doe")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ehr_sandbox.workflows.base.RuleRefused: Task: input: expected at least one collected specimen ...
    """
    if not specimens:
        raise refuse(
            RULES["specimens.custody"],
            "Task",
            "input",
            "at least one collected specimen",
            specimens,
        )
    if not courier or not lab:
        raise refuse(
            RULES["specimens.custody"], "Task", "owner", "the lab and the courier", courier
        )
    read = [session.read(s) for s in specimens]
    patients = {(sp.get("subject") or {}).get("reference") for sp in read}
    for sp in read:
        if sp.get("status") != "available":
            raise refuse(
                RULES["specimens.custody"],
                f"Specimen/{sp['id']}",
                "status",
                "an available (not rejected) specimen",
                sp.get("status"),
            )
    if len(patients) != 1:
        raise refuse(
            RULES["specimens.custody"],
            "Task",
            "input",
            "specimens of one patient per requisition",
            sorted(p or "" for p in patients),
        )
    patient = patients.pop() or ""
    when = now_text(session)
    owner = {"reference": lab} if lab.startswith("Organization/") else {"display": lab}
    orders = sorted({r["reference"] for sp in read for r in sp.get("request", [])})
    task: dict[str, Any] = {
        "resourceType": "Task",
        "status": "in-progress",
        "intent": "order",
        "code": {"text": "laboratory requisition"},
        "description": f"Requisition: {len(read)} specimen(s) to {lab} via courier {courier}",
        "for": {"reference": patient},
        "authoredOn": when,
        "requester": user_ref(session),
        "owner": owner,
        "input": [
            {"type": {"text": "specimen"}, "valueReference": {"reference": s}} for s in specimens
        ]
        + [{"type": {"text": "order"}, "valueReference": {"reference": o}} for o in orders],
    }
    if orders:
        task["basedOn"] = [{"reference": o} for o in orders]
    updated = []
    for sp in read:
        sp.setdefault("processing", []).append(
            {
                "description": f"custody: {session.user.username} -> courier {courier} (for {lab})",
                "timeDateTime": when,
            }
        )
        updated.append(sp)
    saved = write_entries(session, [task, *updated], operation="specimens.send")
    return saved[0]


def hand_off(session: Session, specimen: str, *, to: str) -> dict[str, Any]:
    """Record one more chain-of-custody hand-off (to a person or the receiving lab).

    Examples
    --------
    >>> hand_off(demo_session(), "Specimen/x", to="")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ehr_sandbox.workflows.base.RuleRefused: Specimen/x: processing: expected who receives the specimen ...
    """
    if not to:
        raise refuse(
            RULES["specimens.custody"], specimen, "processing", "who receives the specimen", to
        )
    sp = session.read(specimen)
    sp.setdefault("processing", []).append(
        {
            "description": f"custody: {session.user.username} -> {to}",
            "timeDateTime": now_text(session),
        }
    )
    return write(session, sp, operation="specimens.custody")


def check_label(
    session: Session,
    specimen: str,
    *,
    label_name: str,
    label_birth_date: str,
    provider: str | None = None,
) -> dict[str, Any]:
    """Compare a tube's label with the chart; a mismatch rejects the specimen.

    Returns the Specimen: unchanged when the label matches; otherwise ``unsatisfactory``
    with the reason in ``condition`` and a recollection Task routed to the provider.

    Examples
    --------
    >>> check_label(demo_session(), "Specimen/none", label_name="A B", label_birth_date="2000-01-01")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ehr_sandbox.errors.NotFound: ...
    """
    sp = session.read(specimen)
    patient = (sp.get("subject") or {}).get("reference", "")
    chart = read_patient(session, patient)
    if _label_ok(chart, label_name, label_birth_date):
        return sp
    sp["status"] = "unsatisfactory"
    sp["condition"] = [{"text": "mislabelled: label does not match the patient's chart"}]
    sp.setdefault("note", []).append(
        {
            "text": f"Rejected {now_text(session)}: label '{label_name} / {label_birth_date}' does "
            f"not match the chart; recollect"
        }
    )
    task = routed_task(
        session,
        patient,
        provider_of(chart, provider),
        f"Specimen/{sp['id']} rejected as mislabelled; recollection needed",
        focus=f"Specimen/{sp['id']}",
        priority="urgent",
    )
    saved = write_entries(session, [sp, task], operation="specimens.reject")
    return saved[0]
