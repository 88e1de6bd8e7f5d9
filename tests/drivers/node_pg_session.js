#!/usr/bin/env node
// Scripted session with node-postgres (`pg`) and pg-copy-streams. Connection from PG* env vars.
// Exits 1 with a DRIVER-FAIL line on any mismatch; prints `DRIVER-OK node` when all checks pass.
'use strict'

const fs = require('node:fs')
const { pipeline } = require('node:stream/promises')
const { Readable, Writable } = require('node:stream')
const pg = require('pg')
const copyStreams = require('pg-copy-streams')

// pg's own Client#cancel reads the deprecated Client#activeQuery; that warning is not ours to fix.
process.noDeprecation = true

const NAME = 'node'
const TABLE = `drv_${NAME}`
const APP = `drv_${NAME}`

function fail(msg) {
  process.stderr.write(`DRIVER-FAIL ${NAME}: ${msg}\n`)
  process.exit(1)
}

function check(cond, msg) {
  if (!cond) fail(msg)
}

// pg turns any PGSSLMODE but "disable" into full certificate verification; follow libpq instead.
function sslFromEnv() {
  const mode = process.env.PGSSLMODE
  switch (mode) {
    case undefined:
    case '':
    case 'disable':
      return false
    case 'allow':
    case 'prefer':
    case 'require':
    case 'no-verify':
      return { rejectUnauthorized: false }
    case 'verify-ca':
    case 'verify-full': {
      const root = process.env.PGSSLROOTCERT
      check(root, `PGSSLMODE=${mode} needs PGSSLROOTCERT`)
      const ca = fs.readFileSync(root)
      return mode === 'verify-ca' ? { ca, checkServerIdentity: () => undefined } : { ca }
    }
    default:
      fail(`unsupported PGSSLMODE ${mode}`)
  }
}

function config(applicationName) {
  // host, port, user, password and database are read from PG* by pg itself.
  return { application_name: applicationName, ssl: sslFromEnv(), connectionTimeoutMillis: 10000 }
}

async function expectError(promise, sqlstate, what) {
  try {
    await promise
  } catch (e) {
    check(e.code === sqlstate, `${what}: expected SQLSTATE ${sqlstate}, got ${e.code}: ${e.message}`)
    return
  }
  fail(`${what}: expected SQLSTATE ${sqlstate}, got no error`)
}

function same(a, b) {
  return JSON.stringify(a) === JSON.stringify(b)
}

