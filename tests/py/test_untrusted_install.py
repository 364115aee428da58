"""A schema timepart (or a seed name) that someone else planted: a database owner who is not
a superuser creates schema timepart with a version() that escalates, or shadows one of the
seed's functions. Every command a superuser runs refuses in one line, naming the object and
its owner, and the planted code never runs."""
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from types import SimpleNamespace

import psycopg
import pytest
from click.testing import CliRunner

from timepart import install as lib
from timepart.cli import cli
from timepart.db import UntrustedError, check_trusted

# What every planted function does when called: a non-transactional mark (a sequence, so a
# refusal's rollback cannot hide it) and, as a superuser, making its owner one.
ATTACK = """
CREATE SEQUENCE public.attack_calls;
GRANT USAGE ON SEQUENCE public.attack_calls TO PUBLIC;
CREATE FUNCTION public.attack(via text) RETURNS boolean LANGUAGE plpgsql AS $f$
BEGIN
    PERFORM pg_catalog.nextval('public.attack_calls');
    IF (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user) THEN
        EXECUTE pg_catalog.format('ALTER ROLE %I SUPERUSER', '{role}');
    END IF;
    RETURN true;
END $f$;
"""

# A look-alike of an install: what the installer calls (and reads) in schema timepart.
PLANTED_SCHEMA = """
CREATE SCHEMA timepart;
CREATE FUNCTION timepart.version() RETURNS text LANGUAGE sql AS $f$ SELECT '0.1' FROM pg_catalog.pg_class WHERE public.attack('version') LIMIT 1 $f$;
CREATE FUNCTION timepart.schedule_jobs() RETURNS TABLE (jobname text, schedule text, command text)
    LANGUAGE sql AS $f$ SELECT 'j', '* * * * *', 'c' WHERE public.attack('schedule_jobs') $f$;
CREATE FUNCTION timepart.unschedule_jobs() RETURNS integer LANGUAGE sql AS $f$ SELECT 0 WHERE public.attack('unschedule_jobs') $f$;
CREATE FUNCTION timepart.job_status() RETURNS TABLE (jobname text, schedule text, command text, database text,
    active boolean, last_status text, last_success timestamptz)
    LANGUAGE sql AS $f$ SELECT NULL, NULL, NULL, NULL, NULL::boolean, NULL, NULL::timestamptz WHERE public.attack('job_status') $f$;
CREATE FUNCTION timepart._outside_dependents() RETURNS SETOF text LANGUAGE sql AS $f$ SELECT 'x' WHERE public.attack('deps') $f$;
CREATE FUNCTION timepart._installed_objects() RETURNS TABLE (kind text, name text)
    LANGUAGE sql AS $f$ SELECT 'x', 'y' WHERE public.attack('objects') $f$;
CREATE VIEW timepart.config AS SELECT NULL::regclass AS parent, NULL::interval AS partition_interval, 1 AS premake,
    NULL::interval AS retention WHERE public.attack('config');
"""

# Every command a DBA might run against it, and the exit code of a refusal.
COMMANDS = [
    (["status"], 1), (["--json", "status"], 1), (["install"], 1), (["install", "--mode", "script"], 1),
    (["install", "--schedule"], 1), (["install", "--with-email-events"], 1), (["upgrade"], 1),
    (["uninstall", "--yes"], 1), (["health"], 3), (["stats"], 1), (["summary"], 1), (["maintain"], 1),
    (["cleanup", "--dry-run"], 1), (["log"], 1), (["alerts"], 1), (["alerts", "--follow"], 1),
    (["report", "--output", "never-written.html"], 1), (["migrate", "t", "--key", "at", "--dry-run"], 1),
]


TIMEPART = shutil.which("timepart") or str(Path(sys.executable).parent / "timepart")


def run(dsn, *args):
    if "--follow" in args:  # the console script, so that a follow that never ends fails the test
        done = subprocess.run([TIMEPART, "--dsn", dsn, *args], capture_output=True, text=True, timeout=30)
        return SimpleNamespace(exit_code=done.returncode, stdout=done.stdout, stderr=done.stderr,
                               output=done.stdout + done.stderr)
    return CliRunner().invoke(cli, ["--dsn", dsn, *args])


