// Tests isolate Redis by key prefix; cleanup deletes only that prefix (never FLUSHALL).
import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'

export const redisUrl = (): string => process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'

export function uniquePrefix(name = 't'): string {
  return `strata-test:${name}:${Date.now().toString(36)}${randomBytes(3).toString('hex')}:`
}

export async function deletePrefix(prefix: string): Promise<void> {
  const redis = new Redis(redisUrl())
  try {
    let cursor = '0'
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
      cursor = next
      if (keys.length) await redis.unlink(...keys)
    } while (cursor !== '0')
  } finally {
    redis.disconnect()
  }
}
