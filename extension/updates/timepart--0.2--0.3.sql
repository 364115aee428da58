-- timepart--0.2--0.3.sql: partition statistics, daily snapshots, alert rules and
-- their lifecycle, health and summary, and the seed's get_email_events_partition_stats().

CREATE OR REPLACE FUNCTION timepart.version() RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT '0.3'::text $$;
COMMENT ON FUNCTION timepart.version() IS 'The version of the timepart SQL installed in this database';

-- Statistics: per-partition figures that are fast on big tables. Sealed (past)
-- partitions use the exact figures of the daily snapshot while their change
-- counters have not moved; live ones use catalog estimates. Nothing counts rows
-- or takes a lock on a sealed partition when stats are read.

CREATE TABLE timepart.stats_history (
    snapshot_date   date NOT NULL,
    parent_table    regclass NOT NULL,
    partition_oid   oid NOT NULL,
    partition_name  name NOT NULL,
    range_start     timestamptz,
    range_end       timestamptz,
    record_count    bigint NOT NULL,
    size_bytes      bigint NOT NULL,
    oldest_record   timestamptz,
    newest_record   timestamptz,
    changes_seen    bigint NOT NULL,
    taken_at        timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    PRIMARY KEY (snapshot_date, partition_oid)
);
CREATE INDEX stats_history_partition_idx ON timepart.stats_history (partition_oid, snapshot_date DESC);
COMMENT ON TABLE timepart.stats_history IS 'Daily exact per-partition figures (snapshot_stats), the history behind growth rates';
COMMENT ON COLUMN timepart.stats_history.changes_seen IS 'Rows inserted+updated+deleted in the partition when counted; a change means the count is stale';
SELECT timepart._config_dump('timepart.stats_history');

-- Rows inserted, updated and deleted in a table since statistics began, this
-- transaction's own changes included. Any change makes a stored count stale.
CREATE OR REPLACE FUNCTION timepart._changes(rel oid) RETURNS bigint
LANGUAGE sql VOLATILE AS $$
    SELECT pg_catalog.pg_stat_get_tuples_inserted(rel) + pg_catalog.pg_stat_get_tuples_updated(rel)
         + pg_catalog.pg_stat_get_tuples_deleted(rel) + pg_catalog.pg_stat_get_xact_tuples_inserted(rel)
         + pg_catalog.pg_stat_get_xact_tuples_updated(rel) + pg_catalog.pg_stat_get_xact_tuples_deleted(rel)
$$;

-- Bytes of a table with its indexes and TOAST from relpages: no lock, as fresh as the last VACUUM/ANALYZE.
CREATE OR REPLACE FUNCTION timepart._estimated_bytes(rel oid) RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT (c.relpages::bigint + coalesce(t.relpages, 0)
            + coalesce((SELECT sum(ic.relpages) FROM pg_catalog.pg_index i
                        JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid WHERE i.indrelid = rel), 0)::bigint)
           * pg_catalog.current_setting('block_size')::bigint
    FROM pg_catalog.pg_class c LEFT JOIN pg_catalog.pg_class t ON t.oid = c.reltoastrelid
    WHERE c.oid = rel
$$;

-- Exact rows, oldest and newest of one partition (a scan: only for small ones).
CREATE OR REPLACE FUNCTION timepart._exact_figures(rel oid, key_column name)
RETURNS TABLE (record_count bigint, oldest timestamptz, newest timestamptz) LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN QUERY EXECUTE format('SELECT count(*), min(%I)::timestamptz, max(%I)::timestamptz FROM %s',
                                key_column, key_column, rel::regclass);
END $$;

-- Live partitions up to this size are counted exactly on every read (a few ms at most).
CREATE OR REPLACE FUNCTION timepart._exact_limit_bytes() RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$ SELECT 10485760::bigint $$;

CREATE OR REPLACE FUNCTION timepart.partition_stats(parent regclass DEFAULT NULL)
RETURNS TABLE (parent_table text, partition_name text, period text, range_start timestamptz, range_end timestamptz,
               record_count bigint, size_mb numeric, oldest_record timestamptz, newest_record timestamptz,
               index_count integer, is_default boolean, exact boolean)
