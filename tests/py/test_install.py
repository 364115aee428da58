"""The installer: both modes yield the same objects, install is idempotent, upgrades
follow the scripts from the oldest version, status reports, uninstall keeps user data."""
import json
import subprocess
import sys
import zipfile

import psycopg
import pytest
from click.testing import CliRunner

from timepart import install as lib
from timepart.cli import cli
from timepart.db import TimepartError

FILES = lib.scripts()
OLDEST = min(FILES.full, key=lib.version_key)
NEWEST = FILES.versions[-1]

# Everything timepart creates, as text that must match between installs: functions with
# argument and result types, columns, views, constraints, indexes in schema timepart,
# and the seed-compatible objects in public.
CATALOG = """
SELECT 'function ' || p.oid::regprocedure::text || ' -> ' || pg_get_function_result(p.oid)
       || ' ' || p.prosecdef::text || ' ' || coalesce(array_to_string(p.proconfig, ','), '')
FROM pg_proc p
WHERE p.pronamespace = 'timepart'::regnamespace
   OR (p.pronamespace = 'public'::regnamespace AND obj_description(p.oid, 'pg_proc') LIKE 'Seed name:%')
UNION ALL
SELECT 'column ' || c.oid::regclass::text || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
       || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END || ' default ' || coalesce(pg_get_expr(d.adbin, d.adrelid), '')
FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
WHERE c.relnamespace = 'timepart'::regnamespace AND c.relkind IN ('r', 'v', 'p')
   OR (c.relnamespace = 'public'::regnamespace AND obj_description(c.oid, 'pg_class') LIKE 'Seed name:%')
UNION ALL
SELECT 'relation ' || c.oid::regclass::text || ' ' || c.relkind::text
FROM pg_class c WHERE c.relnamespace = 'timepart'::regnamespace
UNION ALL
SELECT 'constraint ' || conrelid::regclass::text || ' ' || conname || ' ' || pg_get_constraintdef(oid)
FROM pg_constraint WHERE connamespace = 'timepart'::regnamespace
UNION ALL
SELECT 'view ' || c.oid::regclass::text || ' ' || pg_get_viewdef(c.oid)
FROM pg_class c WHERE c.relkind = 'v' AND (c.relnamespace = 'timepart'::regnamespace
   OR (c.relnamespace = 'public'::regnamespace AND obj_description(c.oid, 'pg_class') LIKE 'Seed name:%'))
ORDER BY 1
"""


def catalog(dsn):
    with psycopg.connect(dsn) as conn:
        return [r[0] for r in conn.execute(CATALOG)]


def run(dsn, *args, input=None):
    return CliRunner().invoke(cli, ["--dsn", dsn, *args], input=input)


def lib_install(dsn, **kwargs):
    with psycopg.connect(dsn, autocommit=True) as conn:
        return lib.install(conn, env={}, **kwargs)


def installed(dsn):
    with psycopg.connect(dsn, autocommit=True) as conn:
        return lib.installed(conn)


def query(dsn, sql, params=()):
    with psycopg.connect(dsn, autocommit=True) as conn:
        cur = conn.execute(sql, params)
        return cur.fetchall() if cur.description else None


def test_the_package_finds_every_version_script():
    assert (lib.sql_dir() / "timepart.control").is_file()
    assert OLDEST in FILES.full and FILES.newest in FILES.full
    assert lib.version_key("0.10") > lib.version_key("0.9")
    for (start, end) in FILES.steps:
        assert lib.version_key(end) > lib.version_key(start)
    # Every version is reachable from the oldest full script.
    for version in FILES.versions:
        chain = FILES.path(OLDEST, version)
        assert chain[-1][1] == version if version != OLDEST else chain == []


def test_the_package_version_is_the_extension_version():
    import timepart
    assert timepart.__version__ == FILES.newest
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0 and FILES.newest in result.output


