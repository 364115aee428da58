"""timepart.migrate carries everything a user relies on: owner (a superuser migrates
another role's table), grants, row-level security and its policies (a restricted role
sees the same rows before and after), triggers moved at the swap (each write fires them
exactly once, with writes going on across the swap), publications, replica identity,
comments, storage options and statistics targets; and what it cannot carry is refused
before anything changes."""
import threading
import time
import uuid

import psycopg
import pytest

ROWS = 3000


@pytest.fixture(scope="module")
def roles(dsn):
    tag = uuid.uuid4().hex[:6]
    names = {"owner": f"tp_mo_{tag}", "rep": f"tp_mr_{tag}", "reader": f"tp_mc_{tag}"}
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS timepart")
        conn.execute(f"CREATE ROLE {names['owner']} LOGIN IN ROLE partition_admin")
        conn.execute(f"CREATE ROLE {names['rep']} LOGIN")
        conn.execute(f"CREATE ROLE {names['reader']} LOGIN")
        conn.execute(f"GRANT CREATE ON SCHEMA public TO {names['owner']}")
    yield names
    with psycopg.connect(dsn, autocommit=True) as conn:
        for name in names.values():   # the executor of a role is timepart's: handed back first
            conn.execute(f"REASSIGN OWNED BY {name} TO CURRENT_USER")
            conn.execute(f"DROP OWNED BY {name}")
            conn.execute(f"DROP ROLE {name}")


def make_table(conn, r, name, extra=""):
    """A table of the owner's with everything on it; ROWS rows over 4 months, tenant 0..2."""
    conn.execute(f"SET ROLE {r['owner']}")
    conn.execute(f"""CREATE TABLE {name} (id bigint GENERATED ALWAYS AS IDENTITY, tenant int NOT NULL,
                     created_at timestamptz NOT NULL, note text, PRIMARY KEY (id, created_at))
                     WITH (fillfactor = 80, autovacuum_vacuum_scale_factor = 0.05)""")
    conn.execute(f"INSERT INTO {name} (tenant, created_at, note) SELECT g % 3, '2024-01-01'::timestamptz + g * interval '1 hour', "
                 f"'n' || g FROM generate_series(1, {ROWS}) g")
    conn.execute(f"COMMENT ON TABLE {name} IS 'events'; COMMENT ON COLUMN {name}.note IS 'free text'; "
                 f"COMMENT ON CONSTRAINT {name}_pkey ON {name} IS 'the key'")
    conn.execute(f"ALTER TABLE {name} ALTER COLUMN tenant SET STATISTICS 500")
    conn.execute(f"CREATE TABLE {name}_audit (op text, id bigint)")
    conn.execute(f"""CREATE FUNCTION {name}_audit_fn() RETURNS trigger LANGUAGE plpgsql AS $f$
                     BEGIN INSERT INTO {name}_audit VALUES (TG_OP, NEW.id); RETURN NULL; END $f$""")
    conn.execute(f"CREATE TRIGGER audit_row AFTER INSERT ON {name} FOR EACH ROW EXECUTE FUNCTION {name}_audit_fn()")
    conn.execute(f"CREATE TRIGGER audit_off AFTER UPDATE ON {name} FOR EACH ROW EXECUTE FUNCTION {name}_audit_fn()")
    conn.execute(f"ALTER TABLE {name} DISABLE TRIGGER audit_off")
    conn.execute(f"ALTER TABLE {name} ENABLE ROW LEVEL SECURITY")
    conn.execute(f"CREATE POLICY tenant_one ON {name} FOR SELECT TO {r['rep']} USING (tenant = 1)")
    conn.execute(f"GRANT SELECT ON {name} TO {r['rep']} WITH GRANT OPTION; GRANT SELECT (id, note) ON {name} TO {r['reader']}")
    conn.execute(f"ALTER TABLE {name} REPLICA IDENTITY FULL")
    conn.execute(extra) if extra else None
    conn.execute("RESET ROLE")


def sees(conn, role, table):
    conn.execute(f"SET ROLE {role}")
    try:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    finally:
        conn.execute("RESET ROLE")


def one(conn, query, *args):
    return conn.execute(query, args).fetchone()[0]


