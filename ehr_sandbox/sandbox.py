"""Sandbox: one EHR instance — a store, its users, the policy, the audit trail and the keys.

>>> sb = Sandbox.generate(patients=3, seed=7)
>>> sorted({u.role for u in sb.users}) >= ["admin", "billing", "front_desk"]
True
>>> sb.login("ma.garcia").user.role
'medical_assistant'
>>> sb.audit.verify().ok
True
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, MutableMapping
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from ehr_sandbox.access import Policy
from ehr_sandbox.access.derived import inherit_labels
from ehr_sandbox.clock import SandboxClock, instant
from ehr_sandbox.crypto import AesGcmCodec, IdentityCodec, MasterKey
from ehr_sandbox.errors import (
    AccessDenied,
    ArgumentError,
    AuditError,
    CryptoError,
    NotFound,
    ValidationError,
)
from ehr_sandbox.provenance import build_provenance
from ehr_sandbox.session import Session
from ehr_sandbox.store import Store
from ehr_sandbox.users import SYSTEM_USERNAME, User, staff_from_practice

KEY_CHECK_PLAINTEXT = b"ehr-sandbox key check v1"
KEY_SUFFIX = ".key"
"""Where older versions kept an unencrypted sandbox's key (``<db>.key``, beside the data). No
longer written: see :mod:`ehr_sandbox.crypto.keystore` for where the key comes from now."""


class SealedMeta:
    """Sandbox metadata that may name people (users, exercise state, review queues), sealed
    with the row codec so an encrypted sandbox shows none of it in plaintext.

    >>> from ehr_sandbox.crypto import IdentityCodec
    >>> m = SealedMeta(Store(), IdentityCodec()); m.set("k", [1]); m.get("k")
    [1]
    """

    _INDEX = "sealed-keys"

    def __init__(self, store: Store, codec: Any) -> None:
        self._store = store
        self.codec = codec

    def get(self, key: str, default: Any = None) -> Any:
        """The value under ``key`` (``default`` when absent).

        Parameters
        ----------
        key : str
            The name it was stored under.
        default : object, optional
            Returned when nothing is stored under ``key``.

        Returns
        -------
        object
            The stored JSON value, unsealed.

        Raises
        ------
        CryptoError
            The value was sealed under another key.

        Examples
        --------
        >>> from ehr_sandbox.crypto import IdentityCodec
        >>> m = SealedMeta(Store(), IdentityCodec())
        >>> m.get("absent", "fallback")
        'fallback'
        """
        import orjson

        blob = self._store.meta_get("sealed/" + key, None)
        if blob is None:
            return default
        return orjson.loads(self.codec.open(f"meta/{key}", bytes.fromhex(blob)))

    def set(self, key: str, value: Any) -> None:
        """Seal and store ``value`` under ``key``.

        Parameters
        ----------
        key : str
            The name to store it under.
        value : object
            Any JSON-ready value (orjson serialises it).

        Examples
        --------
        >>> from ehr_sandbox.crypto import IdentityCodec
        >>> m = SealedMeta(Store(), IdentityCodec())
        >>> m.set("users", [{"username": "a"}]); m.get("users")
        [{'username': 'a'}]
        """
        import orjson

        self._store.meta_set(
            "sealed/" + key, self.codec.seal(f"meta/{key}", orjson.dumps(value)).hex()
        )
        keys = self._store.meta_get(self._INDEX, [])
        if key not in keys:
            self._store.meta_set(self._INDEX, [*keys, key])

    def reseal(self, new_codec: Any) -> None:
        """Re-seal every value under ``new_codec`` (key rotation).

        Parameters
        ----------
        new_codec : RowCodec
            The codec of the new key; it seals from now on.

        Examples
        --------
        >>> from ehr_sandbox.crypto import IdentityCodec
        >>> m = SealedMeta(Store(), IdentityCodec()); m.set("k", {"a": 1})
        >>> new = IdentityCodec()
        >>> m.reseal(new); m.codec is new, m.get("k")
        (True, {'a': 1})
        """
        values = {k: self.get(k) for k in self._store.meta_get(self._INDEX, [])}
        self.codec = new_codec
        for k, v in values.items():
            self.set(k, v)


class SandboxState(MutableMapping[str, Any]):
    """A small persistent JSON namespace inside the sandbox (exercise results, courses).

    >>> sb = Sandbox.generate(patients=1, seed=1)
    >>> sb.state["demo"] = {"n": 1}; sb.state["demo"]
    {'n': 1}
    """

    _PREFIX = "state/"

    def __init__(self, meta: SealedMeta) -> None:
        self._meta = meta

    def __getitem__(self, key: str) -> Any:
        value = self._meta.get(self._PREFIX + key, None)
        if value is None:
            raise KeyError(key)
        return value

    def __setitem__(self, key: str, value: Any) -> None:
        if value is None:
            raise ValidationError(
                "sandbox.state", key, "a value (to clear a key, delete it: del state[key])"
            )
        self._meta.set(self._PREFIX + key, value)
        keys = self._meta.get("state-keys", [])
        if key not in keys:
            self._meta.set("state-keys", [*keys, key])

    def __delitem__(self, key: str) -> None:
        if key not in self:
            raise KeyError(key)
        self._meta.set(self._PREFIX + key, None)
        self._meta.set("state-keys", [k for k in self._meta.get("state-keys", []) if k != key])

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys())

    def __len__(self) -> int:
        return len(self._keys())

    def _keys(self) -> list[str]:
        return [
            k
            for k in self._meta.get("state-keys", [])
            if self._meta.get(self._PREFIX + k) is not None
        ]


def _as_master_key(key: Any) -> MasterKey:
    if isinstance(key, MasterKey):
        return key
    if isinstance(key, bytes | bytearray):
        if len(key) != 32:
            raise CryptoError(f"key: expected 32 bytes (256 bits), got {len(key)}")
        return MasterKey(bytes(key))
    if isinstance(key, str | os.PathLike):
        path = Path(key)
        if not path.is_file():
            raise CryptoError(f"key: expected a key file, but {path.name!r} does not exist")
        return MasterKey.from_file(path)
    raise CryptoError(
        f"key: expected 32 bytes, a key file path or a MasterKey, got {type(key).__name__}"
    )


class Sandbox:
    """One teaching EHR: build one with :meth:`generate` or reopen one with :meth:`open`.

    A sandbox holds the clinic's data (a SQLite store, encrypted or not), its audit trail,
    its deterministic clock and its staff accounts. Patient data is only reached through
    sessions (:meth:`login`, :meth:`login_patient`, :meth:`system_session` ...).

    Parameters
    ----------
    store : Store
        The clinic's database.
    master_key : MasterKey
        The key every other key (audit, pointers, encryption) derives from.
    codec : RowCodec
        Seals rows (``IdentityCodec`` when unencrypted).
    clock : SandboxClock
        The sandbox's clock.
    reference_date : date
        The clinic's "today".
    path : str or None
        The file, or None in memory.

    Examples
    --------
    >>> sb = Sandbox.generate(patients=1, seed=1, years=1)
    >>> sb
    <Sandbox in memory, reference date 2026-01-01>
    >>> sb.login("dr.patel").search("Patient").count(), sb.clock.peek().date().isoformat()
    (1, '2026-01-01')
    """

    def __init__(
        self,
        store: Store,
        *,
        master_key: MasterKey,
        codec: Any,
        clock: SandboxClock,
        reference_date: date,
        path: str | None,
    ) -> None:
        from ehr_sandbox.audit import AuditTrail

        self._store = store
        self.master_key = master_key
        self.codec = codec
        self.clock = clock
        self.reference_date = reference_date
        self.path = path
        from ehr_sandbox.store.pointers import POINTER_MAC_INFO, PointerGuard

        self.audit = AuditTrail(store.connection, master_key, codec)
        self._pointers = PointerGuard(store.connection, master_key.derive(POINTER_MAC_INFO))
        self.policy = Policy(
            consents=self._consents_for, clock=self.clock.peek, derived=self._derived_from
        )
        self.private = SealedMeta(store, codec)
        self.state: MutableMapping[str, Any] = SandboxState(self.private)
        self._users: list[User] | None = None
        self._system_user = User(SYSTEM_USERNAME, "system", "ehr-sandbox system")
        # grows whenever a write may change whom someone treats (an Appointment, Encounter,
        # Patient or CareTeam): every open session then works its relationships out again,
        # so a cancelled booking closes the chart for sessions already open too
        self._relationship_epoch = 0
        from ehr_sandbox.relationship_memo import RelationshipMemo
        from ehr_sandbox.relationships import treating_patients

        # a fresh login reuses whom its user treats while the data is unchanged (any write,
        # by any path, makes the next look-up work it out again)
        self._relationship_memo = RelationshipMemo(
            store.change_mark,
            lambda: store.connection.in_transaction,
            lambda user, day: treating_patients(store, user, day),
        )

    # ------------------------------------------------------------------ construction
    @classmethod
    def generate(
        cls,
        patients: int = 200,
        seed: int = 7,
        path: str | os.PathLike[str] | None = None,
        *,
        reference_date: str | date = "2026-01-01",
        population: str = "family-practice",
        years: int = 10,
        key: Any = None,
        passphrase: str | None = None,
    ) -> Sandbox:
        """Build a ready clinic: the practice, its staff, patients with histories and this
        week's schedule. ``path=None`` keeps it in memory; ``key``/``passphrase`` encrypt it.

        >>> Sandbox.generate(patients=2, seed=3).grader_session().search("Patient").count()
        2
        """
        import synthetic

        if not isinstance(patients, int) or patients < 0:
            raise ArgumentError(f"patients: expected a whole number >= 0, got {patients!r}")
        ref = _parse_date(reference_date)
        if path is not None and Path(path).exists():
            raise ArgumentError(
                f"path: {Path(path).name!r} already exists; open it with Sandbox.open or choose a new file"
            )
        sb = cls._create(path, ref, key=key, passphrase=passphrase)
        # the practice's free slots are those the generated patients leave (a planning pass)
        practice = synthetic.practice_resources(
            seed=seed, reference_date=ref, population=population, patients=patients, years=years
        )
        records = synthetic.generate(
            patients, seed=seed, reference_date=ref, years=years, population=population
        )

        def accounts() -> None:  # in the load's transaction: the clinic and its accounts together
            sb.private.set("users", [u.to_json() for u in staff_from_practice(practice)])
            # Sealed like every other value that could name people: the seed regenerates every
            # patient's name, MRN and birth date, so it must not sit in plaintext.
            sb.private.set(
                "generated",
                {
                    "patients": patients,
                    "seed": seed,
                    "population": population,
                    "years": years,
                    "reference_date": ref.isoformat(),
                },
            )

        sb._bulk_load(practice, records, finish=accounts)
        sb.policy.forget_consents()
        sb.audit.checkpoint()
        return sb

    @classmethod
    def empty(
        cls,
        path: str | os.PathLike[str] | None = None,
        *,
        reference_date: str | date = "2026-01-01",
        key: Any = None,
        passphrase: str | None = None,
    ) -> Sandbox:
        """A sandbox with no practice and no patients, e.g. to import outside data into.

        >>> Sandbox.empty().grader_session().search("Patient").count()
        0
        """
        ref = _parse_date(reference_date)
        if path is not None and Path(path).exists():
            raise ArgumentError(
                f"path: {Path(path).name!r} already exists; open it with Sandbox.open"
            )
        sb = cls._create(path, ref, key=key, passphrase=passphrase)
        sb.private.set("users", [])
        return sb

    @classmethod
    def _create(cls, path: Any, ref: date, *, key: Any, passphrase: str | None) -> Sandbox:
        if key is not None and passphrase is not None:
            raise ArgumentError("give either key= or passphrase=, not both")
        clock = SandboxClock.starting(ref)
        salt = None
        from ehr_sandbox.crypto.keystore import key_from_environment, named_key_file, remember_key

        from_env = False
        if passphrase is not None:
            salt = os.urandom(16)
            mk = MasterKey.from_passphrase(passphrase, salt)
        elif key is not None:
            if isinstance(key, str | os.PathLike) and not Path(key).exists():
                # A key file the caller names, created for this new sandbox (never beside it).
                named = named_key_file(key, path)
                mk = MasterKey.generate()
                mk.to_file(named)
            else:
                if isinstance(key, str | os.PathLike):
                    named_key_file(key, path)
                mk = _as_master_key(key)
        else:
            env = key_from_environment()
            from_env = env is not None
            mk = env if env is not None else MasterKey.generate()
        encrypting = key is not None or passphrase is not None
        codec = AesGcmCodec(mk) if encrypting else IdentityCodec()
        store = Store(
            str(path) if path is not None else None,
            codec=codec,
            clock=clock.now,
            id_factory=_random_id if encrypting else None,
        )
        store.meta_set("reference_date", ref.isoformat())
        store.meta_set(POINTERS_KEY, True)
        store.meta_set(
            "encryption",
            {
                "on": encrypting,
                "kdf": "scrypt" if salt else ("key" if key is not None else None),
                "salt": salt.hex() if salt else None,
                "key_id": mk.key_id,
            },
        )
        if encrypting:
            store.meta_set("key_check", codec.seal("key-check", KEY_CHECK_PLAINTEXT).hex())
        elif path is not None and not from_env:
            remember_key(mk, path)  # the user's key folder, never beside the database
        return cls(
            store,
            master_key=mk,
            codec=codec,
            clock=clock,
            reference_date=ref,
            path=str(path) if path is not None else None,
        )

    @classmethod
    def open(
        cls, path: str | os.PathLike[str], *, key: Any = None, passphrase: str | None = None
    ) -> Sandbox:
        """Reopen a sandbox file; an encrypted one needs its key or passphrase.

        An unencrypted file's audit key is found in the key folder (see
        :mod:`ehr_sandbox.crypto.keystore`) when ``key`` is not given.

        Parameters
        ----------
        path : str or PathLike
            The sandbox file.
        key : bytes, MasterKey or path, optional
            The 32-byte master key, a ``MasterKey`` or a key file.
        passphrase : str, optional
            The passphrase the sandbox was encrypted with.

        Returns
        -------
        Sandbox
            The clinic, with its clock where it was left.

        Raises
        ------
        CryptoError
            A wrong or missing key or passphrase (one clear error).
        ValidationError
            The file is not an ehr-sandbox database.

        Examples
        --------
        >>> import pathlib, tempfile
        >>> from ehr_sandbox.errors import CryptoError
        >>> f = pathlib.Path(tempfile.mkdtemp()) / "clinic.db"
        >>> Sandbox.generate(patients=1, seed=1, years=1, path=f, key=bytes(32)).close()
        >>> with Sandbox.open(f, key=bytes(32)) as sb:
        ...     sb.grader_session().search("Patient").count()
        1
        >>> try:
        ...     Sandbox.open(f, key=bytes([1]) * 32)
        ... except CryptoError:
        ...     print("refused")
        refused
        """
        p = Path(path)
        if not p.is_file():
            raise NotFound(f"no sandbox file at {p.name!r}")
        probe = Store(str(p), codec=IdentityCodec())
        enc = probe.meta_get("encryption", None)
        ref = probe.meta_get("reference_date", None)
        ticks = probe.meta_get("clock_ticks", 0)
        probe.close()
        if enc is None or ref is None:
            raise ValidationError(
                p.name, "sandbox_meta", "an ehr-sandbox database (made by Sandbox.generate)"
            )
        if enc.get("on"):
            if key is None and passphrase is None:
                raise CryptoError("this sandbox is encrypted: open it with key= or passphrase=")
            if passphrase is not None:
                if not enc.get("salt"):
                    raise CryptoError(
                        "this sandbox was encrypted with a key file, not a passphrase: use key="
                    )
                mk = MasterKey.from_passphrase(passphrase, bytes.fromhex(enc["salt"]))
            else:
                mk = _as_master_key(key)
            codec = AesGcmCodec(mk)
            check = probe_check = None
            store = Store(str(p), codec=codec, id_factory=_random_id)
            probe_check = store.meta_get("key_check", None)
            try:
                check = codec.open("key-check", bytes.fromhex(probe_check or ""))
            except CryptoError:
                check = None
            if check != KEY_CHECK_PLAINTEXT:
                store.close()
                raise CryptoError(
                    "wrong key or passphrase for this sandbox (nothing was read or changed)"
                )
        else:
            from ehr_sandbox.crypto.keystore import (
                ENV_KEY,
                ENV_KEY_DIR,
                ENV_KEY_FILE,
                key_from_environment,
                recall_key,
            )

            want = enc.get("key_id")
            mk = _as_master_key(key) if key is not None else key_from_environment()
            if mk is None and want:
                mk = recall_key(str(want), p)
            if mk is None:
                raise CryptoError(
                    f"the audit key of {p.name!r} (key id {want}) was not found: pass key=, or set "
                    f"{ENV_KEY} / {ENV_KEY_FILE}, or put its key file in {ENV_KEY_DIR}"
                )
            if want and mk.key_id != want:
                raise CryptoError(
                    f"wrong key for {p.name!r}: it was made with key id {want}, not {mk.key_id}"
                )
            codec = IdentityCodec()
            store = Store(str(p), codec=codec)
        clock = SandboxClock.starting(ref)
        clock.ticks = int(ticks)
        store._clock = clock.now  # noqa: SLF001 - the clock is re-bound on reopen
        sb = cls(
            store,
            master_key=mk,
            codec=codec,
            clock=clock,
            reference_date=date.fromisoformat(ref),
            path=str(p),
        )
        try:
            if store.meta_get(POINTERS_KEY, False):
                sb._pointers.verify_all()  # a pointer moved outside the sandbox fails here
            else:  # made before pointers were authenticated: authenticate them now
                with store.transaction():
                    sb._pointers.rekey(sb._pointers_key())
                    store.meta_set(POINTERS_KEY, True)
        except CryptoError:
            store.close()
            raise
        return sb

    def _bulk_load(
        self,
        practice: list[dict[str, Any]],
        records: Any,
        *,
        finish: Callable[[], None] | None = None,
    ) -> None:
        """Load generated resources through the store's bulk path, with one Provenance and
        one AuditEvent per patient (the system account did it), then call ``finish``.

        The whole load is one transaction (:meth:`Store.bulk`, opened first, not inside
        another transaction: as a savepoint it would keep an undo copy of every page it
        writes): records stream from the generator into batched inserts, so memory stays
        flat, and an error or a crash leaves the sandbox as it was before (no half-loaded
        clinic)."""
        store = self._store
        practice_prov = build_provenance(
            [f"{r['resourceType']}/{r['id']}/_history/1" for r in practice],
            recorded=instant(self.clock.now()),
            activity="import",
            who=None,
            reason="synthetic practice generated",
        )
        with store.bulk() as load:  # the index B-trees are built once, after the load
            self._load_records(load, practice, practice_prov, records)
            if finish is not None:
                finish()

    def _load_records(
        self,
        load: Any,
        practice: list[dict[str, Any]],
        practice_prov: dict[str, Any],
        records: Any,
    ) -> None:
        system = self._system_user
        encrypting = self.codec.encrypting
        # the practice keeps its ids when encrypting: they name staff, rooms, payers and kits,
        # not patients, and patients' records, users and workflows refer to them by those ids
        first = [
            *practice,
            {
                **practice_prov,
                "id": _random_id("Provenance") if encrypting else "prov-import-practice",
            },
        ]
        load.add(first)
        self._pointers.record_many(((r["resourceType"], r["id"], 1) for r in first), cache=False)
        self._audit_append(
            system,
            action="C",
            interaction="import",
            outcome="0",
            purpose="HOPERAT",
            patient_id=None,
            entity_ref=None,
            version=None,
            labels=[],
            query="practice",
        )
        for rec in records:
            resources = list(rec.all())
            if encrypting:
                # Generated ids embed the patient's id: an encrypted sandbox gets random ones.
                resources = _with_random_ids(resources)
            prov = build_provenance(
                [f"{r['resourceType']}/{r['id']}/_history/1" for r in resources],
                recorded=instant(self.clock.now()),
                activity="import",
                who=None,
                reason="synthetic patient generated",
                # it names every record it imported: it carries their labels (derived.py)
                security=inherit_labels([], resources),
            )
            pid = resources[0]["id"] if encrypting else rec.patient["id"]
            prov_id = _random_id("Provenance") if encrypting else f"prov-import-{pid}"
            resources.append({**prov, "id": prov_id})
            load.add(resources, trusted=True)
            self._pointers.record_many(
                ((r["resourceType"], r["id"], 1) for r in resources), cache=False
            )
            self._audit_append(
                system,
                action="C",
                interaction="import",
                outcome="0",
                purpose="HOPERAT",
                patient_id=pid,
                entity_ref=f"Patient/{pid}",
                version="1",
                labels=[],
                query=None,
            )

    # ------------------------------------------------------------------ users and sessions
    @property
    def users(self) -> list[User]:
        """The staff accounts (username and role). Patients log in with :meth:`login_patient`.

        Returns
        -------
        list of User
            A copy, sorted by role then username.

        Examples
        --------
        >>> sb = Sandbox.generate(patients=1, seed=1, years=1)
        >>> sorted({u.role for u in sb.users})[:3], all(u.is_staff for u in sb.users)
        (['admin', 'billing', 'front_desk'], True)
        """
        if self._users is None:
            self._users = [User(**u) for u in self.private.get("users", [])]
        return list(self._users)

    def set_staff(self, users: list[User]) -> None:
        """Replace the staff accounts (e.g. after importing a practice into an empty sandbox).

        >>> sb = Sandbox.empty()
        >>> sb.set_staff([User("po.lee", "privacy_officer", "Pat Lee")])
        >>> [u.username for u in sb.users]
        ['po.lee']
        """
        self.private.set("users", [u.to_json() for u in users])
        self._users = None

    def user(self, username: str) -> User:
        """The account called ``username``.

        Parameters
        ----------
        username : str
            A staff username (``dr.patel``).

        Returns
        -------
        User
            The account.

        Raises
        ------
        NotFound
            No such account (the message lists a few that exist).

        Examples
        --------
        >>> sb = Sandbox.generate(patients=1, seed=1, years=1)
        >>> sb.user("billing.davis").role
        'billing'
        >>> sb.user("dr.who")
        Traceback (most recent call last):
        ...
        ehr_sandbox.errors.NotFound: no user 'dr.who' in this sandbox (for example: fd.brown, fd.smith, ma.chen, ma.garcia, ma.johnson, rn.kim)
        """
        for u in self.users:
            if u.username == username:
                return u
        names = ", ".join(u.username for u in self.users[:6])
        raise NotFound(f"no user {username!r} in this sandbox (for example: {names})")

    def login(
        self,
        username: str,
        *,
        scopes: str | None = None,
        patient: str | None = None,
    ) -> Session:
        """A Session for a staff member; optional SMART ``scopes`` and ``patient`` in context.

        The purpose of use comes from the role (and from break-the-glass), never from the
        caller: there is no ``purpose=`` to claim one a Consent would let through.

        >>> Sandbox.generate(patients=1, seed=1).login("nobody")
        Traceback (most recent call last):
        ...
        ehr_sandbox.errors.NotFound: no user 'nobody' in this sandbox (for example: fd.brown, fd.smith, ma.chen, ma.garcia, ma.johnson, rn.kim)
        """
        return self._session(self.user(username), scopes=scopes, patient=patient)

    def login_patient(self, patient_id: str, *, scopes: str | None = None) -> Session:
        """A Session for a patient on the portal: their own record only.

        Parameters
        ----------
        patient_id : str
            The patient's id or ``Patient/id``.
        scopes : str, optional
            SMART scopes (``patient/*.rs`` ...) narrowing what the portal app may do.

        Returns
        -------
        Session
            A session of role ``patient`` bound to that patient.

        Raises
        ------
        NotFound
            No such patient.

        Examples
        --------
        >>> sb = Sandbox.generate(patients=2, seed=1, years=1)
        >>> pid = sb.grader_session().search("Patient").first()["id"]
        >>> me = sb.login_patient(f"Patient/{pid}")
        >>> me.role, [p["id"] for p in me.search("Patient")] == [pid]
        ('patient', True)
        """
        pid = patient_id.split("/", 1)[1] if patient_id.startswith("Patient/") else patient_id
        patient = self._store.read("Patient", pid)
        if patient is None:
            raise NotFound(f"Patient/{pid} was not found")
        name = (patient.get("name") or [{}])[0]
        display = " ".join([*name.get("given", []), name.get("family", "")]).strip()
        user = User(f"patient/{pid}", "patient", display, None, pid)
        return self._session(user, scopes=scopes, patient=pid)

    def system_session(self, purpose: str = "HOPERAT") -> Session:
        """The sandbox's own session (generation, import, grading). Audited like any other.

        Parameters
        ----------
        purpose : str, default "HOPERAT"
            Only checked: the system account's purpose of use is its role's (HOPERAT), and no
            argument can change it.

        Returns
        -------
        Session
            A non-interactive session of the ``system`` account.

        Raises
        ------
        ValidationError
            ``purpose`` is not HOPERAT.

        Examples
        --------
        >>> sb = Sandbox.generate(patients=1, seed=1, years=1)
        >>> sb.system_session().user.username
        'system'
        >>> sb.system_session("TREAT")
        Traceback (most recent call last):
        ...
        ehr_sandbox.errors.ValidationError: system_session: purpose: expected HOPERAT (purpose of use comes from the role) (found 'TREAT')
        """
        from ehr_sandbox.access.roles import purpose_of_use

        if purpose != purpose_of_use(self._system_user.role):
            raise ValidationError(
                "system_session",
                "purpose",
                f"{purpose_of_use(self._system_user.role)} (purpose of use comes from the role)",
                found=purpose,
            )
        return self._session(self._system_user, interactive=False)

    def backend_session(self, username: str, *, scopes: str) -> Session:
        """A non-interactive Session for a staff account's backend service (SMART Backend
        Services: ``system/`` scopes, e.g. bulk export). The role matrix still caps it.

        >>> s = Sandbox.generate(patients=1, seed=1, years=1).backend_session("dr.patel", scopes="system/*.rs")
        >>> s.interactive, s.user.role
        (False, 'physician')
        """
        return self._session(self.user(username), scopes=scopes, interactive=False)

    def grader_session(self) -> Session:
        """The session graders and exercise setup read through: the system account's policy
        (it sees everything, discloses nothing), every read audited as ``system``.

        >>> Sandbox.generate(patients=2, seed=1, years=1).grader_session().search("Patient").count()
        2
        """
        return self._session(self._system_user, interactive=False)

    def exchange_session(self, requester: User, org_key: str, patient_id: str) -> Session:
        """This organization's answer to a health-information-exchange request for one patient.

        The user is ``hie:<requesting org>:<username>`` with the requester's role; its only care
        relationship is the requested patient, so this sandbox's policy decides the rest, and every
        read is audited here.

        Parameters
        ----------
        requester : User
            The person asking, at the other organization.
        org_key : str
            The requesting organization's key.
        patient_id : str
            The patient asked about (id or ``Patient/id``).

        Returns
        -------
        Session
            A session that treats only that patient.

        Examples
        --------
        >>> from ehr_sandbox.users import User
        >>> sb = Sandbox.generate(patients=2, seed=1, years=1)
        >>> pid = sb.grader_session().search("Patient").first()["id"]
        >>> s = sb.exchange_session(User("dr.ross", "physician", "Dr Ross"), "hospital", pid)
        >>> s.user.username, [p["id"] for p in s.search("Patient")] == [pid]
        ('hie:hospital:dr.ross', True)
        """
        user = User(
            f"hie:{org_key}:{requester.username}",
            requester.role,
            f"{requester.display} ({org_key}, via the exchange)",
        )
        pid = patient_id.split("/", 1)[1] if patient_id.startswith("Patient/") else patient_id
        return self._session(user, treating=frozenset({pid}))

    def treating(self, username: str) -> frozenset[str]:
        """Ids of the patients ``username`` treats today (care team, scheduled or seen).

        >>> sb = Sandbox.generate(patients=3, seed=1, years=1)
        >>> sb.treating("dr.patel") <= {p["id"] for p in sb.grader_session().search("Patient")}
        True
        """
        return self._relationships(self.user(username))

    def _session(
        self,
        user: User,
        *,
        scopes: str | None = None,
        patient: str | None = None,
        interactive: bool = True,
        treating: frozenset[str] | None = None,
    ) -> Session:
        return Session(
            self,
            user,
            store=self._store,
            pointers=self._pointers,
            scopes=scopes,
            patient=patient,
            interactive=interactive,
            treating=treating,
        )

    def _pointers_key(self) -> bytes:
        from ehr_sandbox.store.pointers import POINTER_MAC_INFO

        return self.master_key.derive(POINTER_MAC_INFO)

    def _relationships(self, user: User) -> frozenset[str]:
        return self._relationship_memo.treating(user, self.reference_date)

    def _derived_from(self, resource: dict[str, Any]) -> frozenset[str]:
        """The records ``resource`` is derived from, directly or not (for Consents that name
        data: a restriction on a visit covers the response to its claim too)."""
        from ehr_sandbox.access.derived import ancestors

        return ancestors(resource, self._read_any)

    def _read_any(self, rtype: str, rid: str) -> dict[str, Any] | None:
        from ehr_sandbox.references import ID_RE
        from synthetic.fhir import is_resource_type

        if not is_resource_type(rtype) or not ID_RE.match(rid):
            return None
        return self._store.read(rtype, rid)

    def _consents_for(self, patient_id: str) -> list[dict[str, Any]]:
        from ehr_sandbox.search import parse

        if not patient_id:
            return []
        return self._store.search(
            "Consent", parse("Consent", [("patient", f"Patient/{patient_id}")])
        )

    # ------------------------------------------------------------------ audit, signatures, BTG
    def _audit_append(
        self,
        user: User,
        *,
        action: str,
        interaction: str,
        outcome: str,
        purpose: str,
        patient_id: str | None,
        entity_ref: str | None,
        version: str | None,
        labels: list[dict[str, Any]],
        query: str | None,
        detail: str | None = None,
        tick: bool = True,
    ) -> None:
        from ehr_sandbox.audit import build_event

        peek = getattr(self.clock, "peek", None)
        when = self.clock.now() if tick or peek is None else peek()
        event = build_event(
            action=action,
            interaction=interaction,
            outcome=outcome,
            user={
                "username": user.username,
                "role": user.role,
                "practitioner_id": user.practitioner_id,
                "patient_id": user.patient_id,
            },
            purpose=purpose,
            patient_id=patient_id,
            entity_ref=entity_ref,
            version=version,
            labels=labels,
            query=query,
            recorded=instant(when),
            detail=detail,
        )
        self.audit.append(event)

    def record_framework_action(
        self, username: str, kind: str, *, detail: str | None = None, replay: bool = False
    ) -> None:
        """Record one of the exercise framework's bookkeeping actions (a hint taken, a
        hand-in, a login as one of the exercise's people) as ``username``'s, in the audit
        trail.

        These kinds (:data:`ehr_sandbox.session.FRAMEWORK_AUDIT_KINDS`) are what the gradebook
        and the hint count trust, so no Session records them (``Session.audit_action`` refuses
        them, and the server offers nothing else that writes the audit trail): the framework
        writes them here, from outside the student's session.

        Parameters
        ----------
        username : str
            The sandbox user the action is recorded for (the student's role).
        kind : str
            One of :data:`ehr_sandbox.session.FRAMEWORK_AUDIT_KINDS`.
        detail : str, optional
            What the framework notes with it (the hint's number, the hand-in's time).
        replay : bool, default False
            Carry an earlier entry over into a reset attempt: stamped with the clock's current
            instant without moving it, so work after a reset gets the same times as in a fresh
            attempt (the start state is restored exactly, clock included).

        Raises
        ------
        ValidationError
            For any other kind.
        NotFound
            For a user this sandbox does not have.

        Examples
        --------
        >>> sb = Sandbox.generate(patients=1, seed=1, years=1)
        >>> sb.record_framework_action("ma.garcia", "exercise-hint", detail="0")
        >>> ev = sb.audit.events()[-1]
        >>> ev["subtype"][0]["code"], ev["outcomeDesc"]
        ('exercise-hint', '0')
        >>> sb.record_framework_action("ma.garcia", "disclose")
        Traceback (most recent call last):
        ...
        ehr_sandbox.errors.ValidationError: record_framework_action: kind: expected one of exercise-check, exercise-hint, exercise-login, exercise-submit (found 'disclose')
        """
        from ehr_sandbox.access.roles import purpose_of_use
        from ehr_sandbox.session import FRAMEWORK_AUDIT_KINDS

        if not isinstance(kind, str) or kind not in FRAMEWORK_AUDIT_KINDS:
            raise ValidationError(
                "record_framework_action",
                "kind",
                "one of " + ", ".join(sorted(FRAMEWORK_AUDIT_KINDS)),
                found=kind,
            )
        user = self.user(username)
        self._audit_append(
            user,
            action="E",
            interaction=kind,
            outcome="0",
            purpose=purpose_of_use(user.role),
            patient_id=None,
            entity_ref=None,
            version=None,
            labels=[],
            query=None,
            detail=detail,
            tick=not replay,
        )

    def _audit_append_many(self, user: User, patient_ids: list[str | None], **common: Any) -> None:
        """One AuditEvent per patient (in order, one clock tick each, one savepoint), otherwise
        as :meth:`_audit_append` with the same ``common`` arguments writes them one by one."""
        from ehr_sandbox.audit.batch import prepare_events

        items = [(pid, instant(self.clock.now())) for pid in patient_ids]
        self.audit.append_many(
            prepare_events(
                items=items,
                user={
                    "username": user.username,
                    "role": user.role,
                    "practitioner_id": user.practitioner_id,
                    "patient_id": user.patient_id,
                },
                **common,
            )
        )

    def _is_signed(self, ref: str) -> bool:
        return ref in self.private.get("signed_notes", {})

    def _queue_btg_review(self, user: User, patient_id: str, reason: str, when: str) -> None:
        queue = self.private.get("btg_review", [])
        queue.append(
            {
                "user": user.username,
                "role": user.role,
                "patient": patient_id,
                "reason": reason,
                "started": when,
                "reviewed": False,
            }
        )
        self.private.set("btg_review", queue)

    def _require_reviewer(self, session: Session, interaction: str) -> None:
        from ehr_sandbox.access.roles import may

        if session.sandbox is not self or not may(session.user.role, "review"):
            self._audit_append(
                session.user,
                action="R" if interaction == "btg-review-queue" else "U",
                interaction=interaction,
                outcome="4",
                purpose=session.context.purpose,
                patient_id=None,
                entity_ref=None,
                version=None,
                labels=[],
                query="btg_review",
                detail="only the privacy officer reviews break-the-glass use",
            )
            raise AccessDenied("only the privacy officer reviews break-the-glass use")

    def btg_review_queue(self, session: Session) -> list[dict[str, Any]]:
        """Break-the-glass uses awaiting review (privacy officer only; denials are audited).

        Parameters
        ----------
        session : Session
            The reviewer's session.

        Returns
        -------
        list of dict
            The unreviewed uses, oldest first (``user``, ``role``, ``patient``, ``reason``,
            ``started``).

        Raises
        ------
        AccessDenied
            The session is not the privacy officer's.

        Examples
        --------
        >>> sb = Sandbox.generate(patients=1, seed=1, years=1)
        >>> pid = sb.grader_session().search("Patient").first()["id"]
        >>> sb.login("rn.kim").break_glass(pid, reason="collapsed at check-in")
        >>> [(q["user"], q["reason"]) for q in sb.btg_review_queue(sb.login("po.wilson"))]
        [('rn.kim', 'collapsed at check-in')]
        """
        self._require_reviewer(session, "btg-review-queue")
        return [q for q in self.private.get("btg_review", []) if not q.get("reviewed")]

    def review_btg(
        self,
        session: Session,
        index: int,
        *,
        appropriate: bool,
        note: str,
        on_behalf_of: str | None = None,
    ) -> None:
        """Record the privacy officer's review of one break-the-glass use.

        ``on_behalf_of`` names the person the system account reviews for (the classroom
        server's instructor, signed in to the dashboard): recorded as the reviewer in the
        queue and on the audit trail. Only the system account may act for someone; a privacy
        officer's session reviews as itself.

        Raises
        ------
        AccessDenied
            When the session may not review (not a privacy officer nor the system account).
        ValidationError
            For an index outside the pending queue, or ``on_behalf_of`` from a session that is
            not the system account.

        Examples
        --------
        >>> sb = Sandbox.generate(patients=1, seed=1, years=1)
        >>> sb.review_btg(sb.login("po.wilson"), 0, appropriate=True, note="x",
        ...               on_behalf_of="instructor:lee")
        Traceback (most recent call last):
        ...
        ehr_sandbox.errors.ValidationError: btg_review: on_behalf_of: expected only from the system account (found 'instructor:lee')
        """
        self._require_reviewer(session, "btg-review")
        if on_behalf_of is not None and session.context.role_info.relationship != "bypass":
            raise ValidationError(
                "btg_review", "on_behalf_of", "only from the system account", found=on_behalf_of
            )
        reviewer = on_behalf_of or session.user.username
        queue = self.private.get("btg_review", [])
        pending = [i for i, q in enumerate(queue) if not q.get("reviewed")]
        if not 0 <= index < len(pending):
            raise ValidationError("btg_review", "index", f"0..{len(pending) - 1}", found=index)
        item = queue[pending[index]]
        item.update(
            reviewed=True,
            appropriate=bool(appropriate),
            note=str(note),
            reviewer=reviewer,
            reviewed_at=instant(self.clock.now()),
        )
        self.private.set("btg_review", queue)
        import json

        # the review itself is on the tamper-evident trail, not only in writable state
        session._audit_kind(
            "btg-review",
            patient=item["patient"],
            detail=json.dumps(
                {
                    "user": item["user"],
                    "patient": item["patient"],
                    "started": item["started"],
                    "appropriate": bool(appropriate),
                    "note": str(note),
                    "reviewer": reviewer,
                }
            ),
        )

    # ------------------------------------------------------------------ housekeeping
    def rotate_key(self, *, key: Any = None, passphrase: str | None = None) -> str:
        """Re-encrypt every row under a new passphrase or a key you keep; returns the new key id.

        The sandbox stays openable: afterwards ``Sandbox.open(path, passphrase=new)`` (or
        ``key=new``) opens it and the old secret no longer does. A call without ``key=`` or
        ``passphrase=`` is refused (a random key kept nowhere would lock the file for good).

        Parameters
        ----------
        key
            The new key: 32 bytes, a key file path or a ``MasterKey``.
        passphrase
            The new passphrase (a fresh salt is stored in the file).

        Returns
        -------
        str
            The new key's id.

        Raises
        ------
        ArgumentError
            Neither or both of ``key`` and ``passphrase`` given.
        CryptoError
            The sandbox is not encrypted, or the key is malformed.

        Examples
        --------
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "clinic.db"
        >>> sb = Sandbox.generate(patients=1, seed=1, path=path, passphrase="old secret")
        >>> _ = sb.rotate_key(passphrase="new secret")
        >>> sb.close()
        >>> Sandbox.open(path, passphrase="new secret").grader_session().search("Patient").count()
        1
        """
        enc = self._store.meta_get("encryption", {})
        if not enc.get("on"):
            raise CryptoError(
                "this sandbox is not encrypted; create it with key= or passphrase= to rotate keys"
            )
        if key is None and passphrase is None:
            raise ArgumentError(
                "rotate_key: expected passphrase='a new passphrase' or key=<the new key: 32 bytes, "
                "a key file or a MasterKey>; a random key kept nowhere would lock the file for good"
            )
        if key is not None and passphrase is not None:
            raise ArgumentError("rotate_key: give either key= or passphrase=, not both")
        salt = None
        if passphrase is not None:
            if not isinstance(passphrase, str) or not passphrase:
                raise ArgumentError("passphrase: expected a non-empty string")
            salt = os.urandom(16)
            new = MasterKey.from_passphrase(passphrase, salt)
        else:
            new = _as_master_key(key)
        codec = AesGcmCodec(new, previous=[self.master_key])
        self.audit.require_valid()  # rotation never launders a tampered trail
        with self._store.transaction():
            self._store.rekey(codec)
            self.audit.rekey(codec, new)
            from ehr_sandbox.store.pointers import POINTER_MAC_INFO

            self._pointers.rekey(new.derive(POINTER_MAC_INFO))
            self.private.reseal(codec)
            self._store.meta_set("key_check", codec.seal("key-check", KEY_CHECK_PLAINTEXT).hex())
            self._store.meta_set(
                "encryption",
                {
                    **enc,
                    "salt": salt.hex() if salt else None,
                    "kdf": "scrypt" if salt else "key",
                    "key_id": new.key_id,
                },
            )
        self.codec = codec
        self.master_key = new
        return new.key_id

    def copy(self) -> Sandbox:
        """An independent in-memory copy (an exercise's reset restores from one).

        Returns
        -------
        Sandbox
            The same data, key and clock position; writes to either do not reach the other.

        Examples
        --------
        >>> sb = Sandbox.generate(patients=1, seed=1, years=1)
        >>> twin = sb.copy()
        >>> p = twin.login("fd.smith").search("Patient").first(); p["gender"] = "unknown"
        >>> _ = twin.login("fd.smith").update(p)
        >>> sb.grader_session().read("Patient", p["id"])["meta"]["versionId"]
        '1'
        """
        self._store.meta_set("clock_ticks", self.clock.ticks)
        store = Store(None, codec=self.codec)
        store.load_from(self._store.connection)
        clock = SandboxClock(self.clock.start, self.clock.ticks)
        store._clock = clock.now  # noqa: SLF001
        return Sandbox(
            store,
            master_key=self.master_key,
            codec=self.codec,
            clock=clock,
            reference_date=self.reference_date,
            path=None,
        )

    @classmethod
    def load_copy(cls, path: str | os.PathLike[str], *, key: Any) -> Sandbox:
        """An in-memory copy of an unencrypted sandbox file, read with the SQLite backup API
        (the file is opened read-only and not changed; ``key`` is its audit key).

        >>> import tempfile, pathlib
        >>> f = pathlib.Path(tempfile.mkdtemp()) / "c.db"
        >>> sb = Sandbox.generate(patients=1, seed=1, years=1); sb.snapshot(f)
        >>> Sandbox.load_copy(f, key=sb.master_key).grader_session().search("Patient").count()
        1
        """
        mk = _as_master_key(key)
        store = Store(None, codec=IdentityCodec())
        store.load_from(Path(path))
        enc = store.meta_get("encryption", {}) or {}
        ref = store.meta_get("reference_date", None)
        if enc.get("on") or ref is None:
            store.close()
            raise ValidationError(
                Path(path).name, "sandbox_meta", "an unencrypted ehr-sandbox database"
            )
        clock = SandboxClock.starting(ref)
        clock.ticks = int(store.meta_get("clock_ticks", 0))
        store._clock = clock.now  # noqa: SLF001 - the clock is re-bound on load
        return cls(
            store,
            master_key=mk,
            codec=IdentityCodec(),
            clock=clock,
            reference_date=date.fromisoformat(ref),
            path=None,
        )

    def snapshot(self, path: str | os.PathLike[str]) -> None:
        """Write a copy of the database to ``path`` with the SQLite backup API, and nothing
        else (no key is stored anywhere: the caller keeps it, see :meth:`load_copy`).

        >>> import tempfile, pathlib
        >>> f = pathlib.Path(tempfile.mkdtemp()) / "s.db"
        >>> Sandbox.generate(patients=1, seed=1, years=1).snapshot(f); f.stat().st_size > 0
        True
        """
        import sqlite3

        target = Path(path)
        if target.exists():
            raise ArgumentError(f"path: {target.name!r} already exists")
        self._store.meta_set("clock_ticks", self.clock.ticks)
        dst = sqlite3.connect(str(target))
        try:
            self._store.connection.backup(dst)
        finally:
            dst.close()

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write this sandbox to a file (with its key file when unencrypted).

        The key file goes to the key folder, never beside the copy.

        Parameters
        ----------
        path : str or PathLike
            A new file.

        Raises
        ------
        ArgumentError
            ``path`` already exists.

        Examples
        --------
        >>> import pathlib, tempfile
        >>> f = pathlib.Path(tempfile.mkdtemp()) / "saved.db"
        >>> Sandbox.generate(patients=1, seed=1, years=1).save(f)
        >>> with Sandbox.open(f) as again:
        ...     again.grader_session().search("Patient").count()
        1
        """
        import sqlite3

        target = Path(path)
        if target.exists():
            raise ArgumentError(f"path: {target.name!r} already exists")
        self._store.meta_set("clock_ticks", self.clock.ticks)
        dst = sqlite3.connect(str(target))
        try:
            self._store.connection.backup(dst)
        finally:
            dst.close()
        if not self._store.meta_get("encryption", {}).get("on"):
            from ehr_sandbox.crypto.keystore import key_from_environment, remember_key

            if key_from_environment() != self.master_key:
                remember_key(self.master_key, target)  # never beside the copy

    def export_checkpoint(self, path: str | os.PathLike[str]) -> dict[str, Any]:
        """Sign the end of the audit trail and write the checkpoint to ``path`` (JSON), to be
        kept **outside** the database (e.g. published by the instructor). ``audit verify
        --anchor FILE`` then catches a deleted tail even when the checkpoints stored inside the
        database were deleted with it.

        >>> import json, tempfile, pathlib
        >>> sb = Sandbox.generate(patients=1, seed=1, years=1)
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "anchor.json"
        >>> cp = sb.export_checkpoint(p); json.loads(p.read_text())["seq"] == cp["seq"]
        True
        >>> sb.audit.verify(anchor=cp).ok
        True
        """
        import json

        cp = self.audit.checkpoint() or self.audit.latest_checkpoint()
        if cp is None:
            raise AuditError("the audit trail is empty: there is nothing to anchor")
        target = Path(path)
        if self.path is not None and target.resolve().parent == Path(self.path).resolve().parent:
            raise ArgumentError(
                "path: keep the checkpoint apart from the database (another folder or machine); "
                "an anchor beside the data can be deleted with it"
            )
        target.write_text(json.dumps(cp, sort_keys=True) + "\n", encoding="utf-8")
        return cp

    def release(self) -> None:
        """Release the file without writing anything (no checkpoint): for read-only checks.

        Examples
        --------
        >>> import pathlib, tempfile
        >>> f = pathlib.Path(tempfile.mkdtemp()) / "r.db"
        >>> Sandbox.generate(patients=1, seed=1, years=1, path=f, key=bytes(32)).close()
        >>> before = f.read_bytes()
        >>> sb = Sandbox.open(f, key=bytes(32)); sb.release()
        >>> f.read_bytes() == before
        True
        """
        self._store.close()

    def close(self) -> None:
        """Flush the audit checkpoint, remember the clock, release the file.

        Use the sandbox as a context manager to close it on leaving the block.

        Examples
        --------
        >>> import pathlib, tempfile
        >>> f = pathlib.Path(tempfile.mkdtemp()) / "c.db"
        >>> sb = Sandbox.generate(patients=1, seed=1, years=1, path=f, key=bytes(32))
        >>> _ = sb.clock.now(); ticks = sb.clock.ticks; sb.close()
        >>> with Sandbox.open(f, key=bytes(32)) as again:
        ...     again.clock.ticks >= ticks
        True
        """
        try:
            self._store.meta_set("clock_ticks", self.clock.ticks)
            self.audit.checkpoint()
        finally:
            self._store.close()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _repr_html_(self) -> str:
        from ehr_sandbox.display.reprs import sandbox_html

        return sandbox_html(self)

    def __repr__(self) -> str:
        where = Path(self.path).name if self.path else "in memory"
        return f"<Sandbox {where}, reference date {self.reference_date}>"


POINTERS_KEY = "pointer_macs"
"""sandbox_meta flag: current-version pointers carry MACs (checked on open)."""


def _random_id(resource_type: str) -> str:
    """A random FHIR id (encrypted sandboxes: an id must not reveal whose record it is)."""
    import secrets

    return secrets.token_hex(16)


def _with_random_ids(resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``resources`` with random ids, every reference among them rewritten to match.

    >>> out = _with_random_ids([{"resourceType": "Patient", "id": "pat-1"},
    ...     {"resourceType": "Observation", "id": "pat-1-obs-0", "subject": {"reference": "Patient/pat-1"}}])
    >>> out[1]["subject"]["reference"] == "Patient/" + out[0]["id"] and "pat" not in out[0]["id"]
    True
    """
    import orjson

    mapping = {
        f"{r['resourceType']}/{r['id']}": f"{r['resourceType']}/{_random_id('')}" for r in resources
    }

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            out = {k: walk(v) for k, v in node.items()}
            ref = out.get("reference")
            if isinstance(ref, str) and ref in mapping:
                out["reference"] = mapping[ref]
            return out
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    out = []
    for r in orjson.loads(orjson.dumps(resources)):
        new = walk(r)
        new["id"] = mapping[f"{r['resourceType']}/{r['id']}"].split("/", 1)[1]
        out.append(new)
    return out


def _parse_date(value: str | date) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise ArgumentError(f"reference_date: expected YYYY-MM-DD, got {value!r}") from None


def this_week(reference_date: date) -> tuple[date, date]:
    """Monday..Sunday of the reference date's week.

    >>> this_week(date(2026, 1, 1))
    (datetime.date(2025, 12, 29), datetime.date(2026, 1, 4))
    """
    monday = reference_date - timedelta(days=reference_date.weekday())
    return monday, monday + timedelta(days=6)