def test_both_modes_install_the_same_objects(make_database):
    by_extension, by_script = make_database(), make_database()
    assert lib_install(by_extension, mode="extension").mode == "extension"
    assert lib_install(by_script, mode="script").mode == "script"
    assert installed(by_extension).version == installed(by_script).version == FILES.newest
    objects = catalog(by_extension)
    # Reading runs with the owner's rights and a pinned search_path (the security model).
    assert "function timepart.version() -> text true search_path=pg_catalog, pg_temp,DateStyle=ISO, YMD,jit=off" in objects
    assert any(o.startswith("function create_email_events_partition(date,date)") for o in objects)
    assert any(o.startswith("view partition_maintenance_log") for o in objects)
    assert objects == catalog(by_script)


def test_auto_mode_prefers_the_extension_when_its_files_are_on_the_server(make_database):
    db = make_database()
    result = lib_install(db, mode="auto")
    assert (result.mode, result.version, result.already_installed) == ("extension", FILES.newest, False)


@pytest.mark.parametrize("mode", ["extension", "script"])
def test_install_twice_changes_nothing(make_database, mode):
    db = make_database()
    first = run(db, "install", "--mode", mode, "--with-email-events")
    assert first.exit_code == 0, first.output
    assert first.output.splitlines()[:2] == [f"installed timepart {FILES.newest} ({mode} mode)",
                                             "created: email_events"]
    before = catalog(db), query(db, "SELECT count(*) FROM timepart.maintenance_log"), \
        query(db, "SELECT * FROM timepart.config")
    second = run(db, "install", "--mode", mode, "--with-email-events")
    assert second.exit_code == 0, second.output
    assert second.output.splitlines() == [f"already installed at {FILES.newest} ({mode} mode)",
                                          "already managed: email_events"]
    assert (catalog(db), query(db, "SELECT count(*) FROM timepart.maintenance_log"),
            query(db, "SELECT * FROM timepart.config")) == before


def test_install_configures_email_events_from_the_seed_variables(make_database):
    db = make_database()
    env = {"PARTITION_MONTHS_AHEAD": "4", "PARTITION_RETENTION_MONTHS": "18",
           "PARTITION_MAX_SIZE_GB": "2", "PARTITION_MAX_RECORDS": "5000000"}
    with psycopg.connect(db, autocommit=True) as conn:
        result = lib.install(conn, mode="script", with_email_events=True, env=env)
    assert result.email_events == "email_events" and result.email_events_created
    row = query(db, "SELECT premake, retention::text, alert_max_size_bytes, alert_max_rows FROM timepart.config"
                    " WHERE parent = 'email_events'::regclass")
    assert row == [(4, "1 year 6 mons", 2 * 1024 ** 3, 5000000)]
    assert result.configuration["premake"] == 4
    # Applied before the preset's first maintain: 4 periods ahead, not the default 6.
    future = query(db, "SELECT count(*) FROM timepart.partition_stats('email_events')"
                       " WHERE range_start > now() AND NOT is_default")
    assert future == [(4,)]


def test_settings_from_env_takes_only_what_is_set_and_refuses_non_numbers():
    assert lib.settings_from_env({}) == {}
    assert lib.settings_from_env({"PARTITION_RETENTION_MONTHS": "12", "PARTITION_MAX_SIZE_GB": "0.5"}) == \
        {"retention": "12 months", "alert_max_size_bytes": 512 * 1024 ** 2}
    with pytest.raises(TimepartError, match="PARTITION_MONTHS_AHEAD must be a number, got 'six'"):
        lib.settings_from_env({"PARTITION_MONTHS_AHEAD": "six"})


def test_a_bad_seed_variable_installs_nothing(make_database):
    db = make_database()
    result = CliRunner(env={"PARTITION_MAX_RECORDS": "lots"}).invoke(
        cli, ["--dsn", db, "install", "--with-email-events"])
    assert result.exit_code == 1
    assert result.stderr == "Error: PARTITION_MAX_RECORDS must be a number, got 'lots'\n"
    assert installed(db).mode is None


@pytest.mark.needs("pg_cron")
def test_install_can_schedule_the_jobs(make_database):
    db = make_database()
    # This database is not cron.database_name: without dblink pg_cron cannot be reached,
    # which is a clear error and rolls the whole install back.
    result = run(db, "install", "--mode", "script", "--schedule")
    assert result.exit_code == 1
    assert "pg_cron lives in database" in result.stderr
    assert installed(db).mode is None
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION dblink")
    result = run(db, "install", "--mode", "script", "--schedule")
    assert result.exit_code == 0, result.output
    assert "scheduled timepart-" in result.output
    with psycopg.connect(db, autocommit=True) as conn:
        assert conn.execute("SELECT timepart.unschedule_jobs()").fetchone()[0] == 5


