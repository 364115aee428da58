"""What a partition inherits that needs more than one transaction to show: the parent's
tablespace (CREATE TABLESPACE cannot run in a transaction block). The other properties are
tested in tests/pgtap/inherit.sql."""
import uuid


def test_partitions_are_born_in_the_parents_tablespace(connect):
    conn = connect()
    space = "tp_space_" + uuid.uuid4().hex[:6]
    conn.execute("SET allow_in_place_tablespaces = on")
    conn.execute(f"CREATE TABLESPACE {space} LOCATION ''")
    try:
        conn.execute("CREATE EXTENSION IF NOT EXISTS timepart")
        conn.execute(f"CREATE TABLE ts_ev (ts timestamptz NOT NULL) PARTITION BY RANGE (ts) TABLESPACE {space}")
        conn.execute("SELECT timepart.manage('ts_ev', '1 month', 2, as_of => '2024-03-15')")
        conn.execute("SELECT timepart.create_partition('ts_ev', '2024-09-01', '2024-10-01')")
        rows = conn.execute("SELECT c.relname, t.spcname FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid"
                            " LEFT JOIN pg_tablespace t ON t.oid = c.reltablespace"
                            " WHERE h.inhparent = 'ts_ev'::regclass ORDER BY 1").fetchall()
        assert [name for name, _ in rows] == ["ts_ev_2024_03", "ts_ev_2024_04", "ts_ev_2024_05", "ts_ev_2024_09", "ts_ev_default"]
        assert {spc for _, spc in rows} == {space}
        assert conn.execute("SELECT count(*) FROM timepart.sync_partitions('ts_ev', dry_run => true)").fetchone()[0] == 0
    finally:
        conn.execute("DROP TABLE IF EXISTS ts_ev")
        conn.execute(f"DROP TABLESPACE {space}")
