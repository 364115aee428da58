"""Maintenance under load and faults, short: inserts stream in from other connections
while maintain and cleanup run behind long readers, over simulated days (as_of), with
maintaining backends terminated mid-run. No insert may fail or wait long, no row may
be lost outside what retention was asked to drop, no partition may lack its indexes,
and work left undone by a backed-off or killed run is done by a later one.
(The timed, pgbench-driven version of this is bench/soak.py and bench/lockqueue.py.)"""
import datetime
import threading
import time
from collections import Counter

import psycopg
import pytest

START = datetime.datetime(2030, 1, 1, 12, tzinfo=datetime.timezone.utc)
RETENTION_DAYS = 3
PREMAKE = 2


class Inserters:
    """Threads inserting single rows (autocommit) at the simulated day `self.day`.
    Counts committed rows per day, failures, and the longest wait."""

    def __init__(self, dsn, threads=2):
        self.dsn, self.day = dsn, START
        self.committed, self.failures, self.worst = Counter(), [], 0.0
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)]

    def _run(self, i):
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            n = 0
            while not self.stop.is_set():
                n += 1
                ts = self.day + datetime.timedelta(seconds=(n * 37 + i * 3600) % 40000)
                started = time.monotonic()
                try:
                    conn.execute("INSERT INTO loadev (ws, ts) VALUES (%s, %s)", (n % 10, ts))
                    with self.lock:
                        self.committed[ts.date()] += 1
                except psycopg.Error as e:
                    with self.lock:
                        self.failures.append(str(e))
                with self.lock:
                    self.worst = max(self.worst, time.monotonic() - started)
                time.sleep(0.002)

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join()


def hold_reader(dsn, seconds):
    """Reads the whole table in a transaction held open `seconds` (ACCESS SHARE on every partition)."""
    ready = threading.Event()

    def run():
        with psycopg.connect(dsn) as conn:
            conn.execute("SELECT count(*) FROM loadev")
            ready.set()
            time.sleep(seconds)
            conn.rollback()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    ready.wait()
    return thread


def run_then_terminate(dsn, admin, sql, params, after):
    """Runs `sql` in its own backend and terminates that backend `after` seconds in.
    Returns True when the call was cut short, False when it finished first."""
    outcome = {}
    with psycopg.connect(dsn, autocommit=True) as victim:
        def run():
            try:
                victim.execute(sql, params)
                outcome["cut"] = False
            except psycopg.OperationalError:
                outcome["cut"] = True
        thread = threading.Thread(target=run)
        thread.start()
        time.sleep(after)
        admin.execute("SELECT pg_terminate_backend(%s)", (victim.info.backend_pid,))
        thread.join()
    return outcome["cut"]


def rows_per_day(conn):
    return Counter(dict(conn.execute(
        "SELECT (ts AT TIME ZONE 'UTC')::date, count(*) FROM loadev GROUP BY 1").fetchall()))


def lost_rows(conn, committed, as_of):
    """Committed rows missing from days retention was not asked to drop (as of `as_of`)."""
    boundary = (as_of - datetime.timedelta(days=RETENTION_DAYS)).date()
    present = rows_per_day(conn)
    return sum(max(n - present[day], 0) for day, n in committed.items() if day >= boundary)


def missing_indexes(conn):
    return conn.execute("SELECT count(*) FROM timepart._missing_indexes('loadev')").fetchone()[0]


def half_built(conn):
    return conn.execute("SELECT count(*) FROM pg_class WHERE relkind = 'r' AND NOT relispartition "
                        "AND relname LIKE 'loadev\\_%'").fetchone()[0]


@pytest.fixture
def table(connect):
    """A daily table: 2 days premade, 3 days kept, a default partition, two index templates,
    lock budget 100 ms with one retry so a blocked run gives up quickly."""
    conn = connect()
    conn.execute("CREATE EXTENSION IF NOT EXISTS timepart")
    conn.execute("DROP TABLE IF EXISTS loadev")
    conn.execute("CREATE TABLE loadev (id bigserial, ws int NOT NULL, ts timestamptz NOT NULL) PARTITION BY RANGE (ts)")
    conn.execute("SELECT timepart.manage('loadev', '1 day', %s, %s, true, '100 ms', 'UTC', %s)",
                 (PREMAKE, f"{RETENTION_DAYS} days", START))
    conn.execute("SELECT timepart.add_index_template('loadev', 'ws_ts_idx', 'ws, ts DESC')")
    conn.execute("SELECT timepart.add_index_template('loadev', 'id_idx', 'id')")
    conn.execute("SELECT timepart.configure('loadev', '{\"lock_retries\": 1}')")
    conn.execute("DELETE FROM timepart.maintenance_log")
    return conn


