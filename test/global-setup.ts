// Runs once per `vitest run`: the suite talks to real PostgreSQL and Redis and refuses to start
// without them, so a missing service is a loud failure, never a silent skip.
import pg from 'pg'
import { Redis } from 'ioredis'

export const DEFAULT_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/test'
export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379'

export default async function setup(): Promise<void> {
  const databaseUrl = process.env.DATABASE_URL ?? DEFAULT_DATABASE_URL
  const redisUrl = process.env.REDIS_URL ?? DEFAULT_REDIS_URL
  process.env.DATABASE_URL = databaseUrl
  process.env.REDIS_URL = redisUrl

  const client = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: 5000 })
  try {
    await client.connect()
    await client.query('SELECT 1')
  } catch (err) {
    throw new Error(`tests need PostgreSQL at ${databaseUrl}: ${(err as Error).message}`)
  } finally {
    await client.end().catch(() => {})
  }

  const redis = new Redis(redisUrl, {
    lazyConnect: true,
    connectTimeout: 5000,
    maxRetriesPerRequest: 0,
  })
  redis.on('error', () => {})
  try {
    await redis.connect()
    await redis.ping()
  } catch (err) {
    throw new Error(`tests need Redis at ${redisUrl}: ${(err as Error).message}`)
  } finally {
    redis.disconnect()
  }
}
