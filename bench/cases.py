"""The timed cases, one function each, each returning rows of the results table:
creating partitions, no-op maintenance, retention, stats and health, seed queries."""
import json
import statistics
import time

import psycopg

from common import (FILL, INDEXES, Row, add_months, create_partman_table, create_raw_table, create_timepart_table,
                    partman_create_parent, partman_version,
                    current_month, database, load_partition, median_of, met, month, ms, partition_count, ratio,
                    timed)


def bench_create_partition(runs):
    """One partition with the seed's five indexes: timepart vs raw DDL vs pg_partman."""
    with database(("timepart", "pg_partman")) as conn:
        create_timepart_table(conn, "1990-01-15")
        create_raw_table(conn, "raw_events", default_partition=False)
        create_raw_table(conn, "rawd_events", default_partition=True)
        create_partman_table(conn, "pm_events", 4, current_month(conn))
        pm_major = partman_version(conn)
        tp, raw, rawd, pm = [], [], [], []
        for i in range(24, 24 + runs):
            tp.append(timed(conn, "SELECT timepart.create_partition('email_events', %s, %s)", (month(i), month(i + 1))))
            for table, times in (("raw_events", raw), ("rawd_events", rawd)):
                times.append(timed(conn, f"CREATE TABLE {table}_{i} PARTITION OF {table} "
                                         f"FOR VALUES FROM ('{month(i)}') TO ('{month(i + 1)}')"))
            # 4.x takes a third argument (analyze), 5.x none.
            pm.append(timed(conn, "SELECT partman.create_partition_time('public.pm_events', ARRAY[%s::timestamptz]"
                                  + (", false)" if pm_major < 5 else ")"), (month(i + 600),)))
    t, r, rd, p = (statistics.median(x) for x in (tp, raw, rawd, pm))
    return [Row("create 1 partition (5 indexes), no default partition", ms(t), ms(r), "", ratio(t, r), "",
                "<= 1.3x raw", met(t <= 1.3 * r)),
            Row("create 1 partition (5 indexes), with a default partition", ms(t), ms(rd), ms(p), ratio(t, rd), ratio(t, p),
                "<= 1.3x raw", met(t <= 1.3 * rd))]


def _noop_maintain_db(conn, size):
    """timepart and pg_partman tables of about `size` partitions, all premade. Returns
    the milliseconds each took to create the last 1,000 (only when size is 1,000)."""
    create_timepart_table(conn, "1940-01-15")
    if size >= 1000:
        # 1,000 new partitions in one maintain call (7 exist already from the preset).
        t = timed(conn, "SELECT timepart.maintain('email_events', 999, '1940-08-15')")
        create_raw_table(conn, "raw_events")
        r = timed(conn, "DO $$ BEGIN FOR i IN 0..999 LOOP EXECUTE format("
                        "'CREATE TABLE raw_events_%s PARTITION OF raw_events FOR VALUES FROM (%L) TO (%L)', i, "
                        "'1940-08-01'::date + make_interval(months => i), '1940-09-01'::date + make_interval(months => i)); "
                        "END LOOP; END $$")
        create_raw_table(conn, "pm_events", default_partition=False)
        started = time.perf_counter()
        partman_create_parent(conn, "public.pm_events", 999, current_month(conn))
        p = (time.perf_counter() - started) * 1000
        return t, r, p
    conn.execute("SELECT timepart.configure('email_events', %s)", (json.dumps({"premake": size - 2}),))
    conn.execute("SELECT timepart.maintain('email_events', NULL, '1940-01-15')")
    create_partman_table(conn, "pm_events", size - 1, current_month(conn))
    return None


def bench_maintain(sizes, runs):
    """No-op maintain at growing partition counts (timepart maintain vs pg_partman
    run_maintenance), creating 1,000 partitions, and stats/health at 1,000 partitions."""
    rows = []
    goals = {14: 5, 120: 10, 1000: 50}
    for size in sizes:
        with database(("timepart", "pg_partman")) as conn:
            created = _noop_maintain_db(conn, size)
            as_of = "1940-08-15" if size >= 1000 else "1940-01-15"
            if created:
                t, r, p = created
                n_tp, n_raw, n_pm = (partition_count(conn, x) for x in ("email_events", "raw_events", "pm_events"))
                rows.append(Row(f"create 1,000 partitions (5 indexes; now {n_tp} / {n_raw} / {n_pm} with default)",
                                ms(t), ms(r), ms(p), ratio(t, r), ratio(t, p), "", ""))
            n_tp, n_pm = partition_count(conn, "email_events"), partition_count(conn, "pm_events")
            t = median_of(conn, "SELECT timepart.maintain('email_events', NULL, %s)", runs, (as_of,))
            p = median_of(conn, "SELECT partman.run_maintenance('public.pm_events', false, false)", runs)
            goal = goals.get(size)
            rows.append(Row(f"no-op maintain, {n_tp} / {n_pm} partitions (timepart / pg_partman)", ms(t), "", ms(p),
                            "", ratio(t, p), f"<= {goal} ms" if goal else "", met(t <= goal) if goal else ""))
            if size >= 1000:
                rows += _stats_and_health(conn, f"{n_tp} partitions (empty)", runs, 500, 200, as_of)
    return rows


