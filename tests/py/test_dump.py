"""pg_dump and pg_restore keep everything timepart records: configuration, index
templates, the maintenance log, alert state, statistics history and migration state,
with their ids, in a round trip through a custom-format dump."""
import os
import subprocess

import psycopg
import pytest

pytestmark = pytest.mark.needs("pg_dump")

TABLES = ("config", "index_templates", "maintenance_log", "alerts", "stats_history", "migrations")


def snapshot(dsn):
    """Every row of timepart's tables, as text, per table."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        return {t: sorted(r[0] for r in conn.execute(f"SELECT t::text FROM timepart.{t} t")) for t in TABLES}


def test_a_dump_and_restore_keep_what_timepart_records(make_database, tmp_path):
    src, dst = make_database(), make_database()
    with psycopg.connect(src, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION timepart")
        conn.execute("SELECT timepart.create_email_events_table()")
        conn.execute("INSERT INTO email_events (workspace_id, campaign_id, lead_id, event_type, created_at)"
                     " SELECT gen_random_uuid(), gen_random_uuid(), gen_random_uuid(), 'open', now() + interval '20 years'")
        conn.execute("SELECT timepart.snapshot_stats()")
        conn.execute("SELECT count(*) FROM timepart.check_alerts()")
        conn.execute("CREATE TABLE small (id bigint, at timestamptz NOT NULL)")
        conn.execute("INSERT INTO small SELECT g, now() - g * interval '1 hour' FROM generate_series(1, 100) g")
        conn.execute("CALL timepart.migrate('small', 'at')")
    before = snapshot(src)
    assert all(before[t] for t in TABLES), {t: len(v) for t, v in before.items()}
    bindir = os.environ["TIMEPART_PG_BIN"]
    dump = tmp_path / "app.dump"
    subprocess.run([f"{bindir}/pg_dump", "-Fc", "-f", str(dump), "-d", src], check=True, capture_output=True)
    restored = subprocess.run([f"{bindir}/pg_restore", "-d", dst, str(dump)], capture_output=True, text=True)
    assert restored.returncode == 0, restored.stderr
    after = snapshot(dst)
    for t in TABLES:
        # stats_history and config hold regclass/oid values: the same tables, new oids.
        assert len(after[t]) == len(before[t]), t
    assert after["maintenance_log"] == before["maintenance_log"], "the log comes back as it was, who and when included"
    assert after["alerts"] == before["alerts"]
    with psycopg.connect(dst, autocommit=True) as conn:
        assert conn.execute("SELECT timepart.maintain()->>'success'").fetchone()[0] == "true"
        newest = conn.execute("SELECT max(id) FROM timepart.maintenance_log").fetchone()[0]
        assert newest > max(int(r.split(",")[0].strip("(")) for r in before["maintenance_log"]), "ids go on after the dump's"
