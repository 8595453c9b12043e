"""Exceptions raised by the synthetic generator.

The sandbox's hierarchy (:mod:`ehr_sandbox.errors`) re-exports these, so a caller can catch
``ehr_sandbox.errors.SandboxError`` or ``synthetic.errors.GenerationError`` as suits them.

>>> issubclass(ContentError, GenerationError)
True
"""

from __future__ import annotations


class GenerationError(Exception):
    """Root of every error the generator raises (bad arguments, bad content, bad output).

    Note: it is **not** a subclass of :class:`ehr_sandbox.errors.SandboxError`; code that
    calls ``Sandbox.generate`` and wants every refusal catches both.

    Examples
    --------
    >>> from ehr_sandbox.errors import SandboxError
    >>> issubclass(ArgumentError, GenerationError), issubclass(GenerationError, SandboxError)
    (True, False)
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
