"""Connections: from --dsn, then DATABASE_URL, then libpq's usual PG* variables.
Connection failures become one-line TimepartError messages, with every password scrubbed.
Before anything in schema timepart is called: who owns what timepart would call (check_trusted)."""
import os
import re
from typing import Iterable, List, Mapping, Optional
from urllib.parse import quote, unquote

import psycopg
from psycopg.conninfo import conninfo_to_dict


class TimepartError(Exception):
    """An operational failure with a message fit for one `Error:` line."""


class NotInstalledError(TimepartError):
    """timepart is not in the database: there is nothing to operate on before `timepart install`."""

    def __init__(self, database: str):
        super().__init__(f'timepart is not installed in database "{database}"; run `timepart install` first')
        self.database = database


class UntrustedError(TimepartError):
    """Schema timepart, or a name timepart trusts, belongs to a role whose code must not run
    with the caller's rights: timepart calls nothing in the database."""

    def __init__(self, database: str, superuser: bool, untrusted: List[str]):
        who = ("a superuser" if superuser else
               "a superuser, you or a role you are a member of")
        shown = "; ".join(untrusted[:3]) + (f"; and {len(untrusted) - 3} more" if len(untrusted) > 3 else "")
        if any(u.startswith("schema ") for u in untrusted):
            fix = ("a superuser must inspect schema timepart, then drop it or rename it "
                   "(ALTER SCHEMA timepart RENAME TO timepart_untrusted) before `timepart install`")
        else:
            fix = "a superuser must inspect and drop them (DROP FUNCTION/VIEW with the name shown)"
        super().__init__(f'refusing to call into database "{database}": not owned by {who}: {shown}. '
                         f"Nothing was called; {fix}")
        self.database, self.untrusted = database, untrusted


# What a call fails with when timepart is missing (its schema, a function, a view); the
# same codes also have other causes, so TRUST_QUERY, a catalog check, decides.
NOT_INSTALLED_SQLSTATES = frozenset({"3F000", "42883", "42P01"})

# The seed's names timepart creates in public (the extension's timepart._public_names(),
# which cannot be asked before trusting the schema it is in).
SEED_FUNCTIONS = ("create_email_events_partition", "maintain_email_events_partitions",
                  "cleanup_old_email_events_partitions", "get_email_events_partition_stats",
                  "get_partition_maintenance_log")
SEED_VIEW = "partition_maintenance_log"

# One catalog query: is timepart here, and which of the objects timepart would call or trust
# belong to an untrusted role: schema timepart, the extension, every function and relation
# in the schema (except the executors _as_owner_<oid>, owned by table owners on purpose),
# any function anywhere named like a seed function, and the seed's view. Trusted owners: a
# superuser; for a caller who is not one, also itself and the roles it is a member of
# (pg_has_role is always true for a superuser). Every name qualified, every operator too,
# no % (SQLAlchemy's format-style drivers would take it for a parameter).
TRUST_QUERY = """
WITH me AS (
    SELECT r.rolsuper AS superuser FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER
), objects (rank, classid, objid, owner) AS (
    SELECT 1, n.tableoid, n.oid, n.nspowner FROM pg_catalog.pg_namespace n
    WHERE n.nspname OPERATOR(pg_catalog.=) 'timepart'
    UNION ALL
    SELECT 2, e.tableoid, e.oid, e.extowner FROM pg_catalog.pg_extension e
    WHERE e.extname OPERATOR(pg_catalog.=) 'timepart'
    UNION ALL
    SELECT 3, p.tableoid, p.oid, p.proowner
    FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) p.pronamespace
    WHERE (n.nspname OPERATOR(pg_catalog.=) 'timepart' AND p.proname OPERATOR(pg_catalog.!~) '^_as_owner_[0-9]+$')
       OR p.proname OPERATOR(pg_catalog.=) ANY ('{SEED_FUNCTIONS}'::pg_catalog.name[])
    UNION ALL
    SELECT 4, c.tableoid, c.oid, c.relowner
    FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
    WHERE n.nspname OPERATOR(pg_catalog.=) 'timepart'
       OR (n.nspname OPERATOR(pg_catalog.=) 'public' AND c.relname OPERATOR(pg_catalog.=) 'SEED_VIEW')
)
SELECT pg_catalog.current_database() AS database,
       pg_catalog.to_regnamespace('timepart') IS NOT NULL AS installed,
       me.superuser,
       pg_catalog.array_agg(pg_catalog.concat(d.type, ' ', d.identity, ' (owner ', pg_catalog.quote_ident(r.rolname), ')')
                            ORDER BY o.rank, d.identity)
           FILTER (WHERE o.objid IS NOT NULL AND NOT (r.rolsuper OR (NOT me.superuser
                   AND pg_catalog.pg_has_role(CURRENT_USER, r.oid, 'MEMBER')))) AS untrusted
FROM me
LEFT JOIN objects o ON true
LEFT JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) o.owner
LEFT JOIN LATERAL pg_catalog.pg_identify_object(o.classid, o.objid, 0) d ON true
GROUP BY me.superuser
""".replace("SEED_FUNCTIONS", ",".join(SEED_FUNCTIONS)).replace("SEED_VIEW", SEED_VIEW)


