"""The async client: every method of the seed's manager, monitor and alerting, over an
AsyncConnection and an AsyncConnectionPool (SQLAlchemy: test_client_sqlalchemy.py)."""
import asyncio
import json
import logging
from datetime import datetime, timedelta, timezone

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from timepart.client import (Alert, EmailEventsPartitionManager, Health, LogEntry, OperationResult, PartitionAlerting,
                             PartitionManager, PartitionMonitor, PartitionStats, get_partition_maintenance_log,
                             listen_alerts, log_alert_handler)
from timepart.db import TimepartError


@pytest.fixture(scope="module")
def db(dsn):
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION timepart")
        conn.execute("SELECT timepart.create_email_events_table()")
    return dsn


def using(dsn, work, **connect_kwargs):
    """Runs `work(manager)` on a fresh AsyncConnection."""
    async def go():
        conn = await psycopg.AsyncConnection.connect(dsn, **connect_kwargs)
        try:
            return await work(EmailEventsPartitionManager(conn))
        finally:
            await conn.close()
    return asyncio.run(go())


def utc(*args):
    return datetime(*args, tzinfo=timezone.utc)


def test_create_partition_makes_the_period_with_its_indexes_once(db, connect):
    name = using(db, lambda m: m.create_partition(utc(2024, 4, 1), utc(2024, 5, 1)), autocommit=True)
    assert name.split(".")[-1] == "email_events_2024_04"
    assert using(db, lambda m: m.create_partition(utc(2024, 4, 1), utc(2024, 5, 1)), autocommit=True) == name
    assert connect().execute("SELECT count(*) FROM pg_indexes WHERE tablename = 'email_events_2024_04'").fetchone()[0] >= 5


def test_create_partition_refusal_raises_the_sql_error(db):
    with pytest.raises(psycopg.errors.InvalidParameterValue):
        using(db, lambda m: m.create_partition(utc(2024, 5, 1), utc(2024, 4, 1)), autocommit=True)


def bounds(conn, name):
    return conn.execute("SELECT pg_get_expr(relpartbound, oid) FROM pg_class WHERE relname = %s", (name,)).fetchone()[0]


def test_the_seeds_missing_current_partition_procedure_recreates_it(db, connect):
    """SEED.md "Missing Current Partition", verbatim: datetimes with a time of day."""
    conn = connect()
    missing = "email_events_" + datetime.now().strftime("%Y_%m")
    conn.execute(f"DROP TABLE {missing}")

    async def procedure(manager):
        # Create current month partition immediately
        from datetime import datetime
        current_month = datetime.now().replace(day=1)
        next_month = current_month + timedelta(days=32)
        next_month = next_month.replace(day=1)

        await manager.create_partition(current_month, next_month)
        return current_month, next_month
    current_month, next_month = using(db, procedure, autocommit=True)
    name = "email_events_" + current_month.strftime("%Y_%m")
    assert bounds(conn, name) == (f"FOR VALUES FROM ('{current_month:%Y-%m}-01 00:00:00+00') "
                                  f"TO ('{next_month:%Y-%m}-01 00:00:00+00')")


@pytest.mark.parametrize("start, end, name, low, high", [
    (datetime(2023, 3, 1, 10, 32), datetime(2023, 4, 1, 10, 32), "email_events_2023_03", "2023-03-01", "2023-04-01"),
    (utc(2023, 5, 10, 8), utc(2023, 5, 20), "email_events_2023_05", "2023-05-01", "2023-06-01"),  # end in start's period
    (utc(2023, 7, 1), utc(2023, 8, 1), "email_events_2023_07", "2023-07-01", "2023-08-01"),  # aligned: as given
])
def test_create_partition_takes_bounds_to_the_period_of_start(db, connect, start, end, name, low, high):
    assert using(db, lambda m: m.create_partition(start, end), autocommit=True) == f"public.{name}"
    conn = connect()
    assert bounds(conn, name) == f"FOR VALUES FROM ('{low} 00:00:00+00') TO ('{high} 00:00:00+00')"
    conn.execute(f"DROP TABLE {name}")  # old partitions would open alerts other tests see


def test_create_partition_over_several_periods_is_still_refused(db, connect):
    with pytest.raises(psycopg.errors.InvalidParameterValue):
        using(db, lambda m: m.create_partition(utc(2022, 6, 1, 10), utc(2022, 8, 1, 10)), autocommit=True)
    assert connect().execute("SELECT to_regclass('email_events_2022_06')").fetchone()[0] is None


def test_maintain_partitions_commits_on_a_non_autocommit_connection(db, connect):
    result = using(db, lambda m: m.maintain_partitions(months_ahead=7))  # autocommit off
    assert isinstance(result, OperationResult)
    seventh = connect().execute("SELECT 'email_events_' || to_char(date_trunc('month', now() AT TIME ZONE 'UTC')"
                                " + interval '7 months', 'YYYY_MM')").fetchone()[0]
    assert result.success is True and max(result.created_partitions) == seventh
    assert result.extra["skipped"] == []
    created = result.created_partitions[-1]
    assert connect().execute("SELECT to_regclass(%s) IS NOT NULL", (created,)).fetchone()[0]