LANGUAGE plpgsql VOLATILE AS $$
/* One row per partition of every managed table (or one). exact = true: the snapshot's
   exact figures for a sealed partition unchanged since, or a live partition under
   10 MB counted now; false: estimates (row count from statistics, size from relpages,
   oldest and newest from the ANALYZE histogram). */
BEGIN
    IF partition_stats.parent IS NOT NULL THEN
        PERFORM timepart._config(partition_stats.parent);
    END IF;
    RETURN QUERY
    WITH parts AS (
        SELECT c.*, p.*, timepart._changes(p.partition_oid) AS changes,
               (p.is_default OR p.range_end > now()) AS live
        FROM timepart.config c
        JOIN pg_catalog.pg_class r ON r.oid = c.parent
        CROSS JOIN LATERAL timepart._partitions(c.parent, c.time_zone) p
        WHERE partition_stats.parent IS NULL OR c.parent = partition_stats.parent
    ), snap AS (
        SELECT DISTINCT ON (h.partition_oid) h.*
        FROM timepart.stats_history h JOIN parts p ON p.partition_oid = h.partition_oid
        ORDER BY h.partition_oid, h.snapshot_date DESC
    ), sized AS (
        SELECT p.*, CASE WHEN p.live THEN pg_catalog.pg_total_relation_size(p.partition_oid) END AS live_bytes
        FROM parts p
    ), judged AS (
        SELECT p.*, s.record_count AS s_rows, h.ends, x.record_count AS x_rows, x.oldest AS x_oldest, x.newest AS x_newest, s.size_bytes AS s_bytes, s.oldest_record AS s_oldest, s.newest_record AS s_newest,
               (s.partition_oid IS NOT NULL AND NOT p.is_default AND p.range_end <= s.taken_at
                AND s.changes_seen = p.changes) AS sealed
        FROM sized p LEFT JOIN snap s ON s.partition_oid = p.partition_oid
        LEFT JOIN LATERAL timepart._exact_figures(p.partition_oid, p.key_column) x
               ON p.live AND p.live_bytes <= timepart._exact_limit_bytes()
        -- Oldest and newest from the ANALYZE histogram of the key: approximate, no scan.
        LEFT JOIN LATERAL (
            SELECT st.histogram_bounds::text::text[] AS ends FROM pg_catalog.pg_stats st
            WHERE st.schemaname = p.schema_name AND st.tablename = p.partition_name AND st.attname = p.key_column
        ) h ON true
    )
    SELECT j.parent::text, j.partition_name::text,
           CASE WHEN j.is_default THEN 'default'
                ELSE timepart._period_label(j.range_start, j.partition_interval, j.time_zone) END,
           j.range_start, j.range_end,
           CASE WHEN j.sealed THEN j.s_rows WHEN j.x_rows IS NOT NULL THEN j.x_rows
                ELSE greatest(pg_catalog.pg_stat_get_live_tuples(j.partition_oid),
                              (SELECT greatest(reltuples, 0)::bigint FROM pg_catalog.pg_class WHERE oid = j.partition_oid)) END,
           round((CASE WHEN j.sealed THEN j.s_bytes WHEN j.live THEN j.live_bytes
                       ELSE timepart._estimated_bytes(j.partition_oid) END) / 1048576.0, 2),
           CASE WHEN j.sealed THEN j.s_oldest WHEN j.x_rows IS NOT NULL THEN j.x_oldest
                ELSE timepart._bound_value(j.ends[1], j.key_type, j.time_zone) END,
           CASE WHEN j.sealed THEN j.s_newest WHEN j.x_rows IS NOT NULL THEN j.x_newest
                ELSE timepart._bound_value(j.ends[array_length(j.ends, 1)], j.key_type, j.time_zone) END,
           (SELECT count(*)::int FROM pg_catalog.pg_index i WHERE i.indrelid = j.partition_oid),
           j.is_default, j.sealed OR j.x_rows IS NOT NULL
    FROM judged j
    ORDER BY j.parent::text, j.range_start NULLS FIRST;
END $$;
COMMENT ON FUNCTION timepart.partition_stats(regclass) IS
    'Per-partition rows, size, oldest and newest record: exact for sealed partitions from the snapshot, estimates for live ones';

