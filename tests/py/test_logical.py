"""Logical replication and change-data capture see a row move as what it is (#27): rows
maintain moves out of the default partition reach a real subscriber (another database
of the test cluster, wal_level = logical) as a delete and an insert of the table's rows.
A publication that sends the table partition by partition cannot carry a move: it is
refused before it starts, saying why and what to do, and alerted."""
import os
import time
import uuid

import psycopg
import pytest


def conninfo(dsn):
    """The publisher as the server itself reaches it: its own socket folder (for 17, the
    path inside the Debian 13 root, not the one the tests see)."""
    with psycopg.connect(dsn) as conn:
        socket = conn.execute("SELECT split_part(current_setting('unix_socket_directories'), ',', 1)").fetchone()[0]
    return psycopg.conninfo.make_conninfo(dsn, host=socket.strip(), port=os.environ["PGPORT"],
                                          user=os.environ.get("PGUSER", "postgres"))


def month(conn, offset):
    return conn.execute("SELECT to_char(date_trunc('month', now()) + %s * interval '1 month', 'YYYY_MM')",
                        (offset,)).fetchone()[0]


def make_table(conn):
    conn.execute("CREATE TABLE ev (id bigint NOT NULL, ts timestamptz NOT NULL, note text, PRIMARY KEY (id, ts)) "
                 "PARTITION BY RANGE (ts)")


def publisher_with_waiting_rows(dsn):
    """A managed table whose month three back is missing: 1,000 rows wait in the default partition."""
    conn = psycopg.connect(dsn, autocommit=True)
    conn.execute("CREATE EXTENSION timepart")
    make_table(conn)
    conn.execute("SELECT timepart.manage('ev', '1 month', 2)")
    conn.execute("INSERT INTO ev SELECT g, date_trunc('month', now()) - interval '3 months' + g * interval '1 minute', 'old' "
                 "FROM generate_series(1, 1000) g")
    conn.execute("INSERT INTO ev SELECT g, now(), 'new' FROM generate_series(1001, 1010) g")
    return conn


