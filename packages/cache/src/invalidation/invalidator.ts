import type { CacheBus } from '../bus/cache-bus.js'
import type { BusMessage } from '../bus/bus-message.js'
import type { CacheContext } from '../context.js'
import { escapeGlob, globToRegExp } from '../glob.js'
import { INTERNAL } from '../keys.js'
import { FAILED } from '../l2/l2-guard.js'
import type { L2Guard } from '../l2/l2-guard.js'
import type { L1Store } from '../tiers/l1-store.js'
import type { TagStates } from './tag-states.js'

/** Tag versions outlive any sane entry lifetime. */
const TAG_TTL = 30 * 24 * 3_600_000 // 30 days

/**
 * Deletes, tag and pattern invalidations, clears: applied to this instance at once, then to L2
 * and every other instance through one bus message each. Never rejects because L2 is down.
 */
export class Invalidator {
  readonly #ctx: CacheContext
  readonly #l1: L1Store
  readonly #tags: TagStates
  readonly #bus: CacheBus
  readonly #guard: L2Guard | undefined

  constructor(
    ctx: CacheContext,
    l1: L1Store,
    tags: TagStates,
    bus: CacheBus,
    guard: L2Guard | undefined,
  ) {
    this.#ctx = ctx
    this.#l1 = l1
    this.#tags = tags
    this.#bus = bus
    this.#guard = guard
  }

  async delete(fulls: string[]): Promise<void> {
    if (fulls.length === 0) return
    const { clock, events } = this.#ctx
    const version = clock.next()
    for (const f of fulls) this.#l1.delete(f)
    if (events.has('cache:delete')) events.emit('cache:delete', { keys: fulls })
    const msg: BusMessage = { o: this.#ctx.origin, t: 'del', v: version, k: fulls }
    const bus = this.#bus
    const guard = this.#guard
    if (!guard) return bus.publishLocal(msg)
    const r = await guard.run('delete', (d) =>
      d.deleteAndPublish(fulls, bus.channel, bus.encode(msg)),
    )
    if (r !== FAILED) bus.published()
  }

  /** Lazy: stores each tag's invalidation version; entries are judged against it on read. */
  async deleteByTags(tagKeys: string[]): Promise<void> {
    if (tagKeys.length === 0) return
    const { clock, events } = this.#ctx
    const version = clock.next()
    this.#tags.invalidate(tagKeys, version)
    if (events.has('cache:tag-invalidated')) events.emit('cache:tag-invalidated', { tags: tagKeys })
    const msg: BusMessage = { o: this.#ctx.origin, t: 'tag', v: version, g: tagKeys }
    const bus = this.#bus
    const guard = this.#guard
    if (!guard) return bus.publishLocal(msg)
    const r = await guard.run('deleteByTag', (d) =>
      d.setVersionsAndPublish(tagKeys, version, TAG_TTL, bus.channel, bus.encode(msg)),
    )
    if (r !== FAILED) bus.published()
  }

  /** SCAN + UNLINK under `prefix` matching `pattern` (glob); evicts matching L1 keys everywhere. */
  async deleteByPattern(prefix: string, pattern: string): Promise<number> {
    const version = this.#ctx.clock.next()
    const msg: BusMessage = { o: this.#ctx.origin, t: 'pattern', v: version, p: prefix, m: pattern }
    let n = this.#l1.evictMatching(prefix, globToRegExp(pattern), version)
    const bus = this.#bus
    const guard = this.#guard
    if (!guard) {
      bus.publishLocal(msg)
      return n
    }
    let l2n = 0
    const text = bus.encode(msg)
    const r = await guard.run('deleteByPattern', async (d) => {
      await d.scan(escapeGlob(prefix) + pattern, async (keys) => {
        const data = keys.filter((k) => !k.slice(prefix.length).startsWith(INTERNAL))
        if (data.length) l2n += await d.deleteAndPublish(data, bus.channel, text)
      })
    })
    if (r !== FAILED) {
      bus.published()
      n = Math.max(n, l2n)
    }
    return n
  }

  /** Everything under `prefix`: L1 and tag states here and on every instance, then L2. */
  async clear(prefix: string): Promise<void> {
    const { clock, events } = this.#ctx
    const version = clock.next()
    this.#l1.evictPrefix(prefix, version)
    this.#tags.forgetPrefix(prefix)
    if (events.has('cache:clear')) events.emit('cache:clear', { prefix })
    const msg: BusMessage = { o: this.#ctx.origin, t: 'clear', v: version, p: prefix }
    const bus = this.#bus
    const guard = this.#guard
    if (!guard) return bus.publishLocal(msg)
    const text = bus.encode(msg)
    await guard.run('clear', async (d) => {
      // Publish first so peers drop L1 at once; the SCAN below only frees Redis memory.
      await d.publish(bus.channel, text)
      await d.scan(`${escapeGlob(prefix)}*`, async (keys) => {
        await d.deleteAndPublish(keys, bus.channel, text)
      })
    })
  }
}
