"""timepart.web: the seed's admin API as a router mounted in a real FastAPI app, called
through httpx's ASGI transport against a real database, with each kind of connection an
application holds, as an admin, a monitor and a role without rights."""
import asyncio
import subprocess
import sys
from datetime import datetime, timezone

import httpx
import psycopg
import pytest
from fastapi import FastAPI, Header, HTTPException

from timepart.web import make_router

ADMIN, MONITOR, NOBODY = "tp_web_admin", "tp_web_monitor", "tp_web_nobody"

# The seed's examples (SEED.md, "API Endpoints"): the keys and the JSON types of each value.
SEED_STATS_ROW = {"name": "email_events_2024_03", "period": "2024_03", "record_count": 150000, "size_mb": 256.5,
                  "oldest_record": "2024-03-01T00:00:00Z", "newest_record": "2024-03-31T23:59:59Z"}
SEED_HEALTH = {"status": "healthy", "issues": [], "recommendations": [], "partition_count": 15,
               "total_size_mb": 2048.5, "oldest_partition": "email_events_2023_01",
               "newest_partition": "email_events_2024_09"}
SEED_OPERATION = {"success": True, "created_partitions": ["email_events_2024_07"], "dropped_partitions": [],
                  "errors": [], "execution_time_ms": 1500}


@pytest.fixture(scope="module")
def db(dsn):
    return web_database(dsn)


def web_database(dsn):
    """The seed's table with 50 events, and an admin, a monitor and a role without rights."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION timepart")
        conn.execute("SELECT timepart.create_email_events_table()")
        for role, grant in ((ADMIN, "IN ROLE partition_admin"), (MONITOR, "IN ROLE partition_monitor"), (NOBODY, "")):
            conn.execute(f"DO $$ BEGIN CREATE ROLE {role} LOGIN {grant}; "
                         f"EXCEPTION WHEN duplicate_object THEN NULL; END $$")
        conn.execute(f"GRANT SELECT ON email_events TO {MONITOR}")  # oldest and newest are row values
        insert(conn, 50, "now() - g * interval '1 minute'")
    return dsn


def insert(conn, rows, at, params=()):
    conn.execute("INSERT INTO email_events (workspace_id, campaign_id, lead_id, event_type, created_at) SELECT"
                 f" gen_random_uuid(), gen_random_uuid(), gen_random_uuid(), 'open', {at} FROM generate_series(1, {rows}) g",
                 params)


def as_role(dsn, role):
    return psycopg.conninfo.make_conninfo(dsn, user=role)


def admin_header(x_admin: str = Header(None)):
    """The application's own check: here, a header."""
    if x_admin != "yes":
        raise HTTPException(status_code=401, detail="admins only")


def app_for(factory, **kwargs) -> FastAPI:
    app = FastAPI()
    app.include_router(make_router(factory, require_admin=admin_header, **kwargs))
    return app


def request(app, method, path, admin=True, headers=None, **kwargs):
    async def go():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            return await client.request(method, "/api/system/partitions" + path,
                                        headers={**({"x-admin": "yes"} if admin else {}), **(headers or {})}, **kwargs)
    return asyncio.run(go())


def fresh_connection(dsn):
    """A factory giving a new AsyncConnection a request (closed after it)."""
    return lambda: psycopg.AsyncConnection.connect(dsn)


def same_shape(got: dict, seed: dict):
    """Every key of the seed's example, each with a value of the example's JSON type."""
    for key, example in seed.items():
        assert key in got, f"{key} missing from {got}"
        if got[key] is not None:
            kinds = (int, float) if isinstance(example, (int, float)) and not isinstance(example, bool) else type(example)
            assert isinstance(got[key], kinds), f"{key}: {got[key]!r} is not like the seed's {example!r}"


