-- The maintenance log: every outcome, failures included, newest first.
\ir setup.psql
SELECT plan(7);
CREATE TABLE ev (ts timestamptz NOT NULL) PARTITION BY RANGE (ts);
SELECT timepart.manage('ev', '1 month', 1, as_of => '2024-03-15');

-- Something in the way of next month's partition: maintain reports it, logs it, and goes on.
CREATE TABLE ev_2024_05 (x int);
SELECT is(timepart.maintain('ev', 2, '2024-03-15')->'success', 'false'::jsonb, 'a run that could not create a partition reports failure');
SELECT is((SELECT count(*) FROM timepart.maintenance_log WHERE partition_name = 'ev_2024_05' AND NOT success
           AND error LIKE 'relation public.ev_2024_05 already exists%'), 1::bigint, 'the failure is logged with its error');
SELECT is((SELECT error IS NOT NULL FROM timepart.maintenance_log WHERE operation_type = 'maintain' ORDER BY id DESC LIMIT 1), true,
          'the run''s own log row carries the error');
SELECT is((SELECT run_by FROM timepart.maintenance_log ORDER BY id DESC LIMIT 1), session_user, 'the log records who ran it');
SELECT is((SELECT count(*) FROM timepart.get_maintenance_log(2)), 2::bigint, 'get_maintenance_log(limit) returns that many rows');
SELECT is((SELECT array_agg(id) FROM get_partition_maintenance_log(100)),
          (SELECT array_agg(id ORDER BY created_at DESC, id DESC) FROM partition_maintenance_log), 'the seed log function returns newest first');
SELECT throws_ok($$SELECT * FROM timepart.get_maintenance_log(0)$$, '22023', 'log limit must be a positive number', 'a zero limit is refused');

SELECT * FROM finish();
ROLLBACK;
