-- The seed's cleanup call, verbatim, on now(): data is placed relative to the
-- transaction's fixed now(), so no month boundary can flip the result.
\ir setup.psql
SELECT plan(6);
SELECT timepart.create_email_events_table();
CREATE TEMP TABLE months AS
SELECT date_trunc('month', now() AT TIME ZONE 'UTC') - n * interval '1 month' AS start_local, n FROM generate_series(11, 14) n;
SELECT create_email_events_partition(start_local::date, (start_local + interval '1 month')::date) FROM months;
INSERT INTO email_events (workspace_id, campaign_id, lead_id, event_type, created_at)
SELECT gen_random_uuid(), gen_random_uuid(), gen_random_uuid(), 'click', (m.start_local + g * interval '1 hour') AT TIME ZONE 'UTC'
FROM months m, generate_series(1, m.n) g;

SELECT results_eq($$SELECT * FROM cleanup_old_email_events_partitions(12)$$,
    $$SELECT 'email_events_' || to_char(start_local, 'YYYY_MM'), n::bigint FROM months WHERE n > 12 ORDER BY n DESC$$,
    'SELECT * FROM cleanup_old_email_events_partitions(12) drops the months 13 and 14 back with their row counts');
SELECT is((SELECT count(*) FROM months m WHERE to_regclass('email_events_' || to_char(m.start_local, 'YYYY_MM')) IS NOT NULL),
          2::bigint, 'months 11 and 12 back stay');
SELECT is((SELECT count(*) FROM email_events), 23::bigint, 'only the dropped months'' rows are gone');
SELECT throws_ok($$SELECT * FROM cleanup_old_email_events_partitions(0)$$, '22023',
                 'retention_months must be a positive number of months', 'zero months is refused');
SELECT throws_ok($$SELECT * FROM cleanup_old_email_events_partitions(-1)$$, '22023',
                 'retention_months must be a positive number of months', 'negative months are refused');
SELECT throws_ok($$SELECT * FROM cleanup_old_email_events_partitions(NULL)$$, '22023',
                 'retention_months must be a positive number of months', 'NULL months are refused');

SELECT * FROM finish();
ROLLBACK;