def partitions(conn):
    return [r[0] for r in conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'email_events'::regclass AND c.relname ~ '_[0-9]{4}_[0-9]{2}$' ORDER BY 1")]


def month_name(months_from_now: int) -> str:
    now = datetime.now(timezone.utc)
    year, month = divmod(now.year * 12 + now.month - 1 + months_from_now, 12)
    return f"email_events_{year:04d}_{month + 1:02d}"


def test_maintain_defaults_to_six_months_ahead_then_honours_months_ahead(db, connect):
    app = app_for(fresh_connection(as_role(db, ADMIN)))
    connect().execute(f"DROP TABLE {month_name(5)}, {month_name(6)}")
    answer = request(app, "POST", "/maintain")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    same_shape(body, SEED_OPERATION)
    assert body["success"] is True and body["created_partitions"] == [month_name(5), month_name(6)], answer.text
    assert partitions(connect())[-1] == month_name(6)
    answer = request(app, "POST", "/maintain", params={"months_ahead": 8})
    assert answer.status_code == 200, answer.text
    assert sorted(answer.json()["created_partitions"]) == [month_name(7), month_name(8)]
    assert partitions(connect())[-1] == month_name(8)
    # The JSON body works as well as the query string.
    answer = request(app, "POST", "/maintain", json={"months_ahead": 9})
    assert answer.json()["created_partitions"] == [month_name(9)], answer.text


def test_stats_health_and_summary_have_the_seeds_shapes(db):
    app = app_for(fresh_connection(as_role(db, MONITOR)))
    stats = request(app, "GET", "/stats")
    assert stats.status_code == 200, stats.text
    rows = stats.json()
    assert rows and all(set(SEED_STATS_ROW) <= set(r) for r in rows)
    current = next(r for r in rows if r["name"] == month_name(0))
    same_shape(current, SEED_STATS_ROW)
    assert current["record_count"] == 50 and current["exact"] is True
    assert current["period"] == month_name(0)[len("email_events_"):]
    for key in ("oldest_record", "newest_record"):
        assert current[key].endswith("Z") and datetime.fromisoformat(current[key][:-1])
    health = request(app, "GET", "/health")
    assert health.status_code == 200, health.text
    same_shape(health.json(), SEED_HEALTH)
    assert health.json()["partition_count"] >= 10
    summary = request(app, "GET", "/summary")
    assert summary.status_code == 200, summary.text
    assert summary.json()["health"]["status"] == health.json()["status"]


def test_stats_takes_any_managed_table(db, connect):
    conn = connect()
    conn.execute("CREATE TABLE web_daily (id bigint, at timestamptz NOT NULL) PARTITION BY RANGE (at)")
    conn.execute("SELECT timepart.manage('web_daily', '1 day', premake => 2)")
    conn.execute(f"GRANT SELECT ON web_daily TO {MONITOR}")
    app = app_for(fresh_connection(as_role(db, MONITOR)))
    rows = request(app, "GET", "/stats", params={"table": "web_daily"}).json()
    assert {r["parent_table"] for r in rows} == {"public.web_daily"} and len(rows) >= 3, rows
    missing = request(app, "GET", "/stats", params={"table": "no_such_table"})
    assert missing.status_code == 422 and "no_such_table" in missing.json()["message"], missing.text


def test_cleanup_honours_retention_months_and_dry_run(db, connect):
    conn = connect()
    old = datetime(datetime.now().year - 3, 1, 1, tzinfo=timezone.utc)
    conn.execute("SELECT timepart.create_partition('email_events', %s, %s)", (old, old.replace(month=2)))
    insert(conn, 7, "%s", (old,))
    name = f"email_events_{old.year}_01"
    app = app_for(fresh_connection(as_role(db, ADMIN)))
    kept = request(app, "POST", "/cleanup", params={"retention_months": 48})
    assert kept.status_code == 200 and kept.json()["dropped_partitions"] == [], kept.text
    dry = request(app, "POST", "/cleanup", params={"dry_run": "true"})
    assert dry.status_code == 200 and dry.json()["dropped_partitions"] == [[name, 7]], dry.text
    assert name in partitions(conn)
    done = request(app, "POST", "/cleanup")  # the seed's default: 12 months
    assert done.status_code == 200, done.text
    same_shape(done.json(), SEED_OPERATION)
    assert done.json()["dropped_partitions"] == [[name, 7]] and name not in partitions(conn)


def test_the_applications_dependency_turns_away_non_admins_before_the_database(db, connect):
    conn = connect()
    before = conn.execute("SELECT count(*) FROM timepart.maintenance_log").fetchone()[0]
    calls = []

    def factory():
        calls.append(1)
        return psycopg.AsyncConnection.connect(as_role(db, ADMIN))

    app = app_for(factory)
    for method, path in (("GET", "/stats"), ("GET", "/health"), ("GET", "/summary"), ("POST", "/maintain"),
                         ("POST", "/cleanup")):
        assert request(app, method, path, admin=False).status_code == 401
    assert calls == [] and conn.execute("SELECT count(*) FROM timepart.maintenance_log").fetchone()[0] == before


def test_the_database_refuses_roles_without_the_grant_with_a_403(db, connect):
    conn = connect()
    count = len(partitions(conn))
    nobody = app_for(fresh_connection(as_role(db, NOBODY)))
    for method, path in (("GET", "/stats"), ("GET", "/health"), ("POST", "/maintain"), ("POST", "/cleanup")):
        answer = request(nobody, method, path)
        assert answer.status_code == 403, answer.text
        assert answer.json()["sqlstate"] == "42501" and "permission denied" in answer.json()["message"]
    monitor = app_for(fresh_connection(as_role(db, MONITOR)))
    answer = request(monitor, "POST", "/maintain", params={"months_ahead": 12})
    assert answer.status_code == 403, answer.text
    assert "permission denied" in answer.json()["message"], answer.text
    assert len(partitions(conn)) == count


@pytest.mark.parametrize("method, path, kwargs, says", [
    ("POST", "/maintain", {"params": {"months_ahead": 0}}, "premake must be between 1 and 1000"),
    ("POST", "/maintain", {"params": {"months_ahead": 5000}}, "premake must be between 1 and 1000"),
    ("POST", "/maintain", {"params": {"months_ahead": "six"}}, "months_ahead must be an integer"),
    ("POST", "/maintain", {"json": {"months_ahead": True}}, "months_ahead must be an integer"),
    ("POST", "/maintain", {"params": [("months_ahead", "3"), ("months_ahead", "4")]}, "given 2 times"),
    ("POST", "/maintain", {"content": "{not json", "headers": {"content-type": "application/json"}}, "not JSON"),
    ("POST", "/maintain", {"json": [6]}, "not a JSON object"),
    ("POST", "/cleanup", {"params": {"dry_run": "maybe"}}, "dry_run must be a boolean"),
    # What a route does not know is refused, never ignored: a typo must not run the real thing.
    ("POST", "/cleanup", {"params": {"dryrun": "true"}}, "unknown parameter dryrun"),
    ("POST", "/cleanup", {"json": {"dryRun": True}}, "unknown parameter dryRun"),
    ("POST", "/cleanup", {"json": {"retention": 48}}, "unknown parameter retention"),
    ("POST", "/cleanup", {"params": {"table": "web_daily", "retention_months": 1}}, "unknown parameter table"),
    ("GET", "/stats", {"params": {"tabel": "web_daily"}}, "unknown parameter tabel"),
    ("GET", "/stats", {"params": {"table": "a.b.c"}}, "cross-database references are not implemented"),
    ("GET", "/stats", {"params": {"table": "a.b.c.d"}}, "improper relation name"),
    ("GET", "/stats", {"params": {"table": "a\x00b"}}, "NUL"),
    ("POST", "/maintain", {"params": {"months_ahead": 3}, "json": {"months_ahead": 4}}, "given twice"),
    ("POST", "/cleanup", {"params": {"retention_months": 0}}, "retention must be positive"),
    ("POST", "/cleanup", {"params": {"retention_months": -3}}, "retention must be positive"),
    ("POST", "/cleanup", {"json": {"retention_months": "a year"}}, "retention_months must be an integer"),
])
def test_bad_input_is_a_422_with_the_reason_and_changes_nothing(db, connect, method, path, kwargs, says):
    conn = connect()
    before = (partitions(conn), conn.execute("SELECT count(*) FROM timepart.maintenance_log").fetchone()[0])
    kwargs = dict(kwargs)
    answer = request(app_for(fresh_connection(db)), method, path, **kwargs)
    assert answer.status_code == 422, answer.text
    assert set(answer.json()) == {"message", "detail", "hint", "sqlstate"}, answer.text
    assert says in answer.json()["message"], answer.text
    if answer.json()["sqlstate"] in ("22023", None):
        assert answer.json()["hint"], answer.text
    assert (partitions(conn), conn.execute("SELECT count(*) FROM timepart.maintenance_log").fetchone()[0]) == before


def test_a_failed_run_is_a_500_with_the_seeds_document(db, connect):
    conn = connect()
    conn.execute("CREATE TABLE web_blocker (id int)")
    # A table already holding the next partition's name: maintain cannot make it.
    conn.execute(f"ALTER TABLE web_blocker RENAME TO {month_name(16)}")
    answer = request(app_for(fresh_connection(db)), "POST", "/maintain", params={"months_ahead": 16})
    assert answer.status_code == 500, answer.text
    assert answer.json()["success"] is False and answer.json()["errors"], answer.text
    conn.execute(f"DROP TABLE {month_name(16)}")


def test_the_router_is_refused_without_require_admin_and_bad_arguments():
    with pytest.raises(TypeError, match="require_admin"):
        make_router(lambda: None)  # noqa: the keyword is required
    with pytest.raises(TypeError, match="require_admin"):
        make_router(lambda: None, require_admin=None)
    with pytest.raises(TypeError, match="conn_factory"):
        make_router("postgresql://", require_admin=admin_header)
    with pytest.raises(ValueError, match="parent"):
        make_router(lambda: None, require_admin=admin_header, parent="")
    router = make_router(lambda: None, require_admin=admin_header, prefix="/admin/parts", parent=None)
    assert {r.path for r in router.routes} == {f"/admin/parts/{p}" for p in ("stats", "health", "summary", "maintain",
                                                                             "cleanup")}


def test_importing_without_the_extra_names_it():
    code = "import sys; sys.modules['fastapi'] = None; import timepart.web"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode != 0 and 'pip install "timepart[web]"' in done.stderr, done.stderr


def test_a_run_kept_from_starting_by_another_is_a_409(db, connect):
    holder = connect(autocommit=False)
    holder.execute("SELECT timepart.maintain('email_events')")  # makes sure its runner row exists
    holder.commit()
    holder.execute("SELECT 1 FROM timepart.runners WHERE parent = 'email_events'::regclass FOR UPDATE")
    try:
        answer = request(app_for(fresh_connection(db)), "POST", "/maintain")
        assert answer.status_code == 409, answer.text
        assert answer.json()["success"] is False and answer.json()["skipped"], answer.text
    finally:
        holder.rollback()
    assert request(app_for(fresh_connection(db)), "POST", "/maintain").status_code == 200
