"""Medication administration against an order: the rights, safety checks, refusal, witness.

:func:`administer` gives a drug from ``data/medications.toml`` against an active
``MedicationRequest`` and checks, before anything is written:

* **right patient** — identified with two identifiers, and the order is for that patient;
* **right drug, dose, route, time** — they match the order; the order was written for now
  (within 24 hours, or inside its validity period);
* **weight-based dose for children** — the ordered dose is within 10 % of weight x mg/kg (capped
  at the maximum dose), from a weight measured today; otherwise the order is queried with the
  provider, not given;
* **allergy** (class and cross-reactivity from the chart's AllergyIntolerance) and **duplicate**
  (a drug of the same class already given today);
* **injection site by age** (``data/injection_sites.toml``);
* **lot and expiry** recorded (an expired lot is refused) — on a contained ``Medication.batch``;
* **controlled substances** — a second licensed witness.

The ``MedicationAdministration`` references the order (``request``) and carries the order's
reason; :func:`record_refusal` records a refused dose (``not-done`` with a status reason) and
:func:`record_response` the patient's response.

>>> expected_dose_mg("ceftriaxone", 14.0)
700.0
>>> allowed_sites("IM", 8)
['LT', 'RT']
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from ehr_sandbox.errors import NotFound
from ehr_sandbox.workflows.base import Rule, write
from ehr_sandbox.workflows.care import (
    age_months,
    age_years,
    coding,
    demo_session,
    identify,
    mrn_of,
    now,
    now_text,
    parse_instant,
    read_patient,
    refuse,
    require_identified,
    today,
    user_ref,
)
from ehr_sandbox.workflows.content import table
from ehr_sandbox.workflows.intake import classes_of
from synthetic.systems import (
    HCPCS,
    LOINC,
    MED_ADMIN_PERFORM_FUNCTION,
    UCUM,
    V3_ACT_REASON,
    V3_ACT_SITE,
    V3_ROUTE_OF_ADMINISTRATION,
)

if TYPE_CHECKING:
    from ehr_sandbox.session import Session

__all__ = [
    "ACT_SITE",
    "HCPCS",
    "ROUTE",
    "RULES",
    "administer",
    "allergy_conflicts",
    "allowed_sites",
    "demo_session",
    "drug",
    "expected_dose_mg",
    "identify",
    "mrn_of",
    "order_for",
    "query_order",
    "record_refusal",
    "record_response",
]

ROUTE = V3_ROUTE_OF_ADMINISTRATION
ACT_SITE = V3_ACT_SITE
ACT_REASON = V3_ACT_REASON
PERFORM_FUNCTION = MED_ADMIN_PERFORM_FUNCTION
ROUTES = {
    "IM": "Injection, intramuscular",
    "SC": "Injection, subcutaneous",
    "PO": "Swallow, oral",
    "IDINJ": "Injection, intradermal",
    "NASINHLC": "Inhalation, nasal",
}
SITES = {
    "LT": "left thigh",
    "RT": "right thigh",
    "LD": "left deltoid",
    "RD": "right deltoid",
    "LA": "left arm",
    "RA": "right arm",
    "LVL": "left vastus lateralis",
    "RVL": "right vastus lateralis",
    "LG": "left gluteus medius",
    "RG": "right gluteus medius",
}
_SRC = "MAERB I.P.4 (rights of medication administration); ISMP"
RULES: dict[str, Rule] = {
    r.id: r
    for r in (
        Rule("medadmin.order", "a medication is given only against an active order", _SRC),
        Rule("medadmin.right-patient", "the order is for the identified patient", _SRC),
        Rule("medadmin.right-drug", "the drug given is the drug ordered", _SRC),
        Rule("medadmin.right-dose", "the dose given is the dose ordered", _SRC),
        Rule(
            "medadmin.right-route", "the route is the route ordered and one the drug allows", _SRC
        ),
        Rule(
            "medadmin.right-time",
            "the dose is given within the order's time window (24 hours for an office order)",
            _SRC,
        ),
        Rule(
            "medadmin.weight-dose",
            "a child's dose is checked against a weight measured today (mg/kg, capped at the "
            "maximum dose); an order outside 10 % is queried with the provider, not given",
            "AAP; ISMP pediatric weight-based dosing; data/medications.toml",
        ),
        Rule(
            "medadmin.allergy",
            "no drug of a class the patient is allergic to; a cross-reactive class needs the "
            "provider's documented decision",
            "AAAAI/ACAAI drug allergy practice parameter 2022; The Joint Commission NPSG",
        ),
        Rule(
            "medadmin.duplicate",
            "no second drug of the same class on the same day (duplicate therapy)",
            "ISMP",
        ),
        Rule(
            "medadmin.site",
            "the injection site fits the route and the patient's age",
            "CDC/ACIP General Best Practice Guidelines, Vaccine Administration (2023)",
        ),
        Rule(
            "medadmin.lot-expiry",
            "the lot number and expiry date are recorded; an expired lot is never given",
            "FDA; documentation standards (MAERB I.P.4)",
        ),
        Rule(
            "medadmin.witness",
            "a controlled substance is given with a second licensed witness",
            "DEA 21 CFR 1304 records; clinic controlled-substance policy",
        ),
        Rule("medadmin.refusal-reason", "a refused dose is recorded with the reason", _SRC),
    )
}


def drug(key: str) -> dict[str, Any]:
    """The office drug ``key`` (id or HCPCS code) from ``data/medications.toml``.

    Examples
    --------
    >>> drug("J0696")["id"]
    'ceftriaxone'
    """
    for d in table("medications")["drug"]:
        if key in (d["id"], d["hcpcs"]):
            return d
    raise refuse(
        RULES["medadmin.right-drug"],
        "Medication",
        "drug",
        "a drug of data/medications.toml (id or HCPCS code)",
        key,
    )


def expected_dose_mg(key: str, weight_kg: float) -> float | None:
    """The weight-based pediatric dose (mg/kg x weight, capped at the maximum), or None.

    Examples
    --------
    >>> expected_dose_mg("ceftriaxone", 30.0), expected_dose_mg("ketorolac", 30.0)
    (1000.0, None)
    """
    d = drug(key)
    if "peds_mg_per_kg" not in d:
        return None
    return round(min(weight_kg * d["peds_mg_per_kg"], d.get("max_mg", float("inf"))), 1)


def allowed_sites(route: str, months: int) -> list[str]:
    """Injection sites (v3-ActSite) for ``route`` at ``months`` of age.

    Examples
    --------
    >>> allowed_sites("IM", 60)
    ['LD', 'RD', 'LT', 'RT']
    """
    for r in table("injection_sites")["rule"]:
        if r["route"] == route and r["min_months"] <= months < r["max_months"]:
            return list(r["sites"])
    return []


def allergy_conflicts(session: Session, patient: str, key: str) -> tuple[list[str], list[str]]:
    """(refused, precaution) allergy substances of the patient's chart for drug ``key``.

    Examples
    --------
    >>> s = demo_session()
    >>> allergy_conflicts(s, s.search("Patient").first()["id"], "cyanocobalamin")
    ([], [])
    """
    ref = patient if patient.startswith("Patient/") else f"Patient/{patient}"
    classes = set(drug(key)["classes"])
    refused: list[str] = []
    caution: list[str] = []
    rules = {a["snomed"]: a for a in table("medications")["allergy"]}
    for a in session.search("AllergyIntolerance", patient=ref).fetch():
        status = ((a.get("clinicalStatus") or {}).get("coding") or [{}])[0].get("code")
        if status not in (None, "active"):
            continue
        if ((a.get("verificationStatus") or {}).get("coding") or [{}])[0].get(
            "code"
        ) == "entered-in-error":
            continue
        for c in (a.get("code") or {}).get("coding", []):
            rule = rules.get(c.get("code"))
            if not rule:
                continue
            if classes & set(rule["refuse"]):
                refused.append(rule["display"])
            elif classes & set(rule["precaution"]):
                caution.append(rule["display"])
    return refused, caution


def order_for(session: Session, order: str) -> dict[str, Any]:
    """Read the MedicationRequest ``order`` (refused when absent or not active).

    Examples
    --------
    >>> order_for(demo_session(), "MedicationRequest/none")
    Traceback (most recent call last):
    ...
    ehr_sandbox.workflows.base.RuleRefused: MedicationAdministration: request: expected an active MedicationRequest (an order) (found 'MedicationRequest/none'). Refused by rule medadmin.order: a medication is given only against an active order [MAERB I.P.4 (rights of medication administration); ISMP]
    """
    rule = RULES["medadmin.order"]
    try:
        mr = session.read(order)
    except NotFound:
        raise refuse(
            rule,
            "MedicationAdministration",
            "request",
            "an active MedicationRequest (an order)",
            order,
        ) from None
    if mr.get("resourceType") != "MedicationRequest" or mr.get("status") != "active":
        raise refuse(
            rule,
            "MedicationAdministration",
            "request",
            "an active MedicationRequest (an order)",
            f"{order} ({mr.get('status')})",
        )
    return mr


def _order_code(mr: dict[str, Any]) -> str | None:
    for c in (mr.get("medicationCodeableConcept") or {}).get("coding", []):
        if c.get("system") == HCPCS:
            return c.get("code")
    return None


def _order_dose(mr: dict[str, Any]) -> tuple[float | None, str | None]:
    di = (mr.get("dosageInstruction") or [{}])[0]
    dq = ((di.get("doseAndRate") or [{}])[0]).get("doseQuantity") or {}
    route = ((di.get("route") or {}).get("coding") or [{}])[0].get("code")
    return dq.get("value"), route


def _weight_today(session: Session, patient: str) -> float | None:
    since = (now(session) - timedelta(hours=24)).date().isoformat()
    found = (
        session.search("Observation", subject=patient, code=f"{LOINC}|29463-7", date=f"ge{since}")
        .sort("-date")
        .fetch()
    )
    for o in found:
        if o.get("status") in ("final", "amended", "corrected"):
            q = o.get("valueQuantity") or {}
            factor = {"kg": 1.0, "[lb_av]": 0.45359237, "g": 0.001}.get(q.get("code"))
            if factor is not None and q.get("value") is not None:
                return float(q["value"]) * factor
    return None


def administer(
    session: Session,
    patient: str,
    order: str,
    *,
    drug_key: str,
    dose_mg: float,
    route: str,
    site: str | None,
    lot: str,
    expiry: str,
    witness: Session | None = None,
    allergy_override: str | None = None,
    encounter: str | None = None,
) -> dict[str, Any]:
    """Give a drug against an order, after every check; returns the MedicationAdministration.

    Parameters
    ----------
    session : Session
        The MA's (or nurse's) session.
    patient : str
        ``Patient/<id>``, identified first.
    order : str
        ``MedicationRequest/<id>`` — the provider's active order.
    drug_key : str
        Drug id or HCPCS code of ``data/medications.toml``.
    dose_mg : float
        Dose given, mg.
    route : str
        v3-RouteOfAdministration code (``IM``, ``SC``, ``PO``...).
    site : str or None
        v3-ActSite code (``LD``, ``RT``...) for injections.
    lot, expiry : str
        Lot number and expiry date (``YYYY-MM-DD``) from the vial.
    witness : Session, optional
        The witness's own session (controlled substances).
    allergy_override : str, optional
        The provider's documented decision for a cross-reactive class (e.g. cephalosporin in
        penicillin allergy).

    Raises
    ------
    RuleRefused
        One of :data:`RULES` (``medadmin.*``) or ``care.two-identifiers``; nothing is written.

    Examples
    --------
    >>> s = demo_session()
    >>> p = s.search("Patient").first()
    >>> ref = identify(s, p["id"], birth_date=p["birthDate"], mrn=mrn_of(p))
    >>> administer(s, ref, "MedicationRequest/none", drug_key="ceftriaxone", dose_mg=500,
    ...            route="IM", site="LD", lot="A1", expiry="2030-01-01")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ehr_sandbox.workflows.base.RuleRefused: MedicationAdministration: request: expected an active MedicationRequest (an order) ...
    """
    ref = require_identified(session, patient, "MedicationAdministration")
    mr = order_for(session, order)
    if (mr.get("subject") or {}).get("reference") != ref:
        raise refuse(
            RULES["medadmin.right-patient"],
            "MedicationAdministration",
            "subject",
            "the patient the order was written for",
            ref,
        )
    d = drug(drug_key)
    if _order_code(mr) != d["hcpcs"]:
        raise refuse(
            RULES["medadmin.right-drug"],
            "MedicationAdministration",
            "medication",
            "the drug on the order",
            d["display"],
        )
    ordered, ordered_route = _order_dose(mr)
    if ordered is None or abs(float(ordered) - float(dose_mg)) > 1e-6:
        raise refuse(
            RULES["medadmin.right-dose"],
            "MedicationAdministration",
            "dosage.dose",
            "the dose on the order",
            dose_mg,
        )
    if route != ordered_route or route not in d["routes"]:
        raise refuse(
            RULES["medadmin.right-route"],
            "MedicationAdministration",
            "dosage.route",
            "the route on the order",
            route,
        )
    moment = now(session)
    window = (mr.get("dispenseRequest") or {}).get("validityPeriod") or {}
    start = parse_instant(window.get("start") or mr.get("authoredOn") or "1900-01-01")
    end = parse_instant(window["end"]) if window.get("end") else start + timedelta(hours=24)
    if not start <= moment <= end:
        raise refuse(
            RULES["medadmin.right-time"],
            "MedicationAdministration",
            "effectiveDateTime",
            "a time inside the order's window",
            now_text(session),
        )
    chart = read_patient(session, ref)
    on = today(session)
    if age_years(chart, on) < 18 and "peds_mg_per_kg" in d:
        weight = _weight_today(session, ref)
        if weight is None:
            raise refuse(
                RULES["medadmin.weight-dose"],
                "MedicationAdministration",
                "dosage.dose",
                "a weight measured today (record it with vitals first)",
                None,
            )
        want = expected_dose_mg(d["id"], weight) or 0.0
        tol = table("medications")["dosing"]["tolerance"]
        if abs(float(dose_mg) - want) > tol * want:
            raise refuse(
                RULES["medadmin.weight-dose"],
                "MedicationAdministration",
                "dosage.dose",
                f"a dose within {tol:.0%} of {d['peds_mg_per_kg']:g} mg/kg x {weight:.1f} kg "
                f"(max {d.get('max_mg', 0):g} mg): query the order with the provider",
                dose_mg,
            )
    elif "adult_max_mg" in d and float(dose_mg) > d["adult_max_mg"]:
        raise refuse(
            RULES["medadmin.right-dose"],
            "MedicationAdministration",
            "dosage.dose",
            f"at most the maximum single dose ({d['adult_max_mg']:g} mg)",
            dose_mg,
        )
    if age_years(chart, on) < d.get("min_age_years", 0):
        raise refuse(
            RULES["medadmin.weight-dose"],
            "MedicationAdministration",
            "subject",
            f"a patient aged {d['min_age_years']} or older for {d['display']}",
            age_years(chart, on),
        )
    refused, caution = allergy_conflicts(session, ref, d["id"])
    if refused:
        raise refuse(
            RULES["medadmin.allergy"],
            "MedicationAdministration",
            "medication",
            "a drug the patient is not allergic to",
            f"{d['display']} (allergy: {', '.join(refused)})",
        )
    if caution and not (allergy_override and len(allergy_override.split()) >= 3):
        raise refuse(
            RULES["medadmin.allergy"],
            "MedicationAdministration",
            "allergy_override",
            "the provider's documented decision to give a cross-reactive drug",
            f"{d['display']} (allergy: {', '.join(caution)})",
        )
    mine = set(d["classes"])
    if mine:
        for ma in session.search(
            "MedicationAdministration", subject=ref, status="completed"
        ).fetch():
            when = ma.get("effectiveDateTime", "")[:10]
            if when != on.isoformat():
                continue
            codes = _administered_codes(ma)
            if any(mine & classes_of(c) for c in codes):
                raise refuse(
                    RULES["medadmin.duplicate"],
                    "MedicationAdministration",
                    "medication",
                    "no second drug of the same class today",
                    f"MedicationAdministration/{ma['id']}",
                )
    if route in ("IM", "SC"):
        sites = allowed_sites(route, age_months(chart, on))
        if site not in sites:
            raise refuse(
                RULES["medadmin.site"],
                "MedicationAdministration",
                "dosage.site",
                f"a {route} site for this age: {', '.join(sites)}",
                site,
            )
    if not lot or not expiry:
        raise refuse(
            RULES["medadmin.lot-expiry"],
            "MedicationAdministration",
            "medication.batch",
            "the lot number and expiry date",
            {"lot": lot, "expiry": expiry},
        )
    if str(expiry)[:10] < on.isoformat():
        raise refuse(
            RULES["medadmin.lot-expiry"],
            "MedicationAdministration",
            "medication.batch.expirationDate",
            "an unexpired lot",
            expiry,
        )
    schedule = d.get("schedule")
    performers: list[dict[str, Any]] = [
        {"function": coding(PERFORM_FUNCTION, "performer", "Performer"), "actor": user_ref(session)}
    ]
    if schedule in table("medications")["dosing"]["witness_schedules"]:
        if witness is None or witness.user.username == session.user.username:
            raise refuse(
                RULES["medadmin.witness"],
                "MedicationAdministration",
                "performer",
                "a second licensed person as witness (their own session)",
                None if witness is None else witness.user.username,
            )
        performers.append(
            {"function": coding(PERFORM_FUNCTION, "witness", "Witness"), "actor": user_ref(witness)}
        )
    units = dose_mg / d["mg_per_unit"] if d["mg_per_unit"] else None
    admin: dict[str, Any] = {
        "resourceType": "MedicationAdministration",
        "contained": [
            {
                "resourceType": "Medication",
                "id": "med",
                "code": coding(HCPCS, d["hcpcs"], d["display"]),
                "batch": {"lotNumber": str(lot), "expirationDate": str(expiry)[:10]},
            }
        ],
        "status": "completed",
        "medicationReference": {"reference": "#med", "display": d["display"]},
        "subject": {"reference": ref},
        "effectiveDateTime": now_text(session),
        "performer": performers,
        "request": {"reference": f"MedicationRequest/{mr['id']}"},
        "dosage": {
            "route": coding(ROUTE, route, ROUTES.get(route)),
            "dose": {
                "value": dose_mg,
                "unit": "mg",
                "system": UCUM,
                "code": "mg",
            },
        },
    }
    if site:
        admin["dosage"]["site"] = coding(ACT_SITE, site, SITES.get(site))
    if mr.get("reasonCode"):
        admin["reasonCode"] = mr["reasonCode"]
    if encounter or mr.get("encounter"):
        admin["context"] = {"reference": encounter or mr["encounter"]["reference"]}
    notes = []
    if units is not None:
        notes.append(f"{units:g} HCPCS unit(s) of {d['hcpcs']}")
    if caution:
        notes.append(f"Cross-reactive allergy ({', '.join(caution)}): {allergy_override}")
    if notes:
        admin["note"] = [{"text": n} for n in notes]
    return write(session, admin, operation="medadmin.administer")


def _administered_codes(ma: dict[str, Any]) -> list[str]:
    out = [c.get("code") for c in (ma.get("medicationCodeableConcept") or {}).get("coding", [])]
    for con in ma.get("contained", []):
        out += [c.get("code") for c in (con.get("code") or {}).get("coding", [])]
    return [c for c in out if c]


def record_refusal(
    session: Session, patient: str, order: str, reason: str, *, code: str = "PATOBJ"
) -> dict[str, Any]:
    """Record a dose not given (``not-done``) with its status reason.

    ``code`` is a v3-ActReason code (``PATOBJ`` patient objection, ``MEDPREC`` medical
    precaution, ``OSTOCK`` out of stock); ``reason`` says what happened.

    Examples
    --------
    >>> record_refusal(demo_session(), "Patient/x", "MedicationRequest/y", "")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ehr_sandbox.workflows.base.RuleRefused: MedicationAdministration: statusReason: expected ...
    """
    if not reason or len(str(reason).split()) < 3:
        raise refuse(
            RULES["medadmin.refusal-reason"],
            "MedicationAdministration",
            "statusReason",
            "the reason the dose was not given (who refused, why, provider informed)",
            reason,
        )
    ref = require_identified(session, patient, "MedicationAdministration")
    mr = order_for(session, order)
    if (mr.get("subject") or {}).get("reference") != ref:
        raise refuse(
            RULES["medadmin.right-patient"],
            "MedicationAdministration",
            "subject",
            "the patient the order was written for",
            ref,
        )
    admin = {
        "resourceType": "MedicationAdministration",
        "status": "not-done",
        "statusReason": [
            {
                "coding": [{"system": ACT_REASON, "code": code}],
                "text": str(reason),
            }
        ],
        "medicationCodeableConcept": mr.get("medicationCodeableConcept"),
        "subject": {"reference": ref},
        "effectiveDateTime": now_text(session),
        "performer": [{"actor": user_ref(session)}],
        "request": {"reference": f"MedicationRequest/{mr['id']}"},
    }
    return write(session, admin, operation="medadmin.refusal", reason=str(reason))


def record_response(session: Session, administration: str, text: str) -> dict[str, Any]:
    """Add the patient's response (e.g. observed 15 minutes, no reaction) to an administration.

    Examples
    --------
    >>> record_response(demo_session(), "MedicationAdministration/x", "ok")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ehr_sandbox.workflows.base.RuleRefused: MedicationAdministration/x: note: expected ...
    """
    if not text or len(str(text).split()) < 3:
        raise refuse(
            RULES["medadmin.refusal-reason"],
            administration,
            "note",
            "the patient's response in a sentence",
            text,
        )
    ma = session.read(administration)
    ma.setdefault("note", []).append({"text": f"Response: {text}", "time": now_text(session)})
    return write(session, ma, operation="medadmin.response")


def query_order(session: Session, patient: str, order: str, question: str) -> dict[str, Any]:
    """Hold the dose and ask the prescriber to clarify the order (a Task focused on the order).

    The MA never changes a dose: a dose that fails a check goes back to the prescriber.

    Examples
    --------
    >>> query_order(demo_session(), "Patient/x", "MedicationRequest/y", "dose?")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ehr_sandbox.workflows.base.RuleRefused: Task: description: expected the question for the prescriber ...
    """
    from ehr_sandbox.workflows.care import routed_task

    if not question or len(str(question).split()) < 4:
        raise refuse(
            RULES["medadmin.weight-dose"],
            "Task",
            "description",
            "the question for the prescriber (what does not fit, and why)",
            question,
        )
    ref = require_identified(session, patient, "Task")
    mr = order_for(session, order)
    owner = (mr.get("requester") or {}).get("reference") or "Practitioner/prac-dr.patel"
    task = routed_task(
        session,
        ref,
        owner,
        f"Order clarification needed before giving: {question}",
        focus=f"MedicationRequest/{mr['id']}",
        priority="urgent",
        business_status="dose held: order queried",
    )
    return write(session, task, operation="medadmin.query-order")
