"""Catalogue item 20 of EXERCISES.md: Encryption and keys.

Defines and registers ``privacy/encryption-keys`` (section "Privacy and access control").
The package ``__init__`` imports the exercise modules in catalogue order; helpers shared
within the section are in ``common``.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ehr_sandbox.errors import CryptoError, SandboxError
from ehr_sandbox.exercises.builtin.privacy.common import work_dir
from ehr_sandbox.exercises.grading import GradingContext
from ehr_sandbox.exercises.model import Check, Criterion, Exercise, Hint, Solution
from ehr_sandbox.exercises.registry import register

# ------------------------------------------------------------------------------------------
# 20. Encryption and keys
# ------------------------------------------------------------------------------------------
WORDS = (
    "amber", "birch", "cobalt", "delta", "ember", "fjord", "granite", "harbor",
    "indigo", "juniper", "kestrel", "lumen", "meadow", "nectar", "orchid", "prairie",
)  # fmt: skip
_ISSUED = "privacy/encryption/issued|"
CLINIC_FILE = "clinic.db"
_MADE: dict[tuple[int, str], bytes] = {}
_ISSUED_NEEDLES: dict[tuple[int, str], list[bytes]] = {}


def _passphrase(rng: Any) -> str:
    return "-".join(rng.sample(WORDS, 4)) + f"-{rng.randint(10, 99)}"


def _setup_encryption(sandbox: Any, variant: Any) -> dict[str, Any]:
    rng = variant.rng()
    slug = re.sub(r"[^a-z0-9]+", "-", variant.student.lower()).strip("-")[:24] or "student"
    workspace = work_dir() / f"keys-{slug}-{variant.seed:016x}"
    return {
        "workspace": str(workspace),
        "clinic": str(workspace / CLINIC_FILE),
        "old_passphrase": _passphrase(rng),
        "new_passphrase": _passphrase(rng),
        "clinic_seed": variant.sandbox_seed,
    }


def clinic_database(att: Any) -> Path:
    """The encrypted clinic database of an encryption exercise attempt (made on first call).

    It is (re)made whenever the attempt's state has not issued it yet, so ``att.reset()``
    gives a fresh one under the original passphrase.

    >>> import tempfile
    >>> from types import SimpleNamespace
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> ws = Path(tempfile.mkdtemp()) / "keys"
    >>> att = SimpleNamespace(sandbox=SimpleNamespace(state={}), student="alice", facts={"workspace": str(ws),
    ...     "clinic": str(ws / CLINIC_FILE), "old_passphrase": "old words", "clinic_seed": 3})
    >>> path = clinic_database(att)
    >>> with Sandbox.open(path, passphrase="old words") as clinic:
    ...     clinic.grader_session().search("Patient").count()
    2
    >>> shutil.rmtree(ws.parent)
    """
    from ehr_sandbox.sandbox import Sandbox

    f = att.facts
    path = Path(f["clinic"])
    if not att.sandbox.state.get(_ISSUED + att.student) or not path.is_file():
        shutil.rmtree(f["workspace"], ignore_errors=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        key = (f["clinic_seed"], f["old_passphrase"])
        if key not in _MADE:  # generating is slow; the same variant's clinic is the same bytes
            Sandbox.generate(
                patients=2,
                seed=f["clinic_seed"],
                years=1,
                path=path,
                passphrase=f["old_passphrase"],
            ).close()
            _MADE[key] = path.read_bytes()
        path.write_bytes(_MADE[key])
        att.sandbox.state[_ISSUED + att.student] = True
    return path


def _open_clinic(path: Path, passphrase: str) -> Any:
    from ehr_sandbox.sandbox import Sandbox

    return Sandbox.open(path, passphrase=passphrase)


def _needles(clinic: Any) -> list[bytes]:
    """Patients' family names and identifiers to look for in the raw file, less the family
    names of staff: the practice's ids (``prac-dr.patel``) are stored in the clear, as ids
    are, and name staff, not patients, so a patient who shares a surname with a doctor is
    not found through them."""
    grader = clinic.grader_session()
    staff = {
        str(name.get("family", "")).lower()
        for pr in grader.search("Practitioner").fetch_all()
        for name in pr.get("name", [])
    }
    out: set[str] = set()
    for p in grader.search("Patient").fetch():
        for name in p.get("name", []):
            # 6 letters at least: ciphertext is random bytes, and a 4-letter word turns up in a
            # few megabytes of it by chance (once in CI); every patient's identifiers are
            # looked for too, so a plaintext row is still found
            if len(name.get("family", "")) >= 6 and name["family"].lower() not in staff:
                out.add(name["family"])
        for ident in p.get("identifier", []):
            if len(str(ident.get("value", ""))) >= 6:
                out.add(str(ident["value"]))
    return sorted(n.encode() for n in out)


def _clinic_state(ctx: GradingContext) -> tuple[str, list[bytes]]:
    """('new'|'old'|'none', identifiers to grep for); opened once per grading."""
    if "clinic" not in ctx.extra:
        ctx.extra["clinic"] = _inspect_clinic(ctx)
    which, needles, _, _ = ctx.extra["clinic"]
    return which, needles


def _issued_needles(ctx: GradingContext) -> list[bytes]:
    """The identifiers of the clinic as it was issued (regenerated from the variant)."""
    f = ctx.facts
    key = (f["clinic_seed"], f["old_passphrase"])
    if key not in _MADE:
        return []
    if key in _ISSUED_NEEDLES:
        return _ISSUED_NEEDLES[key]
    _ISSUED_NEEDLES[key] = _read_needles(_MADE[key], f["old_passphrase"])
    return _ISSUED_NEEDLES[key]


def _read_needles(data: bytes, passphrase: str) -> list[bytes]:
    scratch = Path(tempfile.mkdtemp(prefix="issued-"))
    try:
        copy = scratch / CLINIC_FILE
        copy.write_bytes(data)
        clinic = _open_clinic(copy, passphrase)
        try:
            return _needles(clinic)
        finally:
            clinic.close()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _inspect_clinic(ctx: GradingContext) -> tuple[str, list[bytes], bool, int]:
    f = ctx.facts
    path = Path(f["clinic"])
    if not path.is_file() or not ctx.sandbox.state.get(_ISSUED + ctx.student):
        return "none", [], False, 0
    for which in ("new", "old"):
        try:
            clinic = _open_clinic(path, f[f"{which}_passphrase"])
        except (CryptoError, SandboxError):
            continue
        try:
            return (
                which,
                _needles(clinic),
                clinic.audit.verify().ok,
                clinic.grader_session().search("Patient").count(),
            )
        finally:
            clinic.close()
    return "none", [], False, 0


def _enc_rotated(ctx: GradingContext) -> Check:
    expected = "the clinic database opens with the new passphrase only, its audit trail intact"
    which, _ = _clinic_state(ctx)
    if which == "none":
        return Check(
            False,
            "the clinic database was not collected or cannot be opened",
            expected,
            "privacy.clinic_database(att)",
        )
    if which == "old":
        return Check(
            False,
            "the old passphrase still opens the database",
            expected,
            "sandbox.rotate_key(passphrase=...)",
        )
    _, needles, ok, count = ctx.extra["clinic"]
    if not ok or count == 0:
        return Check(False, f"after rotation: audit ok={ok}, {count} patients", expected)
    issued = _issued_needles(ctx)
    if issued and set(issued) != set(needles):
        return Check(
            False,
            "the database opens with the new passphrase but no longer holds the clinic's records",
            expected,
            "rotate the key of the existing database (rotate_key); never replace the data",
        )
    return Check(True, f"rotated; {count} patients readable with the new key", expected)


_MAX_UNPACKED = 64 * 1024 * 1024
"""How much a grader unpacks from one archive (a student's archive is not a zip bomb's host)."""


def unpacked(data: bytes, depth: int = 2) -> list[bytes]:
    """``data`` and what it holds when it is a compressed file or an archive (gzip, bzip2,
    xz, zip, tar, nested up to ``depth``): a plaintext export packed into an archive is
    readable by anyone who unpacks it.

    >>> import gzip
    >>> [b"Pineda" in x for x in unpacked(gzip.compress(b"name: Pineda"))]
    [False, True]
    """
    import bz2
    import gzip
    import io
    import lzma
    import tarfile
    import zipfile

    out = [data]
    if depth <= 0:
        return out
    inner: list[bytes] = []
    for magic, opener in (
        (b"\x1f\x8b", gzip.decompress),
        (b"BZh", bz2.decompress),
        (b"\xfd7zXZ\x00", lzma.decompress),
    ):
        if data.startswith(magic):
            with contextlib.suppress(OSError, EOFError, ValueError, lzma.LZMAError):
                inner.append(opener(data)[:_MAX_UNPACKED])
    if data.startswith(b"PK"):
        with (
            contextlib.suppress(zipfile.BadZipFile, OSError, ValueError),
            zipfile.ZipFile(io.BytesIO(data)) as zf,
        ):
            inner += [zf.read(n)[:_MAX_UNPACKED] for n in zf.namelist() if not n.endswith("/")]
    with (
        contextlib.suppress(tarfile.TarError, OSError, ValueError, EOFError),
        tarfile.open(fileobj=io.BytesIO(data)) as tf,
    ):
        for member in tf.getmembers():
            handle = tf.extractfile(member) if member.isfile() else None
            if handle is not None:
                inner.append(handle.read(_MAX_UNPACKED))
    for blob in inner:
        out += unpacked(blob, depth - 1)
    return out


def _grep(path: Path, needles: list[bytes]) -> list[str]:
    """Needles found as whole words in a file, or in what it holds when it is an archive or
    compressed (so 'Johns' does not match 'ma.johnson').

    >>> import tempfile, os
    >>> fd, name = tempfile.mkstemp(); _ = os.write(fd, b"prac-ma.johnson Pineda,"); os.close(fd)
    >>> _grep(Path(name), [b"Johns", b"Pineda"]); os.unlink(name)
    ['Pineda']
    """
    found: list[str] = []
    for data in unpacked(path.read_bytes()):
        folded = data.lower()
        found += [
            n.decode()
            for n in needles
            if n.decode() not in found
            and n.lower() in folded  # cheap test first: most files hold none of them
            and re.search(rb"(?<![A-Za-z0-9])" + re.escape(n) + rb"(?![A-Za-z0-9])", data, re.I)
        ]
    return found


def _enc_db_sealed(ctx: GradingContext) -> Check:
    expected = "no patient name or identifier in the database file's raw bytes"
    which, needles = _clinic_state(ctx)
    if which == "none" or not needles:
        return Check(False, "the clinic database cannot be opened", expected)
    leaked = _grep(Path(ctx.facts["clinic"]), needles)
    if leaked:
        return Check(False, f"{len(leaked)} identifiers readable in the file", expected)
    return Check(True, f"none of {len(needles)} identifiers in plaintext", expected)


_SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def _copies(ctx: GradingContext) -> list[Path]:
    """Every file in the workspace except the clinic database and SQLite's own side files."""
    f = ctx.facts
    clinic = Path(f["clinic"]).resolve()
    side = {Path(str(clinic) + s) for s in _SQLITE_SIDE_FILES}
    return [
        p
        for p in sorted(Path(f["workspace"]).rglob("*"))
        if p.is_file() and p.resolve() != clinic and p.resolve() not in side
    ]