def _stats_and_health(conn, label, runs, stats_goal, health_goal, as_of):
    """partition_stats and health, warm, after snapshot_stats (timed once as well)."""
    time.sleep(1.2)  # let this backend's insert counters reach the cumulative statistics
    snap = timed(conn, "SELECT timepart.snapshot_stats()")
    conn.execute("SELECT count(*) FROM timepart.partition_stats('email_events')")  # warm
    conn.execute("SELECT timepart.health('email_events', %s)", (as_of,))
    s = median_of(conn, "SELECT count(*) FROM timepart.partition_stats('email_events')", runs)
    h = median_of(conn, "SELECT timepart.health('email_events', %s)", runs, (as_of,))
    out = [Row(f"snapshot_stats, {label} (first run: counts every partition)", ms(snap)),
           Row(f"partition_stats, {label}, warm", ms(s), goal=f"<= {stats_goal} ms", met=met(s <= stats_goal)),
           Row(f"health, {label}, warm", ms(h), goal=f"<= {health_goal} ms", met=met(h <= health_goal))]
    return out + _scrapes(conn, label, runs)


def _in_fresh_sessions(conn, sql, n):
    """Milliseconds `sql` takes as the first statement of each of `n` new sessions."""
    took = []
    for _ in range(n):
        with psycopg.connect(conn.info.dsn, autocommit=True) as fresh:
            took.append(timed(fresh, sql))
    return took


def _scrapes(conn, label, runs):
    """What a Prometheus scrape of timepart.metrics costs: warm (an exporter's persistent
    connection, median of `runs`) and the first one of a new session (median of 5)."""
    sql = "SELECT name, labels, value FROM timepart.metrics"
    conn.execute(sql).fetchall()
    warm = median_of(conn, sql, runs)
    first = statistics.median(_in_fresh_sessions(conn, sql, 5))
    return [Row(f"metrics (a scrape), {label}, warm", ms(warm), goal="<= 50 ms", met=met(warm <= 50)),
            Row(f"metrics (a scrape), {label}, first in a new session (median of 5)", ms(first))]


def bench_retention(rows, runs):
    """Retiring one month of `rows` rows: timepart cleanup vs raw DROP TABLE vs pg_partman
    retention (run_maintenance), and DELETE + VACUUM on an unpartitioned copy."""
    tp, drop, pm, delete, vacuum = [], [], [], [], []
    for run in range(runs):
        with database(("timepart", "pg_partman")) as conn:
            create_timepart_table(conn, "2024-01-15")
            load_partition(conn, "email_events", "email_event_type", "email_events_2024_01", "2024-01-01", rows)
            _, raw_enum = create_raw_table(conn, "raw_events")
            load_partition(conn, "raw_events", raw_enum, "raw_events_2024_01", "2024-01-01", rows)
            first = add_months(current_month(conn), -14)
            _, pm_enum = create_partman_table(conn, "pm_events", 4, first)
            pm_part = f"pm_events_p{first[:4]}_{first[5:7]}"
            load_partition(conn, "pm_events", pm_enum, pm_part, first, rows)
            conn.execute("UPDATE partman.part_config SET retention = '13 months', retention_keep_table = false "
                         "WHERE parent_table = 'public.pm_events'")
            if run == 0:
                _load_flat(conn, raw_enum, rows)
            conn.execute("CHECKPOINT")
            started = time.perf_counter()
            res = conn.execute("SELECT timepart.cleanup('email_events', '12 months', false, '2025-02-15')").fetchone()[0]
            tp.append((time.perf_counter() - started) * 1000)
            assert [d[0] for d in res["dropped_partitions"]] == ["email_events_2024_01"], res
            drop.append(timed(conn, "DROP TABLE raw_events_2024_01"))
            pm.append(timed(conn, "SELECT partman.run_maintenance('public.pm_events', false, false)"))
            assert conn.execute("SELECT to_regclass(%s)", (pm_part,)).fetchone()[0] is None, "pg_partman kept its partition"
            if run == 0:
                delete.append(timed(conn, "DELETE FROM flat WHERE created_at < '2024-02-01'"))
                vacuum.append(timed(conn, "VACUUM flat"))
    t, d, p = statistics.median(tp), statistics.median(drop), statistics.median(pm)
    de, va = delete[0], vacuum[0]
    label = f"{rows // 1000}k" if rows < 1_000_000 else f"{rows // 1_000_000}M"
    return [Row(f"retention of a {label}-row partition (cleanup / DROP TABLE / run_maintenance)", ms(t), ms(d), ms(p),
                ratio(t, d), ratio(t, p), "<= 1.2x DROP", met(t <= 1.2 * d)),
            Row(f"retention of {label} rows vs DELETE + VACUUM on an unpartitioned copy (raw column)", ms(t),
                f"{ms(de)} + {ms(va)}", "", ratio(t, de + va), "", "", "")]


