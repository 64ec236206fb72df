// ioredis vs node-redis GET/SET at concurrency 1 and 64 (1 KB values): the measurement behind
// @strata/cache's client choice (see packages/cache/src/l2/ioredis-driver.ts). Uses the ioredis the
// cache itself resolves (root node_modules), not bench's own copy.
import { createRequire } from 'node:module'
import { createClient } from 'redis'
import type { Redis as IoRedis, RedisOptions } from 'ioredis'
import { interleave, rateAsync, round } from './measure.js'
import type { BenchArgs, BenchResult } from './types.js'

const cacheRequire = createRequire(import.meta.resolve('@strata/cache'))
const { Redis } = cacheRequire('ioredis') as {
  Redis: new (url: string, o?: RedisOptions) => IoRedis
}
const ioredisVersion = (cacheRequire('ioredis/package.json') as { version: string }).version

export default async function run(args: BenchArgs): Promise<BenchResult> {
  const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
  const ms = args.quick ? 300 : 1000
  const rounds = args.quick ? 1 : 3
  const prefix = `strata-bench:clients:${Date.now()}:`
  const value = 'x'.repeat(1024)
  const io = new Redis(url)
  const ioAuto = new Redis(url, { enableAutoPipelining: true })
  const nr = createClient({ url })
  nr.on('error', () => {})
  await nr.connect()
  const keys = Array.from({ length: 100 }, (_, i) => `${prefix}${i}`)
  await Promise.all(keys.map((k) => io.set(k, value)))
  const results: BenchResult['results'] = []
  try {
    for (const concurrency of [1, 64]) {
      for (const op of ['GET', 'SET'] as const) {
        const call = {
          ioredis: (i: number) =>
            op === 'GET' ? io.getBuffer(keys[i % 100]!) : io.set(keys[i % 100]!, value),
          'ioredis autopipelining': (i: number) =>
            op === 'GET' ? ioAuto.getBuffer(keys[i % 100]!) : ioAuto.set(keys[i % 100]!, value),
          'node-redis': (i: number) =>
            op === 'GET' ? nr.get(keys[i % 100]!) : nr.set(keys[i % 100]!, value),
        }
        const rates = await interleave(
          rounds,
          Object.fromEntries(
            Object.entries(call).map(([name, fn]) => [
              name,
              () => rateAsync(fn, { ms, concurrency }),
            ]),
          ),
          { warmup: true },
        )
        const base = rates['node-redis']!.opsPerSec
        for (const name of ['ioredis', 'ioredis autopipelining', 'node-redis']) {
          const v = rates[name]!.opsPerSec
          results.push({
            metric: `${name} ${op} c=${concurrency}`,
            value: round(v, 0),
            unit: 'ops/s',
            baseline: `node-redis ${op} c=${concurrency}`,
            baselineValue: round(base, 0),
            ratio: round(v / base),
          })
        }
      }
    }
  } finally {
    await io.del(...keys)
    io.disconnect()
    ioAuto.disconnect()
    await nr.quit().catch(() => {})
  }
  return {
    name: 'redis-clients',
    params: { valueBytes: 1024, ms, rounds, concurrency: [1, 64] },
    results,
    env: { ioredis: ioredisVersion },
    notes: ['Medians of interleaved rounds; the cache uses ioredis (see l2/ioredis-driver.ts).'],
  }
}