def _enc_no_plaintext(ctx: GradingContext) -> Check:
    f = ctx.facts
    expected = f"no readable copy of patient data (export, dump, backup) left in {f['workspace']}"
    which, needles = _clinic_state(ctx)
    if which == "none" or not needles:
        return Check(False, "the clinic database cannot be opened", expected)
    leaks = [str(p.relative_to(f["workspace"])) for p in _copies(ctx) if _grep(p, needles)]
    if leaks:
        return Check(
            False,
            f"plaintext export left behind: {', '.join(leaks[:3])}",
            expected,
            "delete every unencrypted export once you are done with it",
        )
    return Check(True, "no plaintext copies", expected)


def _opens_with(path: Path, passphrase: str) -> bool:
    try:
        clinic = _open_clinic(path, passphrase)
    except (CryptoError, SandboxError, OSError, ValueError):
        return False
    clinic.close()
    return True


def _enc_no_old_key_copies(ctx: GradingContext) -> Check:
    f = ctx.facts
    expected = (
        "no copy of the database (backup, snapshot) that still opens with the leaked passphrase"
    )
    which, _ = _clinic_state(ctx)
    if which == "none":
        return Check(False, "the clinic database cannot be opened", expected)
    stale = [
        str(p.relative_to(f["workspace"]))
        for p in _copies(ctx)
        if p.read_bytes()[:16] == b"SQLite format 3\x00" and _opens_with(p, f["old_passphrase"])
    ]
    if stale:
        return Check(
            False,
            f"a backup still opens with the leaked passphrase: {', '.join(stale[:3])}",
            expected,
            "rotating the key protects only the file you rotated: re-encrypt or destroy every backup made under the old key",
        )
    return Check(True, "no copy under the old passphrase", expected)


