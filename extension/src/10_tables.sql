-- Tables: configuration (one row per managed table), index templates, maintenance log.

CREATE TABLE timepart.config (
    parent              regclass PRIMARY KEY,
    key_column          name NOT NULL,
    key_type            regtype NOT NULL,
    partition_interval  interval NOT NULL DEFAULT '1 month',
    premake             integer NOT NULL DEFAULT 6,
    retention           interval,
    retention_action    text NOT NULL DEFAULT 'drop',
    archive_schema      name,
    default_partition   boolean NOT NULL DEFAULT true,
    lock_timeout        interval NOT NULL DEFAULT '100 milliseconds',
    lock_retries        integer NOT NULL DEFAULT 3,
    time_zone           text NOT NULL DEFAULT 'UTC',
    alert_max_size_bytes    bigint NOT NULL DEFAULT 5368709120,
    alert_max_rows          bigint NOT NULL DEFAULT 10000000,
    alert_min_future        integer NOT NULL DEFAULT 2,
    alert_growth_ratio      numeric NOT NULL DEFAULT 0.5,
    alert_old_age           interval NOT NULL DEFAULT '13 months',
    created_at          timestamptz NOT NULL DEFAULT now(),
    interval_anchor     timestamptz,
    monitor_sees_values boolean NOT NULL DEFAULT false,
    partition_options   jsonb NOT NULL DEFAULT '{}'::jsonb,
    partition_unlogged  boolean NOT NULL DEFAULT false,
    CONSTRAINT config_partition_options_object CHECK (jsonb_typeof(partition_options) = 'object'),
    CONSTRAINT config_key_type_is_time CHECK (key_type IN ('timestamptz'::regtype, 'timestamp'::regtype, 'date'::regtype)),
    CONSTRAINT config_interval_whole_days_or_months CHECK (
        partition_interval = pg_catalog.make_interval(months => pg_catalog.date_part('month', partition_interval)::int
                                                      + 12 * pg_catalog.date_part('year', partition_interval)::int,
                                                      days => pg_catalog.date_part('day', partition_interval)::int)
        AND (pg_catalog.date_part('day', partition_interval) = 0
             OR (pg_catalog.date_part('month', partition_interval) = 0 AND pg_catalog.date_part('year', partition_interval) = 0))
        AND partition_interval > interval '0'),
    CONSTRAINT config_premake_positive CHECK (premake > 0 AND premake <= 1000),
    CONSTRAINT config_retention_positive CHECK (retention IS NULL OR retention > interval '0'),
    CONSTRAINT config_retention_action_known CHECK (retention_action IN ('drop', 'detach', 'archive')),
    CONSTRAINT config_archive_needs_schema CHECK (retention_action <> 'archive' OR archive_schema IS NOT NULL),
    CONSTRAINT config_lock_timeout_bounded CHECK (lock_timeout >= interval '1 millisecond' AND lock_timeout <= interval '1 minute'
        AND extract(epoch FROM lock_timeout) * 1000 = floor(extract(epoch FROM lock_timeout) * 1000)),
    CONSTRAINT config_lock_retries_bounded CHECK (lock_retries BETWEEN 0 AND 20),
    CONSTRAINT config_alert_thresholds_positive CHECK (alert_max_size_bytes > 0 AND alert_max_rows > 0
        AND alert_min_future >= 0 AND alert_growth_ratio > 0 AND alert_old_age > interval '0')
);
COMMENT ON TABLE timepart.config IS 'One row per table timepart manages: interval, premake, retention, lock budget, alert thresholds';
COMMENT ON COLUMN timepart.config.partition_interval IS 'Width of one partition: a whole number of days or of months';
COMMENT ON COLUMN timepart.config.premake IS 'How many future partitions maintain keeps ahead of the current one';
COMMENT ON COLUMN timepart.config.retention IS 'Partitions wholly older than (start of current period - retention) are removed by cleanup; NULL keeps everything';
COMMENT ON COLUMN timepart.config.lock_timeout IS 'Longest a maintenance step waits for a lock before backing off';
COMMENT ON COLUMN timepart.config.interval_anchor IS 'Where periods of the current interval start counting (set by change_interval); NULL: natural boundaries';
COMMENT ON COLUMN timepart.config.monitor_sees_values IS 'Whether roles that may not SELECT the table see its exact oldest and newest key values in stats (counts and sizes they always see)';
COMMENT ON COLUMN timepart.config.partition_options IS 'Storage parameters every new partition gets (fillfactor, autovacuum_*, toast.*), e.g. {"fillfactor": 90}';
COMMENT ON COLUMN timepart.config.partition_unlogged IS 'Whether new partitions are UNLOGGED (not crash-safe, not replicated; faster writes)';
COMMENT ON COLUMN timepart.config.time_zone IS 'Time zone in which period boundaries (midnight, first of month) are computed';
SELECT timepart._config_dump('timepart.config');

CREATE TABLE timepart.index_templates (
    parent          regclass NOT NULL REFERENCES timepart.config (parent) ON DELETE CASCADE,
    suffix          text NOT NULL,
    columns         text NOT NULL,
    method          text NOT NULL DEFAULT 'btree',
    where_clause    text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (parent, suffix),
    CONSTRAINT index_templates_suffix_simple CHECK (suffix ~ '^[a-z0-9_]{1,40}$'),
    CONSTRAINT index_templates_single_statement CHECK (position(';' IN columns) = 0
        AND position(';' IN coalesce(where_clause, '')) = 0)
);
COMMENT ON TABLE timepart.index_templates IS 'Indexes every partition of a managed table gets, named <partition>_<suffix>';
SELECT timepart._config_dump('timepart.index_templates');

CREATE TABLE timepart.maintenance_log (
    id              bigserial PRIMARY KEY,
    operation_type  text NOT NULL,
    parent_table    text,
    partition_name  text,
    success         boolean NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    details         jsonb NOT NULL DEFAULT '{}',
    error           text,
    duration        interval,
    run_by          name NOT NULL DEFAULT session_user,
    run_as          name NOT NULL DEFAULT current_user
);
CREATE INDEX maintenance_log_created_at_idx ON timepart.maintenance_log (created_at DESC);
CREATE INDEX maintenance_log_table_idx ON timepart.maintenance_log (parent_table, operation_type, id DESC);
-- pg_dump keeps the log (the seed's audit trail) and its ids.
SELECT timepart._config_dump('timepart.maintenance_log');
SELECT timepart._config_dump('timepart.maintenance_log_id_seq');
COMMENT ON TABLE timepart.maintenance_log IS 'Every timepart operation and its outcome, failures included';
COMMENT ON COLUMN timepart.maintenance_log.run_by IS 'session_user of the run';
COMMENT ON COLUMN timepart.maintenance_log.run_as IS 'current_user of the run (differs under SECURITY DEFINER)';
