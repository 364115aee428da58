"""Connections: from --dsn, then DATABASE_URL, then libpq's usual PG* variables.
Connection failures become one-line TimepartError messages."""
import os
from typing import Mapping, Optional

import psycopg


class TimepartError(Exception):
    """An operational failure with a message fit for one `Error:` line."""


class NotInstalledError(TimepartError):
    """timepart is not in the database: there is nothing to operate on before `timepart install`."""

    def __init__(self, database: str):
        super().__init__(f'timepart is not installed in database "{database}"; run `timepart install` first')
        self.database = database


# What a call fails with when timepart is missing (its schema, a function, a view); the
# same codes also have other causes, so INSTALLED_QUERY, a catalog check, decides.
NOT_INSTALLED_SQLSTATES = frozenset({"3F000", "42883", "42P01"})
INSTALLED_QUERY = ("SELECT pg_catalog.current_database() AS database, EXISTS (SELECT 1 FROM pg_catalog.pg_namespace"
                   " WHERE nspname = 'timepart') AS installed")


def require_installed(conn: psycopg.Connection) -> None:
    """Raises NotInstalledError when timepart is not in the connection's database."""
    database, installed = conn.execute(INSTALLED_QUERY).fetchone()
    if not installed:
        raise NotInstalledError(database)


def conninfo(dsn: Optional[str] = None, env: Mapping[str, str] = os.environ) -> str:
    """The connection string to use; an empty string lets libpq read PGHOST, PGPORT, ..."""
    return dsn or env.get("DATABASE_URL") or ""


def one_line(exc: BaseException) -> str:
    """An exception's message on one line (libpq's messages span several)."""
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None)
    if primary:
        text = primary
        if diag.message_detail:
            text += f" ({diag.message_detail.rstrip('.')})"
        if diag.message_hint:
            text += f". Hint: {diag.message_hint}"
        return text
    return " ".join(part.strip() for part in str(exc).splitlines() if part.strip()) or type(exc).__name__


def connect(dsn: Optional[str] = None, env: Mapping[str, str] = os.environ, **kwargs) -> psycopg.Connection:
    """An autocommit connection; the library opens its own transactions."""
    kwargs.setdefault("autocommit", True)
    try:
        return psycopg.connect(conninfo(dsn, env), **kwargs)
    except psycopg.Error as exc:
        raise TimepartError(f"cannot connect to the database: {one_line(exc)}") from None


async def connect_async(dsn: Optional[str] = None, env: Mapping[str, str] = os.environ,
                        **kwargs) -> psycopg.AsyncConnection:
    kwargs.setdefault("autocommit", True)
    try:
        return await psycopg.AsyncConnection.connect(conninfo(dsn, env), **kwargs)
    except psycopg.Error as exc:
        raise TimepartError(f"cannot connect to the database: {one_line(exc)}") from None