CREATE OR REPLACE FUNCTION timepart.snapshot_stats(as_of timestamptz DEFAULT now()) RETURNS integer
LANGUAGE plpgsql AS $$
/* Stores today's exact figures for every partition of every managed table (the
   seed's daily statistics generation). A partition whose change counters have not
   moved since its last snapshot is not counted again. Returns the rows stored. */
DECLARE
    started timestamptz := pg_catalog.clock_timestamp();
    p record;
    prev timepart.stats_history;
    rows bigint;
    oldest timestamptz;
    newest timestamptz;
    stored integer := 0;
    counted integer := 0;
BEGIN
    FOR p IN SELECT c.parent, c.key_column, c.time_zone, x.*, timepart._changes(x.partition_oid) AS changes
             FROM timepart.config c JOIN pg_catalog.pg_class r ON r.oid = c.parent
             CROSS JOIN LATERAL timepart._partitions(c.parent, c.time_zone) x LOOP
        SELECT * INTO prev FROM timepart.stats_history h WHERE h.partition_oid = p.partition_oid
        ORDER BY h.snapshot_date DESC LIMIT 1;
        IF FOUND AND prev.changes_seen = p.changes THEN
            rows := prev.record_count; oldest := prev.oldest_record; newest := prev.newest_record;
        ELSE
            EXECUTE format('SELECT count(*), min(%I)::timestamptz, max(%I)::timestamptz FROM %I.%I',
                           p.key_column, p.key_column, p.schema_name, p.partition_name) INTO rows, oldest, newest;
            counted := counted + 1;
        END IF;
        INSERT INTO timepart.stats_history AS h (snapshot_date, parent_table, partition_oid, partition_name, range_start,
                                                 range_end, record_count, size_bytes, oldest_record, newest_record, changes_seen)
        VALUES ((as_of AT TIME ZONE 'UTC')::date, p.parent, p.partition_oid, p.partition_name, p.range_start, p.range_end,
                rows, pg_catalog.pg_total_relation_size(p.partition_oid), oldest, newest, p.changes)
        ON CONFLICT (snapshot_date, partition_oid) DO UPDATE SET record_count = excluded.record_count,
            size_bytes = excluded.size_bytes, oldest_record = excluded.oldest_record, newest_record = excluded.newest_record,
            changes_seen = excluded.changes_seen, taken_at = excluded.taken_at, partition_name = excluded.partition_name;
        stored := stored + 1;
    END LOOP;
    PERFORM timepart._log('snapshot_stats', NULL, NULL, true,
                          jsonb_build_object('partitions', stored, 'counted', counted), NULL, started);
    RETURN stored;
END $$;
COMMENT ON FUNCTION timepart.snapshot_stats(timestamptz) IS 'Stores today''s exact per-partition figures; unchanged partitions are not recounted';

-- Alerts: rules evaluated over a table's partitions (pure, no side effects), and
-- check_alerts, which keeps each alert's lifecycle and announces new ones.

CREATE TABLE timepart.alerts (
    id              bigserial PRIMARY KEY,
    alert_type      text NOT NULL,
    severity        text NOT NULL CONSTRAINT alerts_severity_known CHECK (severity IN ('info', 'warning', 'critical')),
    parent_table    text NOT NULL,
    partition_name  text NOT NULL DEFAULT '',
    message         text NOT NULL,
    recommendation  text,
    value           numeric,
    threshold       numeric,
    first_seen      timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    last_seen       timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    resolved_at     timestamptz
);
CREATE UNIQUE INDEX alerts_one_open_idx ON timepart.alerts (alert_type, parent_table, partition_name) WHERE resolved_at IS NULL;
COMMENT ON TABLE timepart.alerts IS 'Every alert with its lifecycle: first seen, last seen, resolved';

CREATE OR REPLACE VIEW timepart.open_alerts AS
    SELECT a.alert_type, a.severity, a.parent_table, NULLIF(a.partition_name, '') AS partition_name, a.message,
           a.recommendation, a.value, a.threshold, a.first_seen, a.last_seen
    FROM timepart.alerts a WHERE a.resolved_at IS NULL
    ORDER BY CASE a.severity WHEN 'critical' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END, a.first_seen;
COMMENT ON VIEW timepart.open_alerts IS 'Alerts not resolved yet, most severe first';

