"""The errors users can cause. Faces (CLI, magics) print their message on one line.

Every error here is a subclass of :class:`MlopsError`; anything else that escapes
is a bug and keeps its traceback.
"""

from __future__ import annotations


class MlopsError(Exception):
    """Root of every error a user can cause. Its message says what and how to fix it."""

    def __reduce__(self):
        # Keep errors picklable across processes even when subclasses add fields.
        return (self.__class__, self.args, self.__dict__)

    def __setstate__(self, state):
        self.__dict__.update(state)


class RegistryError(MlopsError):
    """The registry file cannot be used (not a registry, newer schema, unwritable)."""


class NotFoundError(MlopsError):
    """An experiment, run, model, version, alias or artifact does not exist."""


class InvalidInputError(MlopsError, ValueError):
    """A value given to the API is not acceptable (bad key, unserialisable param, ...)."""


class FilterSyntaxError(InvalidInputError):
    """A search filter could not be parsed; the message points at the bad token."""

    def __init__(self, message: str, text: str = "", position: int = 0):
        super().__init__(message)
        self.text = text
        self.position = position

    def __str__(self) -> str:
        base = super().__str__()
        if not self.text:
            return base
        return f"{base}\n  {self.text}\n  {' ' * self.position}^"


class IntegrityError(MlopsError):
    """Stored content does not match what the registry recorded (e.g. a sha256 mismatch)."""


class NoActiveRunError(MlopsError):
    """A logging call was made outside ``with mlops.start_run():``."""


def describe_error(exc_type, exc, tb) -> str:
    """The error's one-line summary, then its traceback (the end of it), for a run's error field."""
    import traceback

    summary = "".join(traceback.format_exception_only(exc_type, exc)).strip()
    detail = "".join(traceback.format_exception(exc_type, exc, tb))
    return f"{summary}\n\n{detail[-4000:]}"
