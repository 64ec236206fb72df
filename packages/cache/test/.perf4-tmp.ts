import { createCache } from '@strata/cache'
import { Redis } from 'ioredis'
const val = { data: 'x'.repeat(1000) }
let x: unknown
const N = 20000
const mk = (auto: boolean) =>
  new Redis('redis://127.0.0.1:6379', {
    enableAutoPipelining: auto,
    commandTimeout: 1000,
    maxRetriesPerRequest: 0,
  })
const raw = new Redis('redis://127.0.0.1:6379')
for (const conc of [1, 64])
  for (let round = 0; round < 2; round++)
    for (const auto of [false, true]) {
      const n = conc === 1 ? N / 8 : N
      const d = createCache({ namespace: 'perf-tmp4', l2: { redis: mk(auto) }, metrics: false })
      await d.ready()
      let idx = 0
      let t0 = performance.now()
      await Promise.all(
        Array.from({ length: conc }, async () => {
          while (idx < n) {
            x = await d.getOrSet(`mm${conc}${round}${auto}:${idx++}`, () => val, { ttl: 60000 })
          }
        }),
      )
      const miss = Math.round(n / ((performance.now() - t0) / 1000))
      idx = 0
      t0 = performance.now()
      await Promise.all(
        Array.from({ length: conc }, async () => {
          while (idx < n) {
            const k = `perf-tmp4:raw${conc}${round}${auto}:${idx++}`
            const b = await raw.getBuffer(k)
            if (!b) await raw.set(k, JSON.stringify(val), 'PX', 60000)
          }
        }),
      )
      const rawmiss = Math.round(n / ((performance.now() - t0) / 1000))
      const e = createCache({
        namespace: 'perf-tmp4',
        l2: { redis: mk(auto) },
        metrics: false,
        l1: { maxEntries: 10 },
      })
      await e.ready()
      idx = 0
      t0 = performance.now()
      await Promise.all(
        Array.from({ length: conc }, async () => {
          while (idx < n) {
            x = await e.get(`mm${conc}${round}${auto}:${idx++}`)
          }
        }),
      )
      const hit = Math.round(n / ((performance.now() - t0) / 1000))
      idx = 0
      t0 = performance.now()
      await Promise.all(
        Array.from({ length: conc }, async () => {
          while (idx < n) {
            const b = await raw.getBuffer(`perf-tmp4:mm${conc}${round}${auto}:${idx++}`)
            x = b && JSON.parse(JSON.stringify({ a: 1 }))
          }
        }),
      )
      const rawhit = Math.round(n / ((performance.now() - t0) / 1000))
      console.log(
        `c=${conc} auto=${auto} miss+factory ${miss} (raw GET+SET ${rawmiss})  L2 hit ${hit} (raw GET ${rawhit})`,
      )
      await d.close()
      await e.close()
    }
let cursor = '0'
do {
  const [nx, keys] = await raw.scan(cursor, 'MATCH', 'perf-tmp4:*', 'COUNT', 1000)
  cursor = nx
  if (keys.length) await raw.unlink(...keys)
} while (cursor !== '0')
raw.disconnect()
void x
