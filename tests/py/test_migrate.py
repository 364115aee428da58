"""timepart.migrate on real data: the plan, an interruption and its resume, concurrent
inserts, updates and deletes that all survive, and the `timepart migrate` command."""
import random
import threading
import time
from datetime import datetime, timedelta, timezone

import psycopg
import pytest
from click.testing import CliRunner

from timepart.cli import cli

START = datetime(2024, 1, 1, tzinfo=timezone.utc)
ROWS = 40000


@pytest.fixture(scope="module")
def installed(dsn):
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS timepart")
    return dsn


def make_table(conn, name, rows=ROWS, primary_key=True):
    """rows events, one every 5 minutes from 2024-01-01 (about 4.6 months for 40000)."""
    pk = "PRIMARY KEY (id, created_at)" if primary_key else "CHECK (id > 0)"
    conn.execute(f"CREATE TABLE {name} (id bigserial, created_at timestamptz NOT NULL, kind text NOT NULL, "
                 f"payload jsonb DEFAULT '{{}}', {pk})")
    conn.execute(f"CREATE INDEX {name}_kind_idx ON {name} (kind, created_at DESC)")
    conn.execute(f"INSERT INTO {name} (created_at, kind, payload) SELECT %s + g * interval '5 minutes', "
                 f"'k' || (g %% 7), jsonb_build_object('g', g) FROM generate_series(0, %s - 1) g", (START, rows))


def fingerprint(conn, table):
    """Row count and an order-independent checksum over (id, created_at, kind, payload)."""
    return conn.execute(f"SELECT count(*), coalesce(sum(hashtextextended(ROW(id, created_at, kind, payload)::text, 0)), 0) "
                        f"FROM {table}").fetchone()


def rows_of(conn, table):
    return {r[0]: (r[1], r[2]) for r in conn.execute(f"SELECT id, created_at, kind FROM {table}")}


def call_migrate(dsn, table, batch_size, pid_box=None, errors=None):
    """CALLs timepart.migrate on its own connection; puts its pid in pid_box, its error in errors."""
    conn = psycopg.connect(dsn, autocommit=True)
    try:
        if pid_box is not None:
            pid_box.append(conn.info.backend_pid)
        conn.execute(f"CALL timepart.migrate('{table}', 'created_at', batch_size => {batch_size})")
    except psycopg.Error as exc:
        if errors is None:
            raise
        errors.append(exc)
    finally:
        conn.close()


