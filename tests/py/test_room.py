"""The owner's room and the runner lock, over real connections: what needs a commit or a
second session (LISTEN takes effect at commit; a lock is held by someone else), and
what an application's own connection carries (psycopg's prepared statements)."""
import time

import psycopg
import pytest


@pytest.fixture
def owned(connect):
    """A table whose owner's code (a CHECK constraint, run when maintain moves a row, and an
    index predicate, folded whenever a query on the default partition is planned) runs the
    statements in public.act."""
    conn = connect()
    conn.execute("CREATE EXTENSION IF NOT EXISTS timepart")
    conn.execute("DROP TABLE IF EXISTS own_ev, zz_after, public.act, public.ran CASCADE")
    conn.execute("DROP FUNCTION IF EXISTS public.own_leave_imm(), public.own_leave() CASCADE")
    conn.execute("DROP SCHEMA IF EXISTS own CASCADE")
    conn.execute("DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tp_room_py') THEN "
                 "CREATE ROLE tp_room_py LOGIN IN ROLE partition_admin; END IF; END $$")
    conn.execute("ALTER ROLE tp_room_py NOSUPERUSER")   # an earlier run's attack may have worked
    conn.execute("GRANT CREATE ON SCHEMA public TO tp_room_py")
    conn.execute("CREATE TABLE public.act (what text)")
    conn.execute("CREATE TABLE public.ran (what text)")
    conn.execute("GRANT SELECT ON public.act TO tp_room_py")
    conn.execute("GRANT INSERT ON public.ran TO PUBLIC")
    conn.execute("SET ROLE tp_room_py")
    conn.execute("""CREATE FUNCTION public.own_leave() RETURNS boolean LANGUAGE plpgsql VOLATILE AS $f$
        DECLARE w text;
        BEGIN
            FOR w IN SELECT a.what FROM public.act a LOOP
                BEGIN EXECUTE w; EXCEPTION WHEN OTHERS THEN NULL; END;
            END LOOP;
            RETURN true;
        END $f$""")
    conn.execute("CREATE FUNCTION public.own_leave_imm() RETURNS boolean LANGUAGE plpgsql IMMUTABLE "
                 "AS $f$ BEGIN RETURN public.own_leave(); END $f$")
    conn.execute("CREATE TABLE own_ev (id bigint, ts timestamptz NOT NULL, CHECK (public.own_leave())) PARTITION BY RANGE (ts)")
    conn.execute("SELECT timepart.manage('own_ev', '1 month', 1, as_of => '2024-03-15')")
    conn.execute("CREATE INDEX own_ev_trap ON own_ev_default (id) WHERE public.own_leave_imm()")
    conn.execute("INSERT INTO own_ev SELECT g, '2024-09-01'::timestamptz + g * interval '1 hour' FROM generate_series(1, 5) g")
    conn.execute("RESET ROLE")
    return conn


def channels(conn):
    return sorted(r[0] for r in conn.execute("SELECT pg_listening_channels()"))


def test_a_write_leaves_the_sessions_channels_as_they_were(connect, owned):
    dba = connect()
    dba.execute("LISTEN mine")
    owned.execute("INSERT INTO public.act VALUES ('LISTEN evil'), ('UNLISTEN mine')")
    result = dba.execute("SELECT timepart.maintain('own_ev', 1, '2024-09-15')").fetchone()[0]
    assert result["success"] is True, result       # LISTEN cannot be seen before commit: the move goes through
    assert result["moved_rows"] == 5
    assert channels(dba) == ["mine"], "the owner's LISTEN and UNLISTEN did not take effect"
    other = connect()
    other.execute("NOTIFY evil, 'x'")
    other.execute("NOTIFY mine, 'y'")
    got = [n.channel for n in dba.notifies(timeout=1, stop_after=2)]
    assert got == ["mine"]


