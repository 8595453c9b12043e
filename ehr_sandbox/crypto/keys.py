"""The master key and the keys derived from it.

One 256-bit master key per sandbox; every working key (row encryption, blind indexes, the
audit MAC, the audit and note signing keys) is derived from it with HKDF-SHA256 and its own
``info`` label, so compromising one derived key reveals nothing about the others.

>>> mk = MasterKey(bytes(32))
>>> len(mk.derive(ROWS_INFO)), mk.derive(ROWS_INFO) != mk.derive(BLIND_INDEX_INFO)
(32, True)
>>> len(mk.key_id)
16
"""

from __future__ import annotations

import base64
import hmac
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from ehr_sandbox.errors import CryptoError

__all__ = [
    "AUDIT_MAC_INFO",
    "AUDIT_SIGN_INFO",
    "BLIND_INDEX_INFO",
    "KEY_ID_INFO",
    "MASTER_KEY_BYTES",
    "MIN_SALT_BYTES",
    "ROWS_INFO",
    "SCRYPT_N",
    "SCRYPT_P",
    "SCRYPT_R",
    "MasterKey",
]

MASTER_KEY_BYTES = 32
ROWS_INFO = "ehr-sandbox/rows"
BLIND_INDEX_INFO = "ehr-sandbox/blind-index"
AUDIT_MAC_INFO = "ehr-sandbox/audit-mac"
AUDIT_SIGN_INFO = "ehr-sandbox/audit-sign"
KEY_ID_INFO = "ehr-sandbox/key-id"

# scrypt cost: 2**15 x 8 x 1 is the floor docs/privacy.md sets (about 32 MiB and ~0.1 s per
# derivation), slow enough to make guessing a classroom passphrase expensive.
SCRYPT_N = 2**15
SCRYPT_R = 8
SCRYPT_P = 1
MIN_SALT_BYTES = 16

_FILE_HEADER = "ehr-sandbox master key v1"