def trust_verdict(row: Mapping, require: bool = False) -> bool:
    """TRUST_QUERY's row: raises UntrustedError when anything timepart would call (or
    trusts) belongs to an untrusted role; with require, NotInstalledError when timepart's
    schema is not there. Returns whether it is there."""
    if row["untrusted"]:
        raise UntrustedError(row["database"], row["superuser"], list(row["untrusted"]))
    if require and not row["installed"]:
        raise NotInstalledError(row["database"])
    return row["installed"]


def check_trusted(conn: psycopg.Connection, require: bool = False) -> bool:
    """The one check before anything in schema timepart is called (see trust_verdict)."""
    cur = conn.execute(TRUST_QUERY)
    return trust_verdict(dict(zip([c.name for c in cur.description], cur.fetchone())), require)


def require_installed(conn: psycopg.Connection) -> None:
    """Raises UntrustedError (see check_trusted), or NotInstalledError when timepart is
    not in the connection's database."""
    check_trusted(conn, require=True)


def conninfo(dsn: Optional[str] = None, env: Mapping[str, str] = os.environ) -> str:
    """The connection string to use; an empty string lets libpq read PGHOST, PGPORT, ..."""
    return dsn or env.get("DATABASE_URL") or ""


# ---- passwords never reach a message ---------------------------------------------

# scheme://user:PASSWORD@ (up to an @ in the same word: a mistyped password may hold a /)
_URI_PASSWORD = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.\-]*://[^:/@\s]*:)[^@\s\"']*@")
# password=VALUE, the value quoted ('...' with \-escapes) or not
_KEYWORD_PASSWORD = re.compile(r"(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'?|[^\s'\"]+)", re.IGNORECASE)


def passwords(dsn: Optional[str] = None, env: Mapping[str, str] = os.environ) -> List[str]:
    """The passwords a message might contain: the connection string's (parsed by libpq, or,
    when it is not valid, found as a URI's or a keyword's) and PGPASSWORD's."""
    found = [env.get("PGPASSWORD") or ""]
    text = conninfo(dsn, env)
    try:
        found.append(conninfo_to_dict(text).get("password") or "")
    except psycopg.Error:
        pass
    for match in _URI_PASSWORD.finditer(text):
        found.append(unquote(match.group(0)[len(match.group(1)):-1]))
    for match in _KEYWORD_PASSWORD.finditer(text):
        value = match.group(2)
        if value.startswith("'"):
            value = re.sub(r"\\(.)", r"\1", value[1:].rstrip("'"))
        found.append(value)
    return [p for p in found if p]


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """The text with passwords replaced by ***: in URIs, in password=... and wherever one
    of `secrets` (or its percent-encoded form) appears."""
    text = _URI_PASSWORD.sub(r"\1***@", text)
    text = _KEYWORD_PASSWORD.sub(r"\1***", text)
    for secret in sorted(set(secrets), key=len, reverse=True):
        for form in {secret, quote(secret, safe="")}:
            text = text.replace(form, "***")
    return text


def one_line(exc: BaseException, dsn: Optional[str] = None, env: Mapping[str, str] = os.environ) -> str:
    """An exception's message on one line (libpq's messages span several), with the
    connection's passwords (from dsn, DATABASE_URL, PGPASSWORD) scrubbed."""
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None)
    if primary:
        text = primary
        if diag.message_detail:
            text += f" ({diag.message_detail.rstrip('.')})"
        if diag.message_hint:
            text += f". Hint: {diag.message_hint}"
    else:
        text = " ".join(part.strip() for part in str(exc).splitlines() if part.strip()) or type(exc).__name__
    return scrub(text, passwords(dsn, env))


# Said when a connection fails and nothing named one: the usual newcomer's case.
NO_SETTINGS = ("no connection settings were given (--dsn, DATABASE_URL or PG* variables). For the demo's "
               "database, in the checkout: eval \"$(make -s env)\", or make cli ARGS=\"...\"")


def _cannot_connect(exc: BaseException, dsn: Optional[str], env: Mapping[str, str]) -> TimepartError:
    text = f"cannot connect to the database: {one_line(exc, dsn, env)}"
    if not conninfo(dsn, env) and not any(k in env for k in ("PGHOST", "PGPORT", "PGDATABASE", "PGSERVICE")):
        text += f"; {NO_SETTINGS}"
    return TimepartError(text)


def connect(dsn: Optional[str] = None, env: Mapping[str, str] = os.environ, **kwargs) -> psycopg.Connection:
    """An autocommit connection; the library opens its own transactions."""
    kwargs.setdefault("autocommit", True)
    try:
        return psycopg.connect(conninfo(dsn, env), **kwargs)
    except psycopg.Error as exc:
        raise _cannot_connect(exc, dsn, env) from None


async def connect_async(dsn: Optional[str] = None, env: Mapping[str, str] = os.environ,
                        **kwargs) -> psycopg.AsyncConnection:
    kwargs.setdefault("autocommit", True)
    try:
        return await psycopg.AsyncConnection.connect(conninfo(dsn, env), **kwargs)
    except psycopg.Error as exc:
        raise _cannot_connect(exc, dsn, env) from None