def test_extension_mode_without_server_files_is_refused(make_database):
    db = make_database()
    with psycopg.connect(db, autocommit=True) as conn, pytest.raises(TimepartError, match="no timepart 9.9 extension files"):
        lib.install(conn, mode="extension", version="9.9")


@pytest.mark.parametrize("mode", ["extension", "script"])
def test_upgrade_from_the_oldest_version_equals_a_fresh_install(make_database, mode):
    old, fresh = make_database(), make_database()
    lib_install(old, mode=mode, version=OLDEST)
    assert installed(old).version == OLDEST
    result = run(old, "upgrade")
    assert result.exit_code == 0, result.output
    if OLDEST == NEWEST:
        assert result.output == f"already at {NEWEST} ({mode} mode): nothing to do\n"
    else:
        assert result.output == f"upgraded timepart {OLDEST} -> {NEWEST} ({mode} mode)\n"
    assert installed(old) == lib.Installed(mode, NEWEST)
    lib_install(fresh, mode=mode, version=NEWEST)
    assert catalog(old) == catalog(fresh)
    again = run(old, "--json", "upgrade")
    assert again.exit_code == 0
    assert json.loads(again.output)["steps"] == []


@pytest.mark.parametrize("mode", ["extension", "script"])
def test_a_middle_version_installs_from_the_base_and_the_chain(make_database, mode):
    middle = FILES.versions[len(FILES.versions) // 2]
    assert middle not in FILES.full  # no full script of its own: the base plus the chain
    db = make_database()
    lib_install(db, mode=mode, version=middle)
    assert installed(db) == lib.Installed(mode, middle)


def test_upgrade_step_by_step_reports_each_version(make_database):
    db = make_database()
    lib_install(db, mode="script", version=OLDEST)
    for start, end in FILES.path(OLDEST, NEWEST):
        result = run(db, "--json", "upgrade", "--to", end)
        assert result.exit_code == 0, result.output
        assert json.loads(result.output) | {"message": None} == {
            "mode": "script", "from_version": start, "to_version": end, "steps": [[start, end]], "message": None}
        assert query(db, "SELECT timepart.version()") == [(end,)]


def test_upgrade_refuses_unknown_versions_downgrades_and_missing_installs(make_database):
    db = make_database()
    result = run(db, "upgrade")
    assert (result.exit_code, result.stderr) == (
        1, "Error: timepart is not installed in this database: run `timepart install` first\n")
    lib_install(db, mode="script")
    result = run(db, "upgrade", "--to", "99.0")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: unknown version 99.0: the scripts know ")
    if OLDEST != FILES.newest:
        result = run(db, "upgrade", "--to", OLDEST)
        assert (result.exit_code, result.stderr) == (
            1, f"Error: refusing to downgrade timepart from {FILES.newest} to {OLDEST}\n")
    assert installed(db).version == FILES.newest


def test_status_shows_versions_tables_and_jobs(make_database):
    db = make_database()
    result = run(db, "status")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("timepart is not installed in this database\n")
    lib_install(db, mode="extension", with_email_events=True)
    result = run(db, "status")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"timepart {FILES.newest} installed (extension mode)"
    assert lines[1] == f"versions in the package: {', '.join(FILES.versions)}"
    assert any(line.split() == ["email_events", "1", "mon", "6", "1", "year"] for line in lines)
    assert "scheduled jobs: none (timepart.schedule_jobs() or `timepart install --schedule` sets them up)" in lines
    data = json.loads(run(db, "--json", "status").output)
    assert data["installed"] is True and data["mode"] == "extension"
    assert set(FILES.versions) <= set(data["file_versions"]) and FILES.newest in data["server_versions"]
    assert data["tables"] == [{"parent": "email_events", "partition_interval": "1 mon", "premake": 6,
                               "retention": "1 year"}]
    assert data["jobs"] == [] and data["jobs_error"] is None


def _user_tables(dsn):
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE readings (id bigint, at timestamptz NOT NULL) PARTITION BY RANGE (at)")
        conn.execute("SELECT timepart.manage('readings', '1 month', 2, NULL, true, '100 ms', 'UTC', '2024-03-15')")
        conn.execute("INSERT INTO readings SELECT g, '2024-03-01'::timestamptz + g * interval '1 hour'"
                     " FROM generate_series(1, 100) g")
        conn.execute("SELECT timepart.create_email_events_table('public', '2024-03-15')")
        conn.execute("INSERT INTO email_events (workspace_id, campaign_id, lead_id, event_type, created_at)"
                     " SELECT gen_random_uuid(), gen_random_uuid(), gen_random_uuid(), 'open', '2024-03-10'"
                     " FROM generate_series(1, 7)")


@pytest.mark.parametrize("mode", ["extension", "script"])
def test_uninstall_keeps_user_tables_and_rows(make_database, mode):
    db = make_database()
    lib_install(db, mode=mode)
    _user_tables(db)
    partitions = query(db, "SELECT inhrelid::regclass::text FROM pg_inherits ORDER BY 1")
    result = run(db, "uninstall", "--yes")
    assert result.exit_code == 0, result.output
    assert result.output == f"uninstalled timepart {FILES.newest} ({mode} mode); user tables and rows kept\n"
    assert query(db, "SELECT to_regnamespace('timepart'), to_regproc('public.maintain_email_events_partitions'),"
                     " to_regclass('public.partition_maintenance_log')") == [(None, None, None)]
    assert query(db, "SELECT count(*) FROM readings") == [(100,)]
    assert query(db, "SELECT count(*) FROM email_events") == [(7,)]
    assert query(db, "SELECT inhrelid::regclass::text FROM pg_inherits ORDER BY 1") == partitions
    assert query(db, "SELECT to_regtype('email_event_type')::text") == [("email_event_type",)]
    again = run(db, "uninstall", "--yes")
    assert again.output == "timepart is not installed in this database: nothing to do\n"


@pytest.mark.parametrize("mode", ["extension", "script"])
def test_uninstall_refuses_while_a_user_object_depends_on_timepart(make_database, mode):
    db = make_database()
    lib_install(db, mode=mode)
    query(db, "CREATE VIEW my_tables AS SELECT parent FROM timepart.config")
    result = run(db, "uninstall", "--yes")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: cannot ")
    assert "my_tables" in result.stderr and "Traceback" not in result.output
    assert installed(db).mode == mode
    assert query(db, "SELECT to_regproc('public.maintain_email_events_partitions') IS NOT NULL") == [(True,)]


def test_uninstall_asks_first(make_database):
    db = make_database()
    lib_install(db, mode="script")
    result = run(db, "uninstall", input="n\n")
    assert result.exit_code == 1
    assert "Aborted!" in result.output
    assert installed(db).mode == "script"
    result = run(db, "uninstall", input="y\n")
    assert result.exit_code == 0, result.output
    assert installed(db).mode is None


def test_the_wheel_ships_the_extension_sql(tmp_path):
    """pip builds a wheel from installer/ with the SQL files inside, none kept in git."""
    installer = lib.sql_dir().parent / "installer"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(installer)],
                           capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    wheel, = tmp_path.glob("timepart-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    ext = lib.sql_dir()
    expected = {"timepart/sql/timepart.control", "timepart/sql/timepart--0.1.sql", f"timepart/sql/timepart--{FILES.newest}.sql"}
    expected |= {f"timepart/sql/{f.name}" for f in (ext / "updates").glob("timepart--*--*.sql")}
    assert len(expected) > 3
    assert expected <= names
    # The newest full script in the wheel is the one built from src/, byte for byte.
    newest = zipfile.ZipFile(wheel).read(f"timepart/sql/timepart--{FILES.newest}.sql").decode()
    assert newest == FILES.full[FILES.newest]
    assert not any(n.startswith("timepart/sql/src/") for n in names)
    tracked = subprocess.run(["git", "ls-files", "installer"], cwd=installer.parent, capture_output=True, text=True)
    assert not any(name.endswith(".sql") for name in tracked.stdout.split())
