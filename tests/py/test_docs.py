"""Every code block of the README and of docs/ runs as written. A page's blocks run in
order in a fresh database of their own; a docs page starts where the README's quick start
left off. The block's info string says how it runs:
  sql            psql, ON_ERROR_STOP          sql cron   in pg_cron's database (where there is pg_cron)
  sh             bash -e, with the venv's bin on PATH and PG* / DATABASE_URL naming the database
  sh service     a server: started, asked for its page, stopped
  sh newcomer    make demo / make test and what follows them: run by `make newcomer` (tools/newcomer.sh)
  python         with top-level await, in one namespace a page
  json           an example document: it parses
  text           output shown, not run"""
import ast
import asyncio
import json
import os
import re
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import psycopg
import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "CHANGELOG.md"]
KINDS = {("sql",), ("sql", "cron"), ("sh",), ("sh", "service"), ("sh", "newcomer"), ("python",), ("json",), ("text",)}
FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```\s*$", re.S | re.M)


def blocks(page: Path):
    """(kind, code, line) for each fenced block of a page."""
    text = page.read_text()
    return [(tuple(m.group(1).split()), m.group(2), text.count("\n", 0, m.start()) + 1) for m in FENCE.finditer(text)]


def test_every_block_is_of_a_kind_that_is_run():
    for page in PAGES:
        for kind, _, line in blocks(page):
            assert kind in KINDS, f"{page.name}:{line}: a block of kind {kind or '(none)'} is not run; use one of {KINDS}"


def test_the_readme_is_short_and_its_links_resolve():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 300
    for page in PAGES:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text()):
            assert (page.parent / target).exists(), f"{page.name} links to {target}, which does not exist"


def psql(dsn, script):
    return subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", dsn], input=script,
                          capture_output=True, text=True)


def environment(dsn):
    info = psycopg.conninfo.conninfo_to_dict(dsn)
    env = {**os.environ, "PATH": f"{ROOT / '.venv' / 'bin'}:{os.environ['PATH']}", "PGDATABASE": info["dbname"]}
    env["DATABASE_URL"] = f"postgresql:///{info['dbname']}?host={env['PGHOST']}&port={env['PGPORT']}&user={env['PGUSER']}"
    return env


def run_service(code, env, where):
    """Starts the block, waits for its page to show timepart's metrics, stops it."""
    proc = subprocess.Popen(["bash", "-c", code], cwd=ROOT, env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        port = re.search(r"listen-address=[\d.]*:(\d+)", code).group(1)
        deadline, page = time.time() + 30, ""
        while time.time() < deadline and "timepart_" not in page:
            assert proc.poll() is None, f"{where}: the service exited: {proc.stdout.read()}"
            try:
                page = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
            except OSError:
                time.sleep(0.3)
        assert "timepart_" in page, f"{where}: no timepart metric on port {port}"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)


def run_python(code, env, scope, where, monkeypatch):
    for key in ("PGDATABASE", "DATABASE_URL"):
        monkeypatch.setenv(key, env[key])
    compiled = compile(code, where, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)

    async def go():
        outcome = eval(compiled, scope)
        if asyncio.iscoroutine(outcome):
            await outcome
    asyncio.run(go())


def roles():
    with psycopg.connect(_admin_dsn()) as conn:
        return {r for (r,) in conn.execute("SELECT rolname FROM pg_roles")}


def _admin_dsn():
    return psycopg.conninfo.make_conninfo(dbname="postgres")


def run_page(page, dsn, monkeypatch):
    """The page's blocks in order; the roles a page creates (cluster-wide) are dropped after it."""
    before = roles()
    try:
        return _run_blocks(page, dsn, monkeypatch)
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            for role in sorted(roles() - before):
                conn.execute(f'DROP OWNED BY "{role}"')
                conn.execute(f'DROP ROLE "{role}"')


def _run_blocks(page, dsn, monkeypatch):
    env = environment(dsn)
    scope, features = {}, os.environ.get("TIMEPART_FEATURES", "").split()
    for kind, code, line in blocks(page):
        where = f"{page.relative_to(ROOT)}:{line}"
        if kind == ("sql",):
            done = psql(dsn, code)
            assert done.returncode == 0, f"{where}: {done.stderr}"
        elif kind == ("sql", "cron"):
            if "pg_cron" not in features:
                print(f"{where}: skipped, this build has no pg_cron")
                continue
            cron_db = os.environ["PGDATABASE"]  # cron.database_name
            assert psql(cron_db, "CREATE EXTENSION IF NOT EXISTS timepart").returncode == 0
            try:
                done = psql(f"dbname={cron_db}", code)
                assert done.returncode == 0, f"{where}: {done.stderr}"
            finally:
                psql(f"dbname={cron_db}", "SELECT timepart.unschedule_jobs(); DROP EXTENSION timepart")
        elif kind == ("sh",):
            done = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", code], cwd=ROOT, env=env,
                                  capture_output=True, text=True)
            assert done.returncode == 0, f"{where}: {done.stdout}{done.stderr}"
            assert "Traceback" not in done.stderr and "Error" not in done.stderr, f"{where}: {done.stderr}"
        elif kind == ("sh", "service"):
            run_service(code, env, where)
        elif kind == ("python",):
            run_python(code, env, scope, where, monkeypatch)
        elif kind == ("json",):
            json.loads(code)
    return scope


def quick_start(dsn):
    kind_code = [code for kind, code, _ in blocks(ROOT / "README.md") if kind == ("sql",)]
    done = psql(dsn, kind_code[0])
    assert done.returncode == 0, done.stderr


def test_the_readme_runs_as_written_and_its_quick_start_twice(make_database, monkeypatch):
    dsn = make_database()
    run_page(ROOT / "README.md", dsn, monkeypatch)
    with psycopg.connect(dsn) as conn:
        partition = conn.execute("SELECT 'email_events_' || to_char(now() + interval '7 months', 'YYYY_MM')").fetchone()[0]
        assert conn.execute("SELECT to_regclass(%s) IS NOT NULL", (partition,)).fetchone()[0]
        assert conn.execute("SELECT count(*) FROM page_views").fetchone()[0] == 1
    again = psql(dsn, [code for kind, code, _ in blocks(ROOT / "README.md") if kind == ("sql",)][0])
    assert again.returncode == 0 and "already exists and is managed" in again.stderr, again.stderr


@pytest.mark.parametrize("page", sorted(p.name for p in (ROOT / "docs").glob("*.md")))
def test_each_docs_page_runs_as_written_after_the_quick_start(page, make_database, monkeypatch):
    dsn = make_database()
    quick_start(dsn)
    run_page(ROOT / "docs" / page, dsn, monkeypatch)


def test_the_admin_api_example_answers(make_database, monkeypatch):
    """docs/clients.md's router: the block defines `app`; here it answers, as its text says."""
    import httpx
    dsn = make_database()
    quick_start(dsn)
    blocks_ = [code for kind, code, _ in blocks(ROOT / "docs" / "clients.md") if kind == ("python",)]
    web = next(code for code in blocks_ if "make_router" in code)
    scope = {}
    run_python(web, environment(dsn), scope, "docs/clients.md", monkeypatch)

    async def go():
        transport = httpx.ASGITransport(app=scope["app"])
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            return (await client.get("/api/system/partitions/health"),
                    await client.get("/api/system/partitions/health", headers={"x-admin-token": "change-me"}))
    refused, health = asyncio.run(go())
    assert refused.status_code == 403 and refused.json() == {"detail": "admins only"}
    assert health.status_code == 200 and health.json()["status"] in ("healthy", "warning", "critical"), health.text
