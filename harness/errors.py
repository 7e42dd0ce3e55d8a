"""Errors a user can act on. The CLI prints them in one line and exits 2, without a traceback."""
from __future__ import annotations

from pathlib import Path


class EmbedgateError(Exception):
    """Bad input: a file, a line and a field where possible."""

    exit_code = 2

    def __init__(self, message: str, *, path: str | Path | None = None, line: int | None = None,
                 field: str | None = None):
        self.message = message
        self.path = str(path) if path is not None else None
        self.line = line
        self.field = field
        super().__init__(str(self))

    def __str__(self) -> str:
        where = ""
        if self.path:
            where = self.path + (f":{self.line}" if self.line is not None else "") + ": "
        field = f"field '{self.field}': " if self.field else ""
        return f"{where}{field}{self.message}"


class DataError(EmbedgateError):
    """A retrieval set that cannot be trusted: malformed, incomplete or inconsistent."""


class ModelError(EmbedgateError):
    """A model spec that cannot be resolved or loaded safely."""


class ConfigError(EmbedgateError):
    """A suite, recipe or option that is not valid."""
