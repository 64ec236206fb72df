// `npm run bench -- cache [--quick]`: @strata/cache against its limits (raw lru-cache, an async
// function over lru-cache, raw ioredis and node-redis) and peers (bentocache, cache-manager 7 with
// keyv / @keyv/redis), side by side in one run. Each figure's goal is a ratio to its baseline, so
// it holds on any machine.
// Scenarios that need an API @strata/cache does not offer (yet) are reported in the notes.
import { fork } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { BentoCache, bentostore } from 'bentocache'
import { memoryDriver } from 'bentocache/drivers/memory'
import { redisBusDriver, redisDriver } from 'bentocache/drivers/redis'
import { createCache as createCacheManager } from 'cache-manager'
import type { Cache as CacheManager } from 'cache-manager'
import { Redis } from 'ioredis'
import { Keyv } from 'keyv'
import KeyvRedis from '@keyv/redis'
import { LRUCache } from 'lru-cache'
import { createClient } from 'redis'
import type { StrataCacheLike } from './cache-fixtures.js'
import { closeStrata, createStrata, makeValue, runId, sleep, wallNow } from './cache-fixtures.js'
import type { Latency, Rate } from './measure.js'
import {
  interleave,
  latencyAsync,
  latencySync,
  rateAsync,
  rateSync,
  round,
  summarize,
} from './measure.js'
import type { BenchArgs, BenchMetric, BenchResult } from './types.js'

const run$ = promisify(execFile)

/** Installed versions of the contenders, read from their package.json files. */
async function versions(): Promise<Record<string, string>> {
  const read = async (path: string) => {
    const text = await readFile(new URL(path, import.meta.url), 'utf8').catch(() => '')
    return text ? (JSON.parse(text) as { version: string }).version : undefined
  }
  const out: Record<string, string> = {}
  // The bench workspace's own copies win over the hoisted ones, as Node resolves them.
  for (const name of [
    'ioredis',
    'redis',
    'bentocache',
    'cache-manager',
    'keyv',
    '@keyv/redis',
    'lru-cache',
  ]) {
    const v =
      (await read(`../node_modules/${name}/package.json`)) ??
      (await read(`../../node_modules/${name}/package.json`))
    if (v) out[name] = v
  }
  // @strata/cache resolves ioredis from the repository root, which may differ from the bench's.
  const strataIoredis = await read('../../node_modules/ioredis/package.json')
  if (strataIoredis) out['ioredis used by @strata/cache'] = strataIoredis
  return out
}
const newNodeRedis = (url: string) => createClient({ url })
type NodeRedis = ReturnType<typeof newNodeRedis>
const KB = 1024

interface Config {
  ms: number // one throughput window
  rounds: number // windows per figure (median kept)
  samples: number // latency samples for L1 figures
  l2Keys: { 1024: number; 102400: number }
  missMs: number
  propagationRuns: number
  unreachableCapMs: number // give up on a peer that does not answer
  laterCalls: number
}

const FULL: Config = {
  ms: 600,
  rounds: 3,
  samples: 200_000,
  l2Keys: { 1024: 1000, 102400: 100 },
  missMs: 600,
  propagationRuns: 200,
  unreachableCapMs: 3000,
  laterCalls: 1000,
}
const QUICK: Config = {
  ms: 200,
  rounds: 1,
  samples: 20_000,
  l2Keys: { 1024: 300, 102400: 40 },
  missMs: 200,
  propagationRuns: 40,
  unreachableCapMs: 1000,
  laterCalls: 300,
}

type Bento = BentoCache<Record<string, ReturnType<typeof bentostore>>>

const sizeLabel = (bytes: number) => (bytes >= 100 * KB ? '100 KB' : '1 KB')

/** Collects metrics; `vs` fills baseline/ratio/goal/pass consistently. */
class Report {
  results: BenchMetric[] = []
  notes: string[] = []

  add(m: BenchMetric): void {
    this.results.push(m)
  }

  /** A rate (higher is better) compared with a baseline rate. */
  rate(
    metric: string,
    value: number,
    base?: { name: string; value: number },
    goal?: { text: string; pass: boolean },
  ): void {
    this.add({
      metric,
      value: Math.round(value),
      unit: 'ops/s',
      ...(base
        ? {
            baseline: base.name,
            baselineValue: Math.round(base.value),
            ratio: round(value / base.value, 3),
          }
        : {}),
      ...(goal ? { goal: goal.text, pass: goal.pass } : {}),
    })
  }

  /** A latency/time (lower is better): ratio = value / baseline. */
  time(
    metric: string,
    value: number,
    unit: 'µs' | 'ms',
    base?: { name: string; value: number },
    goal?: { text: string; pass: boolean },
  ): void {
    this.add({
      metric,
      value: round(value, 3),
      unit,
      ...(base
        ? {
            baseline: base.name,
            baselineValue: round(base.value, 3),
            ratio: round(value / base.value, 3),
          }
        : {}),
      ...(goal ? { goal: goal.text, pass: goal.pass } : {}),
    })
  }

  count(
    metric: string,
    value: number,
    unit: string,
    base?: { name: string; value: number },
    goal?: { text: string; pass: boolean },
  ): void {
    this.add({
      metric,
      value,
      unit,
      ...(base ? { baseline: base.name, baselineValue: base.value } : {}),
      ...(goal ? { goal: goal.text, pass: goal.pass } : {}),
    })
  }
}

/** `BENCH_DEBUG=1` prints where a scenario spends its time. */
const phase = (name: string, t0: number) => {
  if (process.env.BENCH_DEBUG) console.log(`    [${name}] ${Math.round(performance.now() - t0)} ms`)
  return performance.now()
}

/** Every contender must really return the stored value before its speed means anything. */
async function expectHit(name: string, got: Promise<unknown> | unknown): Promise<void> {
  const v = await got
  if (v === undefined || v === null) throw new Error(`${name} returned no value for a stored key`)
}

