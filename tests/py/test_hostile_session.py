"""A session whose temporary schema stands in for the names timepart uses (PostgreSQL looks
relations and types up in pg_temp first unless they are qualified), and a database with
look-alike operators in public: the client, the installer, `timepart report` and the CLI
commands run on such a session and never touch any of them.
(tests/py/test_qualified_sql.py checks the same promise statically, on the source.)"""
import asyncio
from datetime import datetime, timezone

import psycopg
import pytest
from click.testing import CliRunner

from timepart import db as tpdb, install as lib, migrate, report
from timepart.cli import cli
from timepart.client import EmailEventsPartitionManager, PartitionManager, PartitionMonitor, listen_alerts

# Types an unqualified cast or signature would find in pg_temp (integer, boolean and
# interval are grammar, always pg_catalog's; their other names are not).
TYPES = ["regclass", "regprocedure", "regnamespace", "text", "jsonb", "json", "timestamptz", "int4", "int8",
         "bool", "name", "date", "numeric", "oid", "float8"]
# Relations an unqualified FROM would find in pg_temp.
VIEWS = {"pg_catalog": ["pg_class", "pg_namespace", "pg_proc", "pg_roles", "pg_extension", "pg_inherits",
                        "pg_available_extension_versions", "pg_stat_database", "pg_depend", "pg_type"],
         "timepart": ["open_alerts", "config", "metrics", "maintenance_log", "alerts", "jobs", "migrations",
                      "stats_history", "index_templates"]}

# Every hostile object calls pg_temp.boom, which counts the call where no rollback undoes it
# (a sequence in public) and raises, naming the object.
def hostile_sql(views=VIEWS):
    return "\n".join([
    """CREATE FUNCTION pg_temp.boom(what text) RETURNS boolean LANGUAGE plpgsql AS $f$
       BEGIN
           PERFORM pg_catalog.nextval('public.hostile_calls');
           RAISE EXCEPTION 'hostile temporary object used: %', what;
       END $f$;"""]
    + [f'CREATE DOMAIN pg_temp."{t}" AS pg_catalog."{t}" CHECK (pg_temp.boom(\'type {t}\'));' for t in TYPES]
    + [f'CREATE TEMPORARY VIEW "{v}" AS SELECT * FROM {schema}."{v}" WHERE pg_temp.boom(\'view {v}\');'
       for schema, names in views.items() for v in names])


HOSTILE = hostile_sql()

# Operators in public that beat pg_catalog's for the operand types the package compares
# (a regclass against an oid or a regclass, where pg_catalog has only oid = oid).
OPERATORS = """
CREATE SEQUENCE public.hostile_calls;
GRANT USAGE ON SEQUENCE public.hostile_calls TO PUBLIC;
CREATE FUNCTION public.hostile_eq(oid, regclass) RETURNS boolean LANGUAGE plpgsql AS $f$
BEGIN PERFORM pg_catalog.nextval('public.hostile_calls'); RAISE EXCEPTION 'hostile operator used'; END $f$;
CREATE OPERATOR public.= (LEFTARG = oid, RIGHTARG = regclass, FUNCTION = public.hostile_eq);
CREATE FUNCTION public.hostile_eq2(regclass, regclass) RETURNS boolean LANGUAGE plpgsql AS $f$
BEGIN PERFORM pg_catalog.nextval('public.hostile_calls'); RAISE EXCEPTION 'hostile operator used'; END $f$;
CREATE OPERATOR public.= (LEFTARG = regclass, RIGHTARG = regclass, FUNCTION = public.hostile_eq2);
"""


def prepare(conn):
    conn.execute(OPERATORS)
    conn.execute("CREATE EXTENSION timepart")
    conn.execute("SELECT timepart.create_email_events_table()")
    conn.execute("INSERT INTO email_events (workspace_id, campaign_id, lead_id, event_type, created_at)"
                 " SELECT gen_random_uuid(), gen_random_uuid(), gen_random_uuid(), 'open', now() FROM generate_series(1, 5)")
    # No partition for the current period: an open critical alert, so open_alerts has rows.
    conn.execute("CREATE TABLE stale (id bigint, at timestamptz NOT NULL) PARTITION BY RANGE (at)")
    conn.execute("SELECT timepart.manage('stale', '1 month', 1, NULL, false, '100 ms', 'UTC', '2020-01-15')")
    conn.execute("SELECT timepart.snapshot_stats()")
    conn.execute("SELECT count(*) FROM timepart.check_alerts()")
    conn.execute("CREATE TABLE plain (id bigint, at timestamptz NOT NULL, PRIMARY KEY (id, at))")
    conn.execute("INSERT INTO plain SELECT g, now() - g * interval '10 days' FROM generate_series(1, 20) g")


