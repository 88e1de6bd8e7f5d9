-- Scripted session with psql (simple query protocol). Run through run.sh, which sets
-- PGAPPNAME=drv_psql and -v copyout=<temp file>, and checks the final `DRIVER-OK psql` line.
-- A failed check prints DRIVER-FAIL and quits before that line.
\set ON_ERROR_STOP 1
\set QUIET 1

DROP TABLE IF EXISTS drv_psql;
CREATE TABLE drv_psql(id int primary key, note text);

-- Values interpolated from psql variables; then one line with two statements in one Query
-- message (\;) and one line with two statements sent one after the other (;).
\set id 1
\set note 'one'
INSERT INTO drv_psql(id, note) VALUES (:id, :'note');
INSERT INTO drv_psql(id, note) VALUES (2, 'two ü') \; INSERT INTO drv_psql(id, note) VALUES (3, NULL);
SET work_mem = '8MB'; SELECT current_setting('work_mem') = '8MB' AS ok_set \gset
SELECT count(*) AS n, string_agg(coalesce(note, '<null>'), ',' ORDER BY id) AS notes FROM drv_psql WHERE id >= 1 \gset
SELECT :'ok_set'::bool AND :n = 3 AND :'notes' = 'one,two ü,<null>' AS ok \gset
\if :ok
\else
  \warn 'DRIVER-FAIL psql: select after insert:' :n :'notes'
  \q
\endif

-- A transaction rolled back leaves no row.
BEGIN;
INSERT INTO drv_psql(id, note) VALUES (99, 'ghost');
SELECT count(*) = 1 AS ok FROM drv_psql WHERE id = 99 \gset
ROLLBACK;
\if :ok
\else
  \warn 'DRIVER-FAIL psql: row 99 not visible inside its transaction'
  \q
\endif
SELECT count(*) = 0 AS ok FROM drv_psql WHERE id = 99 \gset
\if :ok
\else
  \warn 'DRIVER-FAIL psql: rolled-back row 99 still present'
  \q
\endif

-- An SQL-level prepared statement reused three times.
PREPARE drv_psql_by_id(int) AS SELECT note FROM drv_psql WHERE id = $1;
EXECUTE drv_psql_by_id(1) \gset p1_
EXECUTE drv_psql_by_id(2) \gset p2_
EXECUTE drv_psql_by_id(3) \gset p3_
SELECT :'p1_note' = 'one' AND :'p2_note' = 'two ü' AND count(*) = 1 AS ok
  FROM pg_prepared_statements WHERE name = 'drv_psql_by_id' AND from_sql \gset
\if :ok
\else
  \warn 'DRIVER-FAIL psql: prepared statement results:' :'p1_note' :'p2_note'
  \q
\endif
DEALLOCATE drv_psql_by_id;

-- COPY FROM STDIN with \copy (data inline), COPY TO STDOUT into a file, read back with cat.
\copy drv_psql (id, note) FROM stdin
10	ten
11	eleven\ttab
\.
COPY (SELECT id, note FROM drv_psql ORDER BY id) TO STDOUT \g :copyout
\set copied `cat :'copyout'`
SELECT :'copied' = E'1\tone\n2\ttwo ü\n3\t\\N\n10\tten\n11\televen\\ttab' AS ok \gset
\if :ok
\else
  \warn 'DRIVER-FAIL psql: COPY TO STDOUT gave:' :'copied'
  \q
\endif

-- An expected error, then recovery on the same connection.
\echo 'expected error (42P01) follows:'
\set ON_ERROR_STOP 0
SELECT * FROM drv_no_such_table;
\set ON_ERROR_STOP 1
SELECT :'LAST_ERROR_SQLSTATE' = '42P01' AS ok \gset
\if :ok
\else
  \warn 'DRIVER-FAIL psql: missing table gave SQLSTATE' :LAST_ERROR_SQLSTATE
  \q
\endif
SELECT 1 AS one \gset
\if :one
\else
  \warn 'DRIVER-FAIL psql: select 1 after error'
  \q
\endif

-- psql cancels only on SIGINT; a statement_timeout gives the same SQLSTATE 57014 in a script.
\echo 'expected error (57014) follows:'
SET statement_timeout = '300ms';
\set ON_ERROR_STOP 0
SELECT pg_sleep(10);
\set ON_ERROR_STOP 1
RESET statement_timeout;
SELECT :'LAST_ERROR_SQLSTATE' = '57014' AS ok \gset
\if :ok
\else
  \warn 'DRIVER-FAIL psql: pg_sleep under statement_timeout gave SQLSTATE' :LAST_ERROR_SQLSTATE
  \q
\endif

-- LISTEN/NOTIFY on one session: psql prints the notification; run.sh looks for it.
LISTEN drv_psql_ch;
NOTIFY drv_psql_ch, 'hello';
UNLISTEN drv_psql_ch;

SELECT current_setting('application_name') = 'drv_psql' AS ok, current_setting('application_name') AS app \gset
\if :ok
\else
  \warn 'DRIVER-FAIL psql: application_name is' :'app'
  \q
\endif

DROP TABLE drv_psql;
\echo DRIVER-OK psql
