"""Database errors translated into what a caller can act on, with the database's reason."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import errors as pg


class DataError(Exception):
    """Base of the errors repositories raise."""


class PermissionDenied(DataError):
    """Row-level security or a privilege check refused the operation."""


class NotFound(DataError):
    """The row does not exist, or the caller may not see it (RLS makes the two look alike)."""


class InvalidInput(DataError):
    """A value broke a constraint (length, format, schema, reference); nothing was stored."""


class Conflict(DataError):
    """A unique value is taken."""


class LimitReached(DataError):
    """A limit the database keeps (e.g. exports an hour) was reached; the message says which."""


@contextmanager
def translated() -> Iterator[None]:
    """Re-raise psycopg errors as DataError subclasses carrying Postgres' message."""
    try:
        yield
    except pg.InsufficientPrivilege as exc:
        raise PermissionDenied(_message(exc)) from exc
    except pg.NoDataFound as exc:
        raise NotFound(_message(exc)) from exc
    except pg.UniqueViolation as exc:
        raise Conflict(_message(exc)) from exc
    except pg.ProgramLimitExceeded as exc:
        raise LimitReached(_message(exc)) from exc
    except (pg.IntegrityError, pg.DataError) as exc:
        # check/not-null/foreign-key violations; bad text, numbers, JSON, too-long strings
        raise InvalidInput(_message(exc)) from exc


def _message(exc: psycopg.Error) -> str:
    diag = exc.diag
    parts = [diag.message_primary or str(exc)]
    if diag.constraint_name:
        parts.append(f"(constraint {diag.constraint_name})")
    return " ".join(parts)
