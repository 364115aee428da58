"""The load and fault soak: pgbench clients insert events without pause into a daily
table while maintain and cleanup run in a loop, each step moving a simulated clock one
day on (`as_of`), with long readers now and then and maintaining backends terminated
mid-run. Counted: failed inserts, rows lost outside what retention was asked to drop,
partitions without their indexes, leftover half-built tables, runs that succeeded /
backed off / failed / were killed, and insert latency with and without maintenance."""
import bisect
import datetime
import glob
import os
import random
import statistics
import subprocess
import tempfile
import threading
import time

import psycopg

from common import INDEXES, SEED_TABLE, Row, database, met, ms
from lockqueue import hold_reader

PGBENCH = "/usr/lib/postgresql/15/bin/pgbench"
RETENTION_DAYS = 7
PREMAKE = 3

# Each pgbench transaction inserts one event at the simulated clock (2% of them days
# past the premade partitions, so they land in the default partition and maintain must
# move them) and counts it in a ledger per day and client, in the same transaction. An
# insert that fails is recorded in soak_failures and retried, so a failure does not
# abort the pgbench client (pgbench 15 stops a client at its first error).
INSERT_FUNCTION = """
CREATE FUNCTION soak_insert(ws int, far boolean, client_no int) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    ts timestamptz;
    tries int := 0;
BEGIN
    SELECT c.now + CASE WHEN far THEN interval '5 days' ELSE interval '0' END + random() * interval '1 day'
    INTO ts FROM soak_clock c;
    LOOP
        BEGIN
            INSERT INTO soak_events (workspace_id, campaign_id, lead_id, event_type, external_id, created_at)
            VALUES (md5('w' || ws)::uuid, gen_random_uuid(), gen_random_uuid(), 'open', 'msg-' || ws, ts);
            EXIT;
        EXCEPTION WHEN OTHERS THEN
            tries := tries + 1;
            INSERT INTO soak_failures (ts, sqlstate, error, client) VALUES (ts, SQLSTATE, SQLERRM, client_no);
            IF tries >= 3 THEN RAISE; END IF;
        END;
    END LOOP;
    INSERT INTO soak_ledger AS l (day, client, n) VALUES ((ts AT TIME ZONE 'UTC')::date, client_no, 1)
    ON CONFLICT (day, client) DO UPDATE SET n = l.n + 1;
END $$;
"""

SCRIPT = """\\set ws random(1, 100)
\\set far random(1, 100)
SELECT soak_insert(:ws, :far <= 2, :client_id);
"""

LOST = """
SELECT coalesce(sum(greatest(l.n - coalesce(p.n, 0), 0)), 0), coalesce(sum(greatest(coalesce(p.n, 0) - l.n, 0)), 0)
FROM (SELECT day, sum(n) AS n FROM soak_ledger GROUP BY day) l
LEFT JOIN (SELECT (created_at AT TIME ZONE 'UTC')::date AS day, count(*) AS n FROM soak_events GROUP BY 1) p USING (day)
WHERE l.day >= %s"""

ORPHANS = """SELECT count(*) FROM pg_class c WHERE c.relkind = 'r' AND NOT c.relispartition
             AND c.relname LIKE 'soak\\_events\\_%'"""


def _setup(conn, start):
    conn.execute(SEED_TABLE.format(name="soak_events", enum="soak_type"))
    conn.execute("SELECT timepart.manage('soak_events', '1 day', %s, %s, true, '100 ms', 'UTC', %s)",
                 (PREMAKE, f"{RETENTION_DAYS} days", start))
    for suffix, cols, where in INDEXES:
        conn.execute("SELECT timepart.add_index_template('soak_events', %s, %s, %s)", (suffix, cols, where))
    conn.execute("CREATE TABLE soak_clock (now timestamptz NOT NULL)")
    conn.execute("INSERT INTO soak_clock VALUES (%s)", (start,))
    conn.execute("CREATE TABLE soak_ledger (day date, client int, n bigint NOT NULL, PRIMARY KEY (day, client))")
    conn.execute("CREATE TABLE soak_failures (at timestamptz DEFAULT clock_timestamp(), ts timestamptz, sqlstate text, "
                 "error text, client int)")
    conn.execute(INSERT_FUNCTION)


