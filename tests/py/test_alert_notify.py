"""New alerts are announced on channel timepart_alerts with a JSON payload, once."""
import json


def test_new_alert_is_notified_once_with_its_fields(connect):
    conn = connect()
    conn.execute("CREATE EXTENSION IF NOT EXISTS timepart")
    conn.execute("CREATE TABLE notify_ev (ts timestamptz NOT NULL) PARTITION BY RANGE (ts)")
    conn.execute("SELECT timepart.manage('notify_ev', '1 month', 1, NULL, false, '100 ms', 'UTC', '2024-03-15')")
    listener = connect()
    listener.execute("LISTEN timepart_alerts")

    conn.execute("SELECT * FROM timepart.check_alerts('notify_ev', '2024-03-15')")  # 1 future < 2: one warning
    payloads = [json.loads(n.payload) for n in listener.notifies(timeout=2, stop_after=1)]
    assert len(payloads) == 1
    alert = payloads[0]
    assert set(alert) >= {"alert_type", "severity", "parent_table", "partition_name", "message",
                          "recommendation", "value", "threshold", "first_seen"}
    assert (alert["alert_type"], alert["severity"], alert["parent_table"]) == \
        ("insufficient_future_partitions", "warning", "public.notify_ev")
    assert (alert["value"], alert["threshold"]) == (1, 2)

    conn.execute("SELECT * FROM timepart.check_alerts('notify_ev', '2024-03-15')")
    assert list(listener.notifies(timeout=1)) == [], "an open alert is announced only once"
