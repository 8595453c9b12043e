"""Read the content folder (TOML + CSV), validate it and cross-check every reference.

Layout of a content folder (the shipped one is ``synthetic/content/data``; an instructor's
scenario folder is a full copy with the same layout)::

    content.toml          version
    codes/<key>.csv       one code set per file: '# system:', '# version:', '# licence:' header
    conditions/*.toml     one condition module per file
    populations/*.toml    one population preset per file
    allergies.toml  vitals.toml  labs.toml  immunizations.toml  fees.toml  prevalence.toml
    social.toml  staff.toml  sensitivity.toml  practice.toml  rules.toml
    growth/cdc2000_lms.csv  CDC 2000 growth LMS tables

Any problem raises :class:`~synthetic.errors.ContentError` naming the file (relative to the
folder), the key (dotted, list entries by id where they have one) or CSV line, and what was
expected. Loading is all-or-nothing.

>>> c = load_content()
>>> c is load_content()
True
"""

from __future__ import annotations

import csv
import functools
import hashlib
import tomllib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from synthetic.content.clinical_ma import ClinicalMA
from synthetic.content.models import (
    CodeSet,
    ConditionModule,
    Content,
    Fee,
    Population,
    StaffMember,
    split_ref,
)
from synthetic.errors import ContentError

DEFAULT_ROOT = Path(__file__).resolve().parent / "data"
"""The content shipped with the package."""

CODE_SETS = (
    "loinc",
    "icd10cm",
    "rxnorm",
    "cvx",
    "hcpcs",
    "snomed",
    "procedure",
    "ucum",
    "social_history",
)
"""Code sets every content folder must provide (codes/<key>.csv)."""

HEADER_KEYS = ("system", "version", "licence")

M = TypeVar("M", bound=BaseModel)


def load_content(path: str | Path | None = None) -> Content:
    """Load, validate and cross-check a content folder (the shipped one by default); cached.

    >>> c = load_content()
    >>> "hypertension" in c.conditions and "I10" in c.codes["icd10cm"]
    True
    """
    root = DEFAULT_ROOT if path is None else Path(path)
    return _load_cached(str(root.resolve()))


def clear_cache() -> None:
    """Forget loaded content (for an instructor who edits a folder within one session).

    >>> clear_cache()
    """
    _load_cached.cache_clear()


@functools.cache
def _load_cached(root: str) -> Content:
    return _load(Path(root))


def _load(root: Path) -> Content:
    if not root.is_dir():
        raise ContentError(
            f"expected a content folder, found no directory at {root.name!r}", file=str(root.name)
        )
    meta = read_toml(root, "content.toml")
    codes = {key: read_code_set(root, key) for key in CODE_SETS}
    conditions = _read_folder(root, "conditions", ConditionModule, "module")
    populations = _read_folder(root, "populations", Population, "population")
    fees_doc = read_toml(root, "fees.toml")
    fee_list = _validate_list(Fee, fees_doc, "fees.toml", "fee")
    fees: dict[str, Fee] = {}
    for i, fee in enumerate(fee_list):
        if fee.code in fees:
            raise ContentError(
                f"expected each code once, found {fee.code!r} again",
                file="fees.toml",
                key=f"fee[{i}].code",
            )
        fees[fee.code] = fee
    raw: dict[str, Any] = {
        "version": _version(root, meta),
        "codes": codes,
        "conditions": conditions,
        "populations": populations,
        "fees": fees,
    }
    singles = {
        "allergies": ("allergies.toml", "allergy"),
        "drug_classes": ("drug_classes.toml", "drug_class"),
        "vitals": ("vitals.toml", "vital"),
        "observations": ("observations.toml", "observation"),
        "labs": ("labs.toml", "panel"),
        "immunizations": ("immunizations.toml", "vaccine"),
        "prevalence_targets": ("prevalence.toml", "target"),
        "staff": ("staff.toml", "member"),
        "sensitivity": ("sensitivity.toml", "rule"),
    }
    field_types = Content.model_fields
    for name, (file, table) in singles.items():
        doc = read_toml(root, file)
        item_type = _item_type(field_types[name].annotation)
        items = _validate_list(item_type, doc, file, table)
        if name in ("vitals", "labs", "observations"):
            raw[name] = _by_id(items, file, table)
        else:
            raw[name] = items
    raw["social"] = _validate(
        Content.model_fields["social"].annotation, read_toml(root, "social.toml"), "social.toml", ""
    )
    raw["wellness"] = _validate(
        Content.model_fields["wellness"].annotation,
        read_toml(root, "wellness.toml"),
        "wellness.toml",
        "",
    )
    raw["practice"] = _validate(
        Content.model_fields["practice"].annotation,
        read_toml(root, "practice.toml"),
        "practice.toml",
        "",
    )
    staff_doc = read_toml(root, "staff.toml")
    raw["specialists"] = (
        _validate_list(StaffMember, staff_doc, "staff.toml", "specialist")
        if "specialist" in staff_doc
        else []
    )
    raw["former"] = (
        _validate_list(StaffMember, staff_doc, "staff.toml", "former")
        if "former" in staff_doc
        else []
    )
    raw["rules"] = _validate(
        Content.model_fields["rules"].annotation,
        _with_remittance_texts(root, read_toml(root, "rules.toml")),
        "rules.toml",
        "",
    )
    raw["drug_classes"] = _resolve_drug_classes(raw["drug_classes"], raw["rules"])
    if (root / "clinical_ma.toml").is_file():
        raw["clinical_ma"] = _validate(
            ClinicalMA,
            _with_control_levels(root, read_toml(root, "clinical_ma.toml")),
            "clinical_ma.toml",
            "",
        )
    content = Content.model_validate(raw)
    check_references(content)
    return content