/** Runs one scenario; a failure becomes a note instead of aborting the whole benchmark. */
async function scenario(report: Report, name: string, fn: () => Promise<void>): Promise<void> {
  const t0 = Date.now()
  try {
    await fn()
  } catch (err) {
    report.notes.push(
      `${name}: not measured (${String((err as Error)?.message ?? err).split('\n')[0]})`,
    )
  }
  console.log(`  ${name}: ${((Date.now() - t0) / 1000).toFixed(1)} s`)
}

async function deleteMatching(redis: Redis, pattern: string): Promise<void> {
  let cursor = '0'
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 2000)
    cursor = next
    if (keys.length) await redis.unlink(...keys)
  } while (cursor !== '0')
}

function bentoL1(prefix: string): Bento {
  return new BentoCache({
    default: 'b',
    prefix,
    stores: { b: bentostore().useL1Layer(memoryDriver({ maxItems: 10_000 })) },
  })
}

function bentoL1L2(
  prefix: string,
  redisUrl: string,
  l1Items: number,
  bus = false,
): { bento: Bento; conn: Redis } {
  const conn = new Redis(redisUrl)
  let store = bentostore()
    .useL1Layer(memoryDriver({ maxItems: l1Items }))
    .useL2Layer(redisDriver({ connection: conn }))
  if (bus)
    store = store.useBus(
      redisBusDriver({ connection: { host: conn.options.host, port: conn.options.port } }),
    )
  const bento = new BentoCache({ default: 'b', prefix, stores: { b: store } })
  return { bento, conn }
}

/** A Map that keeps one entry: cache-manager's L1 stays cold for the L2-hit scenario. */
class OneEntryMap<K, V> extends Map<K, V> {
  override set(k: K, v: V): this {
    this.clear()
    return super.set(k, v)
  }
}

function cacheManagerL1L2(namespace: string, redisUrl: string, coldL1: boolean): CacheManager {
  const l1 = coldL1 ? new Keyv({ store: new OneEntryMap() }) : new Keyv()
  const l2 = new Keyv({ store: new KeyvRedis(redisUrl), namespace })
  return createCacheManager({ stores: [l1, l2] })
}

// ---------------------------------------------------------------------------------------------

async function l1Hit(report: Report, cfg: Config, bytes: number, id: string): Promise<void> {
  const label = `L1 hit ${sizeLabel(bytes)}`
  let t = performance.now()
  const keys = Array.from({ length: 100 }, (_, i) => `k${i}`)
  const values = keys.map((_, i) => makeValue(bytes, i))
  const key = (i: number) => keys[i % keys.length]!
  const lru = new LRUCache<string, object>({ max: 10_000 })
  keys.forEach((k, i) => lru.set(k, values[i] as object))
  const asyncGet = async (k: string) => lru.get(k)
  const bento = bentoL1(`${id}-bl1`)
  const cm = createCacheManager({ stores: [new Keyv()] })
  const strata = await createStrata({
    namespace: `${id}-l1`,
    l1: { maxEntries: 10_000 },
    ttl: '10m',
  })
  try {
    for (let i = 0; i < keys.length; i++) {
      await bento.set({ key: keys[i]!, value: values[i], ttl: '10m' })
      await cm.set(keys[i]!, values[i], 600_000)
      await strata.set(keys[i]!, values[i])
    }
    t = phase('setup', t)
    const peek = typeof strata.peek === 'function' ? strata.peek.bind(strata) : undefined
    await expectHit('strata get', strata.get(key(1)))
    await expectHit('bentocache get', bento.get({ key: key(1) }))
    await expectHit('cache-manager get', cm.get(key(1)))
    const ms = cfg.ms
    const r = await interleave(
      cfg.rounds,
      {
        lru: () => rateSync((i) => lru.get(key(i)), ms),
        floor: () => rateAsync((i) => asyncGet(key(i)), { ms }),
        strataGet: () => rateAsync((i) => strata.get(key(i)), { ms }),
        strataGetOrSet: () => rateAsync((i) => strata.getOrSet(key(i), () => values[0]), { ms }),
        strataPeek: () =>
          peek ? rateSync((i) => peek(key(i)), ms) : { opsPerSec: Number.NaN, ops: 0, ms: 0 },
        bentoGet: () => rateAsync((i) => bento.get({ key: key(i) }), { ms }),
        bentoGetOrSet: () =>
          rateAsync((i) => bento.getOrSet({ key: key(i), factory: () => values[0], ttl: '10m' }), {
            ms,
          }),
        cmGet: () => rateAsync((i) => cm.get(key(i)), { ms }),
      },
      { warmup: true },
    )
    t = phase('rates', t)
    const floorLat = await latencyAsync((i) => asyncGet(key(i)), { samples: cfg.samples })
    t = phase('floor latency', t)
    const sLat = await latencyAsync((i) => strata.get(key(i)), { samples: cfg.samples })
    t = phase('strata latency', t)
    const bentoLat = await latencyAsync((i) => bento.get({ key: key(i) }), {
      samples: cfg.samples,
      maxMs: cfg.ms * 2,
    })
    phase('latencies', t)
    const v = (n: string) => r[n]!.opsPerSec
    report.rate(`${label}: lru-cache get (L1 ceiling)`, v('lru'))
    report.rate(`${label}: async function over lru-cache (async floor)`, v('floor'), {
      name: 'lru-cache get',
      value: v('lru'),
    })
    report.rate(`${label}: bentocache get`, v('bentoGet'), {
      name: 'async floor',
      value: v('floor'),
    })
    report.rate(`${label}: cache-manager get`, v('cmGet'), {
      name: 'async floor',
      value: v('floor'),
    })
    report.rate(
      `${label}: strata get`,
      v('strataGet'),
      { name: 'bentocache get', value: v('bentoGet') },
      {
        text: '>= 2 M ops/s and >= 20x bentocache',
        pass: v('strataGet') >= 2e6 && v('strataGet') >= 20 * v('bentoGet'),
      },
    )
    report.rate(`${label}: strata get vs async floor`, v('strataGet'), {
      name: 'async floor',
      value: v('floor'),
    })
    report.rate(
      `${label}: strata getOrSet (hit)`,
      v('strataGetOrSet'),
      { name: 'bentocache getOrSet (hit)', value: v('bentoGetOrSet') },
      {
        text: '>= 2 M ops/s and >= 20x bentocache',
        pass: v('strataGetOrSet') >= 2e6 && v('strataGetOrSet') >= 20 * v('bentoGetOrSet'),
      },
    )
    report.time(
      `${label}: strata get p99`,
      sLat.p99,
      'µs',
      { name: 'async floor p99', value: floorLat.p99 },
      { text: '< 5 µs', pass: sLat.p99 < 5 },
    )
    report.time(`${label}: bentocache get p99`, bentoLat.p99, 'µs', {
      name: 'async floor p99',
      value: floorLat.p99,
    })
    if (peek) {
      const peekLat = latencySync((i) => peek(key(i)), Math.min(cfg.samples, 100_000))
      report.rate(
        `${label}: strata peek (sync)`,
        v('strataPeek'),
        { name: 'lru-cache get', value: v('lru') },
        {
          text: '>= 10 M ops/s',
          pass: v('strataPeek') >= 10e6,
        },
      )
      report.time(`${label}: strata peek p99`, peekLat.p99, 'µs')
    } else report.notes.push(`${label}: strata has no peek() yet`)
  } finally {
    await bento.disconnect()
    await cm.disconnect()
    await closeStrata(strata)
  }
}