def _enc_rotate(att: Any) -> Path:
    f = att.facts
    path = clinic_database(att)
    clinic = _open_clinic(path, f["old_passphrase"])
    try:
        clinic.rotate_key(passphrase=f["new_passphrase"])
    finally:
        clinic.close()
    return path


def _enc_solution(att: Any) -> None:
    f = att.facts
    path = _enc_rotate(att)
    # the point: the old key no longer opens it
    with contextlib.suppress(CryptoError):
        _open_clinic(path, f["old_passphrase"]).close()


def _enc_backup_under_old_key(att: Any) -> None:
    # A "safety" backup taken before rotating, left in the workspace under the leaked key.
    path = clinic_database(att)
    shutil.copyfile(path, path.with_name("clinic-backup.db"))
    _enc_rotate(att)


def _enc_export_named_like_journal(att: Any) -> None:
    # A plaintext export hidden in a folder named like the database's own side files.
    f = att.facts
    path = clinic_database(att)
    clinic = _open_clinic(path, f["old_passphrase"])
    try:
        clinic.login("instructor.lee").export(str(Path(f["workspace"]) / (CLINIC_FILE + "-export")))
    finally:
        clinic.close()
    _enc_rotate(att)


def _enc_wrong_passphrase(att: Any) -> None:
    # The new passphrase is mistyped: nobody (the practice included) can open the database now.
    f = att.facts
    path = clinic_database(att)
    clinic = _open_clinic(path, f["old_passphrase"])
    try:
        clinic.rotate_key(passphrase=f["new_passphrase"].upper())
    finally:
        clinic.close()