-- The alerts one table raises at a moment. Pure: reads, never writes (so health()
-- works on a replica too).
CREATE OR REPLACE FUNCTION timepart._evaluate(tbl regclass, as_of timestamptz)
RETURNS TABLE (alert_type text, severity text, parent_table text, partition_name text, message text,
               recommendation text, value numeric, threshold numeric)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    cfg timepart.config := timepart._config(tbl);
    tz text := cfg.time_zone;
    cur timestamptz := timepart._period_start(as_of, cfg.partition_interval, tz);
    month_start timestamp := pg_catalog.date_trunc('month', as_of AT TIME ZONE tz);
    old_before timestamptz := ((as_of AT TIME ZONE tz) - cfg.alert_old_age) AT TIME ZONE tz;
    max_mb numeric := round(cfg.alert_max_size_bytes / 1048576.0, 2);
    default_part regclass;
    default_rows bigint := 0;
BEGIN
    -- Rows waiting in the default partition, counted up to a bound so a huge default stays cheap.
    SELECT NULLIF(pt.partdefid, 0)::regclass INTO default_part FROM pg_catalog.pg_partitioned_table pt WHERE pt.partrelid = tbl;
    IF default_part IS NOT NULL THEN
        EXECUTE format('SELECT count(*) FROM (SELECT 1 FROM %s LIMIT 1000000) d', default_part) INTO default_rows;
    END IF;

    RETURN QUERY
    WITH s AS MATERIALIZED (SELECT * FROM timepart.partition_stats(tbl)),
    growth AS (
        SELECT sum(s.record_count) FILTER (WHERE s.range_start >= (month_start - interval '1 month') AT TIME ZONE tz
                                              AND s.range_start < month_start AT TIME ZONE tz) AS last_month,
               sum(s.record_count) FILTER (WHERE s.range_start >= (month_start - interval '2 months') AT TIME ZONE tz
                                              AND s.range_start < (month_start - interval '1 month') AT TIME ZONE tz) AS month_before
        FROM s WHERE NOT s.is_default
    ), future AS (
        SELECT count(*) AS n FROM s WHERE NOT s.is_default AND s.range_start > as_of
    ), old AS (
        SELECT count(*) AS n, (array_agg(s.partition_name ORDER BY s.range_start))[1] AS oldest
        FROM s WHERE NOT s.is_default AND s.range_end <= old_before
    )
    SELECT 'partition_too_large', 'warning', tbl::text, s.partition_name,
           format('%s is %s MB, over %s MB', s.partition_name, s.size_mb, max_mb),
           'Use a shorter partition interval, or archive old data', s.size_mb, max_mb
    FROM s WHERE s.size_mb > max_mb
    UNION ALL
    SELECT 'partition_too_many_rows', 'warning', tbl::text, s.partition_name,
           format('%s holds %s rows, over %s', s.partition_name, s.record_count, cfg.alert_max_rows),
           'Use a shorter partition interval', s.record_count, cfg.alert_max_rows
    FROM s WHERE s.record_count > cfg.alert_max_rows
    UNION ALL
    SELECT 'missing_current_partition', 'critical', tbl::text, '',
           format('no partition of %s covers the current period starting %s', tbl, cur),
           'Create it now: run timepart.maintain()', 0, 1
    WHERE NOT EXISTS (SELECT 1 FROM s WHERE NOT s.is_default AND s.range_start <= as_of AND s.range_end > as_of)
    UNION ALL
    SELECT 'insufficient_future_partitions', 'warning', tbl::text, '',
           format('%s has %s future partition(s), fewer than %s', tbl, f.n, cfg.alert_min_future),
           'Run timepart.maintain() and check that its scheduled job runs', f.n, cfg.alert_min_future
    FROM future f WHERE f.n < cfg.alert_min_future
    UNION ALL
    SELECT 'old_partitions', 'info', tbl::text, o.oldest,
           format('%s has %s partition(s) older than %s', tbl, o.n, cfg.alert_old_age),
           'Consider archival: set a retention and run timepart.cleanup()', o.n, 0
    FROM old o WHERE o.n > 0
    UNION ALL
    SELECT 'high_growth', 'info', tbl::text, '',
           format('%s grew %s%% month over month (%s to %s rows)', tbl,
                  round((g.last_month - g.month_before) / g.month_before * 100), g.month_before, g.last_month),
           'Plan capacity: storage, retention and partition interval',
           round((g.last_month - g.month_before) / g.month_before, 3), cfg.alert_growth_ratio
    FROM growth g WHERE g.month_before > 0 AND (g.last_month - g.month_before) / g.month_before > cfg.alert_growth_ratio
    UNION ALL
    SELECT 'rows_in_default_partition', 'warning', tbl::text, default_part::text,
           format('%s%s row(s) wait in the default partition %s', CASE WHEN default_rows >= 1000000 THEN 'at least ' ELSE '' END,
                  default_rows, default_part),
           'Run timepart.maintain() to move them into partitions; rows past the premake horizon or the retention boundary stay',
           default_rows, 0
    WHERE default_rows > 0
    UNION ALL
    SELECT 'missing_index', 'warning', tbl::text, m.partition_name,
           format('%s lacks templated index(es) %s', m.partition_name, m.missing),
           'Back-fill them with timepart.add_index_template() (same arguments), or create them by hand', m.n, 0
    FROM timepart._missing_indexes(tbl) m;
