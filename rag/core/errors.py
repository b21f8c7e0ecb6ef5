"""Errors a user can act on.  Each carries a hint: what to do next."""

from __future__ import annotations


class ArchivistError(Exception):
    """Base class: `str(err)` is the message, `err.hint` the next step for the user."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} {self.hint}" if self.hint else self.message


class ConfigError(ArchivistError):
    """The settings are invalid or point at something missing."""


class ModelNotFoundError(ArchivistError):
    """A model file or directory cannot be found locally."""


class IndexMismatchError(ArchivistError):
    """The index was built with a different embedding model or chunking."""


class ParseError(ArchivistError):
    """A document could not be turned into text."""


class GenerationError(ArchivistError):
    """The language model failed to produce an answer."""


class NotFoundError(ArchivistError):
    """A record (answer, conversation) that does not exist."""


class IndexNeedsRepairError(ArchivistError):
    """Part of an index is out of step with the rest; the writer (ingest) repairs it."""


class StoreUnavailableError(ArchivistError):
    """The vector store (a Chroma server) cannot be reached or refused the request."""


class BadRequestError(ArchivistError):
    """The caller asked for something invalid (empty question, top_k out of range, ...)."""
