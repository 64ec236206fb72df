// Shared by cache.bench.ts and its child processes: values, the @strata/cache adapter, peers.
import { randomBytes } from 'node:crypto'

/** A JSON-shaped value whose JSON text is about `bytes` long (records, not one big string). */
export function makeValue(bytes: number, seed = 0): unknown {
  const record = (i: number) => ({
    id: seed * 1_000_000 + i,
    name: `user-${i}`,
    email: `user${i}@example.com`,
    active: i % 2 === 0,
    score: i * 1.5,
    roles: ['reader', 'writer'],
    createdAt: '2026-01-01T00:00:00.000Z',
    address: { street: `${i} Main Street`, city: 'Springfield', zip: '12345' },
    bio: 'x'.repeat(700),
  })
  if (bytes <= 1200) {
    const one = record(0)
    const pad = Math.max(0, bytes - JSON.stringify(one).length + one.bio.length)
    return { ...one, bio: 'x'.repeat(pad) }
  }
  const items: unknown[] = []
  let size = 2
  while (size < bytes) {
    const r = record(items.length)
    size += JSON.stringify(r).length + 1
    items.push(r)
  }
  return { items }
}

export const runId = (): string => `sb${Date.now().toString(36)}${randomBytes(3).toString('hex')}`

/** The slice of the @strata/cache API the benchmark uses (structural: the package evolves). */
export interface StrataCacheLike {
  getOrSet<T>(
    key: string,
    factory: () => T | Promise<T>,
    opts?: Record<string, unknown>,
  ): Promise<T>
  get<T>(key: string): Promise<T | undefined>
  set(key: string, value: unknown, opts?: Record<string, unknown>): Promise<unknown>
  delete(key: string): Promise<unknown>
  peek?(key: string): unknown
  getMany?(keys: string[]): Promise<unknown>
  setMany?(items: unknown): Promise<unknown>
  ready?(): Promise<void>
  close?(): Promise<void>
  disconnect?(): Promise<void>
}

export async function createStrata(options: Record<string, unknown>): Promise<StrataCacheLike> {
  const mod = (await import('@strata/cache')) as unknown as {
    createCache?: (o: Record<string, unknown>) => StrataCacheLike | Promise<StrataCacheLike>
  }
  if (typeof mod.createCache !== 'function')
    throw new Error('@strata/cache exports no createCache yet')
  const cache = await mod.createCache(options)
  if (typeof cache.ready === 'function') await cache.ready()
  return cache
}

export async function closeStrata(cache: StrataCacheLike | undefined): Promise<void> {
  if (!cache) return
  if (typeof cache.close === 'function') await cache.close()
  else if (typeof cache.disconnect === 'function') await cache.disconnect()
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** Absolute high-resolution time in ms, comparable across processes on one machine. */
export const wallNow = (): number => performance.timeOrigin + performance.now()
