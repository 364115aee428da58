"""Owners without rights in their schema or tablespace (#27): a DBA makes a table and hands
it to an application role that may not create there (PostgreSQL 15's default for public).
timepart refuses up front, names the GRANT, and leaves nothing half done: no registered
table without partitions, no migration that fails after its copy."""
import uuid

import psycopg
import pytest


@pytest.fixture
def setup(make_database):
    dsn = make_database()
    role = "tp_app_" + uuid.uuid4().hex[:6]
    conn = psycopg.connect(dsn, autocommit=True)
    conn.execute("CREATE EXTENSION timepart")
    conn.execute(f"CREATE ROLE {role} LOGIN IN ROLE partition_admin")
    conn.execute("CREATE SCHEMA app")  # the DBA's schema: the application role may use it, not create in it
    conn.execute(f"GRANT USAGE ON SCHEMA app TO {role}")
    yield conn, role
    conn.execute("DROP SCHEMA app CASCADE")
    conn.execute("DROP EXTENSION timepart")  # its executor for the role goes with it
    conn.execute(f"DROP OWNED BY {role}")
    conn.execute(f"DROP ROLE {role}")
    conn.close()


def refused(conn, sql):
    with pytest.raises(psycopg.errors.InsufficientPrivilege) as failed:
        conn.execute(sql)
    return failed.value.diag


def test_manage_refuses_up_front_and_names_the_grant(setup):
    conn, role = setup
    conn.execute("CREATE TABLE app.ev (id bigint, ts timestamptz NOT NULL) PARTITION BY RANGE (ts)")
    conn.execute(f"ALTER TABLE app.ev OWNER TO {role}")
    diag = refused(conn, "SELECT timepart.manage('app.ev', '1 month', 2)")
    assert diag.message_primary == "the owner of app.ev may not create in schema app"
    assert diag.message_hint == f"A superuser or the schema's owner runs: GRANT CREATE ON SCHEMA app TO {role};"
    assert "Nothing was changed" in diag.message_detail
    assert conn.execute("SELECT count(*) FROM timepart.config").fetchone()[0] == 0, "nothing registered"
    assert conn.execute("SELECT count(*) FROM pg_inherits WHERE inhparent = 'app.ev'::regclass").fetchone()[0] == 0
    # The same call as the owner itself (a partition_admin), then after the GRANT it names.
    with psycopg.connect(conn.info.dsn, user=role, autocommit=True) as app:
        assert refused(app, "SELECT timepart.manage('app.ev', '1 month', 2)").message_primary.startswith("the owner of")
    conn.execute(f"GRANT CREATE ON SCHEMA app TO {role}")
    result = conn.execute("SELECT timepart.manage('app.ev', '1 month', 2)").fetchone()[0]
    assert result["success"] is True and len(result["created_partitions"]) == 4
    owners = {r[0] for r in conn.execute("SELECT c.relowner::regrole::text FROM pg_inherits i JOIN pg_class c "
                                         "ON c.oid = i.inhrelid WHERE i.inhparent = 'app.ev'::regclass")}
    assert owners == {role}, "partitions are the table owner's, in the table's schema"


def test_a_right_revoked_later_is_said_by_every_step(setup):
    conn, role = setup
    conn.execute(f"GRANT CREATE ON SCHEMA app TO {role}")
    conn.execute("CREATE TABLE app.ev (id bigint, ts timestamptz NOT NULL) PARTITION BY RANGE (ts)")
    conn.execute(f"ALTER TABLE app.ev OWNER TO {role}")
    conn.execute("SELECT timepart.manage('app.ev', '1 month', 2)")
    conn.execute(f"REVOKE CREATE ON SCHEMA app FROM {role}")
    diag = refused(conn, "SELECT timepart.add_index_template('app.ev', 'ts_idx', 'ts DESC')")
    assert "GRANT CREATE ON SCHEMA app" in diag.message_hint
    assert conn.execute("SELECT count(*) FROM timepart.index_templates").fetchone()[0] == 0
    conn.execute("DROP TABLE app.ev_" + conn.execute("SELECT to_char(now() + interval '2 months', 'YYYY_MM')").fetchone()[0])
    result = conn.execute("SELECT timepart.maintain('app.ev')").fetchone()[0]
    assert result["success"] is False and "may not create in schema app" in result["errors"][0]
    error = conn.execute("SELECT error FROM timepart.maintenance_log WHERE operation_type = 'create_partition' "
                         "AND NOT success ORDER BY id DESC LIMIT 1").fetchone()[0]
    assert "may not create in schema app" in error


def test_migrate_refuses_before_copying_a_row(setup):
    conn, role = setup
    conn.execute("CREATE TABLE app.legacy (id bigint, ts timestamptz NOT NULL)")
    conn.execute("INSERT INTO app.legacy SELECT g, now() - g * interval '1 hour' FROM generate_series(1, 5000) g")
    conn.execute(f"ALTER TABLE app.legacy OWNER TO {role}")
    diag = refused(conn, "CALL timepart.migrate('app.legacy', 'ts')")
    assert diag.message_primary == "the owner of app.legacy may not create in schema app"
    assert "GRANT CREATE ON SCHEMA app" in diag.message_hint
    assert conn.execute("SELECT count(*) FROM timepart.migrations").fetchone()[0] == 0, "no migration began"
    assert conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'timepart_migrate%'").fetchone()[0] == 0
    assert conn.execute("SELECT relkind FROM pg_class WHERE oid = 'app.legacy'::regclass").fetchone()[0] == "r"
    conn.execute(f"GRANT CREATE ON SCHEMA app TO {role}")
    conn.execute("CALL timepart.migrate('app.legacy', 'ts')")
    assert conn.execute("SELECT relkind FROM pg_class WHERE oid = 'app.legacy'::regclass").fetchone()[0] == "p"
    assert conn.execute("SELECT count(*) FROM app.legacy").fetchone()[0] == 5000


def test_a_tablespace_the_owner_may_not_use_is_refused_up_front(setup):
    conn, role = setup
    conn.execute(f"GRANT CREATE ON SCHEMA app TO {role}")
    space = "tp_space_" + uuid.uuid4().hex[:6]
    conn.execute("SET allow_in_place_tablespaces = on")
    conn.execute(f"CREATE TABLESPACE {space} LOCATION ''")
    try:
        conn.execute(f"CREATE TABLE app.ev (id bigint, ts timestamptz NOT NULL) PARTITION BY RANGE (ts) TABLESPACE {space}")
        conn.execute(f"ALTER TABLE app.ev OWNER TO {role}")
        diag = refused(conn, "SELECT timepart.manage('app.ev', '1 month', 2)")
        assert diag.message_primary == f"the owner of app.ev may not create in tablespace {space}"
        assert diag.message_hint == f"A superuser runs: GRANT CREATE ON TABLESPACE {space} TO {role};"
        assert conn.execute("SELECT count(*) FROM timepart.config").fetchone()[0] == 0
        conn.execute(f"GRANT CREATE ON TABLESPACE {space} TO {role}")
        assert conn.execute("SELECT timepart.manage('app.ev', '1 month', 2)->>'success'").fetchone()[0] == "true"
    finally:
        conn.execute("DROP TABLE IF EXISTS app.ev")
        conn.execute(f"DROP TABLESPACE {space}")
