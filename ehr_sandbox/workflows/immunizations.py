"""Immunizations: schedule and licensure checks, VIS, lot/MVX/site/route, deferral, registry report.

:func:`give` records a dose only when the vaccine is licensed for the patient's age
(``data/vaccines.toml``), the minimum age and the minimum interval since the previous dose of
the series are met (the CDC schedule of ``synthetic/content/data/immunizations.toml``), the
screening questions are all answered and none shows a contraindication or precaution, the
route and site fit the vaccine and the age, the lot is unexpired, and the current VIS edition
was given today. :func:`defer` records a dose not given (``not-done`` with a reason);
:func:`registry_message` renders the HL7 v2.5.1 VXU^V04 message for the state registry (IIS)
and records that it was sent. :func:`next_doses` is the catch-up view of the child series.

>>> vaccine("03")["mvx"], vaccine("03")["routes"]
('MSD', ['SC', 'IM'])
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from ehr_sandbox.errors import ValidationError
from ehr_sandbox.workflows import hl7v2
from ehr_sandbox.workflows.base import Rule, write
from ehr_sandbox.workflows.care import (
    age_days,
    age_months,
    age_years,
    coding,
    demo_session,
    identify,
    mrn_of,
    now_text,
    read_patient,
    refuse,
    require_identified,
    today,
    user_ref,
)
from ehr_sandbox.workflows.content import table
from ehr_sandbox.workflows.medication_administration import ACT_SITE, ROUTE, ROUTES, SITES
from ehr_sandbox.workflows.medication_administration import allowed_sites as _sites
from synthetic.systems import CDC_VIS_WEB, CVX, MVX, UCUM, V2_0443, V3_ACT_REASON

if TYPE_CHECKING:
    from ehr_sandbox.session import Session

__all__ = [
    "CVX",
    "MVX",
    "RULES",
    "defer",
    "demo_session",
    "give",
    "identify",
    "mrn_of",
    "next_doses",
    "prior_doses",
    "registry_message",
    "series_for",
    "vaccine",
]

ACT_REASON = V3_ACT_REASON
HL70064 = "urn:oid:2.16.840.1.113883.12.64"
"""HL7 table 0064 (financial class), whose V-codes are the VFC eligibility categories."""
DEFER_REASONS = {
    "IMMUNE": "immunity",
    "MEDPREC": "medical precaution",
    "OSTOCK": "product out of stock",
    "PATOBJ": "patient objection",
}
_ACIP = "ACIP General Best Practice Guidelines (2023); CDC immunization schedules 2025"
RULES: dict[str, Rule] = {
    r.id: r
    for r in (
        Rule("immunizations.product", "the vaccine is one the clinic stocks (CVX)", _ACIP),
        Rule(
            "immunizations.licensure",
            "the vaccine is licensed for the patient's age",
            "FDA package inserts",
        ),
        Rule(
            "immunizations.minimum-age",
            "a dose is not given before the series' minimum age",
            _ACIP,
        ),
        Rule(
            "immunizations.minimum-interval",
            "a dose is not given before the minimum interval since the previous dose",
            _ACIP,
        ),
        Rule(
            "immunizations.series-complete", "no dose beyond the end of a completed series", _ACIP
        ),
        Rule(
            "immunizations.screening",
            "every contraindication/precaution screening question is answered before vaccinating",
            "ACIP; Immunize.org screening checklists",
        ),
        Rule(
            "immunizations.contraindication",
            "a vaccine is not given when a contraindication is present",
            "ACIP contraindications and precautions (2023)",
        ),
        Rule(
            "immunizations.precaution",
            "a dose with a precaution present is deferred (recorded not-done with the reason) "
            "unless the provider decides otherwise",
            "ACIP contraindications and precautions (2023)",
        ),
        Rule(
            "immunizations.route-site",
            "the route is one the vaccine is licensed for and the site fits the route and age",
            "CDC Vaccine Administration (2023); package inserts",
        ),
        Rule(
            "immunizations.lot",
            "lot number and expiry are recorded; an expired lot is never given",
            "42 U.S.C. 300aa-25 (National Childhood Vaccine Injury Act record keeping)",
        ),
        Rule(
            "immunizations.vis",
            "the current VIS edition is given before vaccination and its edition date and the "
            "date given are recorded",
            "42 U.S.C. 300aa-26 (National Childhood Vaccine Injury Act); CDC VIS editions",
        ),
        Rule("immunizations.deferral", "a deferred dose is recorded with its reason", _ACIP),
    )
}


def vaccine(cvx: str) -> dict[str, Any]:
    """The stocked vaccine with CVX code ``cvx`` (``data/vaccines.toml``).

    Examples
    --------
    >>> vaccine("115")["display"]
    'Tdap vaccine'
    """
    for v in table("vaccines")["vaccine"]:
        if v["cvx"] == cvx:
            return v
    raise refuse(
        RULES["immunizations.product"],
        "Immunization",
        "vaccineCode",
        "a stocked vaccine (CVX)",
        cvx,
    )


def series_for(cvx: str, years: int) -> Any:
    """The CDC schedule entry (content) for ``cvx`` at age ``years`` (child series first).

    Examples
    --------
    >>> len(series_for("20", 1).doses)
    5
    """
    from synthetic.content import load_content

    found = [v for v in load_content().immunizations if v.cvx == cvx]
    if not found:
        return None
    if years < 18:
        found.sort(key=lambda v: v.group != "child")
    else:
        found.sort(key=lambda v: v.group == "child")
    return found[0]


def prior_doses(session: Session, patient: str, cvx: str) -> list[date]:
    """Dates of completed doses of ``cvx`` on the chart (voided and not-done excluded), sorted.

    Examples
    --------
    >>> prior_doses(demo_session(), "Patient/nobody", "20")
    []
    """
    ref = patient if patient.startswith("Patient/") else f"Patient/{patient}"
    out = []
    for imm in session.search("Immunization", patient=ref).fetch():
        if imm.get("status") != "completed":
            continue
        if any(c.get("code") == cvx for c in (imm.get("vaccineCode") or {}).get("coding", [])):
            out.append(date.fromisoformat(str(imm.get("occurrenceDateTime", ""))[:10]))
    return sorted(out)


def next_doses(session: Session, patient: str) -> list[dict[str, Any]]:
    """Catch-up view of the child series: next dose number and earliest date for each.

    Each row: ``cvx``, ``display``, ``dose`` (1-based), ``earliest`` (ISO date: the later of the
    minimum age and the previous dose + minimum interval), ``due`` (today is on or after both
    ``earliest`` and the recommended age).

    Examples
    --------
    >>> s = demo_session()
    >>> rows = next_doses(s, s.search("Patient").first()["id"])
    >>> all({"cvx", "dose", "earliest", "due"} <= set(r) for r in rows)
    True
    """
    from synthetic.content import load_content

    ref = patient if patient.startswith("Patient/") else f"Patient/{patient}"
    chart = read_patient(session, ref)
    on = today(session)
    if age_years(chart, on) >= 19:
        return []
    born = date.fromisoformat(chart["birthDate"][:10])
    rows = []
    for v in load_content().immunizations:
        if v.group != "child" or not v.doses:
            continue
        given = prior_doses(session, ref, v.cvx)
        n = len(given)
        if n >= len(v.doses):
            continue
        d = v.doses[n]
        earliest = born + timedelta(days=d.min_age_days)
        if given:
            earliest = max(earliest, given[-1] + timedelta(days=d.min_interval_days))
        recommended = born + timedelta(days=round(d.age_months * 30.4375))
        rows.append(
            {
                "cvx": v.cvx,
                "display": v.display,
                "dose": n + 1,
                "earliest": earliest.isoformat(),
                "due": max(earliest, recommended) <= on,
            }
        )
    return rows


def _check_schedule(session: Session, ref: str, chart: dict[str, Any], cvx: str, on: date) -> int:
    """Minimum age and interval; returns the dose number in the series."""
    years = age_years(chart, on)
    series = series_for(cvx, years)
    given = prior_doses(session, ref, cvx)
    dose_no = len(given) + 1
    if series is None or not series.doses:
        return dose_no
    if dose_no > len(series.doses):
        raise refuse(
            RULES["immunizations.series-complete"],
            "Immunization",
            "protocolApplied.doseNumber",
            f"at most {len(series.doses)} doses of {series.display}",
            dose_no,
        )
    d = series.doses[dose_no - 1]
    if age_days(chart, on) < d.min_age_days:
        raise refuse(
            RULES["immunizations.minimum-age"],
            "Immunization",
            "occurrenceDateTime",
            f"dose {dose_no} of {series.display} at {d.min_age_days} days of age or later",
            f"{age_days(chart, on)} days",
        )
    if given and (on - given[-1]).days < d.min_interval_days:
        raise refuse(
            RULES["immunizations.minimum-interval"],
            "Immunization",
            "occurrenceDateTime",
            f"at least {d.min_interval_days} days after dose {dose_no - 1} ({given[-1].isoformat()})",
            f"{(on - given[-1]).days} days",
        )
    return dose_no


def give(
    session: Session,
    patient: str,
    *,
    cvx: str,
    lot: str,
    expiry: str,
    route: str,
    site: str | None,
    vis_edition: str | None,
    screening: dict[str, bool],
    dose_ml: float = 0.5,
    encounter: str | None = None,
    eligibility: str | None = None,
) -> dict[str, Any]:
    """Give and record one vaccine dose after every check.

    Parameters
    ----------
    session : Session
        The MA's or nurse's session.
    patient : str
        ``Patient/<id>``, identified first.
    cvx : str
        CVX code of the vaccine (``data/vaccines.toml``).
    lot, expiry : str
        From the vial (expiry ``YYYY-MM-DD``).
    route, site : str
        v3-RouteOfAdministration (``IM``, ``SC``, ``PO``) and v3-ActSite (``LD``, ``RT``...).
    vis_edition : str
        Edition date (``YYYY-MM-DD``) of the VIS handed to the patient/parent today.
    screening : dict
        Every key of ``[screening]`` in ``data/vaccines.toml`` -> True/False.
    eligibility : str, optional
        The dose's vaccine funding program eligibility screened today (VFC, HL7 table 0064:
        ``V01`` not eligible ... ``V05``; ``[eligibility]`` of ``data/immunization_registry.toml``).

    Returns
    -------
    dict
        The Immunization (CVX, MVX manufacturer, lot, expiry, site, route, dose, VIS, dose number).

    Raises
    ------
    RuleRefused
        ``immunizations.*`` (see :data:`RULES`) or ``care.two-identifiers``.

    Examples
    --------
    >>> s = demo_session()
    >>> p = s.search("Patient").first()
    >>> ref = identify(s, p["id"], birth_date=p["birthDate"], mrn=mrn_of(p))
    >>> give(s, ref, cvx="140", lot="FLU1", expiry="2030-06-30", route="IM", site="LD",
    ...      vis_edition=None, screening={})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ehr_sandbox.workflows.base.RuleRefused: Immunization: education: expected the current VIS ...
    """
    ref = require_identified(session, patient, "Immunization")
    v = vaccine(cvx)
    categories = table("immunization_registry")["eligibility"]["category"]
    if eligibility is not None and eligibility not in categories:
        raise ValidationError(
            "Immunization",
            "programEligibility",
            "a VFC eligibility category (" + ", ".join(categories) + ")",
            found=eligibility,
        )
    chart = read_patient(session, ref)
    on = today(session)
    if not vis_edition or str(vis_edition)[:10] != v["vis"]:
        raise refuse(
            RULES["immunizations.vis"],
            "Immunization",
            "education",
            f"the current VIS edition for {v['display']} handed out today",
            vis_edition,
        )
    questions = table("vaccines")["screening"]
    missing = [k for k in questions if not isinstance(screening.get(k), bool)]
    if missing:
        raise refuse(
            RULES["immunizations.screening"],
            "Immunization",
            "screening",
            "an answer (True/False) to every screening question",
            f"unanswered: {', '.join(missing)}",
        )
    contra = [k for k in v["contraindications"] if screening.get(k)]
    if contra:
        raise refuse(
            RULES["immunizations.contraindication"],
            "Immunization",
            "screening",
            f"no contraindication to {v['display']} (defer and tell the provider)",
            ", ".join(contra),
        )
    caution = [k for k in v["precautions"] if screening.get(k)]
    if caution:
        raise refuse(
            RULES["immunizations.precaution"],
            "Immunization",
            "screening",
            "no precaution present (or defer the dose with the reason)",
            ", ".join(caution),
        )
    days = age_days(chart, on)
    if not v["min_age_days"] <= days <= v["max_age_days"]:
        raise refuse(
            RULES["immunizations.licensure"],
            "Immunization",
            "vaccineCode",
            f"a vaccine licensed for this age ({v['min_age_days']}-{v['max_age_days']} days)",
            f"{v['display']} at {days} days",
        )
    dose_no = _check_schedule(session, ref, chart, cvx, on)
    if route not in v["routes"]:
        raise refuse(
            RULES["immunizations.route-site"],
            "Immunization",
            "route",
            "one of " + ", ".join(v["routes"]),
            route,
        )
    if route in ("IM", "SC"):
        sites = _sites(route, age_months(chart, on))
        if site not in sites:
            raise refuse(
                RULES["immunizations.route-site"],
                "Immunization",
                "site",
                f"a {route} site for this age: {', '.join(sites)}",
                site,
            )
    if not lot or not expiry:
        raise refuse(
            RULES["immunizations.lot"],
            "Immunization",
            "lotNumber",
            "the lot number and expiry date",
            {"lot": lot, "expiry": expiry},
        )
    if str(expiry)[:10] < on.isoformat():
        raise refuse(
            RULES["immunizations.lot"],
            "Immunization",
            "expirationDate",
            "an unexpired lot",
            expiry,
        )
    series = series_for(cvx, age_years(chart, on))
    imm: dict[str, Any] = {
        "resourceType": "Immunization",
        "status": "completed",
        "vaccineCode": coding(CVX, cvx, v["display"]),
        "patient": {"reference": ref},
        "occurrenceDateTime": now_text(session),
        "recorded": now_text(session),
        "primarySource": True,
        "manufacturer": {
            "identifier": {"system": MVX, "value": v["mvx"]},
            "display": v["manufacturer"],
        },
        "lotNumber": str(lot),
        "expirationDate": str(expiry)[:10],
        "route": coding(ROUTE, route, ROUTES.get(route)),
        "doseQuantity": {
            "value": dose_ml,
            "unit": "mL",
            "system": UCUM,
            "code": "mL",
        },
        "performer": [
            {
                "function": coding(V2_0443, "AP", "Administering Provider"),
                "actor": user_ref(session),
            }
        ],
        "education": [
            {
                "reference": CDC_VIS_WEB,
                "publicationDate": v["vis"],
                "presentationDate": now_text(session),
            }
        ],
        "protocolApplied": [
            {
                "series": series.display if series is not None else v["display"],
                "doseNumberPositiveInt": dose_no,
            }
        ],
    }
    if eligibility is not None:
        imm["programEligibility"] = [coding(HL70064, eligibility, categories[eligibility])]
    if site:
        imm["site"] = coding(ACT_SITE, site, SITES.get(site))
    if encounter:
        imm["encounter"] = {"reference": encounter}
    return write(session, imm, operation="immunizations.give")


def defer(session: Session, patient: str, cvx: str, reason: str, text: str) -> dict[str, Any]:
    """Record a dose not given today (``not-done``) with its reason.

    Parameters
    ----------
    reason : str
        v3-ActReason: ``IMMUNE``, ``MEDPREC`` (contraindication/precaution), ``OSTOCK``, ``PATOBJ``.
    text : str
        What happened (e.g. "pregnant: MMR contraindicated; give postpartum").

    Examples
    --------
    >>> s = demo_session()
    >>> p = s.search("Patient").first()
    >>> ref = identify(s, p["id"], birth_date=p["birthDate"], mrn=mrn_of(p))
    >>> d = defer(s, ref, "140", "PATOBJ", "parent declined influenza vaccine today; VIS given")
    >>> d["status"], d["statusReason"]["coding"][0]["code"]
    ('not-done', 'PATOBJ')
    """
    ref = require_identified(session, patient, "Immunization")
    v = vaccine(cvx)
    if reason not in DEFER_REASONS or not text or len(str(text).split()) < 3:
        raise refuse(
            RULES["immunizations.deferral"],
            "Immunization",
            "statusReason",
            "a reason code (" + ", ".join(DEFER_REASONS) + ") and what happened",
            reason if reason not in DEFER_REASONS else text,
        )
    imm = {
        "resourceType": "Immunization",
        "status": "not-done",
        "statusReason": {
            "coding": [{"system": ACT_REASON, "code": reason, "display": DEFER_REASONS[reason]}],
            "text": str(text),
        },
        "vaccineCode": coding(CVX, cvx, v["display"]),
        "patient": {"reference": ref},
        "occurrenceDateTime": now_text(session),
        "recorded": now_text(session),
        "primarySource": True,
        "note": [{"text": str(text)}],
    }
    return write(session, imm, operation="immunizations.defer", reason=str(text))


def _hl7(value: Any) -> str:
    return str(value if value is not None else "").replace("|", " ").replace("^", " ")


def _hl7_date(value: Any) -> str:
    return str(value or "")[:10].replace("-", "")


def _reason(imm: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The status-reason coding of a dose and its row of ``not_given`` (empty when given)."""
    coded = ((imm.get("statusReason") or {}).get("coding") or [{}])[0]
    if imm.get("status") == "completed":
        return coded, {}
    rows = table("immunization_registry")["not_given"]
    return coded, rows.get(str(coded.get("code")), {"completion": "NA", "filler_order": "9999^CDC"})


