"""What the classroom server owns: its data directory, keys, the clinic and the accounts.

Everything that must be trusted lives here, in the server process: the sandbox files and their
passphrase, the token signing key and the client registry. Clients reach none of it; they get
Sessions bound to their token, through :meth:`ServerState.session_for`.

Layout of ``--data DIR``::

    clinic.db            the clinic sandbox (encrypted at rest)
    server.db            client accounts (hashed secrets), browser sessions, attempts' metadata
    courses/<id>.json    course state (roster, assignments, submissions, the variant salt)
    attempts/            0700: one encrypted sandbox per exercise attempt (never served)
    keys/                0700: clinic passphrase, attempts key, token signing key (never served)
    exports/<job>/       bulk-export results, readable only by the user who asked
"""

from __future__ import annotations

import contextlib
import os
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ehr_sandbox.errors import AccessDenied, NotFound
from ehr_sandbox.server.accounts import Accounts
from ehr_sandbox.server.anchors import AnchorLog
from ehr_sandbox.server.attempts import AttemptStore
from ehr_sandbox.server.courses import CourseHost
from ehr_sandbox.server.tokens import TokenClaims, TokenIssuer

if TYPE_CHECKING:
    from ehr_sandbox.sandbox import Sandbox
    from ehr_sandbox.session import Session
    from ehr_sandbox.users import User


def _private_file(path: Path, make: Any) -> str:
    """Read a secret file, creating it (mode 0600) with ``make()`` the first time."""
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(make())
    return path.read_text(encoding="utf-8")


class ServerState:
    """The server's data directory, opened.

    Parameters
    ----------
    data : str or Path
        The data directory (created if missing).
    issuer : str
        The server's base URL (token ``iss``; the FHIR base is ``issuer + "/fhir"``).
    patients, seed : int
        Size and seed of the clinic generated on first start.

    Examples
    --------
    >>> import tempfile
    >>> st = ServerState(tempfile.mkdtemp(), issuer="http://127.0.0.1:8080", patients=2, seed=1)
    >>> tok = st.tokens.issue(username="dr.patel", role="physician", scope="user/*.rs", client_id="c")
    >>> st.session_for(tok.access_token).user.username
    'dr.patel'
    >>> st.close()
    """

    def __init__(
        self,
        data: str | Path,
        *,
        issuer: str,
        patients: int = 50,
        seed: int = 7,
        anchor: str | Path | None = None,
    ) -> None:
        from ehr_sandbox.sandbox import Sandbox

        self.data = Path(data)
        self.data.mkdir(parents=True, exist_ok=True)
        keys = self.data / "keys"
        keys.mkdir(mode=0o700, exist_ok=True)
        os.chmod(keys, 0o700)
        passphrase = _private_file(keys / "clinic.passphrase", lambda: secrets.token_urlsafe(32))
        signing = _private_file(
            keys / "signing.jwk", lambda: TokenIssuer.dump_key(TokenIssuer.new_key())
        )
        clinic = self.data / "clinic.db"
        if clinic.exists():
            self.sandbox: Sandbox = Sandbox.open(clinic, passphrase=passphrase)
        else:
            self.sandbox = Sandbox.generate(
                patients=patients, seed=seed, path=clinic, passphrase=passphrase
            )
        attempts_key = _private_file(keys / "attempts.key", lambda: secrets.token_hex(32))
        self.accounts = Accounts(self.data / "server.db")
        self.courses = CourseHost(
            self.data / "courses",
            self.accounts,
            AttemptStore(self.data, key=bytes.fromhex(attempts_key.strip())),
        )
        self.tokens = TokenIssuer(TokenIssuer.load_key(signing), issuer=issuer)
        self.lock = threading.RLock()
        self._sessions: dict[tuple[str, str, str | None, bool], Session] = {}
        (self.data / "exports").mkdir(exist_ok=True)
        self.anchors = AnchorLog(anchor, data=self.data) if anchor is not None else None
        self.publish_anchor()

    def publish_anchor(self) -> None:
        """Append a signed checkpoint of the clinic's audit trail to the anchor file (if any)."""
        if self.anchors is not None:
            with self.lock:
                self.anchors.publish(self.sandbox)

    def user(self, username: str) -> User:
        """A staff user, ``patient/<id>``, or a course account (``student:<course>:<id>``,
        ``instructor:<name>``) (raises :class:`NotFound`)."""
        from ehr_sandbox.users import User

        if username.startswith("student:"):
            return User(username, "student", username.rsplit(":", 1)[-1])
        if username.startswith("instructor:"):
            return User(username, "course_instructor", username.split(":", 1)[1])
        if username.startswith("patient/"):
            pid = username.split("/", 1)[1]
            with self.lock:
                if not self.sandbox.grader_session().exists(f"Patient/{pid}"):
                    raise NotFound(f"no patient account {username!r}")
            return User(username, "patient", username, None, pid)
        with self.lock:
            return self.sandbox.user(username)

    @contextlib.contextmanager
    def using(self, claims: TokenClaims) -> Iterator[Session]:
        """The Session a verified token stands for, held under the lock of what it works in:
        the clinic's lock, or only its own attempt's (attempts do not wait for each other)."""
        if claims.attempt:
            hosted = self.courses.attempt(claims.attempt, claims.student or "")
            with hosted.handle.lock:
                yield hosted.session_as(claims.username)
            return
        with self.lock:
            yield self.session_for(claims)

    def session_for(self, token: str | TokenClaims) -> Session:
        """The Session a bearer token stands for (one per user, scopes and patient, so that
        break-the-glass lasts across requests as it does in-process).

        Raises
        ------
        AccessDenied
            The token is invalid or expired.
        """
        claims = self.tokens.verify(token) if isinstance(token, str) else token
        if claims.attempt:
            return self.courses.attempt(claims.attempt, claims.student or "").session_as(
                claims.username
            )
        if claims.role in ("student", "course_instructor"):
            raise AccessDenied(
                "a course account reaches records only inside an exercise attempt: "
                "start one (POST /course/<id>/attempts) and use the token it returns"
            )
        key = (claims.username, claims.scope, claims.patient, claims.backend)
        with self.lock:
            session = self._sessions.get(key)
            if session is None:
                if claims.backend:
                    session = self.sandbox.backend_session(claims.username, scopes=claims.scope)
                elif claims.role == "patient":
                    session = self.sandbox.login_patient(claims.patient or "", scopes=claims.scope)
                else:
                    session = self.sandbox.login(
                        claims.username, scopes=claims.scope, patient=claims.patient
                    )
                self._sessions[key] = session
            return session

    def close(self) -> None:
        """Publish a last anchor, then close the clinic and the account registry."""
        self.publish_anchor()
        with self.lock:
            self.sandbox.close()
            self.courses.attempt_files.close()
            self.accounts.close()
