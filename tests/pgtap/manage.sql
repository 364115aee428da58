-- manage(): adopting a table, and every refusal with nothing changed.
\ir setup.psql
SELECT plan(25);

CREATE TABLE plain_t (ts timestamptz);
CREATE TABLE list_t (ts timestamptz, k int) PARTITION BY LIST (k);
CREATE TABLE two_t (a timestamptz, b timestamptz) PARTITION BY RANGE (a, b);
CREATE TABLE int_t (n int) PARTITION BY RANGE (n);
CREATE TABLE expr_t (ts timestamp) PARTITION BY RANGE ((ts::date));
CREATE TABLE ev (id bigint, ts timestamptz NOT NULL) PARTITION BY RANGE (ts);

SELECT throws_ok($$SELECT timepart.manage('plain_t')$$, '22023', 'table public.plain_t is not partitioned', 'a plain table is refused');
SELECT throws_ok($$SELECT timepart.manage('list_t')$$, '22023', 'table public.list_t is not partitioned by range on a single column', 'LIST partitioning is refused');
SELECT throws_ok($$SELECT timepart.manage('two_t')$$, '22023', 'table public.two_t is not partitioned by range on a single column', 'a two-column key is refused');
SELECT throws_ok($$SELECT timepart.manage('expr_t')$$, '22023', 'table public.expr_t is not partitioned by range on a single column', 'an expression key is refused');
SELECT throws_ok($$SELECT timepart.manage('int_t')$$, '22023', 'key column public.int_t.n is not a time column', 'an integer key is refused');
SELECT throws_ok($$SELECT timepart.manage('ev', '24 hours')$$, '22023', 'partition interval must be a whole number of days or of months', 'an interval in hours is refused');
SELECT throws_ok($$SELECT timepart.manage('ev', '1 month 1 day')$$, '22023', 'partition interval must be a whole number of days or of months', 'months and days mixed are refused');
SELECT throws_ok($$SELECT timepart.manage('ev', '-1 month')$$, '22023', 'partition interval must be a whole number of days or of months', 'a negative interval is refused');
SELECT throws_ok($$SELECT timepart.manage('ev', '1 month', 0)$$, '22023', 'premake must be between 1 and 1000', 'premake 0 is refused');
SELECT throws_ok($$SELECT timepart.manage('ev', '1 month', -3)$$, '22023', 'premake must be between 1 and 1000', 'negative premake is refused');
SELECT throws_ok($$SELECT timepart.manage('ev', '1 month', 6, '-1 month')$$, '22023', 'retention must be positive', 'negative retention is refused');
SELECT throws_ok($$SELECT timepart.manage('ev', '1 month', 6, NULL, true, '0')$$, '22023', 'lock_timeout must be a whole number of milliseconds from 1 ms to 1 minute', 'a zero lock budget is refused');
-- PostgreSQL counts lock_timeout in whole milliseconds, and 0 is no limit: 0.4 ms would wait forever.
SELECT throws_ok($$SELECT timepart.manage('ev', '1 month', 6, NULL, true, '0.4 ms')$$, '22023',
                 'lock_timeout must be a whole number of milliseconds from 1 ms to 1 minute', 'a budget under 1 ms is refused');
SELECT throws_ok($$SELECT timepart.manage('ev', '1 month', 6, NULL, true, '1.5 ms')$$, '22023',
                 'lock_timeout must be a whole number of milliseconds from 1 ms to 1 minute', 'a budget of a part of a millisecond is refused');
SELECT throws_ok($$INSERT INTO timepart.config (parent, key_column, key_type, lock_timeout) VALUES ('ev', 'created_at', 'timestamptz', '0.4 ms')$$,
                 '23514', NULL, 'a direct INSERT of such a budget is refused by the table''s constraint');
SELECT throws_ok($$SELECT timepart.manage('ev', '1 month', 6, NULL, true, '100ms', 'Mars/Olympus')$$, '22023', 'unknown time zone "Mars/Olympus"', 'an unknown time zone is refused');
SELECT throws_ok($$SELECT timepart.manage(NULL)$$, '22004', 'parent table must not be NULL', 'a NULL table is refused');
SELECT is((SELECT count(*) FROM timepart.config), 0::bigint, 'no refused call left a configuration row');
SELECT is((SELECT count(*) FROM pg_inherits WHERE inhparent = 'ev'::regclass), 0::bigint, 'no refused call created a partition');

-- Adopting: current period, 3 ahead, default partition.
SELECT is(timepart.manage('ev', '1 month', 3, as_of => '2024-03-15 12:00+00')->'created_partitions',
          '["ev_default", "ev_2024_03", "ev_2024_04", "ev_2024_05", "ev_2024_06"]'::jsonb,
          'manage creates the default, the current and 3 future partitions');
SELECT is(timepart.manage('ev', '1 month', 3, as_of => '2024-03-15 12:00+00')->'created_partitions', '[]'::jsonb,
          'manage again creates nothing');
SELECT throws_ok($$SELECT timepart.manage('ev', '1 day')$$, '22023', 'table public.ev is already managed with interval 1 mon',
                 'changing the interval of a managed table is refused');
SELECT is(timepart.unmanage('ev'), true, 'unmanage returns true');
SELECT is((SELECT count(*) FROM pg_inherits WHERE inhparent = 'ev'::regclass), 5::bigint, 'unmanage keeps every partition');
SELECT throws_ok($$SELECT timepart.maintain('ev')$$, '22023', 'table public.ev is not managed by timepart', 'an unmanaged table cannot be maintained');

SELECT * FROM finish();
ROLLBACK;
