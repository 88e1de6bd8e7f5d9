#!/usr/bin/env python3
"""Scripted session with psycopg 3 (libpq underneath). Connection from PG* env vars.

Exits 1 with a DRIVER-FAIL line on any mismatch; prints `DRIVER-OK psycopg` when all checks pass.
"""
import signal
import sys
import threading
import time

NAME = "psycopg"
TABLE = f"drv_{NAME}"
APP = f"drv_{NAME}"


def fail(msg):
    print(f"DRIVER-FAIL {NAME}: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def expect_error(fn, sqlstate, what):
    import psycopg

    try:
        fn()
    except psycopg.Error as e:
        check(e.sqlstate == sqlstate, f"{what}: expected SQLSTATE {sqlstate}, got {e.sqlstate}: {e}")
        return
    fail(f"{what}: expected SQLSTATE {sqlstate}, got no error")


def main():
    import psycopg

    conn = psycopg.connect(application_name=APP, autocommit=True, connect_timeout=10)
    other = psycopg.connect(application_name=f"{APP}_notifier", autocommit=True, connect_timeout=10)

    conn.execute(f"DROP TABLE IF EXISTS {TABLE}")
    conn.execute(f"CREATE TABLE {TABLE}(id int primary key, note text)")

    # Bound parameters; executemany goes through libpq pipeline mode where available.
    rows = [(1, "one"), (2, "two ü"), (3, None)]
    with conn.cursor() as cur:
        cur.executemany(f"INSERT INTO {TABLE}(id, note) VALUES (%s, %s)", rows)
        cur.execute(f"SELECT id, note FROM {TABLE} WHERE id >= %s ORDER BY id", (1,))
        got = cur.fetchall()
    check(got == rows, f"select after insert: {got!r} != {rows!r}")

    # A transaction rolled back leaves no row.
    with conn.transaction(force_rollback=True):
        conn.execute(f"INSERT INTO {TABLE}(id, note) VALUES (%s, %s)", (99, "ghost"))
        n = conn.execute(f"SELECT count(*) FROM {TABLE} WHERE id = %s", (99,)).fetchone()[0]
        check(n == 1, f"row 99 not visible inside its transaction ({n})")
    n = conn.execute(f"SELECT count(*) FROM {TABLE} WHERE id = %s", (99,)).fetchone()[0]
    check(n == 0, f"rolled-back row 99 still present ({n})")

    # A server-side prepared statement reused three times.
    query = f"SELECT note FROM {TABLE} WHERE id = %s"
    for i, expected in [(1, "one"), (2, "two ü"), (3, None)]:
        got = conn.execute(query, (i,), prepare=True).fetchone()[0]
        check(got == expected, f"prepared select id={i}: {got!r} != {expected!r}")
    prepared = conn.execute(
        "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s AND NOT from_sql",
        (f"SELECT note FROM {TABLE} WHERE id = $1%",),
    ).fetchone()[0]
    check(prepared >= 1, "no protocol-level prepared statement on the server")

    # COPY in both directions.
    with conn.cursor() as cur:
        with cur.copy(f"COPY {TABLE} (id, note) FROM STDIN") as copy:
            copy.write_row((10, "ten"))
            copy.write_row((11, "eleven\ttab"))
        out = bytearray()
        with cur.copy(f"COPY (SELECT id, note FROM {TABLE} ORDER BY id) TO STDOUT") as copy:
            for chunk in copy:
                out += chunk
    expected = "1\tone\n2\ttwo ü\n3\t\\N\n10\tten\n11\televen\\ttab\n"
    check(out.decode() == expected, f"COPY TO STDOUT: {out.decode()!r} != {expected!r}")

    # An error, then the same connection keeps working.
    expect_error(lambda: conn.execute("SELECT * FROM drv_no_such_table"), "42P01", "missing table")
    check(conn.execute("SELECT 1").fetchone()[0] == 1, "select 1 after error")

    # Cancel a long query through libpq's cancel request.
    started = time.monotonic()
    timer = threading.Timer(0.5, conn.cancel_safe if hasattr(conn, "cancel_safe") else conn.cancel)
    timer.start()
    expect_error(lambda: conn.execute("SELECT pg_sleep(10)"), "57014", "cancelled pg_sleep")
    timer.join()
    elapsed = time.monotonic() - started
    check(elapsed < 5, f"cancel took {elapsed:.1f}s")
    check(conn.execute("SELECT 2").fetchone()[0] == 2, "select after cancel")

    # LISTEN here, NOTIFY from another connection.
    conn.execute(f"LISTEN {TABLE}_ch")
    other.execute("SELECT pg_notify(%s, %s)", (f"{TABLE}_ch", "hello"))
    got = [(n.channel, n.payload, n.pid) for n in conn.notifies(timeout=5, stop_after=1)]
    check(got == [(f"{TABLE}_ch", "hello", other.info.backend_pid)], f"notifications: {got!r}")

    # The process id the connection was given is the server's own.
    pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    check(pid == conn.info.backend_pid, f"backend pid {conn.info.backend_pid} != server's {pid}")
    conn.execute(f"UNLISTEN {TABLE}_ch")

    app = conn.execute("SHOW application_name").fetchone()[0]
    check(app == APP, f"application_name {app!r} != {APP!r}")

    conn.execute(f"DROP TABLE {TABLE}")
    other.close()
    conn.close()
    print(f"DRIVER-OK {NAME}", flush=True)


if __name__ == "__main__":
    signal.signal(signal.SIGALRM, lambda *_: fail("session took longer than 60 s"))
    signal.alarm(60)
    try:
        main()
    except SystemExit:
        raise
    except Exception as e:  # any driver error is a failed session, said on one line
        fail(f"{type(e).__name__}: {e}")