@pytest.fixture(scope="module")
def db(dsn):
    with psycopg.connect(dsn, autocommit=True) as conn:
        prepare(conn)
    return dsn


@pytest.fixture(autouse=True)
def count_from_zero(request):
    """Each test counts the hostile calls it causes, from none."""
    if "db" in request.fixturenames:
        with psycopg.connect(request.getfixturevalue("db"), autocommit=True) as conn:
            conn.execute("SELECT pg_catalog.setval('public.hostile_calls', 1, false)")


def hostile(dsn, sql=HOSTILE):
    conn = psycopg.connect(dsn, autocommit=True)
    conn.execute(sql)
    return conn


async def hostile_async(dsn):
    conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
    await conn.execute(HOSTILE)
    return conn


def assert_untouched(dsn):
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert conn.execute("SELECT is_called FROM public.hostile_calls").fetchone() == (False,), \
            "a hostile object was used"


def test_the_hostile_objects_do_bite(db):
    """The test's own premise: unqualified names find them."""
    with hostile(db) as conn:
        for sql in ("SELECT 'email_events'::regclass", "SELECT count(*) FROM pg_class",
                    "SELECT count(*) FROM timepart.config c JOIN pg_catalog.pg_class r ON r.oid = c.parent"):
            with pytest.raises(psycopg.errors.RaiseException, match="hostile"):
                conn.execute(sql)
    with psycopg.connect(db, autocommit=True) as conn:
        assert conn.execute("SELECT is_called FROM public.hostile_calls").fetchone() == (True,)
        conn.execute("SELECT pg_catalog.setval('public.hostile_calls', 1, false)")
    assert_untouched(db)


def test_the_client_on_a_hostile_session(db):
    async def go():
        conn = await hostile_async(db)
        try:
            m = EmailEventsPartitionManager(conn)
            await m.require_installed()
            stats = await m.get_partition_stats()
            assert any(s.record_count == 5 for s in stats if not s.is_default)
            assert (await m.check_partition_health()).status in ("healthy", "warning", "critical")
            assert (await m.maintain_partitions(7)).success
            assert (await m.cleanup(dry_run=True)).success
            assert (await m.cleanup_old_partitions(24)).success
            now = datetime.now(timezone.utc)
            far = datetime(now.year + 3, 1, 1, tzinfo=timezone.utc)
            made = await m.create_partition(far, datetime(now.year + 3, 2, 1, tzinfo=timezone.utc))
            assert made.endswith(f"email_events_{now.year + 3}_01")
            assert "health" in await m.summary()
            assert await m.check_alerts() is not None
            assert len(await m.get_maintenance_log(5)) == 5
            assert [t.name for t in await m.tables()] == ["email_events"]
            assert await m.snapshot_stats() > 0
            everything = PartitionManager(conn, None)
            assert {t.name for t in await everything.tables()} == {"email_events", "stale"}
            assert (await everything.health()).status == "critical"
            assert any(a.alert_type == "missing_current_partition" for a in await PartitionMonitor(conn).run_comprehensive_check())
        finally:
            await conn.close()
    asyncio.run(go())
    assert_untouched(db)


def test_listening_for_alerts_on_a_hostile_session(db):
    async def go():
        conn = await hostile_async(db)
        try:
            alerts = listen_alerts(conn)
            first = asyncio.ensure_future(alerts.__anext__())
            await asyncio.sleep(0.3)  # the LISTEN is in place
            with psycopg.connect(db, autocommit=True) as ringer:
                ringer.execute("NOTIFY timepart_alerts")
            alert = await asyncio.wait_for(first, 10)
            assert alert["parent_table"]
        finally:
            await conn.close()
    asyncio.run(go())
    assert_untouched(db)


