-- What a partition inherits from its parent, on every path that makes one (manage,
-- maintain, create_partition, gap fill, change_interval, the default partition):
-- privileges (column ones too), row-level security with the policies, replica identity,
-- the comment, partition_options and UNLOGGED; sync_partitions and the partition_drift
-- alert for later changes. (The tablespace: tests/py/test_inherit.py, since CREATE
-- TABLESPACE cannot run in this file's transaction.)
\ir setup.psql
SELECT plan(33);

CREATE ROLE tp_reader;
CREATE ROLE tp_clerk;
CREATE TABLE ev (id bigint NOT NULL, tenant text NOT NULL, ts timestamptz NOT NULL, note text,
                 CONSTRAINT ev_id_ts UNIQUE (id, ts)) PARTITION BY RANGE (ts);
COMMENT ON TABLE ev IS 'events, one row each';
GRANT SELECT ON ev TO tp_reader;
GRANT UPDATE (note) ON ev TO tp_clerk;
ALTER TABLE ev ENABLE ROW LEVEL SECURITY;
ALTER TABLE ev FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_a ON ev FOR SELECT TO tp_reader USING (tenant = 'a');
ALTER TABLE ev REPLICA IDENTITY USING INDEX ev_id_ts;

SELECT timepart.manage('ev', '1 month', 2, as_of => '2024-03-15');
SELECT throws_ok($$SELECT timepart.configure('ev', '{"partition_options": {"fillfactr": 90}}')$$, '22023',
                 'invalid partition_options: unrecognized parameter "fillfactr"', 'an unknown storage option is refused');
SELECT is((SELECT partition_options FROM timepart.config WHERE parent = 'ev'::regclass), '{}'::jsonb, 'and nothing changed');
SELECT timepart.configure('ev', '{"partition_options": {"fillfactor": 90, "autovacuum_vacuum_scale_factor": 0.01}}');

-- Partitions made by each path.
SELECT timepart.maintain('ev', 3, '2024-03-15');                         -- maintain: ev_2024_06
SELECT timepart.create_partition('ev', '2024-09-01', '2024-10-01');      -- create_partition
DROP TABLE ev_2024_04;
SELECT timepart.maintain('ev', 3, '2024-03-15');                         -- gap fill: ev_2024_04 again
SELECT timepart.change_interval('ev', '1 day', '2024-09-30');            -- daily from the end of the last month
CREATE TEMP TABLE born AS
    SELECT c.oid::regclass AS part, c.relname::text AS name FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid
    WHERE h.inhparent = 'ev'::regclass AND c.relname IN ('ev_2024_03', 'ev_2024_04', 'ev_2024_06', 'ev_2024_09', 'ev_default')
       OR h.inhparent = 'ev'::regclass AND c.relname = (SELECT min(x.relname) FROM pg_inherits y JOIN pg_class x ON x.oid = y.inhrelid
                                                         WHERE y.inhparent = 'ev'::regclass AND x.relname ~ '^ev_2024_10_\d\d$');
SELECT is((SELECT count(*) FROM born), 6::bigint, 'six partitions, one from each path');
-- ev_2024_03 and the default were born before partition_options were set: only they lack them.

SELECT is((SELECT string_agg(b.name, ', ' ORDER BY b.name) FROM born b WHERE NOT has_table_privilege('tp_reader', b.part, 'SELECT')),
          NULL, 'every partition grants SELECT to the parent''s reader');
SELECT is((SELECT string_agg(b.name, ', ' ORDER BY b.name) FROM born b WHERE NOT has_column_privilege('tp_clerk', b.part, 'note', 'UPDATE')),
          NULL, 'every partition carries the parent''s column privilege');
SELECT is((SELECT string_agg(b.name, ', ' ORDER BY b.name) FROM born b WHERE has_column_privilege('tp_clerk', b.part, 'tenant', 'UPDATE')),
          NULL, 'and no more than it');
SELECT is((SELECT string_agg(b.name, ', ' ORDER BY b.name) FROM born b WHERE obj_description(b.part, 'pg_class') IS DISTINCT FROM 'events, one row each'),
          NULL, 'every partition has the parent''s comment');
SELECT is((SELECT string_agg(b.name, ', ' ORDER BY b.name) FROM born b JOIN pg_class c ON c.oid = b.part
           WHERE NOT (c.relrowsecurity AND c.relforcerowsecurity)), NULL, 'every partition has row security enabled and forced');
SELECT is((SELECT string_agg(b.name, ', ' ORDER BY b.name) FROM born b
           WHERE (SELECT count(*) FROM pg_policy p WHERE p.polrelid = b.part AND p.polname = 'tenant_a') <> 1), NULL,
          'every partition has the parent''s policy');
SELECT is((SELECT string_agg(b.name, ', ' ORDER BY b.name) FROM born b
           WHERE NOT EXISTS (SELECT 1 FROM pg_index i JOIN pg_inherits x ON x.inhrelid = i.indexrelid
                             WHERE i.indrelid = b.part AND i.indisreplident AND x.inhparent = 'ev_id_ts'::regclass)),
          NULL, 'every partition''s replica identity is its index of the parent''s identity index');
SELECT is((SELECT string_agg(b.name, ', ' ORDER BY b.name) FROM born b JOIN pg_class c ON c.oid = b.part
           WHERE NOT coalesce(c.reloptions @> ARRAY['fillfactor=90', 'autovacuum_vacuum_scale_factor=0.01'], false)),
          'ev_2024_03, ev_default', 'partitions made after partition_options was set have those options');
SELECT is((SELECT c.relowner::regrole::text FROM pg_class c WHERE c.oid = 'ev_2024_09'::regclass), current_user::text,
          'a partition belongs to the parent''s owner');

-- A role allowed to read one tenant sees no more through a partition than through the parent.
INSERT INTO ev SELECT g, CASE WHEN g % 3 = 0 THEN 'a' ELSE 'b' END, '2024-03-01'::timestamptz + g * interval '1 hour', NULL
FROM generate_series(1, 300) g;
SET LOCAL ROLE tp_reader;
SELECT is((SELECT count(*) FROM ev), 100::bigint, 'through the parent the reader sees tenant a''s 100 rows');
SELECT is((SELECT count(*) FROM ev_2024_03), 100::bigint, 'through the partition, the same 100');
SELECT is((SELECT count(*) FROM ev_2024_03 WHERE tenant <> 'a'), 0::bigint, 'and none of tenant b''s');
RESET ROLE;

-- Later changes to the parent: drift, the alert, sync_partitions.
SELECT results_eq($$SELECT DISTINCT partition_name FROM timepart.sync_partitions('ev', dry_run => true) s WHERE s.statement IS NOT NULL ORDER BY 1$$, ARRAY['ev_2024_03', 'ev_2024_05', 'ev_default'],
          'only the partitions born before partition_options differ (their options)');
SELECT timepart.sync_partitions('ev');
GRANT INSERT ON ev TO tp_reader;
REVOKE UPDATE (note) ON ev FROM tp_clerk;
CREATE POLICY tenant_a_insert ON ev FOR INSERT TO tp_reader WITH CHECK (tenant = 'a');
ALTER TABLE ev NO FORCE ROW LEVEL SECURITY;
COMMENT ON TABLE ev IS 'events';
CREATE TEMP TABLE plan AS SELECT * FROM timepart.sync_partitions('ev', dry_run => true);
SELECT is((SELECT count(DISTINCT partition_name) FROM plan), (SELECT count(*) FROM pg_inherits WHERE inhparent = 'ev'::regclass),
          'after the parent changed, every partition differs');
SELECT is((SELECT string_agg(DISTINCT property, ', ' ORDER BY property) FROM plan),
          'column privilege, comment, forced row security, policy, privilege', 'in each changed property');
SELECT ok(NOT has_table_privilege('tp_reader', 'ev_2024_06', 'INSERT'), 'a dry run changes nothing');
SELECT ok(EXISTS (SELECT 1 FROM timepart._evaluate('ev', '2024-03-15') e WHERE e.alert_type = 'partition_drift'),
          'the partition_drift alert fires');
SELECT is((SELECT count(*) FROM timepart.sync_partitions('ev') s WHERE NOT s.applied), 0::bigint, 'sync_partitions applies every difference');
SELECT is((SELECT count(*) FROM timepart._partition_drift('ev')), 0::bigint, 'afterwards no partition differs');
SELECT ok(has_table_privilege('tp_reader', 'ev_2024_06', 'INSERT') AND NOT has_column_privilege('tp_clerk', 'ev_2024_06', 'note', 'UPDATE'),
          'the new grant and the revoke reached the partitions');
SELECT ok((SELECT NOT relforcerowsecurity FROM pg_class WHERE oid = 'ev_2024_06'::regclass)
          AND EXISTS (SELECT 1 FROM pg_policy WHERE polrelid = 'ev_2024_06'::regclass AND polname = 'tenant_a_insert'),
          'and so did the row-security change and the new policy');
SELECT ok(NOT EXISTS (SELECT 1 FROM timepart._evaluate('ev', '2024-03-15') e WHERE e.alert_type = 'partition_drift'),
          'the alert resolves');
SELECT ok(EXISTS (SELECT 1 FROM timepart.maintenance_log WHERE operation_type = 'sync_partition' AND success),
          'each partition''s sync is logged');
SELECT throws_ok($$SELECT * FROM timepart.sync_partitions(NULL)$$, '22004', 'parent and dry_run must not be NULL',
                 'sync_partitions refuses a NULL table');

-- UNLOGGED partitions, when asked.
SELECT timepart.configure('ev', '{"partition_unlogged": true}');
SELECT timepart.create_partition('ev', '2025-01-01', '2025-01-02');
SELECT is((SELECT relpersistence::text FROM pg_class WHERE oid = 'ev_2025_01_01'::regclass), 'u', 'partition_unlogged makes UNLOGGED partitions');
SELECT is((SELECT count(*) FROM timepart.sync_partitions('ev', dry_run => true) s WHERE s.property = 'unlogged' AND s.statement IS NULL),
          (SELECT count(*) FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid WHERE h.inhparent = 'ev'::regclass AND c.relpersistence = 'p'),
          'older logged partitions are reported, not rewritten');
SELECT throws_ok($$SELECT timepart.configure('ev', '{"partition_unlogged": null}')$$, '22023', 'partition_unlogged must be true or false',
                 'a NULL partition_unlogged is refused');

-- The access method is the table's, never the session's default_table_access_method.
CREATE ACCESS METHOD heap_too TYPE TABLE HANDLER heap_tableam_handler;
CREATE TABLE am_ev (ts timestamptz NOT NULL) PARTITION BY RANGE (ts);
SELECT timepart.manage('am_ev', '1 month', 1, as_of => '2024-03-15');
SET LOCAL default_table_access_method = heap_too;
SELECT timepart.create_partition('am_ev', '2024-06-01', '2024-07-01');
SELECT is((SELECT array_agg(DISTINCT a.amname::text) FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid JOIN pg_am a ON a.oid = c.relam
           WHERE h.inhparent = 'am_ev'::regclass), ARRAY['heap'], 'a session''s default access method does not reach new partitions');
RESET default_table_access_method;
CREATE TABLE am_too (ts timestamptz NOT NULL) PARTITION BY RANGE (ts);
CREATE TABLE am_too_2024_03 PARTITION OF am_too FOR VALUES FROM ('2024-03-01') TO ('2024-04-01') USING heap_too;
SELECT timepart.manage('am_too', '1 month', 1, default_partition => false, as_of => '2024-03-15');
SELECT is((SELECT a.amname::text FROM pg_class c JOIN pg_am a ON a.oid = c.relam WHERE c.oid = 'am_too_2024_04'::regclass), 'heap_too',
          'new partitions take the access method their siblings use');
SELECT current_setting('server_version_num')::int >= 170000 AS pg17 \gset
\if :pg17
ALTER TABLE am_ev SET ACCESS METHOD heap_too;
SELECT timepart.create_partition('am_ev', '2024-07-01', '2024-08-01');
SELECT is((SELECT a.amname::text FROM pg_class c JOIN pg_am a ON a.oid = c.relam WHERE c.oid = 'am_ev_2024_07'::regclass), 'heap_too',
          'the access method the parent names (17+) comes first');
\else
SELECT skip('a partitioned table names an access method from PostgreSQL 17 on');
\endif

SELECT * FROM finish();
ROLLBACK;
