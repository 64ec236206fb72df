import { afterEach, describe, expect, it } from 'vitest'
import { harness, until } from './support/harness.js'
import type { Harness } from './support/harness.js'

let h: Harness
afterEach(async () => h?.cleanup())

describe('tags (lazy invalidation)', () => {
  it('deleteByTag invalidates tagged entries on every instance, leaves others', async () => {
    h = harness('tags')
    const a = await h.make()
    const b = await h.make()
    await a.set('u1', 'one', { tags: ['users', 'org:1'] })
    await a.set('u2', 'two', { tags: ['users'] })
    await a.set('p1', 'post', { tags: ['posts'] })
    expect(await b.get('u1')).toBe('one')
    expect(await b.get('p1')).toBe('post')
    await a.deleteByTag('users')
    expect(a.peek('u1')).toBeUndefined()
    expect(await a.get('u2')).toBeUndefined()
    await until(() => b.peek('u1') === undefined)
    expect(await b.get('u1')).toBeUndefined()
    expect(await b.get('p1')).toBe('post')
    // A value written after the invalidation is valid again.
    let calls = 0
    expect(await b.getOrSet('u1', () => `fresh${++calls}`, { tags: ['users'] })).toBe('fresh1')
    expect(await a.get('u1')).toBe('fresh1')
  })

  it('a new instance sees an older invalidation stored in Redis (no bus message needed)', async () => {
    h = harness('tagslate')
    const a = await h.make()
    await a.set('k', 'v', { tags: ['t'] })
    await a.deleteByTag(['t'])
    const c = await h.make()
    expect(await c.get('k')).toBeUndefined()
  })

  it('factory context can set tags and ttl', async () => {
    h = harness('tagsctx')
    const a = await h.make()
    await a.getOrSet('k', (ctx) => {
      ctx.setTags(['dyn'])
      ctx.setTtl('1m')
      return 1
    })
    expect(a.peek('k')).toBe(1)
    await a.deleteByTag('dyn')
    expect(a.peek('k')).toBeUndefined()
  })

  it('tags are scoped to the namespace view', async () => {
    h = harness('tagsns')
    const a = await h.make()
    const users = a.namespace('users')
    const posts = a.namespace('posts')
    await users.set('1', 'u', { tags: ['t'] })
    await posts.set('1', 'p', { tags: ['t'] })
    await users.deleteByTag('t')
    expect(await users.get('1')).toBeUndefined()
    expect(await posts.get('1')).toBe('p')
  })
})
