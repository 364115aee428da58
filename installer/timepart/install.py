"""Installing, upgrading, inspecting and removing timepart in a database, in either
mode: as a real extension (files on the server) or as scripts applied over the
connection (managed services). Library only: returns data, never prints."""
import json
import os
import re
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Tuple

import psycopg
from psycopg import Connection, sql

from . import build
from . import db
from .db import TimepartError

MODES = ("auto", "extension", "script")
_FULL = re.compile(r"^timepart--([^-]+(?:-[^-]+)?)\.sql$")
_STEP = re.compile(r"^timepart--(.+)--(.+)\.sql$")


# ---- the SQL files -----------------------------------------------------------------

def sql_dir() -> Path:
    """Where the extension's files are: inside the installed package (a wheel), else
    ../extension next to the package (an editable install or a checkout)."""
    here = Path(__file__).resolve().parent
    for folder in (here / "sql", here.parent.parent / "extension"):
        if (folder / "timepart.control").is_file():
            return folder
    raise TimepartError(f"timepart's SQL files are missing (looked in {here / 'sql'} and ../extension)")


def version_key(version: str) -> Tuple:
    """Orders versions numerically: 0.2 < 0.10, 1.4 < 1.4-1."""
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"[.\-]", version))


@dataclass
class Scripts:
    """The versioned scripts: full installs (the base and the newest) and the upgrade
    steps between versions. Every version is a full script plus a chain of steps, as
    PostgreSQL's CREATE EXTENSION ... VERSION sees them."""
    full: Dict[str, str]                 # version -> script text
    steps: Dict[Tuple[str, str], Path]
    newest: str                          # the control file's default_version

    @property
    def versions(self) -> List[str]:
        known = set(self.full) | {v for step in self.steps for v in step}
        return sorted(known, key=version_key)

    def install_chain(self, version: str) -> Tuple[str, List[Tuple[str, str]]]:
        """How to install a version: its own full script, else the newest full script
        older than it plus the upgrade steps from there."""
        if version in self.full:
            return version, []
        for start in sorted(self.full, key=version_key, reverse=True):
            if version_key(start) < version_key(version):
                try:
                    return start, self.path(start, version)
                except TimepartError:
                    continue
        raise TimepartError(f"unknown version {version}: the scripts know {', '.join(self.versions)}")

    def script(self, version: str) -> str:
        """The SQL that installs a version from nothing."""
        start, chain = self.install_chain(version)
        return "\n".join([self.full[start]] + [self.steps[step].read_text() for step in chain])

    def path(self, start: str, target: str) -> List[Tuple[str, str]]:
        """The shortest chain of upgrade steps from start to target (breadth first)."""
        came_from = {start: None}
        queue = deque([start])
        while queue:
            v = queue.popleft()
            if v == target:
                chain = []
                while came_from[v] is not None:
                    chain.append((came_from[v], v))
                    v = came_from[v]
                return chain[::-1]
            for (a, b) in self.steps:
                if a == v and b not in came_from:
                    came_from[b] = v
                    queue.append(b)
        raise TimepartError(f"no upgrade path from {start} to {target} among the scripts "
                            f"({', '.join(f'{a}->{b}' for a, b in sorted(self.steps)) or 'none'})")


def scripts(folder: Optional[Path] = None) -> Scripts:
    """The scripts in a wheel's sql/ folder, or in a checkout's extension/ (where the
    newest full script is built from src/ on the spot, so it is never stale)."""
    folder = folder or sql_dir()
    newest = build.control_version(folder / "timepart.control")
    full, steps = {}, {}
    for f in [*folder.glob("timepart--*.sql"), *folder.glob("updates/timepart--*.sql")]:
        step = _STEP.match(f.name)
        if step:
            steps[step.group(1), step.group(2)] = f
        elif _FULL.match(f.name):
            full[_FULL.match(f.name).group(1)] = f.read_text()
    if (folder / "src").is_dir():
        full[newest] = build.full_script(folder / "src", newest)
    return Scripts(full, steps, newest)


# ---- what is installed ------------------------------------------------------------

@dataclass
class Installed:
    mode: Optional[str]  # 'extension', 'script', or None when not installed
    version: Optional[str]


