-- configure(): settings from JSON, each refusal changing nothing.
\ir setup.psql
SELECT plan(10);
CREATE TABLE ev (ts timestamptz NOT NULL) PARTITION BY RANGE (ts);
SELECT timepart.manage('ev', '1 month', 2, as_of => '2024-03-15');

SELECT is(timepart.configure('ev', '{"premake": 4, "retention": "12 months", "lock_retries": 5}')->>'premake', '4',
          'configure sets premake');
SELECT is((SELECT (retention, lock_retries)::text FROM timepart.config WHERE parent = 'ev'::regclass), '("1 year",5)',
          'configure sets retention and lock_retries');
SELECT throws_ok($$SELECT timepart.configure('ev', '{"premake": 0}')$$, '22023', 'premake must be between 1 and 1000', 'premake 0 is refused');
SELECT throws_ok($$SELECT timepart.configure('ev', '{"retention_action": "shred"}')$$, '22023',
                 'retention_action must be drop, detach or archive', 'an unknown retention action is refused');
SELECT throws_ok($$SELECT timepart.configure('ev', '{"retention_action": "archive"}')$$, '22023',
                 'retention_action archive needs an archive_schema', 'archive without a schema is refused');
SELECT throws_ok($$SELECT timepart.configure('ev', '{"partition_interval": "1 day"}')$$, '22023',
                 'unknown or fixed setting(s): partition_interval', 'the interval cannot be changed by configure');
SELECT throws_ok($$SELECT timepart.configure('ev', '{"colour": "blue"}')$$, '22023',
                 'unknown or fixed setting(s): colour', 'an unknown key is refused');
SELECT throws_ok($$SELECT timepart.configure('ev', '{"retention": "soon"}')$$, '22023', NULL, 'a value of the wrong type is refused');
SELECT throws_ok($$SELECT timepart.configure('ev', '{"alert_max_rows": -1}')$$, '22023', 'alert thresholds must be positive',
                 'a negative threshold is refused');
SELECT is((SELECT (premake, retention, retention_action, alert_max_rows)::text FROM timepart.config WHERE parent = 'ev'::regclass),
          '(4,"1 year",drop,10000000)', 'refused calls changed nothing');

SELECT * FROM finish();
ROLLBACK;