def test_a_read_leaves_no_listen_either(connect, owned):
    monitor = connect()
    owned.execute("INSERT INTO public.act VALUES ('LISTEN evil')")
    monitor.execute("SELECT * FROM timepart.partition_stats('own_ev')")
    monitor.execute("SELECT timepart.health('own_ev')")
    assert channels(monitor) == []


def test_an_applications_prepared_statements_are_not_replaced(dsn, connect, owned):
    """psycopg prepares a statement it runs often (_pg3_N). The owner's code, run while the
    application reads health, must not replace it with its own SQL."""
    owned.execute("""INSERT INTO public.act VALUES ('DEALLOCATE ALL'),
        ('PREPARE _pg3_0 AS SELECT 1 FROM (INSERT INTO public.ran VALUES (''hijacked'') RETURNING 1) x'),
        ('PREPARE _pg3_1 AS INSERT INTO public.ran VALUES (''hijacked'')')""")
    app = psycopg.connect(dsn, autocommit=True, prepare_threshold=0)
    try:
        outcomes = []
        for _ in range(4):
            try:
                app.execute("SELECT timepart.health(%s::pg_catalog.regclass)", ("own_ev",)).fetchone()
                outcomes.append("ok")
            except psycopg.Error as exc:
                outcomes.append(type(exc).__name__)
    finally:
        app.close()
    assert owned.execute("SELECT count(*) FROM public.ran WHERE what = 'hijacked'").fetchone()[0] == 0, outcomes
    assert "ok" in outcomes


def test_a_held_table_is_skipped_logged_and_alerted(connect, owned):
    owned.execute("DELETE FROM public.act")
    holder = connect(autocommit=False)
    holder.execute("SELECT timepart.maintain('own_ev', 1, '2024-03-15')")  # holds the runner lock until it ends
    dba = connect()
    result = dba.execute("SELECT timepart.maintain('own_ev', 1, '2024-03-15')").fetchone()[0]
    assert result["skipped"] == ["public.own_ev"]
    success, error = dba.execute(
        "SELECT success, error FROM timepart.maintenance_log WHERE parent_table = 'public.own_ev' "
        "AND operation_type = 'maintain' ORDER BY id DESC LIMIT 1").fetchone()
    assert (success, error) == (False, "skipped: another run holds the table")
    later = dba.execute("SELECT alert_type FROM timepart.check_alerts('own_ev', now() + interval '2 hours')").fetchall()
    assert ("maintenance_skipped",) in later
    started = time.monotonic()
    with pytest.raises(psycopg.errors.LockNotAvailable, match="another run holds"):
        dba.execute("SELECT timepart.create_partition('own_ev', '2030-01-01', '2030-02-01')")
    assert time.monotonic() - started < 2, "create_partition waits the lock budget, not forever"
    holder.rollback()
    assert dba.execute("SELECT timepart.maintain('own_ev', 1, '2024-03-15')->'skipped'").fetchone()[0] == []


def test_the_old_advisory_key_holds_nothing_up(connect, owned):
    owned.execute("DELETE FROM public.act")
    squatter = connect()
    squatter.execute("SELECT pg_advisory_lock((hashtext('timepart')::bigint << 32) | 'own_ev'::regclass::oid::bigint)")
    result = connect().execute("SELECT timepart.maintain('own_ev', 1, '2024-03-15')").fetchone()[0]
    assert result["skipped"] == [] and result["success"] is True


def test_one_tables_lock_timeout_does_not_change_how_the_next_is_built(connect, owned):
    """A lock wait that gives up inside one table's build is retried; the retry, and every
    later table's build in the same call, still finds its way (the call stack check)."""
    owned.execute("DELETE FROM public.act")
    owned.execute("DROP TABLE IF EXISTS zz_after")
    owned.execute("CREATE TABLE zz_after (id bigint, ts timestamptz NOT NULL) PARTITION BY RANGE (ts)")
    owned.execute("SELECT timepart.manage('zz_after', '1 month', 1, as_of => '2024-03-15')")
    blocker = connect(autocommit=False)
    blocker.execute("LOCK TABLE ONLY own_ev IN ACCESS EXCLUSIVE MODE")
    result = connect().execute("SELECT timepart.maintain(NULL, 2, '2024-05-15')").fetchone()[0]
    blocker.rollback()
    assert "zz_after_2024_06" in result["created_partitions"], result
    assert "lock timeout" in result["errors"][0], result["errors"]
    assert not any("is a step of making a partition" in e for e in result["errors"])