// ---------------------------------------------------------------------------------------------

interface RawClients {
  ioredis: Redis
  ioredisPipelined: Redis
  nodeRedis: NodeRedis
  admin: Redis
}

async function l2Hit(
  report: Report,
  cfg: Config,
  bytes: 1024 | 102400,
  id: string,
  url: string,
  raw: RawClients,
): Promise<void> {
  const label = `L2 hit ${sizeLabel(bytes)} (cold L1)`
  const n = cfg.l2Keys[bytes]
  const keys = Array.from({ length: n }, (_, i) => `k${i}`)
  const values = keys.map((_, i) => makeValue(bytes, i))
  const rawPrefix = `${id}:raw:`
  for (let i = 0; i < n; i++)
    await raw.admin.set(rawPrefix + keys[i], JSON.stringify(values[i]), 'PX', 600_000)

  const strata = await createStrata({
    namespace: `${id}-l2`,
    l1: { maxEntries: 1 },
    l2: { redis: url },
    ttl: '10m',
  })
  const { bento, conn } = bentoL1L2(`${id}-bl2`, url, 1)
  const cm = cacheManagerL1L2(`${id}-cm`, url, true)
  try {
    for (let i = 0; i < n; i++) {
      await strata.set(keys[i]!, values[i])
      await bento.set({ key: keys[i]!, value: values[i], ttl: '10m' })
      await cm.set(keys[i]!, values[i], 600_000)
    }
    const key = (i: number) => keys[i % n]!
    await expectHit('strata get', strata.get(key(1)))
    await expectHit('bentocache get', bento.get({ key: key(1) }))
    await expectHit('cache-manager get', cm.get(key(1)))
    for (const c of [1, 64]) {
      const o = { ms: cfg.ms, concurrency: c }
      const r = await interleave(cfg.rounds, {
        io: () =>
          rateAsync(
            async (i) => JSON.parse((await raw.ioredis.get(rawPrefix + key(i)))!) as unknown,
            o,
          ),
        nr: () =>
          rateAsync(
            async (i) => JSON.parse((await raw.nodeRedis.get(rawPrefix + key(i)))!) as unknown,
            o,
          ),
        strata: () => rateAsync((i) => strata.get(key(i)), o),
        bento: () => rateAsync((i) => bento.get({ key: key(i) }), o),
        cm: () => rateAsync((i) => cm.get(key(i)), o),
      })
      const v = (x: string) => r[x]!.opsPerSec
      const best =
        v('io') >= v('nr')
          ? { name: `raw ioredis GET+parse c=${c}`, value: v('io') }
          : { name: `raw node-redis GET+parse c=${c}`, value: v('nr') }
      report.rate(`${label} c=${c}: raw ioredis GET+JSON.parse`, v('io'))
      report.rate(`${label} c=${c}: raw node-redis GET+JSON.parse`, v('nr'), {
        name: 'raw ioredis',
        value: v('io'),
      })
      report.rate(`${label} c=${c}: strata get`, v('strata'), best, {
        text: '>= 0.9x best raw client',
        pass: v('strata') >= 0.9 * best.value,
      })
      report.rate(`${label} c=${c}: bentocache get`, v('bento'), best)
      report.rate(`${label} c=${c}: cache-manager get`, v('cm'), best)
    }
  } finally {
    await closeStrata(strata)
    await bento.disconnect().catch(() => {})
    conn.disconnect()
    await cm.disconnect().catch(() => {})
    await deleteMatching(raw.admin, `*${id}*`)
  }
}

// ---------------------------------------------------------------------------------------------