def _immunity(imm: dict[str, Any], row: dict[str, Any]) -> dict[str, Any]:
    """The disease with presumed immunity for a dose not given for that reason (else empty)."""
    cvx = imm["vaccineCode"]["coding"][0]["code"]
    if not row.get("administered"):
        return {}
    return table("immunization_registry").get("immunity", {}).get(str(cvx), {})


def _rxa_values(imm: dict[str, Any], adult: bool) -> dict[str, str]:
    """The RXA fields of a dose (given or not), by their spec names (see :mod:`.hl7v2`)."""
    vc = imm["vaccineCode"]["coding"][0]
    done = imm.get("status") == "completed"
    coded, row = _reason(imm)
    maker = imm.get("manufacturer") or {}
    actor = str(((imm.get("performer") or [{}])[0].get("actor") or {}).get("reference", ""))
    when = _hl7_date(imm.get("occurrenceDateTime"))
    values = {
        "Give Sub-ID Counter": "0",
        "Administration Sub-ID Counter": "1",
        "Date/Time Start of Administration": when,
        "Date/Time End of Administration": when,
        "Administered Code": f"{vc['code']}^{_hl7(vc.get('display'))}^CVX",
        "Administered Amount": str((imm.get("doseQuantity") or {}).get("value", 999))
        if done
        else "999",
        "Administered Units": "mL^mL^UCUM" if done else "",
        "Completion Status": "CP" if done else str(row["completion"]),
        "Action Code-RXA": "A",
    }
    if done:
        values |= {
            "Administration Notes": "00^New immunization record^NIP001",
            "Administering Provider": _hl7(actor.rsplit("/", 1)[-1]),
            "Substance Lot Number": _hl7(imm.get("lotNumber", "")),
            "Substance Expiration Date": _hl7_date(imm.get("expirationDate")),
            "Substance Manufacturer Name": f"{_hl7((maker.get('identifier') or {}).get('value'))}"
            f"^{_hl7(maker.get('display'))}^MVX",
        }
        return values
    refusal = row.get("refusal_adult" if adult else "refusal_minor")
    if refusal:
        values["Substance/Treatment Refusal Reason"] = f"{refusal[0]}^{refusal[1]}^NIP002"
    if _immunity(imm, row):
        values["Administered Code"] = str(row["administered"])
    return values