@pytest.fixture
def owner_db():
    """A database owned by a role that is not a superuser (so it may create schemas, and
    owns public); yields (superuser dsn, the owner's dsn, the owner's name). Both dropped after."""
    role, name = "tp_dbowner_" + uuid.uuid4().hex[:8], "tp_" + uuid.uuid4().hex[:10]
    with psycopg.connect("dbname=postgres", autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN")
        conn.execute(f'CREATE DATABASE "{name}" OWNER {role}')
    with psycopg.connect(f"dbname={name}", autocommit=True) as conn:  # as the owner would, on a managed service
        conn.execute(f"SET ROLE {role}")
        conn.execute(ATTACK.replace("{role}", role))
    yield f"dbname={name}", f"dbname={name} user={role}", role
    with psycopg.connect("dbname=postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        drop_role(conn, role)


def drop_role(conn, role):
    """Drops a role, after the role memberships it granted (an install grants
    partition_monitor to partition_admin), which PostgreSQL 16 keeps it for."""
    granted = conn.execute("SELECT r.rolname, m.rolname FROM pg_auth_members a JOIN pg_roles r ON r.oid = a.roleid"
                           " JOIN pg_roles m ON m.oid = a.member JOIN pg_roles g ON g.oid = a.grantor"
                           " WHERE g.rolname = %s", (role,)).fetchall()
    for granted_role, member in granted:
        conn.execute(f'REVOKE "{granted_role}" FROM "{member}" GRANTED BY "{role}"')
        conn.execute(f'GRANT "{granted_role}" TO "{member}"')  # as the superuser, as an install would
    conn.execute(f"DROP ROLE IF EXISTS {role}")


def as_owner(owner_dsn, statements):
    with psycopg.connect(owner_dsn, autocommit=True) as conn:
        conn.execute(statements)


def assert_attack_never_ran(su_dsn, role):
    with psycopg.connect(su_dsn, autocommit=True) as conn:
        called, = conn.execute("SELECT is_called FROM public.attack_calls").fetchone()
        superuser, = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
    assert not called, "a planted function ran"
    assert superuser is False, "the planted function made its owner a superuser"


def assert_refused(result, code, *names):
    assert result.exit_code == code, result.output
    assert result.stdout == ""
    line = result.stderr
    assert len(line.splitlines()) == 1 and line.startswith("Error: refusing to call into database "), line
    for name in names:
        assert name in line, (name, line)


@pytest.mark.parametrize("args, code", COMMANDS, ids=[" ".join(a) for a, _ in COMMANDS])
def test_a_planted_schema_is_refused_and_never_called(owner_db, args, code, tmp_path, monkeypatch):
    su, owner, role = owner_db
    as_owner(owner, PLANTED_SCHEMA)
    monkeypatch.chdir(tmp_path)
    result = run(su, *args)
    assert_refused(result, code, f"schema timepart (owner {role})", "not owned by a superuser",
                   "ALTER SCHEMA timepart RENAME")
    assert_attack_never_ran(su, role)
    assert not (tmp_path / "never-written.html").exists()
    # install did not reuse (or add to) the planted schema
    with psycopg.connect(su, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM pg_extension WHERE extname = 'timepart'").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM pg_proc WHERE pronamespace = 'timepart'::regnamespace").fetchone() == (6,)


def test_the_library_refuses_before_calling_too(owner_db):
    su, owner, role = owner_db
    as_owner(owner, PLANTED_SCHEMA)
    with psycopg.connect(su, autocommit=True) as conn:
        for call in (lib.installed, lib.status, lib.uninstall, lib.upgrade, lambda c: lib.install(c, env={}),
                     check_trusted):
            with pytest.raises(UntrustedError, match=f"schema timepart \\(owner {role}\\)") as refused:
                call(conn)
            assert f"function timepart.version() (owner {role})" in refused.value.untrusted
            assert f"view timepart.config (owner {role})" in refused.value.untrusted
            assert len(refused.value.untrusted) == 8 and "; and 5 more. " in str(refused.value)  # counted, not listed
    assert_attack_never_ran(su, role)


def test_a_planted_schema_without_functions_is_still_not_reused(owner_db):
    su, owner, role = owner_db
    as_owner(owner, "CREATE SCHEMA timepart")
    result = run(su, "install", "--mode", "script")
    assert_refused(result, 1, f"schema timepart (owner {role})")
    with psycopg.connect(su, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM pg_class WHERE relnamespace = 'timepart'::regnamespace").fetchone() == (0,)


SHADOWS = [
    (("CREATE FUNCTION public.create_email_events_partition(text, text) RETURNS text LANGUAGE sql"
      " AS $f$ SELECT 'x' WHERE public.attack('shadow') $f$"),
     "function public.create_email_events_partition(pg_catalog.text,pg_catalog.text)"),
    (("CREATE SCHEMA elsewhere; CREATE FUNCTION elsewhere.maintain_email_events_partitions() RETURNS jsonb"
      " LANGUAGE sql AS $f$ SELECT '{}'::jsonb WHERE public.attack('shadow') $f$"),
     "function elsewhere.maintain_email_events_partitions()"),
]


@pytest.mark.parametrize("mode", ["extension", "script"])
@pytest.mark.parametrize("plant, name", SHADOWS, ids=["public overload", "other schema"])
def test_a_shadowed_seed_name_after_a_real_install_is_refused(owner_db, mode, plant, name):
    su, owner, role = owner_db
    assert run(su, "install", "--mode", mode, "--with-email-events").exit_code == 0
    assert run(su, "status").exit_code == 0
    # The event trigger refuses the shadow outright; one made while it was off (or before
    # 0.13) is what the installer must still refuse to call past.
    with pytest.raises(psycopg.errors.DuplicateFunction, match="the seed's names are timepart's"):
        as_owner(owner, plant)
    with psycopg.connect(su, autocommit=True) as conn:
        conn.execute("ALTER EVENT TRIGGER timepart_seed_names DISABLE")
    as_owner(owner, plant)
    with psycopg.connect(su, autocommit=True) as conn:
        conn.execute("ALTER EVENT TRIGGER timepart_seed_names ENABLE")
    for args, code in (["status"], 1), (["install", "--schedule"], 1), (["upgrade"], 1), (["uninstall", "--yes"], 1), \
                      (["health"], 3), (["log"], 1):
        result = run(su, *args)
        assert_refused(result, code, f"{name} (owner {role})", "inspect and drop them")
    assert_attack_never_ran(su, role)
    with psycopg.connect(su, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname = 'timepart'").fetchone() == (1,), \
            "uninstall removed nothing"


def test_a_planted_seed_view_is_refused_before_install(owner_db):
    su, owner, role = owner_db
    # CREATE OR REPLACE VIEW by the installer would keep its owner, who could then rewrite it.
    as_owner(owner, "CREATE VIEW public.partition_maintenance_log AS SELECT 1 AS id WHERE public.attack('view')")
    result = run(su, "install", "--mode", "script")
    assert_refused(result, 1, f"view public.partition_maintenance_log (owner {role})")
    with psycopg.connect(su, autocommit=True) as conn:
        assert conn.execute("SELECT pg_catalog.to_regnamespace('timepart')").fetchone() == (None,)
    assert_attack_never_ran(su, role)


def may_install(su, role):
    """What a managed service's main role has: the right to grant timepart's roles."""
    with psycopg.connect(su, autocommit=True) as conn:
        for name in ("partition_monitor", "partition_admin"):
            if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone():
                conn.execute(f"CREATE ROLE {name} NOLOGIN")
            conn.execute(f"GRANT {name} TO {role} WITH ADMIN OPTION")


def test_an_install_by_a_role_that_is_not_a_superuser(owner_db):
    """Script mode by the database owner (a managed service): trusted by itself, not by a
    superuser, whose rights its code could otherwise borrow."""
    su, owner, role = owner_db
    may_install(su, role)
    result = run(owner, "install", "--mode", "script")
    assert result.exit_code == 0, result.output
    result = run(owner, "status")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("timepart ")
    assert run(owner, "health").exit_code in (0, 1, 2)
    assert_refused(run(su, "status"), 1, f"schema timepart (owner {role})", "not owned by a superuser")
    assert_refused(run(su, "install", "--schedule"), 1, f"schema timepart (owner {role})")


def test_a_member_of_the_installing_role_trusts_it(owner_db):
    su, owner, role = owner_db
    may_install(su, role)
    assert run(owner, "install", "--mode", "script").exit_code == 0
    member = role + "_m"
    with psycopg.connect(su, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {member} LOGIN IN ROLE {role}")
        conn.execute(f"CREATE ROLE {member}_x LOGIN")
    try:
        assert run(f"{su} user={member}", "status").exit_code == 0
        result = run(f"{su} user={member}_x", "status")
        assert_refused(result, 1, f"schema timepart (owner {role})",
                       "not owned by a superuser, you or a role you are a member of")
    finally:
        with psycopg.connect(su, autocommit=True) as conn:
            conn.execute(f"DROP ROLE {member}")
            conn.execute(f"DROP ROLE {member}_x")


def test_executors_owned_by_table_owners_are_expected(owner_db):
    """A superuser's install where a table owner (not a superuser) manages a table: its
    executor timepart._as_owner_<oid> belongs to that owner, on purpose."""
    su, owner, role = owner_db
    assert run(su, "install", "--mode", "extension").exit_code == 0
    with psycopg.connect(su, autocommit=True) as conn:
        conn.execute(f"GRANT partition_admin TO {role}")
    as_owner(owner, "CREATE TABLE readings (id bigint, at timestamptz NOT NULL) PARTITION BY RANGE (at);"
                    " SELECT timepart.manage('readings', '1 month', 2)")
    with psycopg.connect(su, autocommit=True) as conn:
        executors = conn.execute("SELECT proowner::regrole::text FROM pg_proc WHERE pronamespace = 'timepart'::regnamespace"
                                 " AND proname ~ '^_as_owner_[0-9]+$'").fetchall()
    assert (role,) in executors
    for args in (["status"], ["stats"], ["log"]):
        result = run(su, *args)
        assert result.exit_code == 0, (args, result.output)
    assert "readings" in run(su, "stats").output