async function main() {
  const conn = new pg.Client(config(APP))
  const other = new pg.Client(config(`${APP}_notifier`))
  await conn.connect()
  await other.connect()

  await conn.query(`DROP TABLE IF EXISTS ${TABLE}`)
  await conn.query(`CREATE TABLE ${TABLE}(id int primary key, note text)`)

  // Bound parameters: pg uses the extended protocol whenever values are given.
  const rows = [[1, 'one'], [2, 'two ü'], [3, null]]
  for (const [id, note] of rows) {
    await conn.query(`INSERT INTO ${TABLE}(id, note) VALUES ($1, $2)`, [id, note])
  }
  let res = await conn.query({
    text: `SELECT id, note FROM ${TABLE} WHERE id >= $1 ORDER BY id`,
    values: [1],
    rowMode: 'array',
  })
  check(same(res.rows, rows), `select after insert: ${JSON.stringify(res.rows)}`)

  // A transaction rolled back leaves no row.
  await conn.query('BEGIN')
  await conn.query(`INSERT INTO ${TABLE}(id, note) VALUES ($1, $2)`, [99, 'ghost'])
  res = await conn.query(`SELECT count(*)::int AS n FROM ${TABLE} WHERE id = $1`, [99])
  check(res.rows[0].n === 1, `row 99 not visible inside its transaction (${res.rows[0].n})`)
  await conn.query('ROLLBACK')
  res = await conn.query(`SELECT count(*)::int AS n FROM ${TABLE} WHERE id = $1`, [99])
  check(res.rows[0].n === 0, `rolled-back row 99 still present (${res.rows[0].n})`)

  // A named (server-side) prepared statement: parsed once, then bound and executed three times.
  for (const [id, expected] of rows) {
    res = await conn.query({ name: 'drv_node_by_id', text: `SELECT note FROM ${TABLE} WHERE id = $1`, values: [id] })
    check(res.rows[0].note === expected, `prepared select id=${id}: ${res.rows[0].note} != ${expected}`)
  }
  res = await conn.query("SELECT count(*)::int AS n FROM pg_prepared_statements WHERE name = 'drv_node_by_id'")
  check(res.rows[0].n === 1, 'named prepared statement drv_node_by_id not on the server')

  // COPY in both directions through pg-copy-streams.
  await pipeline(
    Readable.from(['10\tten\n', '11\televen\\ttab\n']),
    conn.query(copyStreams.from(`COPY ${TABLE} (id, note) FROM STDIN`)),
  )
  const chunks = []
  await pipeline(
    conn.query(copyStreams.to(`COPY (SELECT id, note FROM ${TABLE} ORDER BY id) TO STDOUT`)),
    new Writable({
      write(chunk, _enc, done) {
        chunks.push(chunk)
        done()
      },
    }),
  )
  const copied = Buffer.concat(chunks).toString('utf8')
  const expected = '1\tone\n2\ttwo ü\n3\t\\N\n10\tten\n11\televen\\ttab\n'
  check(copied === expected, `COPY TO STDOUT: ${JSON.stringify(copied)} != ${JSON.stringify(expected)}`)

  // An error, then the same connection keeps working.
  await expectError(conn.query('SELECT * FROM drv_no_such_table'), '42P01', 'missing table')
  res = await conn.query('SELECT 1 AS one')
  check(res.rows[0].one === 1, 'select 1 after error')

  // Cancel through a CancelRequest on a separate connection (pg's Client#cancel).
  const started = Date.now()
  const sleeper = new pg.Query('SELECT pg_sleep(10)')
  const done = new Promise((resolve) => {
    sleeper.on('error', (e) => resolve(e))
    sleeper.on('end', () => resolve(null))
  })
  conn.query(sleeper)
  await new Promise((r) => setTimeout(r, 500))
  new pg.Client(config(`${APP}_cancel`)).cancel(conn, sleeper)
  const err = await done
  check(err, 'pg_sleep(10) finished instead of being cancelled')
  check(err.code === '57014', `cancelled pg_sleep: expected SQLSTATE 57014, got ${err.code}: ${err.message}`)
  const elapsed = (Date.now() - started) / 1000
  check(elapsed < 5, `cancel took ${elapsed}s`)
  res = await conn.query('SELECT 2 AS two')
  check(res.rows[0].two === 2, 'select after cancel')

  // LISTEN here, NOTIFY from another connection.
  const channel = `${TABLE}_ch`
  const note = new Promise((resolve) => conn.once('notification', resolve))
  await conn.query(`LISTEN ${channel}`)
  await other.query('SELECT pg_notify($1, $2)', [channel, 'hello'])
  let timer
  const got = await Promise.race([note, new Promise((r) => (timer = setTimeout(() => r(null), 5000)))])
  clearTimeout(timer)
  check(got, 'no notification within 5 s')
  check(got.channel === channel && got.payload === 'hello', `notification: ${JSON.stringify(got)}`)
  await conn.query(`UNLISTEN ${channel}`)

  res = await conn.query('SHOW application_name')
  check(res.rows[0].application_name === APP, `application_name ${res.rows[0].application_name} != ${APP}`)

  await conn.query(`DROP TABLE ${TABLE}`)
  await other.end()
  await conn.end()
  process.stdout.write(`DRIVER-OK ${NAME}\n`)
}

setTimeout(() => fail('session took longer than 60 s'), 60000).unref()
main().catch((e) => fail(`${e.code ? `[${e.code}] ` : ''}${e.message}`))