class Driver:
    """Runs maintain/cleanup at the simulated clock and remembers when (wall clock)
    maintenance was running and how each call ended."""

    def __init__(self, conn, dsn):
        self.conn, self.dsn = conn, dsn
        self.windows = []          # (start, end) epoch seconds of every maintenance call
        self.killed = 0            # calls ended by pg_terminate_backend
        self.kill_missed = 0       # calls that finished before the terminate arrived
        self.furthest_cleanup = None

    def call(self, sql, params):
        started = time.time()
        try:
            return self.conn.execute(sql, params).fetchone()[0]
        finally:
            self.windows.append((started, time.time()))

    def step(self, as_of):
        self.conn.execute("UPDATE soak_clock SET now = %s", (as_of,))
        self.call("SELECT timepart.maintain('soak_events', NULL, %s)", (as_of,))
        self.furthest_cleanup = as_of
        self.call("SELECT timepart.cleanup('soak_events', NULL, false, %s)", (as_of,))

    def step_killed(self, as_of, victim):
        """maintain or cleanup in its own backend, terminated a few ms into its run."""
        self.conn.execute("UPDATE soak_clock SET now = %s", (as_of,))
        sql = {"maintain": "SELECT timepart.maintain('soak_events', NULL, %s)",
               "cleanup": "SELECT timepart.cleanup('soak_events', NULL, false, %s)"}[victim]
        if victim == "cleanup":
            self.furthest_cleanup = as_of
        outcome = {}
        with psycopg.connect(self.dsn, autocommit=True) as other:
            pid = other.info.backend_pid

            def run():
                started = time.time()
                try:
                    other.execute(sql, (as_of,))
                    outcome["finished"] = True
                except psycopg.OperationalError:
                    outcome["finished"] = False
                self.windows.append((started, time.time()))
            thread = threading.Thread(target=run)
            thread.start()
            time.sleep(random.uniform(0.01, 0.05))
            self.conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
            thread.join()
        if outcome.get("finished"):
            self.kill_missed += 1
        else:
            self.killed += 1


def _percentiles(values):
    if not values:
        return "no samples"
    q = statistics.quantiles(values, n=100, method="inclusive")
    return f"{ms(q[49])} / {ms(q[98])} / {ms(max(values))}"


def _latencies(log_prefix, windows):
    """pgbench's per-transaction log: (ms, overlaps a maintenance call?) per insert."""
    starts = sorted(w[0] for w in windows)
    ends_by_start = sorted(windows)
    quiet, busy = [], []
    for path in glob.glob(log_prefix + ".*"):
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) < 6 or not parts[2].isdigit():
                    continue
                lat = int(parts[2]) / 1000.0
                end = int(parts[4]) + int(parts[5]) / 1e6
                begin = end - lat / 1000.0
                # Any call that started before this insert ended and ended after it began.
                i = bisect.bisect_right(starts, end)
                overlaps = any(ends_by_start[j][1] >= begin for j in range(max(0, i - 3), i))
                (busy if overlaps else quiet).append(lat)
    return quiet, busy


def _run_outcomes(conn):
    return conn.execute("""
        SELECT count(*) FILTER (WHERE success AND NOT details ? 'skipped'),
               count(*) FILTER (WHERE NOT success AND error LIKE '%%gave up after%%'),
               count(*) FILTER (WHERE NOT success AND error NOT LIKE '%%gave up after%%'),
               count(*) FILTER (WHERE details ? 'skipped')
        FROM timepart.maintenance_log WHERE operation_type IN ('maintain', 'cleanup')
          AND parent_table::regclass = 'soak_events'::regclass""").fetchone()