def _enc_replace_database(att: Any) -> None:
    # Harm: instead of rotating, a new database is made under the new passphrase in its place.
    from ehr_sandbox.sandbox import Sandbox

    f = att.facts
    path = clinic_database(att)
    path.unlink()
    Sandbox.generate(
        patients=2, seed=f["clinic_seed"] + 1, years=1, path=path, passphrase=f["new_passphrase"]
    ).close()


def _enc_export_archived(att: Any) -> None:
    # A plaintext export packed into a .tar.gz in the workspace (the raw bytes hide the names).
    import tarfile

    f = att.facts
    path = clinic_database(att)
    scratch = Path(tempfile.mkdtemp(prefix="export-"))
    clinic = _open_clinic(path, f["old_passphrase"])
    try:
        clinic.login("instructor.lee").export(str(scratch / "export"))
    finally:
        clinic.close()
    with tarfile.open(Path(f["workspace"]) / "records.tar.gz", "w:gz") as archive:
        archive.add(scratch / "export", arcname="export")
    shutil.rmtree(scratch, ignore_errors=True)
    _enc_rotate(att)


def _enc_export_left(att: Any) -> None:
    f = att.facts
    path = clinic_database(att)
    clinic = _open_clinic(path, f["old_passphrase"])
    try:
        clinic.login("instructor.lee").export(str(Path(f["workspace"]) / "before-rotation"))
    finally:
        clinic.close()
    _enc_rotate(att)


