"""Maintenance under a held lock: it waits at most the lock budget per attempt,
backs off, reports and logs the failure, and succeeds on a later run."""
import time

import psycopg
import pytest


@pytest.fixture
def ev(connect):
    conn = connect()
    conn.execute("CREATE EXTENSION IF NOT EXISTS timepart")
    conn.execute("DROP TABLE IF EXISTS lockev")
    conn.execute("CREATE TABLE lockev (id bigint, ts timestamptz NOT NULL) PARTITION BY RANGE (ts)")
    conn.execute("SELECT timepart.manage('lockev', '1 month', 1, NULL, true, '100 ms', 'UTC', '2024-03-15')")
    conn.execute("UPDATE timepart.config SET lock_retries = 2 WHERE parent = 'lockev'::regclass")
    return conn


def test_maintain_backs_off_behind_a_long_reader(connect, ev):
    reader = connect(autocommit=False)
    reader.execute("SELECT count(*) FROM lockev")  # holds ACCESS SHARE on every partition

    started = time.monotonic()
    result = ev.execute("SELECT timepart.maintain('lockev', NULL, '2024-04-15')").fetchone()[0]
    elapsed = time.monotonic() - started

    assert result["success"] is False
    assert result["created_partitions"] == []
    assert "gave up after 3 lock waits" in result["errors"][0]
    # 3 attempts of 100 ms plus 50 + 100 ms backoff, with room for a slow machine.
    assert elapsed < 2.0, elapsed
    failed = ev.execute(
        "SELECT count(*) FROM timepart.maintenance_log "
        "WHERE operation_type = 'create_partition' AND partition_name = 'lockev_2024_05' AND NOT success"
    ).fetchone()[0]
    assert failed == 1

    reader.rollback()
    result = ev.execute("SELECT timepart.maintain('lockev', NULL, '2024-04-15')").fetchone()[0]
    assert result["success"] is True
    assert result["created_partitions"] == ["lockev_2024_05"]


def test_concurrent_runs_are_serialised(connect, ev):
    first = connect(autocommit=False)
    first.execute("SELECT timepart.maintain('lockev', NULL, '2024-03-15')")  # holds the advisory lock until commit
    result = ev.execute("SELECT timepart.maintain('lockev', NULL, '2024-06-15')").fetchone()[0]
    assert result["skipped"] == ["public.lockev"]
    assert result["created_partitions"] == []
    first.commit()
    result = ev.execute("SELECT timepart.maintain('lockev', NULL, '2024-06-15')").fetchone()[0]
    assert result["skipped"] == []
    assert "lockev_2024_07" in result["created_partitions"]


def test_cleanup_backs_off_behind_a_long_reader(connect, ev):
    ev.execute("SELECT timepart.configure('lockev', '{\"retention\": \"1 month\"}')")
    reader = connect(autocommit=False)
    reader.execute("SELECT count(*) FROM lockev")  # ACCESS SHARE on the parent: DETACH must wait

    started = time.monotonic()
    result = ev.execute("SELECT timepart.cleanup('lockev', NULL, false, '2024-06-15')").fetchone()[0]
    elapsed = time.monotonic() - started

    assert result["success"] is False
    assert result["dropped_partitions"] == []
    assert "gave up after 3 lock waits" in result["errors"][0]
    assert elapsed < 2.0, elapsed
    assert ev.execute("SELECT to_regclass('lockev_2024_03') IS NOT NULL").fetchone()[0]

    reader.rollback()
    result = ev.execute("SELECT timepart.cleanup('lockev', NULL, false, '2024-06-15')").fetchone()[0]
    assert result["success"] is True
    assert [name for name, _ in result["dropped_partitions"]] == ["lockev_2024_03", "lockev_2024_04"]