def test_the_installer_report_and_migrate_on_a_hostile_session(db, tmp_path):
    with hostile(db) as conn:
        assert tpdb.check_trusted(conn) is True
        tpdb.require_installed(conn)
        assert lib.installed(conn).mode == "extension"
        status = lib.status(conn)
        assert [t["parent"] for t in status.tables] == ["email_events", "stale"]
        assert lib.install(conn, env={}).already_installed
        assert lib.install(conn, with_email_events=True, env={}).email_events == "email_events"
        assert lib.upgrade(conn).steps == []
        for table in (None, "stale"):
            page = (tmp_path / f"{table}.html")
            report.write(conn, str(page), table)
            assert "missing" in page.read_text() or "critical" in page.read_text()
        assert len(migrate.plan(conn, "plain", "at")) > 0
        assert migrate.carried(conn, "plain")
    assert_untouched(db)


def test_migrate_run_on_a_hostile_session(db):
    with hostile(db) as conn:
        done = migrate.run(conn, "plain", "at", "1 month", 100)
    assert done["state"] == "done" and done["target_rows"] == 20
    assert_untouched(db)


@pytest.mark.parametrize("args, codes", [
    (["status"], {0}), (["stats"], {0}), (["health"], {2}), (["summary"], {0}), (["log"], {0}), (["alerts"], {0}),
    (["maintain"], {0}), (["cleanup", "--dry-run"], {0}), (["install"], {0}), (["upgrade"], {0}),
    (["report", "--output", "r.html"], {0}), (["migrate", "plain", "--key", "at", "--dry-run"], {0, 1}),
])
def test_the_cli_on_hostile_sessions(db, args, codes, monkeypatch, tmp_path):
    """Each command's connection is a hostile session (db.connect and connect_async prepare it)."""
    real, real_async = tpdb.connect, tpdb.connect_async

    def connect(dsn=None, **kwargs):
        conn = real(dsn, **kwargs)
        conn.execute(HOSTILE)
        return conn

    async def connect_async(dsn=None, **kwargs):
        conn = await real_async(dsn, **kwargs)
        await conn.execute(HOSTILE)
        return conn
    monkeypatch.setattr(tpdb, "connect", connect)
    monkeypatch.setattr(tpdb, "connect_async", connect_async)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["--dsn", db, *args])
    assert result.exit_code in codes, result.output
    assert "hostile" not in result.output
    assert_untouched(db)


def test_uninstall_on_a_hostile_session(make_database):
    """The names uninstall drops (timepart._installed_objects) are read and dropped under
    one pinned search_path: a temporary type named like an argument's changes nothing."""
    dsn = make_database()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(OPERATORS)
        lib.install(conn, mode="script", env={})
    # (No views on timepart's tables this time: uninstall would rightly refuse, as they depend on them.)
    with hostile(dsn, hostile_sql({"pg_catalog": VIEWS["pg_catalog"]})) as conn:
        result = lib.uninstall(conn)
    assert result.mode == "script" and "SCHEMA timepart" in result.dropped
    assert any(d.startswith("FUNCTION public.create_email_events_partition(") for d in result.dropped)
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert conn.execute("SELECT pg_catalog.to_regproc('public.create_email_events_partition')").fetchone() == (None,)
    assert_untouched(dsn)


def test_a_script_mode_install_on_a_hostile_session(make_database):
    """The scripts are applied as CREATE EXTENSION applies them: the session's temporary
    objects stand in for none of their names."""
    dsn = make_database()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(OPERATORS)
    with hostile(dsn, hostile_sql({"pg_catalog": VIEWS["pg_catalog"]})) as conn:
        assert lib.install(conn, mode="script", env={}).version == lib.scripts().newest
        assert lib.installed(conn) == lib.Installed("script", lib.scripts().newest)
    assert_untouched(dsn)


def test_an_upgrade_from_the_oldest_version_on_a_hostile_session(make_database):
    """Extension mode: the oldest release's timepart.version() (an unpinned SQL function,
    `SELECT '0.1'::text`) would meet the session's temporary type text if a script-mode
    upgrade called it; the extension's version comes from pg_extension instead."""
    dsn = make_database()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(OPERATORS)
    oldest = min(lib.scripts().full, key=lib.version_key)
    with hostile(dsn, hostile_sql({"pg_catalog": VIEWS["pg_catalog"]})) as conn:
        assert lib.install(conn, mode="extension", version=oldest, env={}).version == oldest
        assert lib.upgrade(conn).to_version == lib.scripts().newest
    assert_untouched(dsn)
