"""The async client: every method of the seed's manager, monitor and alerting, over an
AsyncConnection and an AsyncConnectionPool."""
import asyncio
import json
import logging
from datetime import datetime, timezone

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from timepart.client import (Alert, EmailEventsPartitionManager, Health, LogEntry, OperationResult, PartitionAlerting,
                             PartitionManager, PartitionMonitor, PartitionStats, listen_alerts, log_alert_handler)


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


def test_maintain_partitions_commits_on_a_non_autocommit_connection(db, connect):
    result = using(db, lambda m: m.maintain_partitions(months_ahead=7))  # autocommit off
    assert isinstance(result, OperationResult)
    seventh = connect().execute("SELECT 'email_events_' || to_char(date_trunc('month', now() AT TIME ZONE 'UTC')"
                                " + interval '7 months', 'YYYY_MM')").fetchone()[0]
    assert result.success is True and result.created_partitions[-1] == seventh
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
    assert (current.period, current.range_start, current.partition_name) == \
        (start.strftime("%Y_%m"), start, "email_events_" + start.strftime("%Y_%m"))
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


def test_monitor_checks_alerts_and_summarises(db):

    async def go(manager):
        monitor = PartitionMonitor(manager)
        return await monitor.run_comprehensive_check(), await monitor.get_monitoring_summary()
    alerts, summary = using(db, go, autocommit=True)
    assert all(isinstance(a, Alert) for a in alerts)
    assert isinstance(summary, dict) and summary


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