END $$;

-- Partitions lacking a templated index (not attached to the template's parent index).
CREATE OR REPLACE FUNCTION timepart._missing_indexes(tbl regclass)
RETURNS TABLE (partition_name text, missing text, n numeric) LANGUAGE sql STABLE AS $$
    WITH t AS MATERIALIZED (
        SELECT it.suffix, timepart._template_parent_index(tbl, it.suffix) AS parent_idx
        FROM timepart.index_templates it WHERE it.parent = tbl
    )
    SELECT p.partition_name::text, string_agg(t.suffix, ', ' ORDER BY t.suffix), count(*)::numeric
    FROM timepart._partitions(tbl) p CROSS JOIN t
    WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_index i
                      JOIN pg_catalog.pg_inherits h ON h.inhrelid = i.indexrelid
                      WHERE i.indrelid = p.partition_oid AND h.inhparent = t.parent_idx)
    GROUP BY p.partition_name
$$;

CREATE OR REPLACE FUNCTION timepart.check_alerts(parent regclass DEFAULT NULL, as_of timestamptz DEFAULT now())
RETURNS TABLE (alert_type text, severity text, parent_table text, partition_name text, message text, recommendation text,
               value numeric, threshold numeric, first_seen timestamptz, last_seen timestamptz, is_new boolean)
LANGUAGE plpgsql AS $$
/* Evaluates the alert rules for every managed table (or one), keeps each alert's
   lifecycle (an open alert is updated, not duplicated; one no longer raised is
   resolved), announces new ones with pg_notify('timepart_alerts', json) and a
   WARNING, logs the run, and returns the open alerts. */
DECLARE
    started timestamptz := pg_catalog.clock_timestamp();
    cfg timepart.config;
    a record;
    now_ts timestamptz := pg_catalog.clock_timestamp();
    new_count integer := 0;
    resolved integer;
    checked text[] := '{}';