def test_inserts_flow_while_a_reader_blocks_maintenance(connect, dsn, table):
    """A 2 s reader: maintain (must create) and cleanup (must drop) back off within their
    budget and log it; inserts keep flowing; the next run does the work."""
    as_of = START + datetime.timedelta(days=RETENTION_DAYS + 1)
    # The day before, undisturbed: the inserts' day exists, one more must be made, one dropped.
    table.execute("SELECT timepart.maintain('loadev', NULL, %s)", (as_of - datetime.timedelta(days=1),))
    with Inserters(dsn) as load:
        load.day = as_of
        time.sleep(0.3)
        reader = hold_reader(dsn, 2.0)
        maintained = table.execute("SELECT timepart.maintain('loadev', NULL, %s)", (as_of,)).fetchone()[0]
        cleaned = table.execute("SELECT timepart.cleanup('loadev', NULL, false, %s)", (as_of,)).fetchone()[0]
        reader.join()
        later_m = table.execute("SELECT timepart.maintain('loadev', NULL, %s)", (as_of,)).fetchone()[0]
        later_c = table.execute("SELECT timepart.cleanup('loadev', NULL, false, %s)", (as_of,)).fetchone()[0]
        time.sleep(0.2)

    assert load.failures == []
    assert load.worst < 2.0, f"an insert waited {load.worst:.2f} s"
    assert maintained["success"] is False and maintained["created_partitions"] == []
    assert cleaned["success"] is False and cleaned["dropped_partitions"] == []
    assert any("gave up after" in e for e in maintained["errors"] + cleaned["errors"])
    backed_off = table.execute(
        "SELECT count(*) FROM timepart.maintenance_log WHERE NOT success AND error LIKE '%gave up after%'").fetchone()[0]
    assert backed_off >= 2
    assert later_m["success"] is True and later_m["created_partitions"]
    assert later_c["success"] is True and [d[0] for d in later_c["dropped_partitions"]] == ["loadev_2030_01_01"]
    assert missing_indexes(table) == 0
    assert lost_rows(table, load.committed, as_of) == 0


def test_days_go_by_under_load_with_readers_and_killed_runs(connect, dsn, table):
    """Twenty simulated days: every day maintain and cleanup; every 4th day a long reader,
    every 5th a maintaining backend terminated mid-run (after a 3-day jump, so it has
    work in hand). Nothing fails, nothing is lost, every partition has its indexes,
    and a final run leaves nothing due."""
    admin = connect()
    as_of, day, killed = START, 0, 0
    with Inserters(dsn) as load:
        for step in range(1, 21):
            # A reader on the kill steps too, so the victim is surely mid-run (waiting for a lock).
            reader = hold_reader(dsn, 0.6) if step % 4 == 0 or step % 5 == 0 else None
            if step % 5 == 0:
                day += 3
                as_of = START + datetime.timedelta(days=day)
                victim = ("SELECT timepart.maintain('loadev', NULL, %s)" if step % 10 == 0
                          else "SELECT timepart.cleanup('loadev', NULL, false, %s)")
                killed += run_then_terminate(dsn, admin, victim, (as_of,), after=0.05)
            else:
                day += 1
                as_of = START + datetime.timedelta(days=day)
                table.execute("SELECT timepart.maintain('loadev', NULL, %s)", (as_of,))
                table.execute("SELECT timepart.cleanup('loadev', NULL, false, %s)", (as_of,))
            if reader:
                reader.join()
            # Inserts follow the clock, also onto days whose partition does not exist yet
            # (they land in the default partition and maintain moves them out).
            load.day = as_of
            assert missing_indexes(table) == 0, f"step {step}"
            assert half_built(table) == 0, f"step {step}"
            with load.lock:
                committed = Counter(load.committed)
            assert lost_rows(table, committed, as_of) == 0, f"step {step}"
        time.sleep(0.1)

    final_m = table.execute("SELECT timepart.maintain('loadev', NULL, %s)", (as_of,)).fetchone()[0]
    # cleanup retires for at most the lock budget per call and says what is left (as the
    # cleanup job does, call again until nothing is).
    for _ in range(100):
        final_c = table.execute("SELECT timepart.cleanup('loadev', NULL, false, %s)", (as_of,)).fetchone()[0]
        if final_c["left_partitions"] == 0:
            break
    assert final_m["success"] and final_c["success"]
    assert table.execute("SELECT count(*) FROM timepart._plan_partitions('loadev', %s, %s)",
                         (PREMAKE, as_of)).fetchone()[0] == 0
    assert load.failures == []
    assert load.worst < 2.0, f"an insert waited {load.worst:.2f} s"
    assert sum(load.committed.values()) > 200
    assert lost_rows(table, load.committed, as_of) == 0
    assert missing_indexes(table) == 0
    # Nothing older than the retention boundary is left in partitions.
    oldest = table.execute("SELECT min(range_start) FROM timepart._partitions('loadev') WHERE NOT is_default").fetchone()[0]
    assert oldest >= as_of.replace(hour=0) - datetime.timedelta(days=RETENTION_DAYS)
    outcomes = dict(table.execute(
        "SELECT CASE WHEN success THEN 'ok' WHEN error LIKE '%gave up after%' THEN 'backed off' ELSE 'failed' END, count(*) "
        "FROM timepart.maintenance_log WHERE operation_type IN ('maintain', 'cleanup') GROUP BY 1").fetchall())
    assert outcomes.get("failed", 0) == 0, outcomes
    assert outcomes.get("backed off", 0) >= 1, outcomes
    assert killed >= 1


def test_an_insert_routed_to_the_default_partition_survives_maintain(connect, dsn, table):
    """A row for a day with no partition yet goes to the default partition. If maintain
    creates that day's partition meanwhile, the insert must still succeed."""
    as_of = START + datetime.timedelta(days=1)
    future = START + datetime.timedelta(days=5)   # beyond the premade days: default partition
    maintainer = connect(autocommit=False)
    maintainer.execute("SELECT timepart.maintain('loadev', 5, %s)", (as_of,))  # holds its locks until commit
    result = {}

    def insert():
        with psycopg.connect(dsn, autocommit=True) as conn:
            try:
                conn.execute("INSERT INTO loadev (ws, ts) VALUES (1, %s)", (future,))
                result["ok"] = True
            except psycopg.Error as e:
                result["error"] = str(e)
    thread = threading.Thread(target=insert)
    thread.start()
    time.sleep(0.3)      # the insert is now queued behind maintain's lock on the parent
    maintainer.commit()
    thread.join()
    assert result.get("ok"), result.get("error")
