import { parseRedisTarget } from '@strata/core'
import { Cluster, Redis, type RedisOptions } from 'ioredis'

// The service's own Redis connection (rate-limit counters, readiness). Commands fail fast:
// ioredis waits forever by default, which would hang requests while Redis is down.
const OPTIONS: RedisOptions = {
  commandTimeout: 500, // ms
  connectTimeout: 2000, // ms
  maxRetriesPerRequest: 1,
  retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), 2000),
}

/** An ioredis client (or Cluster) for REDIS_URL; errors are logged by the caller, never thrown. */
export function createRedisClient(url: string, onError: (err: Error) => void): Redis | Cluster {
  const target = parseRedisTarget(url)
  const client = target.cluster
    ? new Cluster(target.nodes, {
        redisOptions: { ...OPTIONS, password: target.password, username: target.username },
      })
    : new Redis(target.url, OPTIONS)
  client.on('error', onError)
  return client
}
