// A scratch database per bench run, on the server of DATABASE_URL (default the local test
// server), dropped at the end whatever happened.
import { randomBytes } from 'node:crypto'
import pg from 'pg'

export interface BenchDatabase {
  name: string
  url: string
  drop(): Promise<void>
}

function serverUrl(): string {
  return process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
}

async function adminQuery(sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: serverUrl() })
  await c.connect()
  try {
    await c.query(sql)
  } finally {
    await c.end()
  }
}

/** Creates `strata_bench_<prefix>_<random>`; `settings` are `ALTER DATABASE … SET` clauses. */
export async function createBenchDatabase(
  prefix: string,
  settings: string[] = [],
): Promise<BenchDatabase> {
  const name = `strata_bench_${prefix}_${randomBytes(3).toString('hex')}`
  await adminQuery(`CREATE DATABASE ${name}`)
  for (const s of settings) await adminQuery(`ALTER DATABASE ${name} SET ${s}`)
  const url = new URL(serverUrl())
  url.pathname = `/${name}`
  return {
    name,
    url: url.toString(),
    drop: () => adminQuery(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`),
  }
}