class MasterKey:
    """A 32-byte master key; the source of every other key of a sandbox.

    Build one with :meth:`generate`, from a passphrase with :meth:`from_passphrase`
    (scrypt), or from a key file with :meth:`from_file`. The raw bytes never appear in
    ``repr``; :attr:`key_id` is a short public fingerprint that names the key in
    ciphertexts so the right key can be found after a rotation.

    >>> mk = MasterKey.generate()
    >>> MasterKey(mk.raw) == mk, "raw" in repr(mk)
    (True, False)
    """

    __slots__ = ("_cache", "_raw")

    def __init__(self, raw: bytes) -> None:
        if not isinstance(raw, bytes | bytearray) or len(raw) != MASTER_KEY_BYTES:
            found = (
                f"{len(raw)} bytes" if isinstance(raw, bytes | bytearray) else type(raw).__name__
            )
            raise CryptoError(
                f"master key: expected {MASTER_KEY_BYTES} bytes (256 bits), got {found}"
            )
        self._raw = bytes(raw)
        self._cache: dict[tuple[str, int], bytes] = {}

    # ------------------------------------------------------------------ construction
    @classmethod
    def generate(cls) -> MasterKey:
        """A new random key from the OS CSPRNG.

        >>> MasterKey.generate() != MasterKey.generate()
        True
        """
        return cls(secrets.token_bytes(MASTER_KEY_BYTES))

    @classmethod
    def from_passphrase(cls, passphrase: str, salt: bytes) -> MasterKey:
        """Derive the key from a passphrase with scrypt (n=2**15, r=8, p=1).

        The salt (at least 16 random bytes, stored beside the data) makes the same
        passphrase give different keys in different sandboxes.

        >>> salt = bytes(range(16))
        >>> MasterKey.from_passphrase("correct horse", salt) == MasterKey.from_passphrase("correct horse", salt)
        True
        """
        if not isinstance(passphrase, str) or not passphrase:
            raise CryptoError("passphrase: expected a non-empty string")
        if not isinstance(salt, bytes | bytearray) or len(salt) < MIN_SALT_BYTES:
            raise CryptoError(f"salt: expected at least {MIN_SALT_BYTES} random bytes")
        kdf = Scrypt(salt=bytes(salt), length=MASTER_KEY_BYTES, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P)
        return cls(kdf.derive(passphrase.encode("utf-8")))

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> MasterKey:
        """Read a key file written by :meth:`to_file`.

        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "k.key"
        >>> mk = MasterKey.generate(); mk.to_file(p)
        >>> MasterKey.from_file(p) == mk
        True
        """
        p = Path(path)
        try:
            text = p.read_text(encoding="ascii")
        except FileNotFoundError:
            raise CryptoError(
                f"key file: expected a key file, but {p.name!r} does not exist"
            ) from None
        except (UnicodeDecodeError, IsADirectoryError):
            raise CryptoError(
                f"key file {p.name!r}: expected a text key file written by ehr-sandbox"
            ) from None
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        if len(lines) != 2 or lines[0] != _FILE_HEADER:
            raise CryptoError(
                f"key file {p.name!r}: expected the header {_FILE_HEADER!r} and one base64 line"
            )
        try:
            raw = base64.b64decode(lines[1], validate=True)
        except ValueError:
            raise CryptoError(
                f"key file {p.name!r}: expected base64 key material on line 2"
            ) from None
        return cls(raw)

    def to_file(self, path: str | os.PathLike[str]) -> None:
        """Write the key to ``path`` (owner-only permissions, written atomically).

        >>> import tempfile, pathlib, stat
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "k.key"
        >>> MasterKey.generate().to_file(p); oct(stat.S_IMODE(p.stat().st_mode))
        '0o600'
        """
        p = Path(path)
        tmp = p.with_name(f".{p.name}.{secrets.token_hex(4)}.tmp")
        body = f"{_FILE_HEADER}\n{base64.b64encode(self._raw).decode('ascii')}\n".encode("ascii")
        # Create with 0600 from the start so the key is never world-readable, and rename
        # into place so a crash never leaves a half-written key file.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(body)
            os.replace(tmp, p)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    # ------------------------------------------------------------------ use
    @property
    def raw(self) -> bytes:
        """The 32 secret bytes (handle with care).

        >>> MasterKey(bytes(32)).raw == bytes(32)
        True
        """
        return self._raw

    def derive(self, info: str, length: int = 32) -> bytes:
        """HKDF-SHA256 sub-key for the purpose named by ``info`` (e.g. ``"ehr-sandbox/rows"``).

        >>> mk = MasterKey(bytes(32))
        >>> mk.derive("ehr-sandbox/audit-mac") == mk.derive("ehr-sandbox/audit-sign")
        False
        """
        if not isinstance(info, str) or not info:
            raise CryptoError("derive: info: expected a non-empty label such as 'ehr-sandbox/rows'")
        if not isinstance(length, int) or not 1 <= length <= 255 * 32:
            raise CryptoError(f"derive: length: expected 1..{255 * 32} bytes, got {length!r}")
        cached = self._cache.get((info, length))
        if cached is None:
            hkdf = HKDF(
                algorithm=hashes.SHA256(), length=length, salt=None, info=info.encode("utf-8")
            )
            cached = self._cache[(info, length)] = hkdf.derive(self._raw)
        return cached

    @property
    def key_id(self) -> str:
        """A 16-hex-digit public fingerprint of the key (derived, so it reveals nothing).

        >>> MasterKey(bytes(32)).key_id == MasterKey(bytes(32)).key_id
        True
        """
        return self.derive(KEY_ID_INFO, 8).hex()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MasterKey) and hmac.compare_digest(self._raw, other._raw)

    def __hash__(self) -> int:
        return hash(self.key_id)

    def __repr__(self) -> str:
        return f"MasterKey(key_id={self.key_id!r})"
