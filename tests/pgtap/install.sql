-- Installing: the schema, the public API, the seed names; DROP EXTENSION keeps user data.
\ir setup.psql
SELECT plan(16);

SELECT has_schema('timepart', 'the timepart schema exists');
SELECT is(timepart.version(), (SELECT extversion FROM pg_extension WHERE extname = 'timepart'), 'version() matches the installed extension');
SELECT has_table('timepart', 'config', 'configuration table exists');
SELECT has_table('timepart', 'index_templates', 'index template table exists');
SELECT has_table('timepart', 'maintenance_log', 'maintenance log table exists');
SELECT has_function('timepart', 'manage', ARRAY['regclass','interval','integer','interval','boolean','interval','text','timestamp with time zone'], 'manage() exists');
SELECT has_function('timepart', 'create_partition', ARRAY['regclass','timestamp with time zone','timestamp with time zone'], 'create_partition() exists');
SELECT has_function('timepart', 'maintain', ARRAY['regclass','integer','timestamp with time zone'], 'maintain() exists');
SELECT has_function('public', 'create_email_events_partition', ARRAY['date','date'], 'seed create_email_events_partition(start, end) exists');
SELECT has_function('public', 'maintain_email_events_partitions', 'seed maintain_email_events_partitions() exists');
SELECT has_function('public', 'get_partition_maintenance_log', ARRAY['integer'], 'seed get_partition_maintenance_log(limit) exists');
SELECT has_view('public', 'partition_maintenance_log', 'seed partition_maintenance_log view exists');

-- A user's table and rows survive DROP EXTENSION.
SELECT timepart.create_email_events_table('public', '2024-03-15 12:00+00');
INSERT INTO email_events (workspace_id, campaign_id, lead_id, event_type, created_at)
SELECT gen_random_uuid(), gen_random_uuid(), gen_random_uuid(), 'click', '2024-03-10'::timestamptz + g * interval '1 hour'
FROM generate_series(1, 50) g;
DROP EXTENSION timepart;
SELECT hasnt_schema('timepart', 'DROP EXTENSION removes the timepart schema');
SELECT has_table('public', 'email_events', 'email_events survives DROP EXTENSION');
SELECT is((SELECT count(*) FROM email_events), 50::bigint, 'every row survives DROP EXTENSION');
SELECT is((SELECT count(*) FROM pg_inherits WHERE inhparent = 'email_events'::regclass), 8::bigint,
          'every partition (current, 6 ahead, default) survives DROP EXTENSION');

SELECT * FROM finish();
ROLLBACK;