def installed(conn: Connection) -> Installed:
    """The install in the database, if any. Refuses (db.UntrustedError) before anything
    in schema timepart is called when it, or a name timepart trusts, belongs to a role
    the caller must not trust: every installer command starts here."""
    db.check_trusted(conn)
    row = conn.execute("SELECT e.extversion FROM pg_catalog.pg_extension e"
                       " WHERE e.extname OPERATOR(pg_catalog.=) 'timepart'").fetchone()
    if row:
        return Installed("extension", row[0])
    if conn.execute("SELECT pg_catalog.to_regprocedure('timepart.version()') IS NOT NULL").fetchone()[0]:
        return Installed("script", conn.execute("SELECT timepart.version()").fetchone()[0])
    return Installed(None, None)


def server_versions(conn: Connection) -> List[str]:
    """Versions whose files are on the server (what CREATE/ALTER EXTENSION can use)."""
    rows = conn.execute("SELECT v.version FROM pg_catalog.pg_available_extension_versions v"
                        " WHERE v.name OPERATOR(pg_catalog.=) 'timepart'")
    return sorted((r[0] for r in rows), key=version_key)


def _can_create_extension(conn: Connection) -> bool:
    # timepart is not a trusted extension: CREATE EXTENSION needs a superuser.
    return conn.execute("SELECT r.rolsuper FROM pg_catalog.pg_roles r"
                        " WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER").fetchone()[0]


def _has_function(conn: Connection, name: str) -> bool:
    return conn.execute(
        "SELECT EXISTS (SELECT FROM pg_catalog.pg_proc p"
        " WHERE p.pronamespace OPERATOR(pg_catalog.=) pg_catalog.to_regnamespace('timepart')"
        " AND p.proname OPERATOR(pg_catalog.=) %s::pg_catalog.name)", (name,)).fetchone()[0]


# ---- install ----------------------------------------------------------------------

_ENV_SETTINGS = {  # seed variable -> (config key, how to turn the text into the value)
    "PARTITION_MONTHS_AHEAD": ("premake", lambda v: int(v)),
    "PARTITION_RETENTION_MONTHS": ("retention", lambda v: f"{int(v)} months"),
    "PARTITION_MAX_SIZE_GB": ("alert_max_size_bytes", lambda v: int(float(v) * 1024 ** 3)),
    "PARTITION_MAX_RECORDS": ("alert_max_rows", lambda v: int(v)),
}


def settings_from_env(env: Mapping[str, str] = os.environ) -> dict:
    """The seed's environment variables (those set) as timepart.configure() settings."""
    settings = {}
    for var, (key, convert) in _ENV_SETTINGS.items():
        text = env.get(var, "").strip()
        if text:
            try:
                settings[key] = convert(text)
            except ValueError:
                raise TimepartError(f"{var} must be a number, got {text!r}") from None
    return settings


@dataclass
class InstallResult:
    mode: str
    version: str
    already_installed: bool
    email_events: Optional[str] = None      # the table, when --with-email-events
    email_events_created: bool = False
    configuration: Optional[dict] = None    # the config row after the seed's variables
    jobs: List[dict] = field(default_factory=list)

    @property
    def message(self) -> str:
        if self.already_installed:
            return f"already installed at {self.version} ({self.mode} mode)"
        return f"installed timepart {self.version} ({self.mode} mode)"


def install(conn: Connection, mode: str = "auto", with_email_events: bool = False, schedule: bool = False,
            env: Mapping[str, str] = os.environ, version: Optional[str] = None) -> InstallResult:
    """Installs timepart (or finds it installed), optionally with the seed's email_events
    table configured from the seed's variables and the pg_cron jobs. One transaction:
    a failure anywhere leaves the database as it was."""
    if mode not in MODES:
        raise TimepartError(f"unknown install mode {mode!r}: use one of {', '.join(MODES)}")
    settings = settings_from_env(env) if with_email_events else {}
    files = scripts()
    with conn.transaction():
        state = installed(conn)
        if state.mode:
            result = InstallResult(state.mode, state.version, already_installed=True)
        else:
            result = _install_sql(conn, mode, version or files.newest, files)
        if with_email_events:
            _install_email_events(conn, result, settings)
        if schedule:
            if not _has_function(conn, "schedule_jobs"):
                raise TimepartError(f"timepart {result.version} has no timepart.schedule_jobs(): "
                                    "scheduling needs a newer timepart")
            cur = conn.execute("SELECT j.jobname, j.schedule, j.command FROM timepart.schedule_jobs() j")
            result.jobs = [dict(zip(("jobname", "schedule", "command"), r)) for r in cur]
    return result