def _remark_codes(root: Path, relative: str) -> dict[str, str]:
    """code -> description of a remittance code list (``carc.csv``, ``rarc.csv``: the X12
    lists the EHR's payer simulator reads too; ``#`` lines are comments)."""
    path = root / relative
    if not path.is_file():
        raise ContentError("expected the file", file=relative)
    lines = [ln for ln in path.read_text("utf-8").splitlines() if ln and not ln.startswith("#")]
    return {row["code"]: row["description"] for row in csv.DictReader(lines)}


def _with_remittance_texts(root: Path, doc: dict[str, Any]) -> dict[str, Any]:
    """``rules.toml`` with each remittance denial's CARC description and RARC remark filled
    in from ``carc.csv`` and ``rarc.csv`` (one copy of each code's text, shared with the EHR's
    payer simulator)."""
    denials = (doc.get("remittance") or {}).get("denial") or []
    if not denials:
        return doc
    carc, rarc = _remark_codes(root, "carc.csv"), _remark_codes(root, "rarc.csv")
    for i, d in enumerate(denials):
        where = f"remittance.denial[{i}]"
        for key in ("description", "remark"):
            if key in d:
                raise ContentError(
                    f"expected no {key}: a code's text is its row in "
                    + ("carc.csv" if key == "description" else "rarc.csv"),
                    file="rules.toml",
                    key=f"{where}.{key}",
                )
        if d.get("carc") not in carc:
            raise ContentError(
                f"expected a CARC code of carc.csv, found {d.get('carc')!r}",
                file="rules.toml",
                key=f"{where}.carc",
            )
        d["description"] = carc[d["carc"]]
        if d.get("rarc"):
            if d["rarc"] not in rarc:
                raise ContentError(
                    f"expected a RARC code of rarc.csv, found {d['rarc']!r}",
                    file="rules.toml",
                    key=f"{where}.rarc",
                )
            d["remark"] = rarc[d["rarc"]]
    return doc


def _with_control_levels(root: Path, doc: dict[str, Any]) -> dict[str, Any]:
    """``clinical_ma.toml`` with each POC device's control levels filled in from its test's
    ``[test.controls]`` in ``poc_tests.toml`` (the one table of POC tests and their controls,
    which the EHR's QC workflow grades against), in the order listed there."""
    devices = doc.get("poc_device") or []
    if not devices:
        return doc
    tests = {t.get("id"): t for t in read_toml(root, "poc_tests.toml").get("test", [])}
    for i, dev in enumerate(devices):
        where = f"poc_device[{i}]"
        if "control_levels" in dev:
            raise ContentError(
                "expected no control_levels: a device's control levels are its test's "
                "[test.controls] in poc_tests.toml",
                file="clinical_ma.toml",
                key=f"{where}.control_levels",
            )
        test = tests.get(dev.get("test"))
        if test is None:
            raise ContentError(
                f"expected a test id of poc_tests.toml, found {dev.get('test')!r}",
                file="clinical_ma.toml",
                key=f"{where}.test",
            )
        dev["control_levels"] = list(test.get("controls") or {})
    return doc