def test_another_roles_drop_extension_is_not_failed(connect, owned):
    conn = connect()
    conn.execute("DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tp_room_plain') THEN "
                 "CREATE ROLE tp_room_plain LOGIN; END IF; END $$")
    conn.execute("SET ROLE tp_room_plain")
    conn.execute("DROP EXTENSION IF EXISTS some_extension_of_theirs")
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="must be owner of extension timepart"):
        conn.execute("DROP EXTENSION timepart")
    conn.execute("RESET ROLE")


def test_the_maintain_job_goes_on_past_a_table_whose_owner_code_leaves_a_setting(connect, owned):
    """maintain_each (the pg_cron job) in one session: the owner's code sets
    default_transaction_read_only while its table's rows move; that step is refused and
    logged, the setting is undone, and the next table is maintained in the same job."""
    owned.execute("DROP TABLE IF EXISTS zz_next")
    owned.execute("CREATE TABLE zz_next (id bigint, ts timestamptz NOT NULL) PARTITION BY RANGE (ts)")
    owned.execute("SELECT timepart.manage('zz_next', '1 month', 1)")
    owned.execute("DROP TABLE zz_next_default")   # nothing can wait there; its next partitions are all it needs
    owned.execute("INSERT INTO own_ev SELECT g, date_trunc('month', now()) + interval '10 months' + g * interval '1 minute' "
                  "FROM generate_series(1, 3) g")
    owned.execute("INSERT INTO public.act VALUES ('SET default_transaction_read_only = on')")
    job = connect()
    with pytest.raises(psycopg.errors.RaiseException, match="own_ev"):  # the job fails, saying which table
        job.execute("CALL timepart.maintain_each(12)")
    assert job.execute("SHOW default_transaction_read_only").fetchone()[0] == "off"
    error = job.execute("SELECT error FROM timepart.maintenance_log WHERE parent_table = 'public.own_ev' AND NOT success "
                        "ORDER BY id DESC LIMIT 1").fetchone()[0]
    assert "tried to leave something in this session" in error and "default_transaction_read_only" in error
    assert job.execute("SELECT count(*) FROM timepart.maintenance_log WHERE parent_table = 'public.zz_next' "
                       "AND operation_type = 'maintain' AND success").fetchone()[0] >= 1