def test_reading_the_default_partition_waits_within_the_budget(connect, ev):
    ev.execute("SELECT timepart.configure('lockev', '{\"retention\": \"1 month\"}')")
    holder = connect(autocommit=False)
    holder.execute("LOCK TABLE lockev_default IN ACCESS EXCLUSIVE MODE")  # e.g. someone's ALTER

    for sql in ("SELECT timepart.maintain('lockev', NULL, '2024-03-15')",
                "SELECT timepart.cleanup('lockev', NULL, false, '2024-06-15')"):
        started = time.monotonic()
        result = ev.execute(sql).fetchone()[0]
        assert time.monotonic() - started < 2.0, sql
        assert result["success"] is False and result["errors"], (sql, result)
    # Reading: health reports the wait as an error; the alert check gives up with a lock timeout.
    started = time.monotonic()
    health = ev.execute("SELECT timepart.health('lockev', '2024-03-15')").fetchone()[0]
    assert health["status"] == "error" and "lock timeout" in health["issues"][0]
    with pytest.raises(psycopg.errors.LockNotAvailable):
        ev.execute("SELECT count(*) FROM timepart.check_alerts('lockev', '2024-03-15')")
    assert ev.execute("SELECT timepart.snapshot_stats()").fetchone()[0] >= 1
    assert time.monotonic() - started < 3.0
    assert ev.execute("SELECT error FROM timepart.maintenance_log WHERE operation_type = 'snapshot_stats' "
                      "ORDER BY id DESC LIMIT 1").fetchone()[0] == "partitions not counted (locked, or their owner's code failed): lockev_default"
    holder.rollback()


def test_a_run_backs_off_once_not_per_partition(connect, ev):
    reader = connect(autocommit=False)
    reader.execute("SELECT count(*) FROM lockev")
    started = time.monotonic()
    result = ev.execute("SELECT timepart.maintain('lockev', 4, '2024-04-15')").fetchone()[0]  # 4 periods due
    elapsed = time.monotonic() - started
    reader.rollback()
    assert result["created_partitions"] == []
    assert result["errors"][-1] == "public.lockev: the other missing periods are left for the next run"
    assert elapsed < 1.2, elapsed  # one partition's attempts (4 x 100 ms + backoff), not four
    result = ev.execute("SELECT timepart.maintain('lockev', 4, '2024-04-15')").fetchone()[0]
    assert len(result["created_partitions"]) == 4


def test_many_partitions_in_one_call_leave_the_rest_when_inserts_wait(dsn, connect, ev):
    """Building next to a default partition locks the parent against inserts until the call
    ends. Once that has lasted the lock budget and an insert waits, maintain leaves the
    rest for the next call; maintain_each commits and calls again until none is left."""
    import threading
    waits, stop = [], threading.Event()

    def insert():
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("SET lock_timeout = '10s'")
            while not stop.is_set():
                began = time.monotonic()
                conn.execute("INSERT INTO lockev VALUES (1, '2024-03-20')")
                waits.append(time.monotonic() - began)
                time.sleep(0.005)
    writer = threading.Thread(target=insert)
    writer.start()
    try:
        time.sleep(0.2)
        result = ev.execute("SELECT timepart.maintain('lockev', 150, '2024-03-15')").fetchone()[0]
    finally:
        stop.set()
        writer.join()
    assert result["success"] is True, result
    assert result["left_partitions"] > 0 and len(result["created_partitions"]) > 0
    assert len(result["created_partitions"]) + result["left_partitions"] == 149   # 151 periods, 2 there
    # Without the slices the writer would wait for all 150 builds (seconds); with them,
    # about the lock budget (100 ms) plus the step under way.
    assert max(waits) < 1.5, max(waits)
    ev.execute("CALL timepart.maintain_each(150)")
    again = ev.execute("SELECT timepart.maintain('lockev', 150, '2024-03-15')").fetchone()[0]
    assert again["created_partitions"] == [] and again["left_partitions"] == 0
    assert ev.execute("SELECT count(*) FROM pg_inherits WHERE inhparent = 'lockev'::regclass").fetchone()[0] >= 152