def _resolve_drug_classes(classes: list[Any], rules: Any) -> list[Any]:
    """Fill each drug class's RxNorm products from the ``rules.toml`` classes it names."""
    out = []
    for i, dc in enumerate(classes):
        codes = list(dc.rxnorm)
        for name in dc.classes:
            if name not in rules.drug_classes:
                raise ContentError(
                    f"expected a class of rules.toml [drug_classes], found {name!r}",
                    file="drug_classes.toml",
                    key=f"drug_class[{i}].classes",
                )
            codes.extend(c for c in rules.drug_classes[name] if c not in codes)
        out.append(dc.model_copy(update={"rxnorm": codes}))
    return out


# --------------------------------------------------------------------------- file readers


def read_toml(root: Path, relative: str) -> dict[str, Any]:
    """Parse ``root/relative`` as TOML; a missing file or syntax error is a ContentError.

    >>> read_toml(DEFAULT_ROOT, "content.toml")["version"] != ""
    True
    """
    path = root / relative
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ContentError(
            "expected this file in the content folder, found none", file=relative
        ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib puts "(at line N, column M)" in the message: keep it, it is the key a user needs
        raise ContentError(f"expected valid TOML: {exc}", file=relative) from None


def read_code_set(root: Path, key: str) -> CodeSet:
    """Read ``codes/<key>.csv``: header comments, then ``code,display[,extra...]`` rows.

    >>> read_code_set(DEFAULT_ROOT, "ucum").system
    'http://unitsofmeasure.org'
    """
    relative = f"codes/{key}.csv"
    path = root / relative
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ContentError(
            "expected this code file in the content folder, found none", file=relative
        ) from None
    header: dict[str, str] = {}
    body: list[tuple[int, str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith("#"):
            name, sep, value = line[1:].partition(":")
            if sep and name.strip() in HEADER_KEYS:
                header[name.strip()] = value.strip()
            continue
        if line.strip():
            body.append((number, line))
    for name in HEADER_KEYS:
        if not header.get(name):
            raise ContentError(f"expected a '# {name}: ...' header line", file=relative, key=name)
    if not body:
        raise ContentError(
            "expected a 'code,display' column header line", file=relative, key="line 1"
        )
    columns_line, columns_text = body[0]
    columns = next(csv.reader([columns_text]))
    if columns[:2] != ["code", "display"]:
        raise ContentError(
            f"expected the columns to start with 'code,display', found {columns_text!r}",
            file=relative,
            key=f"line {columns_line}",
        )
    codes: dict[str, str] = {}
    attributes: dict[str, dict[str, str]] = {}
    for number, line in body[1:]:
        row = next(csv.reader([line]))
        if len(row) != len(columns):
            raise ContentError(
                f"expected {len(columns)} columns ({','.join(columns)}), found {len(row)}",
                file=relative,
                key=f"line {number}",
            )
        code, display = row[0].strip(), row[1].strip()
        if not code or not display:
            raise ContentError(
                "expected a non-empty code and display", file=relative, key=f"line {number}"
            )
        if code in codes:
            raise ContentError(
                f"expected each code once, found {code!r} again",
                file=relative,
                key=f"line {number}",
            )
        codes[code] = display
        extra = {
            name: value.strip()
            for name, value in zip(columns[2:], row[2:], strict=True)
            if value.strip()
        }
        if extra:
            attributes[code] = extra
    return CodeSet(
        key=key,
        system=header["system"],
        version=header["version"],
        licence=header["licence"],
        codes=codes,
        attributes=attributes,
    )


def _read_folder(root: Path, folder: str, model: type[M], kind: str) -> dict[str, M]:
    """One model per TOML file in ``folder``, keyed by its ``id`` (which must match the file)."""
    items: dict[str, M] = {}
    for relative in _toml_files(root, folder):
        item = _validate(model, read_toml(root, relative), relative, "")
        _check_stem(item.id, relative)
        if item.id in items:
            raise ContentError(
                f"expected a unique {kind} id, found {item.id!r} in two files",
                file=relative,
                key="id",
            )
        items[item.id] = item
    return items


def _check_stem(ident: str, relative: str) -> None:
    # errors found later name the file from the id, so the two must agree
    stem = relative.rsplit("/", 1)[-1].removesuffix(".toml")
    if ident != stem:
        raise ContentError(
            f"expected id = {stem!r} (the file name), found {ident!r}", file=relative, key="id"
        )


def _toml_files(root: Path, folder: str) -> list[str]:
    directory = root / folder
    if not directory.is_dir():
        raise ContentError("expected this folder in the content folder, found none", file=folder)
    # sorted: module order feeds the generator's random draws, so it must not depend on the OS
    return [f"{folder}/{p.name}" for p in sorted(directory.glob("*.toml"))]


def _version(root: Path, meta: dict[str, Any]) -> str:
    declared = meta.get("version")
    if not isinstance(declared, str) or not declared:
        raise ContentError('expected version = "<text>"', file="content.toml", key="version")
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in (".toml", ".csv")):
        digest.update(path.relative_to(root).as_posix().encode())
        # normalise line endings so a Windows checkout has the same content version
        digest.update(path.read_bytes().replace(b"\r\n", b"\n"))
    return f"{declared}+{digest.hexdigest()[:12]}"


# --------------------------------------------------------------------------- validation helpers


def _item_type(annotation: Any) -> type[BaseModel]:
    args = getattr(annotation, "__args__", ())
    return args[-1]


def _validate(model: Any, data: Any, file: str, prefix: str) -> Any:
    try:
        return model.model_validate(data)
    except PydanticValidationError as exc:
        raise _content_error(exc, file, prefix, data) from None


def _validate_list(model: type[M], doc: dict[str, Any], file: str, table: str) -> list[M]:
    entries = doc.get(table)
    if not isinstance(entries, list):
        raise ContentError(f"expected one or more [[{table}]] tables", file=file, key=table)
    return [
        _validate(model, entry, file, _entry_key(table, i, entry))
        for i, entry in enumerate(entries)
    ]


def _entry_key(table: str, index: int, entry: Any) -> str:
    label = str(index)
    if isinstance(entry, dict):
        for name in ("id", "code", "username", "measure"):
            if isinstance(entry.get(name), str):
                label = entry[name]
                break
    return f"{table}[{label}]"


def _by_id(items: Iterable[Any], file: str, table: str) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for item in items:
        if item.id in result:
            raise ContentError(
                f"expected a unique id, found {item.id!r} twice",
                file=file,
                key=f"{table}[{item.id}].id",
            )
        result[item.id] = item
    return result


def _content_error(exc: PydanticValidationError, file: str, prefix: str, data: Any) -> ContentError:
    err = exc.errors()[0]
    key = _dotted(prefix, err["loc"], data)
    msg = str(err["msg"])
    kind = err["type"]
    if kind == "missing":
        text = "expected this key, found it missing"
    elif kind == "extra_forbidden":
        text = "expected no such key (unknown key; check its spelling)"
    else:
        text = msg.removeprefix("Value error, ")
        text = text.replace("Input should be", "expected")
        if not text.startswith("expected"):
            text = f"expected a valid value: {text}"
        if "input" in err and kind != "value_error" and not isinstance(err["input"], dict | list):
            text += f", found {err['input']!r}"
    return ContentError(text, file=file, key=key)


def _dotted(prefix: str, loc: Iterable[Any], data: Any) -> str:
    parts = [prefix] if prefix else []
    node = data
    for item in loc:
        if isinstance(item, int):
            label = str(item)
            if isinstance(node, list) and 0 <= item < len(node) and isinstance(node[item], dict):
                ident = node[item].get("id") or node[item].get("rxnorm") or node[item].get("loinc")
                if isinstance(ident, str):
                    label = ident
            parts[-1:] = [f"{parts[-1] if parts else ''}[{label}]"]
            node = node[item] if isinstance(node, list) and 0 <= item < len(node) else None
        else:
            parts.append(str(item))
            node = node.get(item) if isinstance(node, dict) else None
    return ".".join(p for p in parts if p)


# --------------------------------------------------------------------------- cross-references


class _Checker:
    """Collects the first broken reference as a ContentError."""

    def __init__(self, content: Content) -> None:
        self.c = content

    def code(self, key: str, code: str, file: str, where: str) -> None:
        if code not in self.c.codes[key]:
            raise ContentError(
                f"expected a code of codes/{key}.csv, found {code!r}", file=file, key=where
            )

    def ref(self, ref: str, file: str, where: str, *, priced: bool = False) -> None:
        try:
            key, code = split_ref(ref)
        except ValueError as exc:
            raise ContentError(str(exc), file=file, key=where) from None
        if key not in self.c.codes:
            raise ContentError(
                f"expected a code set key ({', '.join(CODE_SETS)}), found {key!r}",
                file=file,
                key=where,
            )
        self.code(key, code, file, where)
        if priced and ref not in self.c.fees:
            raise ContentError(
                f"expected a fee for billable code {ref!r} in fees.toml", file=file, key=where
            )

    def panel(self, panel: str, file: str, where: str) -> None:
        if panel not in self.c.labs:
            raise ContentError(
                f"expected a lab panel id of labs.toml, found {panel!r}", file=file, key=where
            )

    def module(self, module: str, file: str, where: str) -> None:
        if module not in self.c.conditions:
            raise ContentError(
                f"expected a condition module id, found {module!r}", file=file, key=where
            )


def check_references(content: Content) -> None:
    """Raise ContentError for the first reference that does not resolve.

    >>> check_references(load_content())
    """
    ck = _Checker(content)
    class_ids = {c.id for c in content.drug_classes}
    for i, dc in enumerate(content.drug_classes):
        for code in dc.rxnorm:
            ck.code("rxnorm", code, "drug_classes.toml", f"drug_class[{i}].rxnorm")
        for code in dc.allergens:
            ck.code("snomed", code, "drug_classes.toml", f"drug_class[{i}].allergens")
        for other in dc.cross_reactive_with:
            if other not in class_ids:
                raise ContentError(
                    f"expected a drug class id ({', '.join(sorted(class_ids))}), found {other!r}",
                    file="drug_classes.toml",
                    key=f"drug_class[{i}].cross_reactive_with",
                )
    for code, extra in content.codes["rxnorm"].attributes.items():
        schedule = extra.get("schedule")
        if schedule is not None and schedule not in ("II", "III", "IV", "V"):
            raise ContentError(
                f"expected schedule II, III, IV, V or empty, found {schedule!r}",
                file="codes/rxnorm.csv",
                key=f"{code}.schedule",
            )
    vital_loincs = {v.loinc for v in (*content.vitals.values(), *content.observations.values())}
    for module in content.conditions.values():
        f = f"conditions/{module.id}.toml"
        ck.code("icd10cm", module.icd10, f, "icd10")
        if module.snomed:
            ck.code("snomed", module.snomed, f, "snomed")
        for i, dep in enumerate(module.requires):
            ck.module(dep, f, f"requires[{i}]")
        for i, dep in enumerate(module.excludes):
            ck.module(dep, f, f"excludes[{i}]")
        if module.criterion:
            ck.code("loinc", module.criterion.loinc, f, "criterion.loinc")
        for eff in module.vitals_effects:
            if eff.loinc not in vital_loincs:
                raise ContentError(
                    f"expected the LOINC of a vital sign or observation (vitals.toml, observations.toml), found {eff.loinc!r}",
                    file=f,
                    key=f"vitals_effects[{eff.loinc}].loinc",
                )
        for eff in module.lab_effects:
            ck.code("loinc", eff.loinc, f, f"lab_effects[{eff.loinc}].loinc")
            test = content.lab_tests().get(eff.loinc)
            if test is None:
                raise ContentError(
                    f"expected the LOINC of a test in labs.toml, found {eff.loinc!r}",
                    file=f,
                    key=f"lab_effects[{eff.loinc}].loinc",
                )
            if (eff.answer is None) != (test.value_type == "quantity"):
                raise ContentError(
                    f"expected {'at_diagnosis' if test.value_type == 'quantity' else 'answer'} for a {test.value_type} test",
                    file=f,
                    key=f"lab_effects[{eff.loinc}]",
                )
            if eff.answer is not None:
                ck.code("snomed", eff.answer, f, f"lab_effects[{eff.loinc}].answer")
        for med in module.medications:
            where = f"medications[{med.rxnorm}]"
            ck.code("rxnorm", med.rxnorm, f, f"{where}.rxnorm")
            if content.codes["rxnorm"].display(med.rxnorm) != med.display:
                raise ContentError(
                    f"expected display {content.codes['rxnorm'].display(med.rxnorm)!r} (codes/rxnorm.csv), found {med.display!r}",
                    file=f,
                    key=f"{where}.display",
                )
            ck.code("ucum", med.dosage.unit, f, f"{where}.dosage.unit")
            ck.code("icd10cm", med.indication, f, f"{where}.indication")
            schedule = content.codes["rxnorm"].attributes.get(med.rxnorm, {}).get("schedule")
            if (schedule or None) != med.schedule:
                raise ContentError(
                    f"expected schedule {schedule!r} as in codes/rxnorm.csv, found {med.schedule!r}",
                    file=f,
                    key=f"{where}.schedule",
                )
        for name in ("diagnosis_labs", "follow_up_labs"):
            for i, panel in enumerate(getattr(module, name)):
                ck.panel(panel, f, f"{name}[{i}]")
        for i, loinc in enumerate(module.observations):
            ck.code("loinc", loinc, f, f"observations[{i}]")
        for i, ref in enumerate(module.procedures):
            ck.ref(ref, f, f"procedures[{i}]", priced=True)
        for i, ref in enumerate(module.visit_codes):
            ck.ref(ref, f, f"visit_codes[{i}]", priced=True)
        if module.acute:
            for i, panel in enumerate(module.acute.labs):
                ck.panel(panel, f, f"acute.labs[{i}]")
            if module.acute.reason_snomed:
                ck.code("snomed", module.acute.reason_snomed, f, "acute.reason_snomed")
        if module.pregnancy:
            p = module.pregnancy
            for name in ("fundal_height_loinc", "gestational_age_loinc", "fetal_heart_rate_loinc"):
                ck.code("loinc", getattr(p, name), f, f"pregnancy.{name}")
            for week, panels in p.labs_by_week.items():
                for i, panel in enumerate(panels):
                    ck.panel(panel, f, f"pregnancy.labs_by_week.{week}[{i}]")
    _check_rest(content, ck, vital_loincs)


def _check_rest(content: Content, ck: _Checker, vital_loincs: set[str]) -> None:
    for a in content.allergies:
        w = f"allergy[{a.id}]"
        ck.code("snomed", a.snomed, "allergies.toml", f"{w}.snomed")
        for r in a.reactions:
            ck.code("snomed", r.snomed, "allergies.toml", f"{w}.reactions[{r.snomed}].snomed")
        for code in ([a.rxnorm] if a.rxnorm else []) + a.conflicts_with_rxnorm:
            ck.code("rxnorm", code, "allergies.toml", f"{w}.conflicts_with_rxnorm")
        if a.icd10:
            ck.code("icd10cm", a.icd10, "allergies.toml", f"{w}.icd10")
    for file, table, defs in (
        ("vitals.toml", "vital", content.vitals),
        ("observations.toml", "observation", content.observations),
    ):
        for v in defs.values():
            w = f"{table}[{v.id}]"
            ck.code("loinc", v.loinc, file, f"{w}.loinc")
            if v.unit:
                ck.code("ucum", v.unit, file, f"{w}.unit")
            if v.panel:
                ck.code("loinc", v.panel, file, f"{w}.panel")
    for p in content.labs.values():
        w = f"panel[{p.id}]"
        ck.code("loinc", p.loinc, "labs.toml", f"{w}.loinc")
        if p.procedure:
            ck.ref(p.procedure, "labs.toml", f"{w}.procedure", priced=True)
        for t in p.tests:
            ck.code("loinc", t.loinc, "labs.toml", f"{w}.tests[{t.loinc}].loinc")
            if t.unit:
                ck.code("ucum", t.unit, "labs.toml", f"{w}.tests[{t.loinc}].unit")
            for ans in t.answers:
                ck.code("snomed", ans.snomed, "labs.toml", f"{w}.tests[{t.loinc}].answers")
    for vac in content.immunizations:
        w = f"vaccine[{vac.id}]"
        ck.code("cvx", vac.cvx, "immunizations.toml", f"{w}.cvx")
        ck.ref(vac.admin_code, "immunizations.toml", f"{w}.admin_code", priced=True)
        if vac.medicare_admin_code:
            ck.ref(
                vac.medicare_admin_code,
                "immunizations.toml",
                f"{w}.medicare_admin_code",
                priced=True,
            )
    for ref in content.fees:
        ck.ref(ref, "fees.toml", f"fee[{ref}].code")
    for pop in content.populations.values():
        f = f"populations/{pop.id}.toml"
        for name in ("modules", "extra_modules"):
            for i, mid in enumerate(getattr(pop, name)):
                ck.module(mid, f, f"{name}[{i}]")
        for mid in pop.condition_multipliers:
            ck.module(mid, f, f"condition_multipliers.{mid}")
        in_use = {m.id for m in content.modules_for(pop.id)}
        for mid in sorted(in_use):
            for dep in content.conditions[mid].requires:
                if dep not in in_use:
                    raise ContentError(
                        f"expected module {dep!r} (required by {mid!r}) in this population",
                        file=f,
                        key="modules",
                    )
        for i, loinc in enumerate(pop.observations):
            ck.code("loinc", loinc, f, f"observations[{i}]")
        types = {t.code for t in content.practice.appointment_types}
        for i, code in enumerate(pop.visit_types):
            if code not in types:
                raise ContentError(
                    f"expected an appointment type code of practice.toml, found {code!r}",
                    file=f,
                    key=f"visit_types[{i}]",
                )
        for i, ref in enumerate(pop.visit_procedures):
            ck.ref(ref, f, f"visit_procedures[{i}]", priced=True)
    for t in content.prevalence_targets:
        if t.module:
            ck.module(t.module, "prevalence.toml", f"target[{t.measure}].module")
    social = content.social
    for band in social.smoking:
        for code in band.probabilities:
            ck.code(
                "snomed",
                code,
                "social.toml",
                f"smoking[{band.age_min}-{band.age_max}].probabilities.{code}",
            )
    for code in social.current_smoker_codes:
        ck.code("snomed", code, "social.toml", "current_smoker_codes")
    for name in ("smoking_loinc", "alcohol_loinc"):
        ck.code("loinc", getattr(social, name), "social.toml", name)
    for i, rule in enumerate(content.sensitivity):
        if rule.system not in content.codes:
            raise ContentError(
                f"expected a code set key ({', '.join(CODE_SETS)}), found {rule.system!r}",
                file="sensitivity.toml",
                key=f"rule[{i}].system",
            )
    for visit in content.wellness.visits:
        w = f"visits[{visit.id}]"
        ck.ref(visit.procedure, "wellness.toml", f"{w}.procedure", priced=True)
        if visit.medicare_procedure:
            ck.ref(
                visit.medicare_procedure, "wellness.toml", f"{w}.medicare_procedure", priced=True
            )
        ck.code("icd10cm", visit.icd10, "wellness.toml", f"{w}.icd10")
    for sc in content.wellness.screenings:
        w = f"screenings[{sc.id}]"
        if sc.kind == "lab":
            ck.panel(sc.ref, "wellness.toml", f"{w}.ref")
        elif sc.kind == "observation":
            ck.code("loinc", sc.ref, "wellness.toml", f"{w}.ref")
        else:
            ck.ref(sc.ref, "wellness.toml", f"{w}.ref", priced=True)
        for j, mid in enumerate(sc.only_with):
            ck.module(mid, "wellness.toml", f"{w}.only_with[{j}]")
        if sc.icd10:
            ck.code("icd10cm", sc.icd10, "wellness.toml", f"{w}.icd10")
    _check_rules(content, ck)
    _check_clinical_ma(content, ck)
    for t in content.practice.appointment_types:
        for name in ("visit_code_new", "visit_code_established"):
            ref = getattr(t, name)
            if ref:
                ck.ref(ref, "practice.toml", f"appointment_types[{t.code}].{name}", priced=True)
    for payer in content.practice.payers:
        if payer.age_max < payer.age_min:
            raise ContentError(
                "expected age_max >= age_min",
                file="practice.toml",
                key=f"payers[{payer.id}].age_max",
            )
    seen: set[str] = set()
    for member in (*content.staff, *content.specialists, *content.former):
        if member.username in seen:
            raise ContentError(
                f"expected unique usernames, found {member.username!r} twice",
                file="staff.toml",
                key=f"member[{member.username}]",
            )
        seen.add(member.username)


def _check_clinical_ma(content: Content, ck: _Checker) -> None:
    """Every code and panel ``clinical_ma.toml`` names exists in the rest of the content."""
    cm = content.clinical_ma
    if cm is None:
        return
    f = "clinical_ma.toml"
    for i, row in enumerate(cm.family_history):
        ck.code("icd10cm", row.icd10, f, f"family_history[{i}].icd10")
    d = cm.delivery
    for name in ("term_icd10", "preterm_icd10", "outcome_icd10", "loss_icd10"):
        ck.code("icd10cm", getattr(d, name), f, f"delivery.{name}")
    for i, adm in enumerate(cm.admission):
        if adm.condition not in content.conditions:
            raise ContentError(
                f"expected a condition id, found {adm.condition!r}",
                file=f,
                key=f"admission[{i}].condition",
            )
    for dev in cm.poc_device:
        if dev.panel not in content.labs:
            raise ContentError(
                f"expected a panel id of labs.toml, found {dev.panel!r}",
                file=f,
                key=f"poc_device[{dev.id}].panel",
            )


def _check_rules(content: Content, ck: _Checker) -> None:
    """Every id and code that rules.toml names exists in the rest of the content."""
    f = "rules.toml"
    r = content.rules
    vaccines = {v.id for v in content.immunizations}
    allergies = {a.id for a in content.allergies}

    def need(ok: bool, what: str, found: str, where: str) -> None:
        if not ok:
            raise ContentError(f"expected {what}, found {found!r}", file=f, key=where)

    for i, p in enumerate(r.vaccine_product):
        need(
            p.vaccine in vaccines,
            "a vaccine id of immunizations.toml",
            p.vaccine,
            f"vaccine_product[{i}].vaccine",
        )
        ck.code("cvx", p.cvx, f, f"vaccine_product[{i}].cvx")
        need(p.mvx in r.mvx, "an MVX code listed in [mvx]", p.mvx, f"vaccine_product[{i}].mvx")
    for i, lim in enumerate(r.vaccine_limit):
        need(
            lim.vaccine in vaccines,
            "a vaccine id of immunizations.toml",
            lim.vaccine,
            f"vaccine_limit[{i}].vaccine",
        )
    for cls, codes in r.drug_classes.items():
        for code in codes:
            ck.code("rxnorm", code, f, f"drug_classes.{cls}")
    for cls in [*r.antibiotic_classes, *(c for g in r.duplicate_group for c in g.classes)]:
        need(
            cls in r.drug_classes,
            "a class of [drug_classes]",
            cls,
            "antibiotic_classes/duplicate_group",
        )
    for i, a in enumerate(r.allergy_class):
        need(
            a.allergy in allergies,
            "an allergy id of allergies.toml",
            a.allergy,
            f"allergy_class[{i}].allergy",
        )
        for cls in a.classes:
            need(
                cls in r.drug_classes,
                "a class of [drug_classes]",
                cls,
                f"allergy_class[{i}].classes",
            )
    for i, w in enumerate(r.weight_dose):
        ck.code("rxnorm", w.rxnorm, f, f"weight_dose[{i}].rxnorm")
    for i, m in enumerate(r.monitoring):
        ck.panel(m.panel, f, f"monitoring[{i}].panel")
        for code in m.rxnorm:
            ck.code("rxnorm", code, f, f"monitoring[{i}].rxnorm")
    for i, t in enumerate(r.trimester_code):
        for code in (t.unspecified, t.first, t.second, t.third):
            ck.code("icd10cm", code, f, f"trimester_code[{i}]")
    for i, lat in enumerate(r.laterality):
        for code in (lat.icd10, *lat.alternatives):
            ck.code("icd10cm", code, f, f"laterality[{i}]")
    for i, d in enumerate(r.office_drug):
        ck.code("hcpcs", d.hcpcs, f, f"office_drug[{i}].hcpcs")
        if d.rxnorm:
            ck.code("rxnorm", d.rxnorm, f, f"office_drug[{i}].rxnorm")
    if r.payer_rules is not None:
        payers = {p.id for p in content.practice.payers}
        need(
            r.payer_rules.medicare_payer in payers,
            "a payer id of practice.toml",
            r.payer_rules.medicare_payer,
            "payer_rules.medicare_payer",
        )
        ck.ref(r.payer_rules.awv_initial, f, "payer_rules.awv_initial", priced=True)
        ck.ref(r.payer_rules.awv_subsequent, f, "payer_rules.awv_subsequent", priced=True)
    if r.pregnancy is not None:
        ck.code("icd10cm", r.pregnancy.loss_icd10, f, "pregnancy.loss_icd10")
        ck.code("icd10cm", r.pregnancy.delivery_icd10, f, "pregnancy.delivery_icd10")
        need(
            r.pregnancy.tdap_vaccine in vaccines,
            "a vaccine id of immunizations.toml",
            r.pregnancy.tdap_vaccine,
            "pregnancy.tdap_vaccine",
        )


def iter_content_files(root: Path | None = None) -> Iterator[Path]:
    """Every TOML/CSV file of a content folder (for licence and no-CPT checks).

    >>> any(p.name == "loinc.csv" for p in iter_content_files())
    True
    """
    base = DEFAULT_ROOT if root is None else root
    yield from sorted(
        p for p in base.rglob("*") if p.is_file() and p.suffix in (".toml", ".csv", ".md")
    )