BEGIN
    IF check_alerts.parent IS NOT NULL THEN
        PERFORM timepart._config(check_alerts.parent);
    END IF;
    CREATE TEMP TABLE IF NOT EXISTS timepart_eval_alerts (alert_type text, severity text, parent_table text,
        partition_name text, message text, recommendation text, value numeric, threshold numeric) ON COMMIT DROP;
    TRUNCATE timepart_eval_alerts;
    FOR cfg IN SELECT c.* FROM timepart.config c JOIN pg_catalog.pg_class r ON r.oid = c.parent
               WHERE check_alerts.parent IS NULL OR c.parent = check_alerts.parent LOOP
        checked := checked || cfg.parent::text;
        INSERT INTO timepart_eval_alerts (alert_type, severity, parent_table, partition_name, message, recommendation, value, threshold)
        SELECT e.alert_type, e.severity, e.parent_table, coalesce(e.partition_name, ''), e.message, e.recommendation, e.value, e.threshold
        FROM timepart._evaluate(cfg.parent, as_of) e;
    END LOOP;

    FOR a IN SELECT e.* FROM timepart_eval_alerts e LOOP
        UPDATE timepart.alerts x SET last_seen = now_ts, message = a.message, value = a.value, threshold = a.threshold,
                                    severity = a.severity, recommendation = a.recommendation
        WHERE x.resolved_at IS NULL AND x.alert_type = a.alert_type AND x.parent_table = a.parent_table
          AND x.partition_name = a.partition_name;
        IF NOT FOUND THEN
            INSERT INTO timepart.alerts (alert_type, severity, parent_table, partition_name, message, recommendation, value,
                                         threshold, first_seen, last_seen)
            VALUES (a.alert_type, a.severity, a.parent_table, a.partition_name, a.message, a.recommendation, a.value,
                    a.threshold, now_ts, now_ts);
            new_count := new_count + 1;
            PERFORM pg_catalog.pg_notify('timepart_alerts', jsonb_build_object('alert_type', a.alert_type, 'severity', a.severity,
                'parent_table', a.parent_table, 'partition_name', NULLIF(a.partition_name, ''), 'message', a.message,
                'recommendation', a.recommendation, 'value', a.value, 'threshold', a.threshold, 'first_seen', now_ts)::text);
            RAISE WARNING 'timepart alert [%] %', a.severity, a.message USING HINT = coalesce(a.recommendation, '');
        END IF;
    END LOOP;
    UPDATE timepart.alerts x SET resolved_at = now_ts
    WHERE x.resolved_at IS NULL AND x.parent_table = ANY (checked)
      AND NOT EXISTS (SELECT 1 FROM timepart_eval_alerts e WHERE e.alert_type = x.alert_type
                      AND e.parent_table = x.parent_table AND e.partition_name = x.partition_name);
    GET DIAGNOSTICS resolved = ROW_COUNT;
    PERFORM timepart._log('check_alerts', check_alerts.parent, NULL, true,
        jsonb_build_object('tables', to_jsonb(checked), 'open', (SELECT count(*) FROM timepart_eval_alerts),
                           'new', new_count, 'resolved', resolved), NULL, started);
    RETURN QUERY
    SELECT x.alert_type, x.severity, x.parent_table, NULLIF(x.partition_name, ''), x.message, x.recommendation, x.value,
           x.threshold, x.first_seen, x.last_seen, x.first_seen = now_ts
    FROM timepart.alerts x
    WHERE x.resolved_at IS NULL AND x.parent_table = ANY (checked)
    ORDER BY CASE x.severity WHEN 'critical' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END, x.first_seen, x.id;
END $$;
COMMENT ON FUNCTION timepart.check_alerts(regclass, timestamptz) IS
    'Evaluates the alert rules, keeps each alert''s lifecycle, announces new ones on channel timepart_alerts; returns open alerts';

-- Health and summary: the seed's /health and /summary documents, computed from the
-- alert rules and statistics without side effects.

CREATE OR REPLACE FUNCTION timepart.health(parent regclass DEFAULT NULL, as_of timestamptz DEFAULT now())
RETURNS jsonb LANGUAGE plpgsql VOLATILE AS $$
/* The seed's /health shape: status healthy | warning | critical | error, issues,
   recommendations, partition_count, total_size_mb, oldest_partition,
   newest_partition. Info alerts are recommendations, not issues. It never raises:
   if evaluation fails, status is error with the reason. */
DECLARE
    tables regclass[];
    alerts jsonb;
    stats record;
    err text;