async function missFactory(
  report: Report,
  cfg: Config,
  id: string,
  url: string,
  raw: RawClients,
): Promise<void> {
  const label = 'miss + factory 1 KB c=64'
  const value = makeValue(KB)
  const factory = () => value
  let seq = 0
  // Unique keys pile up in Redis: free them after every window (outside the timed part).
  const window = async (fn: (k: string) => Promise<unknown>): Promise<Rate> => {
    const r = await rateAsync(() => fn(`m${seq++}`), { ms: cfg.missMs, concurrency: 64 })
    await deleteMatching(raw.admin, `*${id}*`)
    return r
  }
  const p = `${id}:miss:`
  const strata = await createStrata({ namespace: `${id}-miss`, l2: { redis: url }, ttl: '1m' })
  const { bento, conn } = bentoL1L2(`${id}-bmiss`, url, 10_000)
  const cm = cacheManagerL1L2(`${id}-cmmiss`, url, false)
  try {
    const r = await interleave(cfg.rounds, {
      io: () =>
        window(async (k) => {
          const got = await raw.ioredisPipelined.get(p + k)
          if (got !== null) return JSON.parse(got) as unknown
          const v = factory()
          await raw.ioredisPipelined.set(p + k, JSON.stringify(v), 'PX', 60_000)
          return v
        }),
      nr: () =>
        window(async (k) => {
          const got = await raw.nodeRedis.get(p + k)
          if (got !== null) return JSON.parse(got) as unknown
          const v = factory()
          await raw.nodeRedis.set(p + k, JSON.stringify(v), { PX: 60_000 })
          return v
        }),
      strata: () => window((k) => strata.getOrSet(k, factory)),
      bento: () => window((k) => bento.getOrSet({ key: k, factory, ttl: '1m' })),
      cm: () => window((k) => cm.wrap(k, async () => factory(), 60_000)),
    })
    const v = (x: string) => r[x]!.opsPerSec
    const best =
      v('io') >= v('nr')
        ? { name: 'raw ioredis auto-pipelined GET+SET', value: v('io') }
        : { name: 'raw node-redis GET+SET', value: v('nr') }
    report.rate(`${label}: raw ioredis auto-pipelined GET+SET`, v('io'))
    report.rate(`${label}: raw node-redis GET+SET`, v('nr'), {
      name: 'raw ioredis',
      value: v('io'),
    })
    report.rate(`${label}: strata getOrSet`, v('strata'), best, {
      text: '>= 0.9x raw GET+SET',
      pass: v('strata') >= 0.9 * best.value,
    })
    report.rate(`${label}: bentocache getOrSet`, v('bento'), best)
    report.rate(`${label}: cache-manager wrap`, v('cm'), best)
  } finally {
    await closeStrata(strata)
    await bento.disconnect().catch(() => {})
    conn.disconnect()
    await cm.disconnect().catch(() => {})
  }
}

// ---------------------------------------------------------------------------------------------

class Child {
  readonly proc: ChildProcess
  #buffer: Record<string, unknown>[] = []
  #waiters: { ev: string; resolve: (m: Record<string, unknown>) => void }[] = []

  constructor() {
    this.proc = fork(fileURLToPath(new URL('./cache-child.js', import.meta.url)), {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    })
    this.proc.on('message', (m: Record<string, unknown>) => {
      if (m.ev === 'error') console.error(`    child error: ${String(m.message)}`)
      const i = this.#waiters.findIndex((w) => w.ev === m.ev || m.ev === 'error')
      if (i >= 0) this.#waiters.splice(i, 1)[0]!.resolve(m)
      else this.#buffer.push(m)
    })
  }

  next(ev: string, timeoutMs = 30_000): Promise<Record<string, unknown>> {
    const i = this.#buffer.findIndex((m) => m.ev === ev || m.ev === 'error')
    if (i >= 0) return Promise.resolve(this.#check(this.#buffer.splice(i, 1)[0]!))
    return new Promise((resolve, reject) => {
      const t = setTimeout(
        () => reject(new Error(`child: no ${ev} within ${timeoutMs} ms`)),
        timeoutMs,
      )
      this.#waiters.push({
        ev,
        resolve: (m) => {
          clearTimeout(t)
          try {
            resolve(this.#check(m))
          } catch (err) {
            reject(err as Error)
          }
        },
      })
    })
  }

  #check(m: Record<string, unknown>): Record<string, unknown> {
    if (m.ev === 'error') throw new Error(`child failed: ${String(m.message).split('\n')[0]}`)
    return m
  }

  send(m: unknown): void {
    this.proc.send(m as never)
  }

  async close(): Promise<void> {
    if (this.proc.exitCode !== null) return
    const exited = new Promise((r) => this.proc.once('exit', r))
    this.send({ cmd: 'close' })
    await Promise.race([exited, sleep(3000)])
    if (this.proc.exitCode === null) this.proc.kill('SIGKILL')
  }
}