def test_deferred_triggers_the_owners_code_queues_fire_as_the_owner(connect, owned):
    """Before PostgreSQL 18 a deferred trigger fires at COMMIT as whoever is current then:
    one the owner's code queues during a superuser's maintain would run as the superuser.
    They fire inside the executor, as the owner."""
    owned.execute("DROP TABLE IF EXISTS public.queue")
    owned.execute("SET ROLE tp_room_py")
    owned.execute("CREATE TABLE public.queue (x int)")
    owned.execute("""CREATE FUNCTION public.own_escalate() RETURNS trigger LANGUAGE plpgsql AS $f$
        BEGIN
            INSERT INTO public.ran VALUES ('deferred as ' || current_user);
            BEGIN EXECUTE 'ALTER ROLE tp_room_py SUPERUSER'; EXCEPTION WHEN insufficient_privilege THEN NULL; END;
            RETURN NULL;
        END $f$""")
    owned.execute("CREATE CONSTRAINT TRIGGER later AFTER INSERT ON public.queue DEFERRABLE INITIALLY DEFERRED "
                  "FOR EACH ROW EXECUTE FUNCTION public.own_escalate()")
    owned.execute("RESET ROLE")
    # Rows for a month with no partition yet wait in the default partition; maintain moves them.
    owned.execute("INSERT INTO own_ev SELECT g, date_trunc('month', now()) + interval '6 months' + g * interval '1 minute' "
                  "FROM generate_series(1, 3) g")
    owned.execute("INSERT INTO public.act VALUES ('INSERT INTO public.queue VALUES (1)')")
    dba = connect(autocommit=False)
    result = dba.execute("SELECT timepart.maintain('own_ev', 8)").fetchone()[0]
    assert result["success"] is True and result["moved_rows"] >= 3, result
    # Fired already, inside the step (PostgreSQL 18, and some minor releases before it, would
    # also fire them as the owner at COMMIT; older ones as the superuser).
    assert dba.execute("SELECT count(*) FROM public.ran").fetchone()[0] > 0, "the owner's deferred events wait for COMMIT"
    dba.commit()
    ran = [r[0] for r in dba.execute("SELECT DISTINCT what FROM public.ran")]
    assert ran == ["deferred as tp_room_py"], ran
    assert dba.execute("SELECT rolsuper FROM pg_roles WHERE rolname = 'tp_room_py'").fetchone()[0] is False
    owned.execute("DROP TABLE public.queue")
    owned.execute("DROP FUNCTION public.own_escalate()")


def test_a_session_with_a_dblink_connection_runs_no_owner_code(connect, owned):
    """The owner's code could send SQL through the session's named dblink connection, as
    whoever opened it: timepart refuses to run it at all while one is open."""
    conn = connect()
    if not conn.execute("SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'dblink')").fetchone()[0]:
        pytest.skip("this PostgreSQL build has no dblink")
    conn.execute("CREATE EXTENSION IF NOT EXISTS dblink")
    # The server's own socket (inside the Debian 13 root for 17, where the client's path differs).
    conn.execute("SELECT dblink_connect('ops', format('dbname=%s host=%s port=%s user=%s', current_database(), "
                 "split_part(current_setting('unix_socket_directories'), ',', 1), current_setting('port'), current_user))")
    result = conn.execute("SELECT timepart.maintain('own_ev', 1, '2024-09-15')").fetchone()[0]
    assert any("this session holds what the code of the owner" in e for e in result["errors"]), result
    assert conn.execute("SELECT count(*) FROM own_ev_default").fetchone()[0] == 5, "nothing moved"
    conn.execute("SELECT dblink_disconnect('ops')")
    assert conn.execute("SELECT timepart.maintain('own_ev', 1, '2024-09-15') -> 'moved_rows'").fetchone()[0] == 5


def test_one_owners_assertion_stops_no_one_elses_maintenance(connect, owned):
    """assert_failure is not caught by WHEN OTHERS: raised by one owner's code on every read
    of its table, it must not end maintain, health or metrics for every table."""
    owned.execute("DROP TABLE IF EXISTS zz_bystander")
    owned.execute("CREATE TABLE zz_bystander (id bigint, ts timestamptz NOT NULL) PARTITION BY RANGE (ts)")
    owned.execute("SELECT timepart.manage('zz_bystander', '1 month', 1, as_of => '2024-03-15')")
    owned.execute("INSERT INTO public.act VALUES ('DO $x$ BEGIN ASSERT false; END $x$')")
    dba = connect()
    result = dba.execute("SELECT timepart.maintain(NULL, 2, '2024-05-15')").fetchone()[0]
    assert "zz_bystander_2024_07" in result["created_partitions"], result
    assert any("failed an assertion" in e for e in result["errors"]), result["errors"]
    assert dba.execute("SELECT timepart.health('zz_bystander') ->> 'status'").fetchone()[0] in ("healthy", "warning", "critical")
    dba.execute("SELECT count(*) FROM timepart.metrics()")
