-- The default partition: rows that wait there move out safely or stay and are reported;
-- a default that cannot be made does not stop the periods.
\ir setup.psql
SELECT plan(14);

-- Tables referencing the parent: moving would fire their ON DELETE actions, so rows stay.
CREATE TABLE ord (id int, at timestamptz NOT NULL, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
CREATE TABLE ord_items (item int PRIMARY KEY, ord_id int, ord_at timestamptz,
                        FOREIGN KEY (ord_id, ord_at) REFERENCES ord (id, at) ON DELETE CASCADE);
SELECT timepart.manage('ord', '1 month', 1, as_of => '2023-03-15');
INSERT INTO ord VALUES (1, '2023-09-10');
INSERT INTO ord_items VALUES (100, 1, '2023-09-10');
SELECT matches(timepart.maintain('ord', 1, '2023-09-01')->'errors'->>0, 'foreign keys reference the table',
               'rows waiting under foreign keys are not moved, and maintain says why');
SELECT is((SELECT count(*) FROM ord_items), 1::bigint, 'no referencing row was deleted');
SELECT is((SELECT count(*) FROM ord_default), 1::bigint, 'the row stays in the default partition');

-- Identity columns: rows keep their values when they move.
CREATE TABLE idt (id bigint GENERATED ALWAYS AS IDENTITY, at timestamptz NOT NULL) PARTITION BY RANGE (at);
SELECT timepart.manage('idt', '1 month', 1, as_of => '2023-03-15');
INSERT INTO idt (at) VALUES ('2023-09-10');
SELECT is(timepart.maintain('idt', 1, '2023-09-01')->'moved_rows', '1'::jsonb, 'a row with an identity value moves');
SELECT is((SELECT id FROM idt_2023_09), 1::bigint, 'and keeps its identity value');

-- A table in the way of the default partition's name: the periods are made all the same.
CREATE TABLE sales_default (note text);
CREATE TABLE sales (id int, at timestamptz NOT NULL) PARTITION BY RANGE (at);
SELECT is(timepart.manage('sales', '1 month', 1, as_of => '2023-03-15')->'created_partitions',
          '["sales_2023_03", "sales_2023_04"]'::jsonb, 'a default partition that cannot be made does not stop the periods');
SELECT matches(timepart.maintain('sales', 1, '2023-03-15')->'errors'->>0, 'sales_default', 'and the reason is reported');

-- More than one managed email_events: the seed's names act on the one the caller's
-- search_path finds, and refuse to guess when it finds none.
CREATE SCHEMA tenant_a;
CREATE SCHEMA tenant_b;
SELECT timepart.create_email_events_table('tenant_b', '2024-01-15');
SELECT timepart.create_email_events_table('tenant_a', '2024-01-15');
SELECT throws_ok($$SELECT * FROM cleanup_old_email_events_partitions(12)$$, '42P09',
                 'more than one managed email_events table, and none on the search_path',
                 'the seed''s functions refuse to pick one of several email_events tables the search_path does not find');
SET LOCAL search_path = tenant_b, public;
SELECT is(create_email_events_partition((date_trunc('month', now()) + interval '1 year')::date,
                                        (date_trunc('month', now()) + interval '13 months')::date),
          format('tenant_b.email_events_%s', to_char(now() + interval '1 year', 'YYYY_MM')),
          'with tenant_b first on the search_path, create_email_events_partition acts on tenant_b''s table');
SELECT is((SELECT count(*) FROM get_email_events_partition_stats() WHERE name LIKE 'email_events_%'),
          (SELECT count(*) FROM pg_inherits WHERE inhparent = 'tenant_b.email_events'::regclass), 'and the stats are tenant_b''s');
SELECT is((maintain_email_events_partitions(6)->'tables'->0->>'table')::regclass, 'tenant_b.email_events'::regclass,
          'and maintain is tenant_b''s');
SET LOCAL search_path = tenant_a, public;
-- A budget that seven drops fit in on a slow machine: this is about which table, not slicing.
SELECT timepart.configure('tenant_a.email_events', '{"lock_timeout": "30 s"}');
SELECT is((SELECT count(*) FROM get_email_events_partition_stats() s WHERE s.range_start >= date_trunc('month', now()) + interval '1 year'),
          0::bigint, 'with tenant_a first, tenant_b''s extra partition is not in the stats');
SELECT is((SELECT count(*) FROM cleanup_old_email_events_partitions(12)), 7::bigint, 'cleanup drops tenant_a''s 7 old months');
SELECT ok(to_regclass('tenant_a.email_events_2024_01') IS NULL AND to_regclass('tenant_b.email_events_2024_01') IS NOT NULL,
          'and leaves tenant_b''s alone');
RESET search_path;

SELECT * FROM finish();
ROLLBACK;