async function stampede(
  report: Report,
  cfg: Config,
  id: string,
  url: string,
  raw: RawClients,
): Promise<void> {
  const factoryMs = 50
  const callers = 1000
  for (const bytes of [KB, 100 * KB]) {
    const label = `stampede ${sizeLabel(bytes)}`
    const value = makeValue(bytes)
    const counter = { n: 0 }
    const factory = async () => {
      counter.n++
      await sleep(factoryMs)
      return value
    }
    const one = async (name: string, call: (key: string) => Promise<unknown>) => {
      counter.n = 0
      const key = `stampede-${name}-${bytes}`
      const t0 = performance.now()
      await Promise.all(Array.from({ length: callers }, () => call(key)))
      return { wall: performance.now() - t0, runs: counter.n }
    }
    const strata = await createStrata({ namespace: `${id}-st${bytes}`, l2: { redis: url } })
    const s = await one('strata', (k) => strata.getOrSet(k, factory, { ttl: '1m' })).finally(() =>
      closeStrata(strata),
    )
    const { bento, conn } = bentoL1L2(`${id}-bst${bytes}`, url, 10_000)
    const b = await one('bento', (k) => bento.getOrSet({ key: k, factory, ttl: '1m' }))
    await bento.disconnect().catch(() => {})
    conn.disconnect()
    const cm = cacheManagerL1L2(`${id}-cmst${bytes}`, url, false)
    const m = await one('cm', (k) => cm.wrap(k, factory, 60_000))
    await cm.disconnect().catch(() => {})
    report.count(
      `${label}, 1 process x 1,000 callers: strata factory runs`,
      s.runs,
      'runs',
      { name: 'bentocache', value: b.runs },
      { text: 'exactly 1', pass: s.runs === 1 },
    )
    report.count(`${label}, 1 process x 1,000 callers: cache-manager factory runs`, m.runs, 'runs')
    report.time(
      `${label}, 1 process: strata wall time`,
      s.wall,
      'ms',
      { name: `factory time ${factoryMs} ms`, value: factoryMs },
      {
        text: `<= factory + 5 ms`,
        pass: s.wall <= factoryMs + 5,
      },
    )
    report.time(`${label}, 1 process: bentocache wall time`, b.wall, 'ms', {
      name: `factory time ${factoryMs} ms`,
      value: factoryMs,
    })
  }

  // Across 4 processes: every child fires 250 getOrSet at the same instant; the factory counts
  // its runs in Redis, so runs in any process are seen.
  for (const lib of ['strata', 'bento'] as const) {
    const children = Array.from({ length: 4 }, () => new Child())
    try {
      const ns = `${id}-x${lib}`
      for (const c of children) c.send({ cmd: 'init', lib, redisUrl: url, namespace: ns })
      await Promise.all(children.map((c) => c.next('ready')))
      for (const bytes of [KB, 100 * KB]) {
        const counterKey = `${id}:xcounter:${lib}:${bytes}`
        const startAt = Date.now() + 300
        for (const c of children)
          c.send({
            cmd: 'stampede',
            key: `x-stampede-${bytes}`,
            callers: 250,
            startAt,
            factoryMs,
            size: bytes,
            counterKey,
          })
        const done = await Promise.all(children.map((c) => c.next('stampede')))
        const wall = Math.max(...done.map((d) => d.finishedAt as number)) - startAt
        const runs = Number(await raw.admin.get(counterKey))
        const name = lib === 'strata' ? 'strata' : 'bentocache'
        const label = `stampede ${sizeLabel(bytes)}, 4 processes`
        report.count(
          `${label} x 250 callers: ${name} factory runs`,
          runs,
          'runs',
          undefined,
          lib === 'strata' ? { text: 'exactly 1', pass: runs === 1 } : undefined,
        )
        report.time(
          `${label}: ${name} wall time`,
          wall,
          'ms',
          { name: `factory time ${factoryMs} ms`, value: factoryMs },
          lib === 'strata' ? { text: '~ factory + 5 ms', pass: wall <= factoryMs + 5 } : undefined,
        )
      }
    } finally {
      await Promise.all(children.map((c) => c.close()))
    }
  }
  void cfg
}

// ---------------------------------------------------------------------------------------------

async function stale(report: Report, id: string, url: string): Promise<void> {
  const callers = 1000
  const factoryMs = 50
  const value = makeValue(KB)
  // burst: all 1,000 calls start in one tick, so each latency also holds the time to start the
  // others (the async floor shows that harness cost). spread: each caller starts in its own
  // macrotask, as requests reach a server; all of them still arrive while the 50 ms refresh runs.
  const timeCallers = async (
    call: () => Promise<unknown>,
    mode: 'burst' | 'spread',
  ): Promise<Latency> => {
    const lat = new Float64Array(callers)
    if (mode === 'burst') {
      await Promise.all(
        Array.from({ length: callers }, async (_, i) => {
          const t = performance.now()
          await call()
          lat[i] = performance.now() - t
        }),
      )
    } else {
      await new Promise<void>((resolve, reject) => {
        let launched = 0
        let finished = 0
        const launch = () => {
          const i = launched++
          const t = performance.now()
          call().then(() => {
            lat[i] = performance.now() - t
            if (++finished === callers) resolve()
          }, reject)
          if (launched < callers) setImmediate(launch)
        }
        launch()
      })
    }
    return summarize(lat)
  }
  let runs = 0
  const slow = async () => {
    runs++
    await sleep(factoryMs)
    return value
  }
  type Lib = { getOrSet: (factory: () => unknown) => Promise<unknown>; close: () => Promise<void> }
  const measure = async (make: () => Promise<Lib>, mode: 'burst' | 'spread') => {
    const lib = await make()
    try {
      await lib.getOrSet(() => value)
      await sleep(200) // past the 100 ms TTL, inside the 1 h grace
      runs = 0
      const lat = await timeCallers(() => lib.getOrSet(slow), mode)
      await sleep(factoryMs + 150)
      return { lat, runs }
    } finally {
      await lib.close()
    }
  }
  let n = 0
  const strataLib = async (): Promise<Lib> => {
    const c = await createStrata({ namespace: `${id}-stale${n++}`, l2: { redis: url } })
    const opts = { ttl: 100, grace: '1h', timeouts: { soft: 0 } }
    return { getOrSet: (f) => c.getOrSet('stale', f, opts), close: () => closeStrata(c) }
  }
  const bentoLib = async (): Promise<Lib> => {
    const { bento, conn } = bentoL1L2(`${id}-bstale${n++}`, url, 10_000)
    return {
      getOrSet: (f) =>
        bento.getOrSet({ key: 'stale', factory: f, ttl: 100, grace: '1h', timeout: 0 }),
      close: async () => {
        await bento.disconnect().catch(() => {})
        conn.disconnect()
      },
    }
  }
  const lru = new LRUCache<string, object>({ max: 10 })
  lru.set('stale', value as object)
  const floorBurst = await timeCallers(async () => lru.get('stale'), 'burst')
  const sBurst = await measure(strataLib, 'burst')
  const bBurst = await measure(bentoLib, 'burst')
  const sSpread = await measure(strataLib, 'spread')
  const bSpread = await measure(bentoLib, 'spread')
  const L = 'stale 1 KB, 1,000 callers'
  report.time(
    `${L} spread: strata p99 latency`,
    sSpread.lat.p99,
    'ms',
    { name: 'bentocache p99', value: bSpread.lat.p99 },
    { text: '< 1 ms', pass: sSpread.lat.p99 < 1 },
  )
  report.time(`${L} spread: strata p50 latency`, sSpread.lat.p50, 'ms', {
    name: 'bentocache p50',
    value: bSpread.lat.p50,
  })
  report.count(
    `${L} spread: strata background refreshes`,
    sSpread.runs,
    'runs',
    { name: 'bentocache', value: bSpread.runs },
    { text: 'exactly 1', pass: sSpread.runs === 1 },
  )
  report.time(`${L} burst (one tick): async floor p99`, floorBurst.p99, 'ms')
  report.time(`${L} burst: strata p99 latency`, sBurst.lat.p99, 'ms', {
    name: 'bentocache p99',
    value: bBurst.lat.p99,
  })
  report.time(`${L} burst: strata p50 latency`, sBurst.lat.p50, 'ms', {
    name: 'bentocache p50',
    value: bBurst.lat.p50,
  })
  report.count(
    `${L} burst: strata background refreshes`,
    sBurst.runs,
    'runs',
    { name: 'bentocache', value: bBurst.runs },
    { text: 'exactly 1', pass: sBurst.runs === 1 },
  )
}