def _load_flat(conn, enum, rows):
    """An unpartitioned copy: two months of `rows` rows each, the seed's indexes."""
    conn.execute("CREATE TABLE flat (LIKE raw_events INCLUDING DEFAULTS)")
    for i, start in enumerate(("2024-01-01", "2024-02-01")):
        conn.execute(FILL.format(table="flat", enum=enum, rows=rows, offset=i * rows, start=f"'{start}'"))
    for suffix, cols, where in INDEXES:
        conn.execute(f"CREATE INDEX ON flat ({cols})" + (f" WHERE {where}" if where else ""))
    conn.execute("ALTER TABLE flat ADD PRIMARY KEY (id, created_at)")
    conn.execute("VACUUM ANALYZE flat")


def bench_big_table(months, rows, runs):
    """`months` past months of `rows` rows each plus the current one and premade ones:
    partition_stats and health (warm, after snapshot_stats), and the seed's two
    queries with the partitions EXPLAIN says they scan."""
    with database() as conn:
        cur = current_month(conn)
        first = add_months(cur, -(months - 1))
        create_timepart_table(conn, f"{first[:8]}15")
        for i in range(months):
            start = add_months(first, i)
            load_partition(conn, "email_events", "email_event_type", f"email_events_{start[:4]}_{start[5:7]}",
                           start, rows, offset=i * rows)
        conn.execute("SELECT timepart.maintain('email_events')")
        conn.execute("VACUUM ANALYZE email_events")
        missing = conn.execute("SELECT count(*) FROM timepart._missing_indexes('email_events')").fetchone()[0]
        assert missing == 0, f"{missing} partitions lack templated indexes after the bulk load"
        n = partition_count(conn, "email_events")
        label = f"{months} x {rows // 1_000_000 or rows // 1000}{'M' if rows >= 1_000_000 else 'k'} rows ({n} partitions)"
        out = _stats_and_health(conn, label, runs, 50, 100, "now()")
        out += _first_calls(conn, label)
        out += _seed_queries(conn, cur, months, runs)
    return out


def _first_calls(conn, label):
    """The first statistics and health calls of a new session (PostgreSQL's default jit
    settings): what a dashboard or `timepart stats` pays on connecting. Measured in a
    steady state: the catalogs the load just churned are vacuumed, the load's dirty pages
    are written out (CHECKPOINT), and no autovacuum worker competes for the 2 cores."""
    conn.execute("VACUUM")
    conn.execute("CHECKPOINT")
    for _ in range(60):
        if not conn.execute("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'").fetchone()[0]:
            break
        time.sleep(0.5)
    out = []
    for sql, name in (("SELECT count(*) FROM timepart.partition_stats()", "partition_stats"),
                      ("SELECT timepart.health()", "health"), ("SELECT length(timepart.summary()::text)", "summary")):
        took = _in_fresh_sessions(conn, sql, 7)
        median = statistics.median(took)
        out.append(Row(f"{name}, {label}, first call in a new session (median of 7 sessions; slowest {ms(max(took))})",
                       ms(median), "", "", "", "", "<= 50 ms", met(median <= 50)))
    return out


def _scanned(conn, sql):
    """Partitions of email_events the plan reads (pruned ones do not appear)."""
    plan = conn.execute("EXPLAIN (FORMAT JSON) " + sql).fetchone()[0]
    found = set()

    def walk(node):
        if node.get("Relation Name", "").startswith("email_events_"):
            found.add(node["Relation Name"])
        for child in node.get("Plans", []):
            walk(child)
    walk(plan[0]["Plan"])
    return len(found)


def _seed_queries(conn, cur, months, runs):
    """The seed's queries: one workspace over one month, and over one year."""
    ws = conn.execute("SELECT md5('w7')::uuid::text").fetchone()[0]
    # The last full month, and the twelve loaded months (the current one included).
    year = (add_months(cur, -(months - 1)), add_months(cur, 1))
    out = []
    for label, (lo, hi) in (("1 workspace x 1 month", (add_months(cur, -1), cur)), ("1 workspace x 1 year", year)):
        sql = (f"SELECT count(*) FROM email_events WHERE created_at >= '{lo}' AND created_at < '{hi}' "
               f"AND workspace_id = '{ws}'")
        conn.execute(sql)  # warm
        t = median_of(conn, sql, runs)
        count = conn.execute(sql).fetchone()[0]
        out.append(Row(f"seed query {label}: {_scanned(conn, sql)} of {partition_count(conn, 'email_events')} "
                       f"partitions scanned, {count} rows counted", ms(t)))
    return out