ENCRYPTION = register(
    Exercise(
        id="privacy/encryption-keys",
        local_only=(
            "the student opens the clinic's database file and rotates its key on their own machine"
        ),
        skip_traps=(
            "done-twice",
            "one-more-record",
        ),  # the EHR refuses the repeat (the old key no longer opens the record)
        title="Encryption and keys: rotate the clinic's key",
        topic="privacy",
        competencies=("X.P.2",),
        minutes=15,
        role="admin.root",
        summary="Open an encrypted sandbox, rotate its key, leave nothing readable without it.",
        setup=_setup_encryption,
        instructions=(
            "The clinic's database is encrypted at rest (AES-256-GCM). Its passphrase "
            "`{old_passphrase}` was in an email that leaked: rotate it to `{new_passphrase}`.\n\n"
            "1. Collect the database: `path = privacy.clinic_database(att)` "
            "(`from ehr_sandbox.exercises.builtin import privacy`); it lives in `{workspace}`.\n"
            "2. Open it (`from ehr_sandbox.sandbox import Sandbox`; `Sandbox.open(path, passphrase=...)`), rotate its key "
            "(`rotate_key(passphrase=...)`) and close it.\n"
            "3. Verify the old passphrase no longer opens it.\n\n"
            "The rotation covers the database file **and every copy of it**: keep any export or "
            "backup you make inside `{workspace}`, and when you are done none of them may be "
            "readable without the new key (no plaintext export, no backup that the leaked "
            "passphrase still opens).\n\nThen call `att.check()`."
        ),
        criteria=(
            Criterion(
                "key rotated",
                3,
                _enc_rotated,
                "A compromised key is replaced and the data re-encrypted under the new one (HIPAA 164.312(a)(2)(iv) encryption).",
            ),
            Criterion(
                "nothing readable without the key",
                1,
                _enc_db_sealed,
                "Encrypted data at rest is unreadable without its key (HIPAA 164.312(a)(2)(iv); breach safe harbor 164.402).",
            ),
            Criterion(
                "no copy under the old passphrase",
                2,
                _enc_no_old_key_copies,
                "A backup encrypted under a leaked key is as exposed as the original was: key rotation covers every copy (HIPAA 164.308(a)(7)(ii)(A) backups; 164.312(a)(2)(iv)).",
            ),
            Criterion(
                "no plaintext copies left",
                3,
                _enc_no_plaintext,
                "An unencrypted copy defeats encryption at rest: a lost plaintext export is a reportable breach (HIPAA 164.402).",
            ),
        ),
        hints=(
            Hint(
                "`Sandbox.open(path, passphrase=old)` then `.rotate_key(passphrase=new)` then `.close()`."
            ),
            Hint("Export only to a folder you delete afterwards (`shutil.rmtree`).", cost=1),
        ),
        solution=Solution(_enc_solution, description="rotate and verify; no exports left"),
        topics=("privacy-security", "ehr-maintenance"),
        wrong_solutions={
            "backup-under-old-key": Solution(
                _enc_backup_under_old_key,
                fails="no copy under the old passphrase",
                message="still opens with the leaked passphrase",
                description="keeps a backup taken before rotating",
            ),
            "export-named-like-journal": Solution(
                _enc_export_named_like_journal,
                fails="no plaintext copies left",
                message="plaintext export left behind",
                description="leaves an NDJSON export in a folder named like SQLite's side files",
            ),
            "replace-the-database": Solution(
                _enc_replace_database,
                fails="key rotated",
                message="no longer holds the clinic's records",
                description="makes a new database under the new passphrase instead of rotating (harm)",
            ),
            "mistyped-new-passphrase": Solution(
                _enc_wrong_passphrase,
                fails="key rotated",
                message="cannot be opened",
                description="rotates to a mistyped passphrase",
            ),
            "plaintext-export-archived": Solution(
                _enc_export_archived,
                fails="no plaintext copies left",
                message="plaintext export left behind",
                description="leaves the export packed in a .tar.gz in the workspace",
            ),
            "plaintext-export": Solution(
                _enc_export_left,
                fails="no plaintext copies left",
                message="plaintext export left behind",
                description="exports NDJSON before rotating and leaves it in the workspace",
            ),
        },
        patients=4,
    )
)