// ---------------------------------------------------------------------------------------------

async function propagation(
  report: Report,
  cfg: Config,
  id: string,
  url: string,
  raw: RawClients,
): Promise<void> {
  // Baseline: raw Redis pub/sub one-way latency to another process.
  const sub = new Child()
  const channel = `${id}:chan`
  const rawLat: number[] = []
  try {
    sub.send({ cmd: 'init', lib: 'rawsub', redisUrl: url, namespace: id, channel })
    await sub.next('ready')
    for (let i = 0; i < cfg.propagationRuns; i++) {
      const t0 = wallNow()
      await raw.admin.publish(channel, String(t0))
      const m = await sub.next('msg')
      rawLat.push((m.at as number) - t0)
      await sleep(2)
    }
  } finally {
    await sub.close()
  }
  const base = summarize(rawLat)

  // The same round trip for each library: the parent writes a key, the child reads it into its
  // L1 and polls it; the parent deletes it and the child reports when its L1 copy is gone.
  const measureLib = async (lib: 'strata' | 'bento'): Promise<{ lat: Latency; missed: number }> => {
    const ns = `${id}-bus${lib}`
    let strata: StrataCacheLike | undefined
    let bento: { bento: Bento; conn: Redis } | undefined
    if (lib === 'strata')
      strata = await createStrata({ namespace: ns, l2: { redis: url }, bus: true })
    else bento = bentoL1L2(ns, url, 10_000, true)
    const child = new Child()
    try {
      child.send({ cmd: 'init', lib, redisUrl: url, namespace: ns })
      await child.next('ready')
      const lat: number[] = []
      let missed = 0
      for (let i = 0; i < cfg.propagationRuns; i++) {
        const key = `p${i}`
        if (strata) await strata.set(key, { i })
        else await bento!.bento.set({ key, value: { i }, ttl: '1m' })
        // A write may itself publish an invalidation: let it land before the child fills L1.
        await sleep(10)
        child.send({ cmd: 'fill', key })
        const filled = await child.next('filled')
        if (!filled.present) throw new Error(`${lib}: the child has no L1 entry to watch`)
        child.send({ cmd: 'watch', key, timeoutMs: 2000 })
        await child.next('watching')
        const t0 = wallNow()
        if (strata) await strata.delete(key)
        else await bento!.bento.delete({ key })
        const gone = await child.next('gone')
        if (Number.isNaN(gone.at as number)) missed++
        else lat.push((gone.at as number) - t0)
      }
      return { lat: summarize(lat), missed }
    } finally {
      await child.close()
      await closeStrata(strata)
      if (bento) {
        await bento.bento.disconnect().catch(() => {})
        bento.conn.disconnect()
      }
    }
  }
  const s = await measureLib('strata')
  const b = await measureLib('bento').catch((err: unknown) => {
    report.notes.push(`invalidation: bentocache peer not measured (${String(err)})`)
    return undefined
  })
  report.time(
    'invalidation reaches another process L1: strata p99',
    s.lat.p99,
    'ms',
    { name: 'raw pub/sub p99', value: base.p99 },
    { text: '< 5 ms', pass: s.lat.p99 < 5 && s.missed === 0 },
  )
  report.time('invalidation reaches another process L1: strata p50', s.lat.p50, 'ms', {
    name: 'raw pub/sub p50',
    value: base.p50,
  })
  if (b) {
    report.time('invalidation reaches another process L1: bentocache bus p99', b.lat.p99, 'ms', {
      name: 'raw pub/sub p99',
      value: base.p99,
    })
    report.time('invalidation reaches another process L1: bentocache bus p50', b.lat.p50, 'ms', {
      name: 'raw pub/sub p50',
      value: base.p50,
    })
  }
  for (const [name, r] of [
    ['strata', s],
    ['bentocache', b],
  ] as const)
    if (r?.missed)
      report.notes.push(
        `invalidation: ${r.missed} of ${cfg.propagationRuns} ${name} deletes never reached the other process within 2 s`,
      )
}

// ---------------------------------------------------------------------------------------------

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port
      srv.close(() => resolve(port))
    })
  })
}