def test_cleanup_old_partitions_drops_what_is_past_retention(db, connect):
    conn = connect()
    conn.execute("SELECT timepart.create_partition('email_events', '2020-01-01', '2020-02-01')")
    conn.execute("INSERT INTO email_events (workspace_id, campaign_id, lead_id, event_type, created_at)"
                 " SELECT gen_random_uuid(), gen_random_uuid(), gen_random_uuid(), 'click', '2020-01-05'"
                 " FROM generate_series(1, 2)")
    result = using(db, lambda m: m.cleanup_old_partitions(retention_months=12), autocommit=True)
    assert result.success is True and result.errors == []
    assert ["email_events_2020_01", 2] in result.dropped_partitions
    assert conn.execute("SELECT to_regclass('email_events_2020_01')").fetchone()[0] is None


def test_partition_stats_describe_the_current_period(db):
    stats = using(db, lambda m: m.get_partition_stats(), autocommit=True)
    assert stats and all(isinstance(s, PartitionStats) for s in stats)
    now = datetime.now(timezone.utc)
    current, = [s for s in stats if not s.is_default and s.range_start <= now < s.range_end]
    start = utc(now.year, now.month, 1)
    assert (current.period, current.range_start, current.partition_name, current.name) == \
        (start.strftime("%Y_%m"), start, "email_events_" + start.strftime("%Y_%m"), "email_events_" + start.strftime("%Y_%m"))
    assert current.record_count >= 0
    assert any(s.is_default for s in stats)


def test_snapshot_stats_records_every_partition(db):
    assert using(db, lambda m: m.snapshot_stats(), autocommit=True) >= 1


def test_health_reports_a_status_and_the_partitions(db):
    health = using(db, lambda m: m.check_partition_health(), autocommit=True)
    assert isinstance(health, Health)
    assert health.status in ("healthy", "warning", "critical", "error")
    assert health.partition_count >= 7 and health.newest_partition.startswith("email_events_")


def test_maintenance_log_is_newest_first_and_refuses_a_bad_limit(db):
    rows = using(db, lambda m: m.get_maintenance_log(limit=3), autocommit=True)
    assert len(rows) == 3 and all(isinstance(r, LogEntry) for r in rows)
    assert rows[0].created_at >= rows[1].created_at >= rows[2].created_at
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="log limit must be a positive number"):
        using(db, lambda m: m.get_maintenance_log(limit=0), autocommit=True)


def test_a_pool_works_like_a_connection(db):
    async def go():
        async with AsyncConnectionPool(db, min_size=1, max_size=2, open=False) as pool:
            manager = PartitionManager(pool, parent=None)  # every managed table
            return await manager.maintain(), await manager.maintenance_log(1)
    result, log = asyncio.run(go())
    assert result.success is True and len(log) == 1
    assert log[0].operation_type == "maintain" and log[0].parent_table == "public.email_events"


def test_monitor_of_a_manager_watches_its_table_and_of_a_connection_every_table(make_database):
    """PartitionMonitor(partition_manager) as in the seed; PartitionMonitor(conn) as in the README.
    A database of its own: the alerts it opens would be seen by other tests."""
    own = make_database()
    with psycopg.connect(own, autocommit=True) as setup:
        setup.execute("CREATE EXTENSION timepart")
        setup.execute("SELECT timepart.create_email_events_table()")
        setup.execute("CREATE TABLE watched_ev (ts timestamptz NOT NULL) PARTITION BY RANGE (ts)")
        setup.execute("SELECT timepart.manage('watched_ev', '1 month', 1, NULL, false, '100 ms', 'UTC', '2020-01-15')")

    async def go(manager):
        of_manager, of_conn = PartitionMonitor(manager), PartitionMonitor(manager.conn)
        return (await of_manager.run_comprehensive_check(), await of_manager.get_monitoring_summary(),
                await of_conn.run_comprehensive_check(), await of_conn.get_monitoring_summary())
    alerts, summary, all_alerts, all_summary = using(own, go, autocommit=True)
    assert all(isinstance(a, Alert) for a in alerts + all_alerts)
    assert alerts == [], "email_events, just made, is healthy"
    assert ("missing_current_partition", "public.watched_ev") in {(a.alert_type, a.parent_table) for a in all_alerts}
    assert [c["parent"] for c in summary["configuration"]] == ["public.email_events"]
    assert sorted(c["parent"] for c in all_summary["configuration"]) == ["public.email_events", "public.watched_ev"]


