#!/usr/bin/env python3
"""Scripted session with asyncpg (its own protocol implementation, no libpq).

Connection from PG* env vars. Exits 1 with a DRIVER-FAIL line on any mismatch; prints
`DRIVER-OK asyncpg` when all checks pass.
"""
import asyncio
import io
import sys
import time

NAME = "asyncpg"
TABLE = f"drv_{NAME}"
APP = f"drv_{NAME}"


def fail(msg):
    print(f"DRIVER-FAIL {NAME}: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


async def expect_error(coro, sqlstate, what):
    import asyncpg

    try:
        await coro
    except asyncpg.PostgresError as e:
        check(e.sqlstate == sqlstate, f"{what}: expected SQLSTATE {sqlstate}, got {e.sqlstate}: {e}")
        return
    fail(f"{what}: expected SQLSTATE {sqlstate}, got no error")


async def main():
    import asyncpg

    # Host, port, user, password, database and sslmode come from the PG* environment.
    conn = await asyncpg.connect(server_settings={"application_name": APP}, timeout=10)
    other = await asyncpg.connect(server_settings={"application_name": f"{APP}_notifier"}, timeout=10)

    await conn.execute(f"DROP TABLE IF EXISTS {TABLE}")
    await conn.execute(f"CREATE TABLE {TABLE}(id int primary key, note text)")

    rows = [(1, "one"), (2, "two ü"), (3, None)]
    await conn.executemany(f"INSERT INTO {TABLE}(id, note) VALUES ($1, $2)", rows)
    got = [tuple(r) for r in await conn.fetch(f"SELECT id, note FROM {TABLE} WHERE id >= $1 ORDER BY id", 1)]
    check(got == rows, f"select after insert: {got!r} != {rows!r}")

    # A transaction rolled back leaves no row.
    tx = conn.transaction()
    await tx.start()
    await conn.execute(f"INSERT INTO {TABLE}(id, note) VALUES ($1, $2)", 99, "ghost")
    n = await conn.fetchval(f"SELECT count(*) FROM {TABLE} WHERE id = $1", 99)
    check(n == 1, f"row 99 not visible inside its transaction ({n})")
    await tx.rollback()
    n = await conn.fetchval(f"SELECT count(*) FROM {TABLE} WHERE id = $1", 99)
    check(n == 0, f"rolled-back row 99 still present ({n})")

    # An explicitly prepared (named, server-side) statement reused three times.
    stmt = await conn.prepare(f"SELECT note FROM {TABLE} WHERE id = $1")
    for i, expected in [(1, "one"), (2, "two ü"), (3, None)]:
        got = await stmt.fetchval(i)
        check(got == expected, f"prepared select id={i}: {got!r} != {expected!r}")
    prepared = await conn.fetchval(
        "SELECT count(*) FROM pg_prepared_statements WHERE statement = $1 AND NOT from_sql",
        f"SELECT note FROM {TABLE} WHERE id = $1",
    )
    check(prepared >= 1, "no protocol-level prepared statement on the server")

    # COPY FROM STDIN (binary format) and COPY TO STDOUT (text format).
    await conn.copy_records_to_table(TABLE, records=[(10, "ten"), (11, "eleven\ttab")], columns=["id", "note"])
    out = io.BytesIO()
    await conn.copy_from_query(f"SELECT id, note FROM {TABLE} ORDER BY id", output=out, format="text")
    expected = "1\tone\n2\ttwo ü\n3\t\\N\n10\tten\n11\televen\\ttab\n"
    check(out.getvalue().decode() == expected, f"COPY TO STDOUT: {out.getvalue().decode()!r} != {expected!r}")

    # An error, then the same connection keeps working.
    await expect_error(conn.fetch("SELECT * FROM drv_no_such_table"), "42P01", "missing table")
    check(await conn.fetchval("SELECT 1") == 1, "select 1 after error")

    # Cancel: on timeout asyncpg sends a CancelRequest and waits for the server to abort the query
    # (the 57014 it gets back is consumed by asyncpg). Had the cancel not reached the server, the
    # next query would wait for pg_sleep(10) to finish: so the whole sequence must take < 5 s.
    started = time.monotonic()
    try:
        await conn.execute("SELECT pg_sleep(10)", timeout=0.5)
        fail("pg_sleep(10) returned instead of being cancelled")
    except asyncio.TimeoutError:
        pass
    check(await conn.fetchval("SELECT 2") == 2, "select after cancel")
    elapsed = time.monotonic() - started
    check(elapsed < 5, f"cancel took {elapsed:.1f}s")

    # LISTEN here, NOTIFY from another connection.
    got = asyncio.get_running_loop().create_future()
    channel = f"{TABLE}_ch"
    def on_notify(_conn, pid, ch, payload):
        if not got.done():
            got.set_result((ch, payload, pid))

    await conn.add_listener(channel, on_notify)
    await other.execute("SELECT pg_notify($1, $2)", channel, "hello")
    try:
        note = await asyncio.wait_for(got, 5)
    except asyncio.TimeoutError:
        fail("no notification within 5 s")
    # The sender's process id is the one its connection was given.
    check(note == (channel, "hello", other.get_server_pid()), f"notification: {note!r}")
    await conn.remove_listener(channel, on_notify)

    app = await conn.fetchval("SHOW application_name")
    check(app == APP, f"application_name {app!r} != {APP!r}")

    await conn.execute(f"DROP TABLE {TABLE}")
    await other.close()
    await conn.close()
    print(f"DRIVER-OK {NAME}", flush=True)


if __name__ == "__main__":
    try:
        asyncio.run(asyncio.wait_for(main(), 60))
    except SystemExit:
        raise
    except asyncio.TimeoutError:
        fail("session took longer than 60 s")
    except Exception as e:  # any driver error is a failed session, said on one line
        fail(f"{type(e).__name__}: {e}")
