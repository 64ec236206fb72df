// Runs the pool, transactions and migrations through a real PgBouncer in transaction mode, started
// here on a spare port and stopped by PID. Needs the `pgbouncer` binary (apt-get install pgbouncer)
// and hypopg; without them the suite fails, naming the package to install.
import { spawn, type ChildProcess } from 'node:child_process'
import { chmod, mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises'
import { connect, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createDatabase, migrate, pgErrors } from '@strata/pg'
import type { Database, Transaction } from '@strata/pg'
import { baseUrl, createTestDatabase, type TestDatabase } from '../../../test/support/pg.js'
import { findPgbouncer, HYPOPG_MISSING, PGBOUNCER_MISSING } from './support/components.js'

async function freePort(): Promise<number> {
  const srv = createServer()
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r))
  const port = (srv.address() as { port: number }).port
  await new Promise((r) => srv.close(r))
  return port
}

async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((res) => {
      const s = connect(port, '127.0.0.1', () => {
        s.end()
        res(true)
      })
      s.on('error', () => res(false))
    })
    if (ok) return
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error(`pgbouncer did not listen on ${port}`)
}

describe('through PgBouncer (transaction mode)', () => {
  let dir: string
  let bouncer: ChildProcess
  let tdb: TestDatabase
  let url: URL
  let PORT: number

  beforeAll(async () => {
    const bin = findPgbouncer()
    if (!bin) throw new Error(PGBOUNCER_MISSING)
    PORT = await freePort()
    tdb = await createTestDatabase('pgb')
    dir = await mkdtemp(join(tmpdir(), 'strata-pgb-'))
    await chmod(dir, 0o755) // pgbouncer drops to the postgres user when started as root
    const upstream = new URL(baseUrl())
    await writeFile(join(dir, 'userlist.txt'), `"${upstream.username || 'postgres'}" ""\n`)
    await writeFile(
      join(dir, 'pgbouncer.ini'),
      [
        '[databases]',
        `* = host=${upstream.hostname} port=${upstream.port || 5432}`,
        '[pgbouncer]',
        'listen_addr = 127.0.0.1',
        `listen_port = ${PORT}`,
        'auth_type = trust',
        `auth_file = ${join(dir, 'userlist.txt')}`,
        'pool_mode = transaction',
        'default_pool_size = 4',
        'max_client_conn = 200',
        'ignore_startup_parameters = extra_float_digits',
        'unix_socket_dir =',
        '',
      ].join('\n'),
    )
    const asRoot = process.getuid?.() === 0
    bouncer = spawn(bin, [...(asRoot ? ['-u', 'postgres'] : []), join(dir, 'pgbouncer.ini')], {
      stdio: 'ignore',
    })
    await waitForPort(PORT, 5000)
    url = new URL(tdb.url)
    url.port = String(PORT)
  })
  afterAll(async () => {
    if (bouncer?.pid) bouncer.kill('SIGTERM')
    await tdb?.drop()
    if (dir) await rm(dir, { recursive: true, force: true })
  })

  it('without the pgbouncer flag fails at start-up with a hint', async () => {
    const err = await createDatabase({ url: url.toString() }).catch((e: unknown) => e)
    expect(pgErrors.is(err, 'STRATA_DB_INVALID_CONFIG')).toBe(true)
    expect((err as Error).message).toMatch(/pgbouncer=true/)
  })

  it('two migrators, statement timeouts in transactions and serialization retries work', async () => {
    const pooled = `${url.toString()}?pgbouncer=true`
    const a = await createDatabase({ url: pooled, name: 'a', pool: { statementTimeoutMs: 300 } })
    const b = await createDatabase({ url: pooled, name: 'b' })
    const migDir = join(dir, 'mig')
    await mkdir(migDir)
    await writeFile(
      join(migDir, '0001_t.sql'),
      'CREATE TABLE pgb_log (v int);\nINSERT INTO pgb_log VALUES (1);\n',
    )
    for (let v = 2; v <= 6; v++)
      await writeFile(
        join(migDir, `000${v}_s.sql`),
        `SELECT pg_sleep(0.02);\nINSERT INTO pgb_log VALUES (${v});\n`,
      )
    try {
      const [ra, rb] = await Promise.all([
        migrate(a, { name: 'pgb', dir: migDir }),
        migrate(b, { name: 'pgb', dir: migDir }),
      ])
      expect([...ra, ...rb].map((m) => m.version).sort()).toEqual([1, 2, 3, 4, 5, 6])
      const { rows } = await a.query<{ v: number[] }>(
        'SELECT array_agg(v ORDER BY v) AS v FROM pgb_log',
      )
      expect(rows[0]!.v).toEqual([1, 2, 3, 4, 5, 6])

      const err = await a
        .transaction((tx) => tx.query('SELECT pg_sleep(2)'))
        .catch((e: unknown) => e)
      expect(pgErrors.is(err, 'STRATA_DB_TIMEOUT')).toBe(true)
      expect((err as { details: { kind: string } }).details.kind).toBe('statement')

      await serializationRetry(a)
    } finally {
      await a.close()
      await b.close()
    }
  })

  it('explain and the hypopg-verified advisor work through transaction pooling', async () => {
    const db = await createDatabase({ url: `${url.toString()}?pgbouncer=true`, name: 'adv' })
    try {
      await db.query('CREATE TABLE pgb_orders (id int PRIMARY KEY, customer int NOT NULL)')
      await db.query('INSERT INTO pgb_orders SELECT g, g % 5000 FROM generate_series(1, 100000) g')
      await db.query('ANALYZE pgb_orders')
      const sql = 'SELECT * FROM pgb_orders WHERE customer = $1'
      expect((await db.explain(sql)).generic).toBe(true)
      expect((await db.explain(sql, [3], { analyze: true })).analyzed).toBe(true)
      // Other traffic on the same PgBouncer pool meanwhile, so server connections change hands.
      const noise = Promise.all(
        Array.from({ length: 20 }, (_, i) => db.query('SELECT pg_sleep(0.005), $1::int', [i])),
      )
      const advice = await db.advisor.indexSuggestions({ statements: [sql] })
      await noise
      // hypopg's hypothetical indexes live in one session: verified means the advisor kept one
      // server connection for the whole analysis, which transaction pooling only gives inside a
      // transaction.
      expect(advice.method, `${HYPOPG_MISSING} (advisor: ${advice.notice})`).toBe('hypopg')
      expect(advice.suggestions.map((x) => [x.columns, x.costAfter! < x.costBefore / 2])).toEqual([
        [['customer'], true],
      ])
    } finally {
      await db.close()
    }
  })
})

async function serializationRetry(db: Database): Promise<void> {
  await db.query('CREATE TABLE acc (id int PRIMARY KEY, n int NOT NULL)')
  await db.query('INSERT INTO acc VALUES (1, 0), (2, 0)')
  let arrived = 0
  let go!: () => void
  const both = new Promise<void>((r) => (go = r))
  let retries = 0
  const body = (id: number) => async (tx: Transaction) => {
    const { rows } = await tx.query<{ s: number }>('SELECT sum(n)::int AS s FROM acc')
    if (tx.attempt === 0) {
      if (++arrived === 2) go()
      await both
    }
    await tx.query('UPDATE acc SET n = n + $1 WHERE id = $2', [rows[0]!.s + 1, id])
  }
  await Promise.all(
    [1, 2].map((id) =>
      db.transaction(body(id), { isolation: 'serializable', onRetry: () => retries++ }),
    ),
  )
  expect(retries).toBeGreaterThanOrEqual(1)
}
