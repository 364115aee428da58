-- Health and summary: the seed's /health and /summary documents, computed from the
-- alert rules and statistics without side effects.

CREATE OR REPLACE FUNCTION timepart.health(parent regclass DEFAULT NULL, as_of timestamptz DEFAULT now())
RETURNS jsonb LANGUAGE plpgsql VOLATILE AS $$
/* The seed's /health shape: status healthy | warning | critical | error, issues,
   recommendations, partition_count, total_size_mb, oldest_partition,
   newest_partition. Info alerts are recommendations, not issues. It never raises:
   if evaluation fails, status is error with the reason. */
BEGIN
    RETURN timepart._health(health.parent, as_of, NULL);
END $$;

-- Each managed table's partition_stats (all, or one), as {"table": [rows...]}: health's
-- rules, its totals and summary's stats share one reading.
CREATE OR REPLACE FUNCTION timepart._stats_by_table(parent regclass) RETURNS jsonb
LANGUAGE sql VOLATILE
BEGIN ATOMIC
    SELECT coalesce(jsonb_object_agg(c.parent::text, (SELECT coalesce(jsonb_agg(to_jsonb(s)), '[]'::jsonb)
                                                      FROM timepart.partition_stats(c.parent) s)), '{}'::jsonb)
    FROM timepart._managed(parent) c;
END;

-- health's document from statistics already read (NULL: read them here).
CREATE OR REPLACE FUNCTION timepart._health(parent regclass, as_of timestamptz, per_table jsonb)
RETURNS jsonb LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    tables regclass[];
    alerts jsonb;
    stats record;
    err text;
BEGIN
    PERFORM timepart._check_moment(as_of);
    IF _health.parent IS NOT NULL AND NOT EXISTS (SELECT 1 FROM timepart.config c WHERE c.parent = _health.parent) THEN
        RAISE EXCEPTION 'table % is not managed by timepart', _health.parent;
    END IF;
    per_table := coalesce(per_table, timepart._stats_by_table(_health.parent));
    -- The tables are the statistics' keys (each table's name as text), in the same order.
    SELECT array_agg(t.k::regclass ORDER BY t.k) INTO tables FROM jsonb_object_keys(per_table) t(k);

    SELECT coalesce(jsonb_agg(to_jsonb(e) ORDER BY CASE e.severity WHEN 'critical' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END), '[]')
    INTO alerts FROM (
        SELECT x.* FROM unnest(coalesce(tables, '{}')) t, timepart._evaluate(t, as_of, per_table->(t::text)) x
        UNION ALL
        SELECT j.* FROM timepart._evaluate_jobs(as_of) j
        WHERE _health.parent IS NULL AND EXISTS (SELECT 1 FROM timepart.jobs)) e;  -- no jobs: not even called

    SELECT count(*) FILTER (WHERE NOT s.is_default) AS n, coalesce(round(sum(s.size_mb), 2), 0) AS mb,
           (array_agg(s.partition_name ORDER BY s.range_start) FILTER (WHERE NOT s.is_default))[1] AS oldest,
           (array_agg(s.partition_name ORDER BY s.range_start DESC) FILTER (WHERE NOT s.is_default))[1] AS newest
    INTO stats FROM jsonb_each(per_table) t, jsonb_populate_recordset(NULL::timepart.partition_stats_row, t.value) s;

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
/* The seed's /summary: health, per-partition stats, configuration, scheduled jobs with
   their latest runs, recent log and open alerts. */
DECLARE
    per_table jsonb;
BEGIN
    IF summary.parent IS NOT NULL THEN
        PERFORM timepart._config(summary.parent);
    END IF;
    -- The statistics once, for health and for the stats below (in partition_stats' order).
    per_table := timepart._stats_by_table(summary.parent);
    RETURN jsonb_build_object(
        'health', timepart._health(summary.parent, as_of, per_table),
        'stats', (SELECT coalesce(jsonb_agg(x.r ORDER BY t.key, x.n), '[]')
                  FROM jsonb_each(per_table) t, jsonb_array_elements(t.value) WITH ORDINALITY AS x(r, n)),
        'configuration', (SELECT coalesce(jsonb_agg(to_jsonb(c) || jsonb_build_object('parent', c.parent::text)), '[]')
                          FROM timepart.config c WHERE summary.parent IS NULL OR c.parent = summary.parent),
        'jobs', CASE WHEN EXISTS (SELECT 1 FROM timepart.jobs) THEN timepart._jobs_summary() ELSE '[]'::jsonb END,
        'recent_log', (SELECT coalesce(jsonb_agg(to_jsonb(l)), '[]')
                       FROM (SELECT * FROM timepart.maintenance_log m
                             WHERE summary.parent IS NULL OR m.parent_table = summary.parent::text
                             ORDER BY m.created_at DESC, m.id DESC LIMIT 20) l),
        'open_alerts', (SELECT coalesce(jsonb_agg(to_jsonb(a)), '[]') FROM timepart.open_alerts a
                        WHERE summary.parent IS NULL OR a.parent_table = summary.parent::text),
        'generated_at', pg_catalog.clock_timestamp());
END $$;
COMMENT ON FUNCTION timepart.summary(regclass, timestamptz) IS 'The seed''s /summary document: health, stats, configuration, jobs, recent log, open alerts';
