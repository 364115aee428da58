"""The lock-queue scenario: a reader holds a long transaction on the table, maintenance
that must create and drop partitions runs behind it, and single-row inserts keep
coming from another connection. How long did an insert wait, and what became of
the maintenance? timepart (maintain + cleanup, lock budget) vs pg_partman
(run_maintenance with retention)."""
import threading
import time

import psycopg

from common import Row, add_months, create_partman_table, create_timepart_table, current_month, database, met, ms

INSERT = ("INSERT INTO {table} (workspace_id, campaign_id, lead_id, event_type) "
          "VALUES (gen_random_uuid(), gen_random_uuid(), gen_random_uuid(), 'open')")


class Inserter(threading.Thread):
    """Single-row inserts (autocommit) every few ms until stopped; keeps each one's
    start (perf_counter seconds), wait (ms) and error."""

    def __init__(self, dsn, table, pause=0.005):
        super().__init__(daemon=True)
        self.dsn, self.sql, self.pause = dsn, INSERT.format(table=table), pause
        self.samples = []
        self.stop = threading.Event()

    def run(self):
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            while not self.stop.is_set():
                started = time.perf_counter()
                error = None
                try:
                    conn.execute(self.sql)
                except psycopg.Error as e:
                    error = str(e)
                self.samples.append((started, (time.perf_counter() - started) * 1000, error))
                time.sleep(self.pause)

    def finish(self):
        self.stop.set()
        self.join()
        return self.samples


def hold_reader(dsn, table, seconds):
    """A thread that reads the whole table in a transaction and keeps it open `seconds`
    (ACCESS SHARE on the parent and every partition). Returns the started thread."""
    ready = threading.Event()

    def run():
        with psycopg.connect(dsn) as conn:
            conn.execute(f"SELECT count(*) FROM {table}")
            ready.set()
            time.sleep(seconds)
            conn.rollback()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    ready.wait()
    return thread


def _timed_call(conn, sql, params=None):
    started = time.perf_counter()
    result = conn.execute(sql, params).fetchone()[0]
    return result, (time.perf_counter() - started) * 1000


def _setup_timepart(conn, cur):
    """Partitions from 14 months back to 6 ahead; maintain with premake 7 must create one
    more, cleanup (12 months) must drop the oldest."""
    create_timepart_table(conn, "now")
    conn.execute("SELECT timepart.create_partition('email_events', %s, %s)", (add_months(cur, -14), add_months(cur, -13)))
    conn.execute("SELECT timepart.maintain('email_events')")
    return "email_events"


def _setup_partman(conn, cur):
    """The same for pg_partman: 14 months back to 6 ahead, premake 7 and 13 months' retention
    make run_maintenance create one and drop one."""
    create_partman_table(conn, "pm_events", 6, add_months(cur, -14))
    conn.execute("UPDATE partman.part_config SET premake = 7, infinite_time_partitions = true, retention = '13 months', "
                 "retention_keep_table = false WHERE parent_table = 'public.pm_events'")
    return "pm_events"


def _maintain_timepart(conn):
    m, m_ms = _timed_call(conn, "SELECT timepart.maintain('email_events', 7)")
    c, c_ms = _timed_call(conn, "SELECT timepart.cleanup('email_events')")
    done = (len(m["created_partitions"]), len(c["dropped_partitions"]))
    backed_off = any("gave up" in e for e in m["errors"] + c["errors"])
    return done, backed_off, m_ms + c_ms


def _maintain_partman(conn):
    n_before = conn.execute("SELECT count(*) FROM pg_inherits WHERE inhparent = 'pm_events'::regclass").fetchone()[0]
    old = conn.execute("SELECT min(inhrelid::regclass::text) FROM pg_inherits WHERE inhparent = 'pm_events'::regclass "
                       "AND inhrelid::regclass::text <> 'pm_events_default'").fetchone()[0]
    _, took = _timed_call(conn, "SELECT partman.run_maintenance('public.pm_events', false, false)")
    n_after = conn.execute("SELECT count(*) FROM pg_inherits WHERE inhparent = 'pm_events'::regclass").fetchone()[0]
    dropped = int(conn.execute("SELECT to_regclass(%s) IS NULL", (old,)).fetchone()[0])
    return (n_after - n_before + dropped, dropped), False, took


def run_scenario(tool, hold_seconds):
    """One tool behind one long reader. Returns a dict of what was measured."""
    setup, maintain = {"timepart": (_setup_timepart, _maintain_timepart),
                       "pg_partman": (_setup_partman, _maintain_partman)}[tool]
    extensions = ("timepart",) if tool == "timepart" else ("pg_partman",)
    with database(extensions) as conn:
        dsn = conn.info.dsn
        table = setup(conn, current_month(conn))
        inserter = Inserter(dsn, table)
        inserter.start()
        time.sleep(1.0)
        reader_from = time.perf_counter()
        reader = hold_reader(dsn, table, hold_seconds)
        time.sleep(0.5)
        first_done, backed_off, first_ms = maintain(conn)
        reader.join()
        reader_to = time.perf_counter()
        time.sleep(0.5)
        later_done, _, later_ms = maintain(conn)
        time.sleep(0.3)
        samples = inserter.finish()
    waits = [w for _, w, _ in samples]
    behind = [w for s, w, _ in samples if reader_from <= s <= reader_to]
    return {"inserts": len(samples), "failed": sum(1 for *_, e in samples if e), "worst": max(waits),
            "worst_behind_reader": max(behind, default=0.0), "first_done": first_done, "backed_off": backed_off,
            "first_ms": first_ms, "later_done": later_done, "later_ms": later_ms}


def _outcome(r):
    created, dropped = r["first_done"]
    if r["backed_off"]:
        verb = "backed off"
    elif r["first_ms"] >= 1000:
        verb = "waited"
    else:
        verb = "ran"
    return f"{verb}: {ms(r['first_ms'])}, created {created}, dropped {dropped}"


def bench_lock_queue(hold_seconds, budget_ms=100):
    """Rows for the results table: timepart and pg_partman behind the same reader."""
    tp = run_scenario("timepart", hold_seconds)
    pm = run_scenario("pg_partman", hold_seconds)
    goal = budget_ms + 50
    label = f"lock queue (reader holds {hold_seconds:g} s; maintenance must create 1 and drop 1 partition)"
    return [
        Row(f"{label}: worst single-row insert wait", ms(tp["worst"]), "", ms(pm["worst"]), "",
            f"{tp['worst'] / pm['worst']:.3f}x", f"<= {goal} ms (budget + 50)", met(tp["worst"] <= goal)),
        Row(f"{label}: maintenance run behind the reader", _outcome(tp), "", _outcome(pm)),
        Row(f"{label}: next run after the reader left", f"created {tp['later_done'][0]}, dropped {tp['later_done'][1]}",
            "", f"created {pm['later_done'][0]}, dropped {pm['later_done'][1]}", goal="work completes",
            met=met(tp["later_done"] == (1, 1) or (tp["first_done"][0] + tp["later_done"][0] == 1
                                                   and tp["first_done"][1] + tp["later_done"][1] == 1))),
        Row(f"{label}: failed inserts", f"{tp['failed']} of {tp['inserts']}", "", f"{pm['failed']} of {pm['inserts']}",
            goal="0", met=met(tp["failed"] == 0)),
    ]