class Subscription:
    """A subscription in the same cluster: its slot is made first (CREATE SUBSCRIPTION cannot
    make one on its own cluster), and both go at the end."""

    def __init__(self, pub_dsn, sub_dsn, publication):
        self.name = "tp_sub_" + uuid.uuid4().hex[:8]
        self.pub = psycopg.connect(pub_dsn, autocommit=True)
        self.sub = psycopg.connect(sub_dsn, autocommit=True)
        self.pub.execute("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (self.name,))
        self.sub.execute(f"CREATE SUBSCRIPTION {self.name} CONNECTION '{conninfo(pub_dsn)}' PUBLICATION {publication} "
                         f"WITH (create_slot = false, slot_name = '{self.name}')")

    def wait_for(self, expected, query="SELECT count(*), coalesce(sum(id), 0) FROM ev", seconds=30):
        deadline, got = time.time() + seconds, None
        while time.time() < deadline:
            got = self.sub.execute(query).fetchone()
            if got == expected:
                return got
            time.sleep(0.2)
        return got

    def close(self):
        self.sub.execute(f"ALTER SUBSCRIPTION {self.name} DISABLE")
        self.sub.execute(f"ALTER SUBSCRIPTION {self.name} SET (slot_name = NONE)")
        self.sub.execute(f"DROP SUBSCRIPTION {self.name}")
        deadline = time.time() + 10
        while time.time() < deadline:
            if not self.pub.execute("SELECT active FROM pg_replication_slots WHERE slot_name = %s", (self.name,)).fetchone()[0]:
                break
            time.sleep(0.1)
        self.pub.execute("SELECT pg_drop_replication_slot(%s)", (self.name,))
        self.pub.close()
        self.sub.close()


ALL = (1010, sum(range(1, 1011)))


@pytest.mark.parametrize("subscriber_runs_timepart", [False, True])
def test_a_subscriber_via_the_root_keeps_every_row_maintain_moves(make_database, subscriber_runs_timepart):
    pub_dsn, sub_dsn = make_database(), make_database()
    pub = publisher_with_waiting_rows(pub_dsn)
    pub.execute("CREATE PUBLICATION tp_pub FOR TABLE ev WITH (publish_via_partition_root = true)")
    with psycopg.connect(sub_dsn, autocommit=True) as sub:
        if subscriber_runs_timepart:  # its own partitions and default partition, maintained on its own
            make_table(sub)
            sub.execute("CREATE EXTENSION timepart")
            sub.execute("SELECT timepart.manage('ev', '1 month', 2)")
        else:  # the root's rows into a plain table
            sub.execute("CREATE TABLE ev (id bigint NOT NULL, ts timestamptz NOT NULL, note text, PRIMARY KEY (id, ts))")
    s = Subscription(pub_dsn, sub_dsn, "tp_pub")
    try:
        assert s.wait_for(ALL) == ALL, "the initial copy"
        result = pub.execute("SELECT timepart.maintain('ev')").fetchone()[0]
        assert result["success"] is True and result["moved_rows"] == 1000, result
        assert pub.execute("SELECT count(*) FROM ev_default").fetchone()[0] == 0
        assert pub.execute(f"SELECT count(*) FROM ev_{month(pub, -3)}").fetchone()[0] == 1000
        pub.execute("INSERT INTO ev VALUES (5000, now(), 'after')")
        expected = (1011, ALL[1] + 5000)
        assert s.wait_for(expected) == expected, "the subscriber lost rows the move touched"
        if subscriber_runs_timepart:
            assert s.sub.execute("SELECT timepart.maintain('ev')->>'success'").fetchone()[0] == "true"
            assert s.wait_for(expected) == expected
            assert s.sub.execute("SELECT count(*) FROM ev_default").fetchone()[0] == 0, "its own move, local"
    finally:
        s.close()
        pub.close()


@pytest.mark.parametrize("publication", ["FOR TABLE ev", "FOR TABLES IN SCHEMA public"])
def test_a_publication_partition_by_partition_refuses_the_move_before_it_starts(make_database, publication):
    pub_dsn = make_database()
    pub = publisher_with_waiting_rows(pub_dsn)
    try:
        pub.execute(f"CREATE PUBLICATION tp_leaf {publication}")
        result = pub.execute("SELECT timepart.maintain('ev')").fetchone()[0]
        assert result["success"] is False and result["moved_rows"] == 0
        error = result["errors"][0]
        assert "publication tp_leaf sends it partition by partition" in error, error
        assert pub.execute("SELECT count(*) FROM ev_default").fetchone()[0] == 1000, "nothing moved"
        assert pub.execute("SELECT to_regclass(%s)", (f"ev_{month(pub, -3)}",)).fetchone()[0] is None
        hint = pub.execute("SELECT details->>'hint' FROM timepart.maintenance_log WHERE operation_type = 'create_partition' "
                           "AND NOT success ORDER BY id DESC LIMIT 1").fetchone()[0]
        alerts = {a[0] for a in pub.execute("SELECT alert_type FROM timepart.check_alerts('ev')")}
        assert {"maintenance_failing", "rows_in_default_partition"} <= alerts, alerts
        assert hint is None or "publish_via_partition_root" in hint
        # The way out the refusal names: the publication sends the root.
        if publication == "FOR TABLE ev":
            pub.execute("ALTER PUBLICATION tp_leaf SET (publish_via_partition_root = true)")
            assert pub.execute("SELECT timepart.maintain('ev')->>'moved_rows'").fetchone()[0] == "1000"
    finally:
        pub.execute("DROP PUBLICATION IF EXISTS tp_leaf")
        pub.close()


def test_change_data_capture_sees_a_delete_and_an_insert_of_each_row(make_database):
    pub_dsn = make_database()
    pub = publisher_with_waiting_rows(pub_dsn)
    slot = "tp_cdc_" + uuid.uuid4().hex[:8]
    pub.execute("SELECT pg_create_logical_replication_slot(%s, 'test_decoding')", (slot,))
    try:
        assert pub.execute("SELECT timepart.maintain('ev')->>'moved_rows'").fetchone()[0] == "1000"
        changes = [r[0] for r in pub.execute("SELECT data FROM pg_logical_slot_get_changes(%s, NULL, NULL)", (slot,))]
        deletes = [c for c in changes if c.startswith("table public.ev_default: DELETE")]
        inserts = [c for c in changes if c.startswith(f"table public.ev_{month(pub, -3)}: INSERT")]
        assert len(deletes) == 1000 and len(inserts) == 1000, (len(deletes), len(inserts))
        assert not [c for c in changes if "timepart_moving" in c], "the buffer is never decoded"
    finally:
        pub.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
        pub.close()