def _install_sql(conn: Connection, mode: str, version: str, files: Scripts) -> InstallResult:
    on_server = server_versions(conn)
    if mode == "auto":
        mode = "extension" if version in on_server and _can_create_extension(conn) else "script"
    if mode == "extension":
        if version not in on_server:
            raise TimepartError(
                f"the server has no timepart {version} extension files "
                f"(available: {', '.join(on_server) or 'none'}): run `make install` on the server, or use --mode script")
        conn.execute(sql.SQL("CREATE EXTENSION timepart VERSION {}").format(sql.Literal(version)))
        return InstallResult("extension", installed(conn).version, already_installed=False)
    _run_script(conn, files.script(version))
    return InstallResult("script", installed(conn).version, already_installed=False)


def _run_script(conn: Connection, script: str) -> None:
    """Applies a version script as CREATE/ALTER EXTENSION would: on a search_path of the
    schema objects are created in, then pg_temp, so no temporary table or type of this
    session stands in for a name the script uses. Until the end of the transaction."""
    conn.execute("SELECT pg_catalog.set_config('search_path', pg_catalog.concat_ws(', ',"
                 " pg_catalog.quote_ident(pg_catalog.current_schema()), 'pg_temp'), true)")
    conn.execute(script)


def _install_email_events(conn: Connection, result: InstallResult, settings: dict) -> None:
    managed = conn.execute(
        "SELECT c.parent::pg_catalog.text FROM timepart.config c"
        " WHERE c.parent OPERATOR(pg_catalog.=) pg_catalog.to_regclass('email_events')").fetchone()
    if managed:
        result.email_events = managed[0]  # there already: leave its configuration alone
        return
    # The seed's variables are applied before the preset's first maintain (0.10 takes them
    # as an argument); an older install configures right after, which is all it can do.
    takes_settings = conn.execute(
        "SELECT pg_catalog.to_regprocedure('timepart.create_email_events_table(pg_catalog.name, pg_catalog.timestamptz,"
        " pg_catalog.jsonb)') IS NOT NULL"
    ).fetchone()[0]
    if takes_settings:
        result.email_events = conn.execute(
            "SELECT timepart.create_email_events_table(settings => %s::pg_catalog.jsonb)::pg_catalog.text",
            (json.dumps(settings),)).fetchone()[0]
    else:
        result.email_events = conn.execute("SELECT timepart.create_email_events_table()::pg_catalog.text").fetchone()[0]
    result.email_events_created = True
    if settings and takes_settings:
        result.configuration = conn.execute(
            "SELECT pg_catalog.to_jsonb(c) FROM timepart.config c"
            " WHERE c.parent OPERATOR(pg_catalog.=) %s::pg_catalog.regclass", (result.email_events,)).fetchone()[0]
    elif settings:
        result.configuration = conn.execute("SELECT timepart.configure(%s::pg_catalog.regclass, %s::pg_catalog.jsonb)",
                                            (result.email_events, json.dumps(settings))).fetchone()[0]


# ---- upgrade ----------------------------------------------------------------------

@dataclass
class UpgradeResult:
    mode: str
    from_version: str
    to_version: str
    steps: List[Tuple[str, str]]

    @property
    def message(self) -> str:
        if not self.steps:
            return f"already at {self.to_version} ({self.mode} mode): nothing to do"
        return f"upgraded timepart {self.from_version} -> {self.to_version} ({self.mode} mode)"


def upgrade(conn: Connection, to: Optional[str] = None) -> UpgradeResult:
    """Moves an install along the upgrade scripts to `to` (default: the newest), in one
    transaction. Refuses downgrades and versions no script knows."""
    files = scripts()
    with conn.transaction():
        state = installed(conn)
        if not state.mode:
            raise TimepartError("timepart is not installed in this database: run `timepart install` first")
        target = to or files.versions[-1]
        if target not in files.versions:
            raise TimepartError(f"unknown version {target}: the scripts know {', '.join(files.versions)}")
        if version_key(target) < version_key(state.version):
            raise TimepartError(f"refusing to downgrade timepart from {state.version} to {target}")
        chain = files.path(state.version, target) if target != state.version else []
        if state.mode == "extension" and chain and target not in server_versions(conn):
            raise TimepartError(f"the server has no timepart {target} extension files: run `make install` on the server")
        for start, end in chain:
            if state.mode == "extension":
                conn.execute(sql.SQL("ALTER EXTENSION timepart UPDATE TO {}").format(sql.Literal(end)))
            else:
                _run_script(conn, files.steps[start, end].read_text())
            now = installed(conn).version
            if now != end:
                raise TimepartError(f"upgrade step {start} -> {end} left timepart.version() at {now}")
    return UpgradeResult(state.mode, state.version, target, chain)


