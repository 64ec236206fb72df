// Child process for cache.bench.ts: another "instance" for the cross-process scenarios
// (stampede across processes, invalidation propagation). Driven over the IPC channel.
import { BentoCache, bentostore } from 'bentocache'
import { memoryDriver } from 'bentocache/drivers/memory'
import { redisBusDriver, redisDriver } from 'bentocache/drivers/redis'
import { Redis } from 'ioredis'
import type { StrataCacheLike } from './cache-fixtures.js'
import { closeStrata, createStrata, makeValue, sleep, wallNow } from './cache-fixtures.js'

type Msg =
  | {
      cmd: 'init'
      lib: 'strata' | 'bento' | 'rawsub'
      redisUrl: string
      namespace: string
      channel?: string
    }
  | {
      cmd: 'stampede'
      key: string
      callers: number
      startAt: number
      factoryMs: number
      size: number
      counterKey: string
    }
  | { cmd: 'fill'; key: string }
  | { cmd: 'watch'; key: string; timeoutMs: number }
  | { cmd: 'close' }

let strata: StrataCacheLike | undefined
let bento: BentoCache<Record<string, ReturnType<typeof bentostore>>> | undefined
let redis: Redis | undefined
let sub: Redis | undefined

const send = (m: unknown) => process.send?.(m)

async function handle(m: Msg): Promise<void> {
  switch (m.cmd) {
    case 'init': {
      redis = new Redis(m.redisUrl)
      if (m.lib === 'strata') {
        strata = await createStrata({
          namespace: m.namespace,
          l2: { redis: m.redisUrl },
          bus: true,
        })
      } else if (m.lib === 'bento') {
        const conn = new Redis(m.redisUrl)
        bento = new BentoCache({
          default: 'b',
          prefix: m.namespace,
          stores: {
            b: bentostore()
              .useL1Layer(memoryDriver({ maxItems: 10_000 }))
              .useL2Layer(redisDriver({ connection: conn }))
              .useBus(
                redisBusDriver({
                  connection: { host: conn.options.host, port: conn.options.port },
                }),
              ),
          },
        })
      } else {
        sub = new Redis(m.redisUrl)
        sub.on('message', (_channel: string, payload: string) => {
          send({ ev: 'msg', payload, at: wallNow() })
        })
        await sub.subscribe(m.channel!)
      }
      send({ ev: 'ready' })
      return
    }
    case 'stampede': {
      const value = makeValue(m.size)
      const factory = async () => {
        await redis!.incr(m.counterKey)
        await sleep(m.factoryMs)
        return value
      }
      const wait = m.startAt - Date.now()
      if (wait > 0) await sleep(wait)
      let errors = 0
      await Promise.all(
        Array.from({ length: m.callers }, () =>
          (strata
            ? strata.getOrSet(m.key, factory, { ttl: '1m' })
            : bento!.getOrSet({ key: m.key, factory, ttl: '1m' })
          ).catch(() => errors++),
        ),
      )
      send({ ev: 'stampede', finishedAt: Date.now(), errors })
      return
    }
    case 'fill': {
      const v = strata ? await strata.get(m.key) : await bento!.get({ key: m.key })
      send({
        ev: 'filled',
        present: v !== undefined && (strata?.peek ? strata.peek(m.key) !== undefined : true),
      })
      return
    }
    case 'watch': {
      // Poll the L1 with setImmediate so bus messages are processed between polls. bentocache has
      // no synchronous L1 read: its get() answers from L1 while the entry is there, and from the
      // (already deleted) L2 once the bus has evicted it.
      const end = Date.now() + m.timeoutMs
      const poll = async () => {
        const v = strata ? strata.peek!(m.key) : await bento!.get({ key: m.key })
        if (v === undefined) return send({ ev: 'gone', at: wallNow() })
        if (Date.now() > end) return send({ ev: 'gone', at: Number.NaN })
        setImmediate(() => void poll())
      }
      send({ ev: 'watching' })
      void poll()
      return
    }
    case 'close': {
      await closeStrata(strata)
      await bento?.disconnect()
      sub?.disconnect()
      redis?.disconnect()
      send({ ev: 'closed' })
      process.exit(0)
    }
  }
}

process.on('message', (m: Msg) => {
  handle(m).catch((err: unknown) =>
    send({ ev: 'error', message: String((err as Error)?.stack ?? err) }),
  )
})