def wait_for(conn, query, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if conn.execute(query).fetchone()[0]:
            return
        time.sleep(0.005)
    raise AssertionError(f"timed out waiting for: {query}")


def test_plan_counts_small_tables(installed, connect):
    conn = connect()
    make_table(conn, "plan_ev")
    plan = conn.execute("SELECT partition_name, range_start, estimated_rows, rows_from "
                        "FROM timepart.migrate_plan('plan_ev', 'created_at')").fetchall()
    assert [p[0] for p in plan] == ["plan_ev_2024_01", "plan_ev_2024_02", "plan_ev_2024_03",
                                    "plan_ev_2024_04", "plan_ev_2024_05"]
    assert sum(p[2] for p in plan) == ROWS
    assert plan[0][2] == 31 * 24 * 12  # every 5 minutes through January
    assert {p[3] for p in plan} == {"counted"}
    assert conn.execute("SELECT count(*) FROM pg_class WHERE relname LIKE 'plan_ev_2024%'").fetchone()[0] == 0


def test_interrupted_copy_resumes_without_losing_or_duplicating(installed, connect):
    conn = connect()
    make_table(conn, "resume_ev")
    before = fingerprint(conn, "resume_ev")
    pid, errors = [], []
    worker = threading.Thread(target=call_migrate, args=(installed, "resume_ev", 1000, pid, errors))
    worker.start()
    wait_for(conn, "SELECT EXISTS (SELECT 1 FROM timepart.migrations WHERE source_name = 'public.resume_ev' "
                   "AND rows_copied >= 5000)")
    # Hold the progress row, so the migrator blocks in the middle of its next batch
    # (rows inserted, progress not yet written), then kill it there.
    blocker = connect(autocommit=False)
    blocker.execute("SELECT 1 FROM timepart.migrations WHERE source_name = 'public.resume_ev' FOR UPDATE")
    wait_for(conn, f"SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = {pid[0]}")
    conn.execute("SELECT pg_terminate_backend(%s)", (pid[0],))
    blocker.rollback()
    worker.join(30)
    assert errors, "the migrator was terminated"
    state = conn.execute("SELECT state, next_block < last_block, rows_copied FROM timepart.migrations "
                         "WHERE source_name = 'public.resume_ev'").fetchone()
    assert state[0] == "copying" and state[1]
    copied = conn.execute("SELECT count(*) FROM timepart_migrate_%s.resume_ev" %
                          conn.execute("SELECT 'resume_ev'::regclass::oid").fetchone()[0]).fetchone()[0]
    assert copied == state[2], "the copy holds exactly the committed batches"

    call_migrate(installed, "resume_ev", 1000)
    assert conn.execute("SELECT relkind FROM pg_class WHERE oid = 'resume_ev'::regclass").fetchone()[0] == "p"
    assert fingerprint(conn, "resume_ev") == before
    assert fingerprint(conn, "resume_ev_unpartitioned_old") == before
    assert conn.execute("SELECT count(*) FROM ONLY resume_ev_default").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'timepart_migrate%'").fetchone()[0] == 0
    log = conn.execute("SELECT count(*) FILTER (WHERE operation_type = 'migrate_copy'), "
                       "bool_and(success) FILTER (WHERE operation_type = 'migrate') FROM timepart.maintenance_log "
                       "WHERE parent_table LIKE '%resume_ev%'").fetchone()
    assert log[0] >= 40 and log[1]
    # The checksums are sums of row hashes: a monitor reads the log, so it keeps none of them.
    leaked = conn.execute("SELECT count(*) FROM timepart.maintenance_log WHERE parent_table LIKE '%resume_ev%' "
                          "AND details::text ~ 'checksum'").fetchone()[0]
    assert leaked == 0


def writer(dsn, table, stop, model, counts):
    """Inserts, updates (some moving a row to another month) and deletes until stopped,
    applying each committed change to the model {id: (created_at, kind)}."""
    rnd = random.Random(7)
    with psycopg.connect(dsn, autocommit=True) as conn:
        while not stop.is_set():
            op = rnd.choice(["insert", "update", "move", "delete"])
            if op == "insert":
                at = START + timedelta(minutes=rnd.randrange(0, 200000))
                new_id = conn.execute(f"INSERT INTO {table} (created_at, kind) VALUES (%s, 'new') RETURNING id",
                                      (at,)).fetchone()[0]
                model[new_id] = (at, "new")
            else:
                victim = rnd.choice(list(model))
                if op == "update":
                    conn.execute(f"UPDATE {table} SET kind = 'changed' WHERE id = %s", (victim,))
                    model[victim] = (model[victim][0], "changed")
                elif op == "move":
                    at = model[victim][0] + timedelta(days=40)
                    conn.execute(f"UPDATE {table} SET created_at = %s WHERE id = %s", (at, victim))
                    model[victim] = (at, model[victim][1])
                else:
                    conn.execute(f"DELETE FROM {table} WHERE id = %s", (victim,))
                    del model[victim]
            counts[op] = counts.get(op, 0) + 1


@pytest.mark.parametrize("primary_key", [True, False], ids=["primary-key", "no-primary-key"])
def test_concurrent_writes_survive(installed, connect, primary_key):
    conn = connect()
    table = "busy_pk" if primary_key else "busy_nopk"
    make_table(conn, table, primary_key=primary_key)
    model = rows_of(conn, table)
    stop, counts = threading.Event(), {}
    busy = threading.Thread(target=writer, args=(installed, table, stop, model, counts))
    busy.start()
    try:
        time.sleep(0.2)
        call_migrate(installed, table, 2000)
        time.sleep(0.2)  # writes after the swap go to the partitioned table
    finally:
        stop.set()
        busy.join(30)
    assert min(counts.get(op, 0) for op in ("insert", "update", "move", "delete")) > 0, counts
    assert conn.execute(f"SELECT relkind FROM pg_class WHERE oid = '{table}'::regclass").fetchone()[0] == "p"
    assert rows_of(conn, table) == model
    applied = conn.execute("SELECT changes_applied FROM timepart.migrations WHERE target = %s::regclass",
                           (table,)).fetchone()[0]
    assert applied > 0, "changes made during the copy were captured and applied"


def test_identity_and_sequences_carry_over(installed, connect):
    conn = connect()
    make_table(conn, "seq_ev", rows=500)
    call_migrate(installed, "seq_ev", 100)
    new_id = conn.execute("INSERT INTO seq_ev (created_at, kind) VALUES (now(), 'x') RETURNING id").fetchone()[0]
    assert new_id == 501
    conn.execute("DROP TABLE seq_ev_unpartitioned_old")
    assert conn.execute("INSERT INTO seq_ev (created_at, kind) VALUES (now(), 'x') RETURNING id").fetchone()[0] == 502
    assert conn.execute("SELECT count(*) FROM pg_indexes WHERE tablename = 'seq_ev_2024_01'").fetchone()[0] == 2


def cli_run(dsn, *args):
    result = CliRunner().invoke(cli, ["--dsn", dsn, *args])
    assert "Traceback" not in result.output, result.output
    return result


def test_migrated_partitions_carry_the_tables_grants(installed, connect):
    """Partitions made by migrate are born like any other: the table's grants on each."""
    conn = connect()
    make_table(conn, "mig_grants", rows=3000)
    conn.execute("DO $$ BEGIN CREATE ROLE tp_mig_reader; EXCEPTION WHEN duplicate_object THEN NULL; END $$")
    conn.execute("GRANT SELECT ON mig_grants TO tp_mig_reader")
    call_migrate(installed, "mig_grants", 1000)
    parts = [r[0] for r in conn.execute("SELECT inhrelid::regclass::text FROM pg_inherits"
                                        " WHERE inhparent = 'mig_grants'::regclass ORDER BY 1")]
    assert len(parts) > 2
    assert all(conn.execute("SELECT has_table_privilege('tp_mig_reader', %s, 'SELECT')", (p,)).fetchone()[0] for p in parts)
    assert conn.execute("SELECT count(*) FROM timepart.sync_partitions('mig_grants', dry_run => true)").fetchone()[0] == 0


def test_cli_dry_run_prints_the_plan(installed, connect):
    make_table(connect(), "cli_plan", rows=3000)
    result = cli_run(installed, "migrate", "cli_plan", "--key", "created_at", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "cli_plan_2024_01" in result.output and "counted" in result.output
    assert "1 partitions, ~3000 rows" in result.output
    assert "an index template: every partition gets it" in result.output
    assert connect().execute("SELECT relkind FROM pg_class WHERE oid = 'cli_plan'::regclass").fetchone()[0] == "r"


def test_cli_run_shows_progress_and_result(installed, connect):
    conn = connect()
    make_table(conn, "cli_run")
    before = fingerprint(conn, "cli_run")
    result = cli_run(installed, "migrate", "cli_run", "--key", "created_at", "--batch-size", "5000")
    assert result.exit_code == 0, result.output
    assert f"copied {ROWS} of ~{ROWS} rows (100%)" in result.output
    assert "rows/s, ETA" in result.output
    assert f"migrated cli_run: {ROWS} rows, verified batch by batch; old table kept as cli_run_unpartitioned_old" in result.output
    assert "  carried: owner " in result.output and "  carried: index cli_run_kind_idx" in result.output
    assert fingerprint(conn, "cli_run") == before


def test_cli_refusals_and_usage(installed, connect):
    make_table(connect(), "cli_bad", rows=10)
    result = cli_run(installed, "migrate", "cli_bad", "--key", "kind")
    assert result.exit_code == 1
    assert result.output.startswith("Error: key column public.cli_bad.kind is not a time column (Its type is text)")
    assert len(result.output.strip().splitlines()) == 1
    result = cli_run(installed, "migrate", "cli_bad")
    assert result.exit_code == 2 and "Missing option '--key'" in result.output
    result = cli_run(installed, "migrate", "cli_bad", "--key", "created_at", "--batch-size", "0")
    assert result.exit_code == 2


def test_capture_disabled_and_enabled_again_stops_the_migration(installed, connect):
    """A change made while the capture triggers were off would be missing from the copy:
    disabling them and enabling them again between two batches stops the run, and the
    table is not swapped."""
    conn = connect()
    make_table(conn, "tamper_ev")
    pid, errors = [], []
    worker = threading.Thread(target=call_migrate, args=(installed, "tamper_ev", 1000, pid, errors))
    worker.start()
    wait_for(conn, "SELECT EXISTS (SELECT 1 FROM timepart.migrations WHERE source_name = 'public.tamper_ev' "
                   "AND rows_copied >= 3000)")
    blocker = connect(autocommit=False)
    blocker.execute("SELECT 1 FROM timepart.migrations WHERE source_name = 'public.tamper_ev' FOR UPDATE")
    wait_for(conn, f"SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = {pid[0]}")
    conn.execute("ALTER TABLE tamper_ev DISABLE TRIGGER USER")
    conn.execute("UPDATE tamper_ev SET kind = 'changed unseen' WHERE id = 1")
    conn.execute("ALTER TABLE tamper_ev ENABLE TRIGGER USER")
    blocker.rollback()
    worker.join(60)
    assert errors and "change capture of public.tamper_ev was disabled, dropped or altered" in str(errors[0]), errors
    assert conn.execute("SELECT relkind FROM pg_class WHERE oid = 'tamper_ev'::regclass").fetchone()[0] == "r", "not swapped"
    with pytest.raises(psycopg.errors.InternalError, match="change capture"):
        conn.execute("CALL timepart.migrate('tamper_ev', 'created_at', batch_size => 1000)")
    assert conn.execute("SELECT timepart.migrate_abort('tamper_ev')").fetchone()[0] is True
