"""New partitions take the table's access method: the parent's (17+), their siblings', or
the default the session started with (server, database, role); never one a SET in the
session chose (a partition_admin's session, say). inherit.sql covers the first two."""


def _access_methods(conn, table):
    return {r[0] for r in conn.execute(
        "SELECT a.amname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_am a ON a.oid = c.relam "
        "WHERE i.inhparent = %s::regclass", (table,))}


def test_the_first_partitions_take_the_database_default_not_a_session_set(dbname, connect):
    admin = connect()
    admin.execute("CREATE EXTENSION IF NOT EXISTS timepart")
    admin.execute("CREATE ACCESS METHOD heap_db TYPE TABLE HANDLER heap_tableam_handler")
    admin.execute(f'ALTER DATABASE "{dbname}" SET default_table_access_method = heap_db')
    conn = connect()  # a new session starts with the database's default
    conn.execute("SET default_table_access_method = heap")
    conn.execute("CREATE TABLE am_db (ts timestamptz NOT NULL) PARTITION BY RANGE (ts)")
    conn.execute("SELECT timepart.manage('am_db', '1 month', 2)")
    assert _access_methods(conn, "am_db") == {"heap_db"}
    conn.execute("SELECT timepart.maintain('am_db', 5)")
    assert _access_methods(conn, "am_db") == {"heap_db"}, "later partitions follow their siblings"
