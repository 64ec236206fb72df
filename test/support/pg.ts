// Each test file gets its own database, created and dropped here, so files run in parallel
// without sharing tables. Never touches the `test` or `postgres` databases' contents.
import { randomBytes } from 'node:crypto'
import pg from 'pg'

export const baseUrl = (): string =>
  process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test'

export interface TestDatabase {
  url: string
  name: string
  drop(): Promise<void>
}

export function urlFor(database: string): string {
  const url = new URL(baseUrl())
  url.pathname = `/${database}`
  return url.toString()
}

export async function createTestDatabase(prefix = 't'): Promise<TestDatabase> {
  const name = `strata_${prefix}_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`
  const admin = new pg.Client({ connectionString: baseUrl() })
  await admin.connect()
  try {
    await admin.query(`CREATE DATABASE ${name}`)
  } finally {
    await admin.end()
  }
  return {
    url: urlFor(name),
    name,
    async drop() {
      const c = new pg.Client({ connectionString: baseUrl() })
      await c.connect()
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
      } finally {
        await c.end()
      }
    },
  }
}