BEGIN
    IF health.parent IS NOT NULL AND NOT EXISTS (SELECT 1 FROM timepart.config c WHERE c.parent = health.parent) THEN
        RAISE EXCEPTION 'table % is not managed by timepart', health.parent;
    END IF;
    SELECT array_agg(c.parent ORDER BY c.parent::text) INTO tables
    FROM timepart.config c JOIN pg_catalog.pg_class r ON r.oid = c.parent
    WHERE health.parent IS NULL OR c.parent = health.parent;

    SELECT coalesce(jsonb_agg(to_jsonb(e) ORDER BY CASE e.severity WHEN 'critical' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END), '[]')
    INTO alerts FROM unnest(coalesce(tables, '{}')) t, timepart._evaluate(t, as_of) e;

    SELECT count(*) FILTER (WHERE NOT s.is_default) AS n, coalesce(round(sum(s.size_mb), 2), 0) AS mb,
           (array_agg(s.partition_name ORDER BY s.range_start) FILTER (WHERE NOT s.is_default))[1] AS oldest,
           (array_agg(s.partition_name ORDER BY s.range_start DESC) FILTER (WHERE NOT s.is_default))[1] AS newest
    INTO stats FROM unnest(coalesce(tables, '{}')) t, timepart.partition_stats(t) s;

    RETURN jsonb_build_object(
        'status', CASE WHEN alerts @> '[{"severity": "critical"}]' THEN 'critical'
                       WHEN alerts @> '[{"severity": "warning"}]' THEN 'warning' ELSE 'healthy' END,
        'issues', (SELECT coalesce(jsonb_agg(a->>'message'), '[]') FROM jsonb_array_elements(alerts) a WHERE a->>'severity' <> 'info'),
        'recommendations', (SELECT coalesce(jsonb_agg(DISTINCT a->>'recommendation'), '[]') FROM jsonb_array_elements(alerts) a),
        'partition_count', stats.n, 'total_size_mb', stats.mb,
        'oldest_partition', stats.oldest, 'newest_partition', stats.newest,
        'tables', (SELECT coalesce(jsonb_agg(t::text), '[]') FROM unnest(coalesce(tables, '{}')) t),
        'alerts', alerts, 'checked_at', pg_catalog.clock_timestamp());
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS err = MESSAGE_TEXT;
    RETURN jsonb_build_object('status', 'error', 'issues', jsonb_build_array('health evaluation failed: ' || err),
        'recommendations', jsonb_build_array('Check the table and timepart''s installation; see the server log'),
        'partition_count', NULL, 'total_size_mb', NULL, 'oldest_partition', NULL, 'newest_partition', NULL,
        'checked_at', pg_catalog.clock_timestamp());
END $$;
COMMENT ON FUNCTION timepart.health(regclass, timestamptz) IS
    'The seed''s /health document: healthy, warning, critical or error, with issues and recommendations; never raises';

CREATE OR REPLACE FUNCTION timepart.summary(parent regclass DEFAULT NULL, as_of timestamptz DEFAULT now())
RETURNS jsonb LANGUAGE plpgsql VOLATILE AS $$
/* The seed's /summary: health, per-partition stats, configuration, recent log and open alerts. */
BEGIN
    IF summary.parent IS NOT NULL THEN
        PERFORM timepart._config(summary.parent);
    END IF;
    RETURN jsonb_build_object(
        'health', timepart.health(summary.parent, as_of),
        'stats', (SELECT coalesce(jsonb_agg(to_jsonb(s)), '[]') FROM timepart.partition_stats(summary.parent) s),
        'configuration', (SELECT coalesce(jsonb_agg(to_jsonb(c) || jsonb_build_object('parent', c.parent::text)), '[]')
                          FROM timepart.config c WHERE summary.parent IS NULL OR c.parent = summary.parent),
        'jobs', '[]'::jsonb,
        'recent_log', (SELECT coalesce(jsonb_agg(to_jsonb(l)), '[]')
                       FROM (SELECT * FROM timepart.maintenance_log m
                             WHERE summary.parent IS NULL OR m.parent_table = summary.parent::text
                             ORDER BY m.created_at DESC, m.id DESC LIMIT 20) l),
        'open_alerts', (SELECT coalesce(jsonb_agg(to_jsonb(a)), '[]') FROM timepart.open_alerts a
                        WHERE summary.parent IS NULL OR a.parent_table = summary.parent::text),
        'generated_at', pg_catalog.clock_timestamp());
END $$;
COMMENT ON FUNCTION timepart.summary(regclass, timestamptz) IS 'The seed''s /summary document: health, stats, configuration, recent log, open alerts';

CREATE OR REPLACE FUNCTION public.get_email_events_partition_stats()
RETURNS TABLE (name text, period text, record_count bigint, size_mb numeric, oldest_record timestamptz,
               newest_record timestamptz, range_start timestamptz, range_end timestamptz, exact boolean)
LANGUAGE sql AS $$
    SELECT s.partition_name, s.period, s.record_count, s.size_mb, s.oldest_record, s.newest_record,
           s.range_start, s.range_end, s.exact
    FROM timepart.partition_stats(timepart._email_events()) s
$$;
COMMENT ON FUNCTION public.get_email_events_partition_stats() IS
    'Seed name: per-partition name, period, record_count, size_mb, oldest and newest record of email_events';
