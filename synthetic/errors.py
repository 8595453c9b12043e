"""Exceptions raised by the synthetic generator, and the root of the project's one
exception hierarchy.

:class:`SandboxError` is defined here, at the bottom of the layers (the generator never
imports the EHR), and :mod:`ehr_sandbox.errors` builds the EHR's errors on it, so catching
``SandboxError`` catches every refusal of either package; ``GenerationError`` catches the
generator's alone.

>>> issubclass(ContentError, GenerationError), issubclass(GenerationError, SandboxError)
(True, True)
"""

from __future__ import annotations

from typing import ClassVar


class SandboxError(Exception):
    """Root of every error ehr-sandbox raises, the generator's and the EHR's.

    Catch this to handle any refusal of the library at once; the subclasses say what went
    wrong. Over HTTP (:mod:`ehr_sandbox.server.outcomes`) an error with no more specific
    mapping is sent as status 400 with an OperationOutcome issue of code ``processing``, and
    the remote client raises the same class again. :mod:`ehr_sandbox.errors` re-exports it.

    Examples
    --------
    >>> from ehr_sandbox.errors import NotFound, DataQualityWarning
    >>> issubclass(NotFound, SandboxError) and issubclass(ArgumentError, SandboxError)
    True
    >>> issubclass(DataQualityWarning, SandboxError)  # a warning, not a refusal
    False
    >>> SandboxError.http_status, NotFound.http_status, NotFound.issue_code
    (400, 404, 'not-found')
    """

    http_status: ClassVar[int] = 400
    """The HTTP status this error is answered with over the FHIR API."""
    issue_code: ClassVar[str] = "processing"
    """The FHIR OperationOutcome ``issue.code`` (issue-type) it is answered with."""


class GenerationError(SandboxError):
    """Root of every error the generator raises (bad arguments, bad content, bad output).

    Examples
    --------
    >>> issubclass(ArgumentError, GenerationError), issubclass(GenerationError, SandboxError)
    (True, True)
    """


class ContentError(GenerationError):
    """A clinical content file is malformed.

    The message names the file, the key (or line) and what was expected.

    >>> str(ContentError("must be a number", file="vitals.toml", key="bp.mean"))
    'vitals.toml: bp.mean: must be a number'
    """

    def __init__(self, message: str, *, file: str = "", key: str = "") -> None:
        self.file = file
        self.key = key
        self.detail = message
        parts = [p for p in (file, key, message) if p]
        super().__init__(": ".join(parts))


class ArgumentError(GenerationError, ValueError):
    """A generator argument is out of range or of the wrong form (names the argument).

    Raised by ``synthetic.generate`` and ``Sandbox.generate``; also a ``ValueError``.

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> try:
    ...     Sandbox.generate(patients=-1)
    ... except ArgumentError as e:
    ...     print(e)
    patients: expected a whole number >= 0, got -1
    """


class SharedContentError(GenerationError, TypeError):
    """A caller tried to change a part of a generated resource that is shared content.

    The generator hands out the same coding, reference, meta or amount object to many resources
    (and to later records), so these parts are frozen: change a deep copy instead.

    >>> issubclass(SharedContentError, TypeError)
    True
    """
