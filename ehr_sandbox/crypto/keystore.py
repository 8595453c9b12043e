"""Where an unencrypted file sandbox's audit/signing key comes from — never beside the data.

An encrypted sandbox needs its key or passphrase to open at all. An unencrypted one still has
a master key: it MACs the audit trail, signs checkpoints and notes, and authenticates the
current-version pointers. Whoever holds it can rewrite the trail and re-sign it, so it never
sits next to the database (``<db>.key`` used to). In order, the key comes from:

1. ``key=`` — 32 bytes, a :class:`~ehr_sandbox.crypto.MasterKey`, or a key file **the caller
   names** (created there when a new sandbox is made);
2. the environment: ``EHR_SANDBOX_KEY`` (64 hex digits) or ``EHR_SANDBOX_KEY_FILE`` (a path);
3. the user's key directory (``EHR_SANDBOX_KEY_DIR``, else the platform's per-user config
   folder), one file per key id. It is refused when it is the database's own folder.

>>> import os, tempfile
>>> os.environ["EHR_SANDBOX_KEY"] = "11" * 32
>>> key_from_environment().key_id == MasterKey(bytes([0x11]) * 32).key_id
True
>>> del os.environ["EHR_SANDBOX_KEY"]
"""

from __future__ import annotations

import os
from pathlib import Path

from ehr_sandbox.crypto.keys import MasterKey
from ehr_sandbox.errors import CryptoError

ENV_KEY = "EHR_SANDBOX_KEY"
ENV_KEY_FILE = "EHR_SANDBOX_KEY_FILE"
ENV_KEY_DIR = "EHR_SANDBOX_KEY_DIR"


def key_from_environment() -> MasterKey | None:
    """The master key named by ``EHR_SANDBOX_KEY`` or ``EHR_SANDBOX_KEY_FILE`` (None when unset).

    >>> os.environ.pop(ENV_KEY, None); os.environ.pop(ENV_KEY_FILE, None)
    >>> key_from_environment() is None
    True
    """
    text = os.environ.get(ENV_KEY)
    if text:
        try:
            raw = bytes.fromhex(text.strip())
        except ValueError:
            raise CryptoError(f"{ENV_KEY}: expected 64 hex digits (32 bytes)") from None
        if len(raw) != 32:
            raise CryptoError(f"{ENV_KEY}: expected 64 hex digits (32 bytes), got {len(raw)} bytes")
        return MasterKey(raw)
    path = os.environ.get(ENV_KEY_FILE)
    if path:
        return MasterKey.from_file(path)
    return None


def user_key_dir() -> Path:
    """The per-user folder of sandbox keys (``EHR_SANDBOX_KEY_DIR`` overrides it).

    Returns
    -------
    Path
        ``$EHR_SANDBOX_KEY_DIR``, else ``keys`` in the platform's per-user config folder.

    Examples
    --------
    >>> saved = os.environ.get(ENV_KEY_DIR)
    >>> os.environ[ENV_KEY_DIR] = "/tmp/k"; str(user_key_dir())
    '/tmp/k'
    >>> _ = os.environ.pop(ENV_KEY_DIR) if saved is None else os.environ.update({ENV_KEY_DIR: saved})
    """
    override = os.environ.get(ENV_KEY_DIR)
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_config_dir("ehr-sandbox")) / "keys"


def _check_apart(folder: Path, database: Path) -> None:
    if folder.resolve() == database.resolve().parent:
        raise CryptoError(
            "the key directory is the database's own folder: a key beside the data lets anyone "
            f"with the file rewrite and re-sign its audit trail; set {ENV_KEY_DIR} elsewhere"
        )


def remember_key(key: MasterKey, database: str | os.PathLike[str]) -> Path:
    """Keep ``key`` in the user's key directory (not beside ``database``); returns its path.

    Parameters
    ----------
    key : MasterKey
        The key to keep (file name: its ``key_id``).
    database : str or PathLike
        The sandbox file the key belongs to.

    Returns
    -------
    Path
        The key file (written once; an existing one is kept).

    Raises
    ------
    CryptoError
        The key directory is the database's own folder.

    Examples
    --------
    >>> import tempfile
    >>> saved = os.environ.get(ENV_KEY_DIR)
    >>> d = tempfile.mkdtemp(); os.environ[ENV_KEY_DIR] = d + "/keys"
    >>> mk = MasterKey.generate(); p = remember_key(mk, d + "/x.db")
    >>> p.name == f"{mk.key_id}.key", recall_key(mk.key_id, d + "/x.db") == mk
    (True, True)
    >>> _ = os.environ.pop(ENV_KEY_DIR) if saved is None else os.environ.update({ENV_KEY_DIR: saved})
    """
    folder = user_key_dir()
    _check_apart(folder, Path(database))
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / f"{key.key_id}.key"
    if not path.is_file():
        key.to_file(path)
    return path


def recall_key(key_id: str, database: str | os.PathLike[str]) -> MasterKey | None:
    """The key with ``key_id`` from the user's key directory, or None.

    Parameters
    ----------
    key_id : str
        The key's public fingerprint (stored in the sandbox file).
    database : str or PathLike
        The sandbox file (the key directory must not be its folder).

    Returns
    -------
    MasterKey or None
        None when no key file of that id is kept.

    Raises
    ------
    CryptoError
        The key directory is the database's own folder, or the key file is damaged.

    Examples
    --------
    >>> import tempfile
    >>> saved = os.environ.get(ENV_KEY_DIR)
    >>> d = tempfile.mkdtemp(); os.environ[ENV_KEY_DIR] = d
    >>> recall_key("0123456789abcdef", d + "/db/x.db") is None
    True
    >>> recall_key("0123456789abcdef", d + "/x.db")
    Traceback (most recent call last):
    ...
    ehr_sandbox.errors.CryptoError: the key directory is the database's own folder: a key beside the data lets anyone with the file rewrite and re-sign its audit trail; set EHR_SANDBOX_KEY_DIR elsewhere
    >>> _ = os.environ.pop(ENV_KEY_DIR) if saved is None else os.environ.update({ENV_KEY_DIR: saved})
    """
    folder = user_key_dir()
    _check_apart(folder, Path(database))
    path = folder / f"{key_id}.key"
    return MasterKey.from_file(path) if path.is_file() else None


def named_key_file(path: str | os.PathLike[str], database: str | os.PathLike[str] | None) -> Path:
    """Check a caller-named key file is not beside the database (its own folder).

    >>> import tempfile; d = tempfile.mkdtemp()
    >>> named_key_file(d + "/k.key", d + "/x.db")
    Traceback (most recent call last):
    ...
    ehr_sandbox.errors.CryptoError: key: a key file in the database's own folder sits beside the data (anyone with the folder can rewrite and re-sign the audit trail); name one elsewhere
    """
    p = Path(path)
    if database is not None and p.resolve().parent == Path(database).resolve().parent:
        raise CryptoError(
            "key: a key file in the database's own folder sits beside the data (anyone with "
            "the folder can rewrite and re-sign the audit trail); name one elsewhere"
        )
    return p