/** A redis-server on a spare port, SIGSTOPped: connections open, nothing ever answers. */
async function spareRedis(
  mode: 'hung' | 'paused',
): Promise<{ url: string; stop(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'strata-bench-spare-'))
  const port = await freePort()
  const pidfile = join(dir, 'redis.pid')
  await run$('redis-server', [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--daemonize',
    'yes',
    '--save',
    '',
    '--appendonly',
    'no',
    '--dir',
    dir,
    '--pidfile',
    pidfile,
  ])
  let pid = 0
  for (let i = 0; i < 50 && !pid; i++) {
    pid = Number.parseInt(await readFile(pidfile, 'utf8').catch(() => ''), 10) || 0
    if (!pid) await sleep(50)
  }
  if (!pid) throw new Error('spare redis-server did not start')
  await sleep(100)
  if (mode === 'hung') process.kill(pid, 'SIGSTOP')
  else {
    // CLIENT PAUSE on our own spare server only (never the shared one): commands queue unanswered.
    const admin = new Redis(`redis://127.0.0.1:${port}`)
    await admin.call('CLIENT', 'PAUSE', '60000', 'ALL')
    admin.disconnect()
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    async stop() {
      try {
        process.kill(pid, 'SIGCONT')
        process.kill(pid, 'SIGKILL')
      } catch {
        /* gone */
      }
      await rm(dir, { recursive: true, force: true })
    },
  }
}

async function capped<T>(p: Promise<T>, ms: number): Promise<{ ms: number; timedOut: boolean }> {
  const t0 = performance.now()
  let timer: NodeJS.Timeout | undefined
  const timedOut = await Promise.race([
    p.then(
      () => false,
      () => false,
    ),
    new Promise<boolean>((r) => (timer = setTimeout(() => r(true), ms))),
  ])
  clearTimeout(timer)
  return { ms: timedOut ? ms : performance.now() - t0, timedOut }
}

async function unreachable(report: Report, cfg: Config, id: string): Promise<void> {
  const value = makeValue(KB)
  const closedUrl = `redis://127.0.0.1:${await freePort()}`
  const hung = await spareRedis('hung')
  const paused = await spareRedis('paused')
  try {
    for (const [mode, url] of [
      ['refused', closedUrl],
      ['hung (SIGSTOP)', hung.url],
      ['paused (CLIENT PAUSE)', paused.url],
    ] as const) {
      const label = `Redis ${mode}`
      // bentocache peer first (capped: it may not answer for many seconds).
      const { bento, conn } = bentoL1L2(`${id}-bdown`, url, 10_000)
      conn.on('error', () => {})
      const bFirst = await capped(
        bento.getOrSet({ key: 'down-0', factory: () => value, ttl: '1m' }),
        cfg.unreachableCapMs,
      )
      void bento.disconnect().catch(() => {})
      conn.disconnect()

      const strata = await createStrata({ namespace: `${id}-down`, l2: { redis: url } })
      try {
        const sFirst = await capped(
          strata.getOrSet('down-0', () => value),
          cfg.unreachableCapMs,
        )
        report.time(
          `${label}: strata first call`,
          sFirst.ms,
          'ms',
          {
            name: `bentocache first call${bFirst.timedOut ? ` (no answer, capped at ${cfg.unreachableCapMs} ms)` : ''}`,
            value: bFirst.ms,
          },
          { text: '<= 250 ms (commandTimeout)', pass: !sFirst.timedOut && sFirst.ms <= 250 },
        )
        // Calls 2–10 may still try Redis while the breaker counts failures; the goal is about
        // the calls after that, so both are shown.
        const early = await latencyAsync((i) => strata.getOrSet(`down-early-${i}`, () => value), {
          samples: 9,
        })
        report.time(`${label}: strata calls 2-10 max`, early.max / 1000, 'ms', undefined, {
          text: '<= 250 ms each',
          pass: early.max <= 250_000,
        })
        const later = await latencyAsync((i) => strata.getOrSet(`down-${i + 1}`, () => value), {
          samples: cfg.laterCalls,
        })
        report.time(
          `${label}: strata later calls p99 (after 10 calls)`,
          later.p99 / 1000,
          'ms',
          undefined,
          { text: '< 1 ms', pass: later.p99 < 1000 },
        )
        report.time(`${label}: strata later calls max`, later.max / 1000, 'ms')
      } finally {
        await capped(closeStrata(strata), 2000)
      }
    }
  } finally {
    await hung.stop()
    await paused.stop()
  }
}

// ---------------------------------------------------------------------------------------------

