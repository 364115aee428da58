-- Static checks: plpgsql_check over every timepart function, and the hardening rules.
-- needs: plpgsql_check
-- plpgsql_check 2.8 and later must be loaded before the session's first PL/pgSQL call.
LOAD 'plpgsql_check';
\ir setup.psql
SELECT plan(5);
CREATE EXTENSION plpgsql_check;

SELECT is((SELECT string_agg(format('%s line %s: %s', p.oid::regprocedure, r.lineno, r.message), '; ')
           FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang,
           LATERAL plpgsql_check_function_tb(p.oid, CASE WHEN p.prorettype = 'trigger'::regtype
                THEN coalesce((SELECT t.tgrelid FROM pg_trigger t WHERE t.tgfoid = p.oid ORDER BY t.tgname LIMIT 1), 'timepart.config'::regclass) ELSE 0 END,
                                             fatal_errors => false, other_warnings => true, performance_warnings => false) r
           WHERE l.lanname = 'plpgsql' AND (p.pronamespace = 'timepart'::regnamespace OR p.proname = ANY (timepart._public_names()))
            -- RETURN QUERY EXECUTE fills OUT columns plpgsql_check cannot follow: explained, not counted.
            AND r.message !~ '^OUT variable ".*" is maybe unmodified$'),
          NULL, 'plpgsql_check finds no error and no warning in any timepart function');
SELECT is((SELECT string_agg(p.oid::regprocedure::text, ', ') FROM pg_proc p
           WHERE p.prosecdef AND (p.pronamespace = 'timepart'::regnamespace OR p.proname = ANY (timepart._public_names()))
             AND NOT coalesce('search_path=pg_catalog, pg_temp' = ANY (p.proconfig), false)),
          NULL, 'every SECURITY DEFINER function has its search_path pinned');
SELECT is((SELECT string_agg(p.oid::regprocedure::text, ', ') FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
           WHERE l.lanname = 'plpgsql' AND p.prokind = 'f' AND p.pronamespace = 'timepart'::regnamespace
             AND format('timepart.%s', p.proname) <> ALL (timepart._unpinned_functions())
             AND NOT coalesce('search_path=pg_catalog, pg_temp' = ANY (p.proconfig), false)),
          NULL, 'every PL/pgSQL function has its search_path pinned');
SELECT is((SELECT string_agg(p.oid::regprocedure::text, ', ') FROM pg_proc p
           WHERE ((p.pronamespace = 'timepart'::regnamespace AND p.proname !~ '^_') OR p.proname = ANY (timepart._public_names()))
             AND obj_description(p.oid, 'pg_proc') IS NULL),
          NULL, 'every public function has a comment');
SELECT is((SELECT string_agg(p.oid::regprocedure::text, ', ') FROM pg_proc p
           WHERE p.prosecdef AND p.pronamespace = 'timepart'::regnamespace
             AND p.proname IN ('manage', 'maintain', 'cleanup', 'create_partition', 'configure', 'unmanage')),
          NULL, 'operations on user tables run with the caller''s rights');

SELECT * FROM finish();
ROLLBACK;