def _obx(seq: int, kind: str, observation: list[str], sub: int, value: str, **more: str) -> str:
    return hl7v2.segment(
        "OBX",
        {
            "Set ID - OBX": str(seq),
            "Value Type": kind,
            "Observation Identifier": f"{observation[0]}^{observation[1]}^LN",
            "Observation Sub-ID": str(sub),
            "Observation Value": value,
            "Observation Result Status": "F",
            **more,
        },
    )


def _observations(imm: dict[str, Any]) -> list[str]:
    """The OBX segments of a dose: funding eligibility and the VIS given, or why not given."""
    content = table("immunization_registry")
    if imm.get("status") != "completed":
        coded, row = _reason(imm)
        if not row.get("observation"):
            return []
        if row.get("administered"):
            disease = _immunity(imm, row)
            if not disease:
                return []
            value = f"{disease['code']}^{_hl7(disease['display'])}^SCT"
        else:
            value = f"^{_hl7((imm.get('statusReason') or {}).get('text') or coded.get('display'))}"
        return [_obx(1, "CE", row["observation"], 1, value)]
    out = []
    eligible = next(
        (
            c.get("code")
            for c in ((imm.get("programEligibility") or [{}])[0].get("coding") or [])
            if c.get("system") == HL70064
        ),
        None,
    )
    when = _hl7_date(imm.get("occurrenceDateTime"))
    categories = content["eligibility"]["category"]
    if eligible in categories:
        out.append(
            _obx(
                1,
                "CE",
                ["64994-7", "Vaccine funding program eligibility category"],
                1,
                f"{eligible}^{categories[eligible]}^HL70064",
                **{
                    "Date/Time of the Observation": when,
                    "Observation Method": content["eligibility"]["method"],
                },
            )
        )
    vc = imm["vaccineCode"]["coding"][0]
    vis = content["vis"]
    for sub, ed in enumerate(imm.get("education", []), start=len(out) + 1):
        for observation, kind, value in (
            (vis["vaccine_type"], "CE", f"{vc['code']}^{_hl7(vc.get('display'))}^CVX"),
            (vis["published"], "TS", _hl7_date(ed.get("publicationDate"))),
            (vis["presented"], "TS", _hl7_date(ed.get("presentationDate"))),
        ):
            out.append(_obx(len(out) + 1, kind, observation, sub, value))
    return out