async function getMany(
  report: Report,
  cfg: Config,
  id: string,
  url: string,
  raw: RawClients,
): Promise<void> {
  const batch = 100
  const n = 1000
  const keys = Array.from({ length: n }, (_, i) => `g${i}`)
  const values = keys.map((_, i) => makeValue(KB, i))
  const rawPrefix = `${id}:mget:`
  const pipe = raw.admin.pipeline()
  keys.forEach((k, i) => pipe.set(rawPrefix + k, JSON.stringify(values[i]), 'PX', 600_000))
  await pipe.exec()
  const strata = await createStrata({
    namespace: `${id}-many`,
    l1: { maxEntries: 1 },
    l2: { redis: url },
    ttl: '10m',
  })
  const cm = cacheManagerL1L2(`${id}-cmmany`, url, true)
  try {
    if (typeof strata.getMany !== 'function') throw new Error('@strata/cache has no getMany() yet')
    for (let i = 0; i < n; i++) {
      await strata.set(keys[i]!, values[i])
      await cm.set(keys[i]!, values[i], 600_000)
    }
    const slice = (i: number) => {
      const start = (i * batch) % n
      return keys.slice(start, start + batch)
    }
    const rawSlices = Array.from({ length: n / batch }, (_, i) =>
      slice(i).map((k) => rawPrefix + k),
    )
    const firstMany = (await strata.getMany(slice(0))) as unknown[]
    if (firstMany.some((v) => v === undefined)) throw new Error('strata getMany missed stored keys')
    const firstCm = await cm.mget(slice(0))
    if (firstCm.some((v) => v === undefined))
      throw new Error('cache-manager mget missed stored keys')
    for (const c of [1, 16]) {
      const o = { ms: cfg.ms, concurrency: c }
      const parse = (vs: (string | null)[]) =>
        vs.map((v) => (v === null ? undefined : (JSON.parse(v) as unknown)))
      const r = await interleave(cfg.rounds, {
        io: () =>
          rateAsync(
            async (i) => parse(await raw.ioredis.mget(rawSlices[i % rawSlices.length]!)),
            o,
          ),
        nr: () =>
          rateAsync(
            async (i) => parse(await raw.nodeRedis.mGet(rawSlices[i % rawSlices.length]!)),
            o,
          ),
        strata: () => rateAsync((i) => strata.getMany!(slice(i)), o),
        cm: () => rateAsync((i) => cm.mget(slice(i)), o),
      })
      const v = (x: string) => r[x]!.opsPerSec * batch
      const best =
        v('io') >= v('nr')
          ? { name: `raw ioredis MGET+parse c=${c}`, value: v('io') }
          : { name: `raw node-redis MGET+parse c=${c}`, value: v('nr') }
      const keysPerSec = (metric: string, value: number, goal?: boolean) =>
        report.add({
          metric,
          value: Math.round(value),
          unit: 'keys/s',
          baseline: best.name,
          baselineValue: Math.round(best.value),
          ratio: round(value / best.value, 3),
          ...(goal ? { goal: '>= 0.9x raw MGET', pass: value >= 0.9 * best.value } : {}),
        })
      report.add({
        metric: `getMany 100 x 1 KB c=${c}: raw ioredis MGET+parse`,
        value: Math.round(v('io')),
        unit: 'keys/s',
      })
      report.add({
        metric: `getMany 100 x 1 KB c=${c}: raw node-redis MGET+parse`,
        value: Math.round(v('nr')),
        unit: 'keys/s',
      })
      keysPerSec(`getMany 100 x 1 KB c=${c}: strata getMany`, v('strata'), true)
      keysPerSec(`getMany 100 x 1 KB c=${c}: cache-manager mget`, v('cm'))
    }
  } finally {
    await closeStrata(strata)
    await cm.disconnect().catch(() => {})
    await deleteMatching(raw.admin, `*${id}*`)
  }
}

// ---------------------------------------------------------------------------------------------

export default async function run(args: BenchArgs = {}): Promise<BenchResult> {
  const quick = args.quick ?? false
  const cfg = quick ? QUICK : FULL
  const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
  const id = runId()
  const report = new Report()
  const nodeRedis = newNodeRedis(url)
  nodeRedis.on('error', () => {})
  await nodeRedis.connect()
  const raw: RawClients = {
    ioredis: new Redis(url),
    ioredisPipelined: new Redis(url, { enableAutoPipelining: true }),
    nodeRedis,
    admin: new Redis(url),
  }
  const only = typeof args.options?.only === 'string' ? args.options.only.split(',') : undefined
  const want = (name: string) => !only || only.includes(name)
  const t0 = Date.now()
  try {
    if (want('l1'))
      for (const bytes of [KB, 100 * KB])
        await scenario(report, `L1 hit ${sizeLabel(bytes)}`, () => l1Hit(report, cfg, bytes, id))
    if (want('l2'))
      for (const bytes of [1024, 102400] as const)
        await scenario(report, `L2 hit ${sizeLabel(bytes)}`, () =>
          l2Hit(report, cfg, bytes, id, url, raw),
        )
    if (want('miss'))
      await scenario(report, 'miss + factory', () => missFactory(report, cfg, id, url, raw))
    if (want('stampede'))
      await scenario(report, 'stampede', () => stampede(report, cfg, id, url, raw))
    if (want('stale')) await scenario(report, 'stale', () => stale(report, id, url))
    if (want('propagation'))
      await scenario(report, 'invalidation propagation', () =>
        propagation(report, cfg, id, url, raw),
      )
    if (want('unreachable'))
      await scenario(report, 'Redis unreachable', () => unreachable(report, cfg, id))
    if (want('getmany')) await scenario(report, 'getMany', () => getMany(report, cfg, id, url, raw))
  } finally {
    await deleteMatching(raw.admin, `*${id}*`).catch(() => {})
    raw.ioredis.disconnect()
    raw.ioredisPipelined.disconnect()
    raw.admin.disconnect()
    await nodeRedis.quit().catch(() => {})
  }
  report.notes.push(
    'Values are JSON-shaped records (1 KB: one record; 100 KB: ~100 records). Raw clients store JSON text and JSON.parse on read; each library uses its own defaults (@strata/cache: msgpack + compression above 1 KB; bentocache: JSON, serialized L1).',
    '"cold L1" = each library configured with a 1-entry L1 while reads cycle over many keys, so every read is an L2 hit that also fills L1.',
    `Throughputs are the median of ${cfg.rounds} window(s) of ${cfg.ms} ms (miss scenario: ${cfg.missMs} ms); latencies are per call, measured with performance.now().`,
    `Total run time ${Math.round((Date.now() - t0) / 1000)} s.`,
    'On the shared 2-core machine where these were recorded (load average 8-26 while other engineers built and tested), two consecutive full runs differed by up to ~3x on absolute in-memory figures; compare contenders within one run (ratios), not across runs.',
  )
  return {
    name: 'cache',
    params: {
      quick,
      versions: await versions(),
      redis: url.replace(/\/\/[^@]*@/, '//'),
      sizes: ['1 KB', '100 KB'],
      concurrency: [1, 64],
      callers: 1000,
      ...cfg,
    },
    results: report.results,
    notes: report.notes,
  }
}