def test_a_superuser_migration_carries_everything_and_triggers_fire_once_across_the_swap(dsn, roles, connect):
    conn = connect()
    make_table(conn, roles, "fid")
    conn.execute("CREATE PUBLICATION fid_pub FOR TABLE fid")
    assert sees(conn, roles["rep"], "fid") == ROWS // 3
    carried = {(r[0], r[1]): r[2] for r in conn.execute("SELECT item, name, carried FROM timepart.migrate_carried('fid')")}
    for key in [("trigger", "audit_row"), ("trigger", "audit_off"), ("policy", "tenant_one"), ("publication", "fid_pub"),
                ("row level security", "enabled"), ("replica identity", "full"), ("statistics target", "tenant")]:
        assert carried[key], key

    # Writes go on through the whole migration; each insert fires the row trigger once.
    stop, inserted, errors = threading.Event(), [], []

    def writer():
        with psycopg.connect(dsn, autocommit=True) as w:
            w.execute(f"SET ROLE {roles['owner']}")
            while not stop.is_set():
                try:
                    inserted.append(w.execute("INSERT INTO fid (tenant, created_at) VALUES (1, '2024-02-15') RETURNING id").fetchone()[0])
                except psycopg.Error as exc:   # a lock wait at the swap is retried, never lost
                    errors.append(exc)
    thread = threading.Thread(target=writer)
    thread.start()
    try:
        conn.execute("CALL timepart.migrate('fid', 'created_at', batch_size => 500)")
    finally:
        stop.set()
        thread.join()
    assert not errors
    assert one(conn, "SELECT relkind FROM pg_class WHERE oid = 'fid'::regclass") == "p"
    conn.execute(f"SET ROLE {roles['owner']}")
    inserted.append(one(conn, "INSERT INTO fid (tenant, created_at) VALUES (1, '2024-03-15') RETURNING id"))
    conn.execute("RESET ROLE")
    audited = [r[0] for r in conn.execute("SELECT id FROM fid_audit WHERE op = 'INSERT' AND id > %s ORDER BY id", (ROWS,))]
    assert audited == sorted(inserted) and len(inserted) > 0, "every write fired the trigger exactly once"
    assert one(conn, "SELECT count(*) FROM fid") == ROWS + len(inserted)

    # Owner, grants, row security, comments, options, statistics, replica identity.
    assert one(conn, "SELECT relowner::regrole::text FROM pg_class WHERE oid = 'fid'::regclass") == roles["owner"]
    assert sees(conn, roles["owner"], "fid") == ROWS + len(inserted)
    assert sees(conn, roles["rep"], "fid") == ROWS // 3 + len(inserted), "the restricted role sees its tenant only"
    assert one(conn, "SELECT has_column_privilege(%s, 'fid', 'note', 'SELECT') AND NOT has_column_privilege(%s, 'fid', 'tenant', 'SELECT')",
               roles["reader"], roles["reader"])
    assert one(conn, "SELECT has_table_privilege(%s, 'fid', 'SELECT WITH GRANT OPTION')", roles["rep"])
    assert one(conn, "SELECT obj_description('fid'::regclass, 'pg_class')") == "events"
    assert one(conn, "SELECT col_description('fid'::regclass, 4)") == "free text"
    assert one(conn, "SELECT obj_description(oid, 'pg_constraint') FROM pg_constraint WHERE conrelid = 'fid'::regclass AND contype = 'p'") == "the key"
    assert one(conn, "SELECT attstattarget FROM pg_attribute WHERE attrelid = 'fid'::regclass AND attname = 'tenant'") == 500
    assert one(conn, "SELECT relreplident FROM pg_class WHERE oid = 'fid'::regclass") == "f"
    assert one(conn, "SELECT bool_and(c.reloptions @> '{fillfactor=80}' AND c.relreplident = 'f' AND c.relrowsecurity "
                     "AND c.relowner = %s::regrole) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                     "WHERE i.inhparent = 'fid'::regclass", roles["owner"])
    # The triggers moved, each in its state; the old table's fire no more.
    states = dict(conn.execute("SELECT tgname, tgenabled FROM pg_trigger WHERE tgrelid = 'fid'::regclass AND NOT tgisinternal").fetchall())
    assert states == {"audit_row": "O", "audit_off": "D"}
    assert one(conn, "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'fid_unpartitioned_old'::regclass "
                     "AND NOT tgisinternal AND tgenabled <> 'D'") == 0
    # The publication holds the new table (by its partitions) and not the old one.
    published = {r[0] for r in conn.execute("SELECT tablename FROM pg_publication_tables WHERE pubname = 'fid_pub'")}
    assert "fid_2024_02" in published and "fid_unpartitioned_old" not in published
    log = one(conn, "SELECT details FROM timepart.maintenance_log WHERE operation_type = 'migrate_swap' AND success ORDER BY id DESC LIMIT 1")
    assert "publication fid_pub" in log["carried"] and "trigger audit_row" in log["carried"]


@pytest.mark.parametrize("what, extra, refused", [
    ("forced row security", "ALTER TABLE {t} FORCE ROW LEVEL SECURITY", "row level security forced"),
    ("a row trigger with a transition table",
     "CREATE TRIGGER tt AFTER INSERT ON {t} REFERENCING NEW TABLE AS n FOR EACH ROW EXECUTE FUNCTION {t}_audit_fn()", "trigger tt"),
    ("a rule", "CREATE RULE r AS ON DELETE TO {t} DO INSTEAD NOTHING", "rule r"),
])
def test_what_cannot_be_carried_is_refused_before_anything_changes(roles, connect, what, extra, refused):
    conn = connect()
    name = "ref_" + uuid.uuid4().hex[:6]
    make_table(conn, roles, name, extra.format(t=name))
    before = one(conn, "SELECT count(*) FROM pg_class")
    with pytest.raises(psycopg.errors.DependentObjectsStillExist) as err:
        conn.execute(f"CALL timepart.migrate('{name}', 'created_at')")
    assert "has what a migration cannot carry over" in str(err.value), what
    assert refused in err.value.diag.message_detail, err.value.diag.message_detail
    assert err.value.diag.message_hint.startswith("SELECT * FROM timepart.migrate_carried")
    assert one(conn, "SELECT count(*) FROM pg_class") == before
    assert one(conn, "SELECT relkind FROM pg_class WHERE oid = %s::regclass", name) == "r"


def test_the_change_capture_runs_no_code_of_the_owner_as_timepart(dsn, roles, connect):
    """The capture trigger runs as timepart's owner: it reads the changed rows' keys as
    text, so an owner's cast of its own type to json (which to_jsonb would call) never
    runs there."""
    conn = connect()
    o = roles["owner"]
    conn.execute(f"SET ROLE {o}")
    conn.execute("CREATE TYPE cap_kind AS ENUM ('a', 'b')")
    conn.execute("CREATE TABLE cap_seen (who name)")
    conn.execute("GRANT INSERT ON cap_seen TO PUBLIC")
    conn.execute("""CREATE FUNCTION cap_to_json(cap_kind) RETURNS json LANGUAGE plpgsql AS $f$
                    BEGIN INSERT INTO cap_seen VALUES (current_user); RETURN to_json($1::text); END $f$""")
    conn.execute("CREATE CAST (cap_kind AS json) WITH FUNCTION cap_to_json(cap_kind)")
    conn.execute("CREATE TABLE cap (kind cap_kind NOT NULL, created_at timestamptz NOT NULL)")   # no key: the whole row is
    conn.execute("INSERT INTO cap SELECT 'a', '2024-01-01'::timestamptz + g * interval '1 hour' FROM generate_series(1, 3000) g")
    conn.execute("RESET ROLE")
    stop = threading.Event()

    def writer():
        with psycopg.connect(dsn, autocommit=True) as w:
            w.execute(f"SET ROLE {o}")
            while not stop.is_set():
                w.execute("INSERT INTO cap VALUES ('b', '2024-02-01'::timestamptz + random() * interval '20 days')")
                time.sleep(0.002)
    thread = threading.Thread(target=writer)
    thread.start()
    try:
        conn.execute("CALL timepart.migrate('cap', 'created_at', batch_size => 200)")
    finally:
        stop.set()
        thread.join()
    assert one(conn, "SELECT relkind FROM pg_class WHERE oid = 'cap'::regclass") == "p"
    assert one(conn, "SELECT count(*) FROM cap_seen WHERE who <> %s", o) == 0
    assert one(conn, "SELECT count(*) FROM cap WHERE kind = 'b'") > 0