def test_get_partition_maintenance_log_opens_its_own_connection_or_uses_the_one_given(db, monkeypatch):
    """The seed's `logs = await get_partition_maintenance_log(limit=100)`."""
    monkeypatch.setenv("DATABASE_URL", db)

    async def go():
        logs = await get_partition_maintenance_log(limit=100)
        conn = await psycopg.AsyncConnection.connect(db, autocommit=True)
        try:
            given = [await get_partition_maintenance_log(limit=2, conn=target)
                     for target in (conn, EmailEventsPartitionManager(conn))]
        finally:
            await conn.close()
        async with AsyncConnectionPool(db, min_size=1, max_size=1, open=False) as pool:
            given.append(await get_partition_maintenance_log(2, pool))
        return logs, given
    logs, given = asyncio.run(go())
    assert 3 <= len(logs) <= 100 and all(isinstance(r, LogEntry) for r in logs)
    assert logs == sorted(logs, key=lambda r: (r.created_at, r.id), reverse=True)
    assert [[r.id for r in rows] for rows in given] == [[r.id for r in logs[:2]]] * 3


def test_get_partition_maintenance_log_without_a_database_says_so(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "dbname=no_such_database_tp")
    with pytest.raises(TimepartError, match='cannot connect to the database: .*"no_such_database_tp" does not exist'):
        asyncio.run(get_partition_maintenance_log(limit=1))


def test_combined_results_read_like_one_call_over_those_tables():
    one = OperationResult.from_json({"success": True, "created_partitions": ["a_1"], "dropped_partitions": [],
                                     "errors": [], "execution_time_ms": 1.5, "moved_rows": 2, "skipped": [],
                                     "tables": [{"table": "a"}]})
    two = OperationResult.from_json({"success": False, "created_partitions": ["b_1"], "dropped_partitions": [],
                                     "errors": ["lock"], "execution_time_ms": 2, "moved_rows": 0, "skipped": ["b"],
                                     "tables": [{"table": "b"}]})
    assert OperationResult.combined([one, two]).as_dict() == {
        "success": False, "created_partitions": ["a_1", "b_1"], "dropped_partitions": [], "errors": ["lock"],
        "execution_time_ms": 3.5, "dry_run": False, "moved_rows": 2, "skipped": ["b"],
        "tables": [{"table": "a"}, {"table": "b"}]}


def _alert(severity):
    now = utc(2024, 4, 1)
    return Alert(f"{severity}_thing", severity, "email_events", None, f"a {severity} alert", "look at it",
                 None, None, now, now, True)


def test_alerting_calls_every_handler_sync_or_async(caplog):
    seen = []

    async def async_handler(alerts):
        seen.append(("async", len(alerts)))

    def broken_handler(alerts):
        raise RuntimeError("mail server down")

    alerting = PartitionAlerting()
    alerting.add_handler(lambda alerts: seen.append(("sync", len(alerts))))
    alerting.add_handler(broken_handler)
    alerting.add_handler(async_handler)
    with caplog.at_level(logging.INFO, logger="timepart"):
        asyncio.run(alerting.send_alerts([_alert("warning"), _alert("info")]))
    assert seen == [("sync", 2), ("async", 2)]
    assert "broken_handler" in caplog.text and "mail server down" in caplog.text


def test_log_alert_handler_logs_at_the_severity_level(caplog):
    with caplog.at_level(logging.INFO, logger="timepart"):
        log_alert_handler([_alert("critical"), _alert("warning"), _alert("info")])
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.CRITICAL, "[CRITICAL] critical_thing: a critical alert (look at it)"),
        (logging.WARNING, "[WARNING] warning_thing: a warning alert (look at it)"),
        (logging.INFO, "[INFO] info_thing: a info alert (look at it)"),
    ]


def test_listen_alerts_reads_the_alerts_table_and_ignores_forged_payloads(db, connect):
    """A NOTIFY anyone can send only rings the bell: what comes out is read from timepart.open_alerts."""
    setup = connect()
    setup.execute("CREATE EXTENSION IF NOT EXISTS timepart")
    setup.execute("CREATE TABLE bell_ev (ts timestamptz NOT NULL) PARTITION BY RANGE (ts)")
    setup.execute("SELECT timepart.manage('bell_ev', '1 month', 1, NULL, false, '100 ms', 'UTC', '2024-03-15')")
    setup.execute("SELECT * FROM timepart.check_alerts('bell_ev', '2024-03-15')")
    forged = {"alert_type": "forged", "severity": "critical", "parent_table": "public.bell_ev", "message": "pay up"}

    async def go():
        conn = await psycopg.AsyncConnection.connect(db, autocommit=True)
        try:
            stream = listen_alerts(conn)
            first = asyncio.ensure_future(stream.__anext__())
            for _ in range(40):  # ring until the LISTEN is in place
                connect().execute("SELECT pg_notify('timepart_alerts', %s)", (json.dumps(forged),))
                done, _ = await asyncio.wait({first}, timeout=0.25)
                if done:
                    break
            got = [await asyncio.wait_for(first, 10)]
            connect().execute("SELECT pg_notify('timepart_alerts', 'not json')")
            nxt = asyncio.ensure_future(stream.__anext__())
            done, _ = await asyncio.wait({nxt}, timeout=1)
            if done:
                got.append(nxt.result())
            nxt.cancel()
            return got
        finally:
            await conn.close()
    got = asyncio.run(go())
    assert [a["alert_type"] for a in got] == ["insufficient_future_partitions"], "only the real alert, once"
    assert got[0]["parent_table"] == "public.bell_ev" and got[0]["severity"] == "warning"