def registry_message(session: Session, immunization: str) -> tuple[str, dict[str, Any]]:
    """Render the HL7 v2.5.1 VXU^V04 message for the registry and record that it was sent.

    The header, patient and order segments, the RXA/RXR of the dose and its OBX group follow
    the CDC implementation guide (release 1.5) through ``data/immunization_registry.toml``:
    a refusal sends RXA-20 ``RE`` with its NIP002 reason in RXA-18, a dose not given for
    another reason ``NA`` with the OBX that says why, and a given dose its funding eligibility
    (when recorded) and, for each VIS, the vaccine type, edition date and date presented.

    Returns the message text and the ``Communication`` (to the state IIS) that records it.

    Examples
    --------
    >>> s = demo_session()
    >>> p = s.search("Patient").first()
    >>> ref = identify(s, p["id"], birth_date=p["birthDate"], mrn=mrn_of(p))
    >>> d = defer(s, ref, "140", "PATOBJ", "parent declined influenza vaccine today")
    >>> text, comm = registry_message(s, f"Immunization/{d['id']}")
    >>> text.splitlines()[0].split("|")[8], "RXA|0|1|" in text, comm["status"]
    ('VXU^V04^VXU_V04', True, 'completed')
    """
    imm = session.read(immunization)
    ref = imm["patient"]["reference"]
    chart = read_patient(session, ref)
    msg = table("immunization_registry")["message"]
    _, row = _reason(imm)
    occurred = str(imm.get("occurrenceDateTime") or "")[:10]
    on = date.fromisoformat(occurred) if len(occurred) == 10 else today(session)
    adult = age_years(chart, on) >= int(row.get("adult_years", 18))
    stamp = now_text(session).replace("-", "").replace(":", "").replace("T", "")[:14]
    name = (chart.get("name") or [{}])[0]
    done = imm.get("status") == "completed"
    segs = [
        hl7v2.segment(
            "MSH",
            {
                "Sending Application": "EHR-SANDBOX",
                "Sending Facility": "CLINIC",
                "Receiving Application": "IIS",
                "Receiving Facility": "STATE",
                "Date/Time of Message": stamp,
                "Message Type": msg["type"],
                "Message Control ID": imm["id"],
                "Processing ID": msg["processing"],
                "Version ID": msg["version"],
                "Accept Acknowledgment Type": msg["accept_ack"],
                "Application Acknowledgment Type": msg["application_ack"],
                "Message Profile Identifier": msg["profile"],
            },
        ),
        hl7v2.segment(
            "PID",
            {
                "Set ID - PID": "1",
                "Patient Identifier List": f"{_hl7(mrn_of(chart))}^^^"
                f"{msg['assigning_authority']}^{msg['identifier_type']}",
                "Patient Name": f"{_hl7(name.get('family'))}^"
                f"{_hl7((name.get('given') or [''])[0])}^^^^^L",
                "Date/Time of Birth": _hl7_date(chart.get("birthDate")),
                "Administrative Sex": {"male": "M", "female": "F"}.get(
                    chart.get("gender", ""), "U"
                ),
            },
        ),
        hl7v2.segment(
            "ORC",
            {
                "Order Control": "RE",
                "Filler Order Number": f"{_hl7(imm['id'])}^{msg['namespace']}"
                if done
                else str(row["filler_order"]),
            },
        ),
        hl7v2.segment("RXA", _rxa_values(imm, adult)),
    ]
    if done:
        route = ((imm.get("route") or {}).get("coding") or [{}])[0].get("code", "")
        site = ((imm.get("site") or {}).get("coding") or [{}])[0].get("code", "")
        segs.append(
            hl7v2.segment(
                "RXR", {"Route": f"{route}^^HL70162", "Administration Site": f"{site}^^HL70163"}
            )
        )
    segs.extend(_observations(imm))
    text = "\r".join(segs).replace("\r", "\n")
    comm = {
        "resourceType": "Communication",
        "status": "completed",
        "category": [{"text": "immunization registry report (HL7 v2.5.1 VXU^V04)"}],
        "subject": {"reference": ref},
        "about": [{"reference": immunization}],
        "sent": now_text(session),
        "sender": user_ref(session),
        "recipient": [{"display": "State immunization information system (IIS)"}],
        "payload": [{"contentString": text}],
    }
    saved = write(session, comm, operation="immunizations.registry-report")
    return text, saved