# ---- status -----------------------------------------------------------------------

@dataclass
class Status:
    mode: Optional[str]
    version: Optional[str]
    file_versions: List[str]
    server_versions: List[str]
    tables: List[dict]
    jobs: Optional[List[dict]]  # timepart.job_status(); None when it cannot be read (jobs_error says why)
    jobs_error: Optional[str] = None

    @property
    def installed(self) -> bool:
        return self.mode is not None


def status(conn: Connection) -> Status:
    state = installed(conn)
    tables, jobs, jobs_error = [], None, None
    if state.mode:
        cur = conn.execute("SELECT c.parent::pg_catalog.text, c.partition_interval::pg_catalog.text, c.premake,"
                           " c.retention::pg_catalog.text FROM timepart.config c ORDER BY 1")
        tables = [dict(zip(("parent", "partition_interval", "premake", "retention"), r)) for r in cur]
        if not _has_function(conn, "job_status"):
            jobs_error = f"timepart {state.version} cannot report its jobs: run `timepart upgrade`"
        else:
            try:
                with conn.transaction():
                    cur = conn.execute("SELECT j.jobname, j.schedule, j.command, j.database, j.active, j.last_status,"
                                       " j.last_success FROM timepart.job_status() j")
                    jobs = [dict(zip(("jobname", "schedule", "command", "database", "active", "last_status",
                                      "last_success"), r)) for r in cur]
            except psycopg.Error as e:
                jobs_error = f"pg_cron cannot be reached: {db.one_line(e)}"
    return Status(state.mode, state.version, scripts().versions, server_versions(conn), tables, jobs, jobs_error)


# ---- uninstall --------------------------------------------------------------------

@dataclass
class UninstallResult:
    mode: Optional[str]
    version: Optional[str]
    dropped: List[str]
    unscheduled_jobs: int = 0

    @property
    def message(self) -> str:
        if not self.mode:
            return "timepart is not installed in this database: nothing to do"
        return f"uninstalled timepart {self.version} ({self.mode} mode); user tables and rows kept"


def uninstall(conn: Connection) -> UninstallResult:
    """Removes timepart's own objects and nothing of the user's: managed tables, their
    partitions and rows stay. Refuses when a user's object depends on timepart."""
    with conn.transaction():
        state = installed(conn)
        if not state.mode:
            return UninstallResult(None, None, [])
        result = UninstallResult(state.mode, state.version, [])
        if _has_function(conn, "unschedule_jobs"):
            result.unscheduled_jobs = conn.execute("SELECT timepart.unschedule_jobs()").fetchone()[0] or 0
        if state.mode == "extension":
            conn.execute("DROP EXTENSION timepart")  # never CASCADE: a user's dependent object makes it fail
            result.dropped = ["EXTENSION timepart"]
            return result
        # The database says what is timepart's and what of the user's depends on it.
        if not _has_function(conn, "_outside_dependents"):
            raise TimepartError(f"timepart {state.version} cannot list its own objects: "
                                "run `timepart upgrade`, then uninstall")
        blockers = [r[0] for r in conn.execute("SELECT d FROM timepart._outside_dependents() d")]
        if blockers:
            raise TimepartError("cannot uninstall timepart: other objects depend on it: " + "; ".join(blockers)
                                + ". Drop or change them first")
        # The names come as timepart's pinned search_path prints them (argument types
        # unqualified): they are dropped under that path, with pg_temp last, so no
        # temporary type of this session stands in for one of them.
        conn.execute("SELECT pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true)")
        for kind, name in conn.execute("SELECT o.kind, o.name FROM timepart._installed_objects() o").fetchall():
            conn.execute(sql.SQL("DROP {} {}").format(sql.SQL(kind), sql.SQL(name)))  # regprocedure/regclass text is quoted
            result.dropped.append(f"{kind} {name}")
        conn.execute("DROP SCHEMA timepart CASCADE")
        result.dropped.append("SCHEMA timepart")
    return result