def run_soak(seconds, clients=4, rate=300, baseline=5.0):
    """The soak itself; returns what it counted."""
    start = "2030-01-01"
    first = datetime.datetime(2030, 1, 1, 12, tzinfo=datetime.timezone.utc)
    with database() as conn, tempfile.TemporaryDirectory() as tmp:
        _setup(conn, start)
        dbname = conn.info.dbname
        script = os.path.join(tmp, "insert.sql")
        with open(script, "w") as f:
            f.write(SCRIPT)
        os.chmod(tmp, 0o777)
        prefix = os.path.join(tmp, "pgbench_log")
        duration = int(baseline + seconds + 2)
        bench = subprocess.Popen([PGBENCH, "-n", "-c", str(clients), "-j", "2", "-R", str(rate), "-T", str(duration),
                                  "-f", script, "-l", f"--log-prefix={prefix}", dbname],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        driver = Driver(conn, conn.info.dsn)
        time.sleep(baseline)
        day, steps, readers, max_lost, max_extra, missing_seen, orphans_seen = 0, 0, 0, 0, 0, 0, 0
        finish_at = time.monotonic() + seconds
        while time.monotonic() < finish_at:
            steps += 1
            reader = None
            if steps % 6 == 3:
                # A long reader: maintenance in this step must back off, inserts must not wait on it.
                reader = hold_reader(conn.info.dsn, "soak_events", 1.0)
                readers += 1
            if steps % 7 == 5:
                day += 3   # several partitions to make and drop, so the kill lands mid-run
                as_of = first + datetime.timedelta(days=day)
                driver.step_killed(as_of, "maintain" if steps % 14 == 5 else "cleanup")
            else:
                day += 1
                as_of = first + datetime.timedelta(days=day)
                driver.step(as_of)
            if reader:
                reader.join()
            boundary = conn.execute("SELECT (%s::timestamptz - make_interval(days => %s))::date",
                                    (driver.furthest_cleanup, RETENTION_DAYS)).fetchone()[0]
            lost, extra = conn.execute(LOST, (boundary,)).fetchone()
            max_lost, max_extra = max(max_lost, lost), max(max_extra, extra)
            missing_seen += conn.execute("SELECT count(*) FROM timepart._missing_indexes('soak_events')").fetchone()[0]
            orphans_seen += conn.execute(ORPHANS).fetchone()[0]
            time.sleep(0.1)
        out, err = bench.communicate()
        # A final, undisturbed run finishes whatever the faults left undone.
        final_m = conn.execute("SELECT timepart.maintain('soak_events', NULL, %s)", (as_of,)).fetchone()[0]
        final_c = conn.execute("SELECT timepart.cleanup('soak_events', NULL, false, %s)", (as_of,)).fetchone()[0]
        still_due = conn.execute("SELECT count(*) FROM timepart._plan_partitions('soak_events', %s, %s)",
                                 (PREMAKE, as_of)).fetchone()[0]
        boundary = conn.execute("SELECT (%s::timestamptz - make_interval(days => %s))::date",
                                (as_of, RETENTION_DAYS)).fetchone()[0]
        lost, extra = conn.execute(LOST, (boundary,)).fetchone()
        ledger = conn.execute("SELECT coalesce(sum(n), 0) FROM soak_ledger").fetchone()[0]
        quiet, busy = _latencies(prefix, driver.windows)
        failed = _pgbench_failures(out, err, bench.returncode)
        first_failures = conn.execute("SELECT count(*), string_agg(DISTINCT sqlstate || ' ' || left(error, 70), '; ') "
                                      "FROM soak_failures").fetchone()
        return {"steps": steps, "days": day, "readers": readers, "killed": driver.killed,
                "kill_missed": driver.kill_missed, "inserts": len(quiet) + len(busy), "ledger": ledger,
                "failed": failed, "first_failures": first_failures, "lost": max(max_lost, lost), "extra": max(max_extra, extra),
                "missing": missing_seen + conn.execute("SELECT count(*) FROM timepart._missing_indexes('soak_events')").fetchone()[0],
                "orphans": orphans_seen, "outcomes": _run_outcomes(conn),
                "final_ok": final_m["success"] and final_c["success"] and still_due == 0,
                "quiet": quiet, "busy": busy, "clients": clients, "rate": rate}


def _pgbench_failures(out, err, code):
    """Failed or aborted transactions as pgbench reports them (an error aborts a client)."""
    failed = 0
    for line in out.splitlines():
        if line.startswith("number of failed transactions:"):
            failed += int(line.split(":")[1].split()[0])
    aborted = err.count("aborted")
    if code not in (0, None) or aborted:
        failed += max(aborted, 1)
    return failed


def bench_soak(seconds):
    r = run_soak(seconds)
    ok, backed_off, failed_runs, skipped = r["outcomes"]
    label = (f"soak: {r['clients']} pgbench clients at {r['rate']} inserts/s, {seconds} s, "
             f"{r['steps']} maintain+cleanup steps over {r['days']} simulated days")
    return [
        Row(f"{label}: failed inserts (failed for good; failed first attempts, then retried)",
            f"{r['failed']} of {r['inserts']}; {r['first_failures'][0]}" +
            (f" ({r['first_failures'][1]})" if r['first_failures'][0] else ""),
            goal="0", met=met(r["failed"] == 0 and r["first_failures"][0] == 0)),
        Row("soak: rows lost outside the retention window (rows counted in the ledger but absent / present twice)",
            f"{r['lost']} / {r['extra']}", goal="0", met=met(r["lost"] == 0 and r["extra"] == 0)),
        Row("soak: partitions without their 5 templated indexes (checked after every step), leftover half-built tables",
            f"{r['missing']}, {r['orphans']}", goal="0", met=met(r["missing"] == 0 and r["orphans"] == 0)),
        Row(f"soak: runs succeeded / backed off / failed / skipped (log); killed mid-run ({r['readers']} long readers)",
            f"{ok} / {backed_off} / {failed_runs} / {skipped}; {r['killed']} killed"
            + (f" ({r['kill_missed']} finished first)" if r["kill_missed"] else ""),
            goal="final run completes", met=met(r["final_ok"])),
        Row("soak: insert latency p50 / p99 / max, no maintenance running", _percentiles(r["quiet"])),
        Row("soak: insert latency p50 / p99 / max, during maintenance (incl. readers and kills)", _percentiles(r["busy"]),
            goal="max <= 150 ms", met=met(max(r["busy"], default=0) <= 150)),
    ]
