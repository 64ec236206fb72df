import { performance } from 'node:perf_hooks'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Database } from '@strata/pg'
import type { PoolClient } from 'pg'
import { EventValidator, GroupCommitWriter, ProjectStore, type EventRow } from '@strata/events'
import { eventsTestDb, type EventsTestDb } from './support/events-db.js'

// No event value may travel in SQL text: Postgres logs the statement text of a failing
// statement and shows it in pg_stat_activity, and a flush carries many projects' data.

let t: EventsTestDb
let projectId: string
const validator = new EventValidator()

beforeAll(async () => {
  t = await eventsTestDb('evsql')
  projectId = (await new ProjectStore(t.db).createProject('sql-text')).project.id
})
afterAll(async () => {
  await t?.close()
})

interface Spy {
  db: Database
  /** Every statement text sent, through db.query or a client of db.withClient (COPY included). */
  texts: string[]
  /** SQLSTATEs of the statements Postgres refused. */
  failures: string[]
}

/** The real Database, with every statement text it sends recorded. */
function spyDatabase(db: Database): Spy {
  const texts: string[] = []
  const failures: string[] = []
  const textOf = (q: unknown) =>
    typeof q === 'string' ? q : String((q as { text?: unknown } | null)?.text ?? '')
  const noteFailure = (err: unknown) => {
    const code = (err as { code?: unknown; cause?: { code?: unknown } }).code
    failures.push(String(code ?? (err as { cause?: { code?: unknown } }).cause?.code))
  }
  const wrapClient = (client: PoolClient): PoolClient =>
    new Proxy(client, {
      get(target, key) {
        if (key === 'query')
          return (q: unknown, ...rest: unknown[]) => {
            texts.push(textOf(q))
            const out = (target.query as (...a: unknown[]) => unknown)(q, ...rest)
            if (out instanceof Promise) out.catch(noteFailure)
            // A COPY stream reports its error as an event.
            else
              (out as { on?: (e: string, f: (err: unknown) => void) => void })?.on?.(
                'error',
                noteFailure,
              )
            return out
          }
        const v = Reflect.get(target, key) as unknown
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v
      },
    })
  const spied = new Proxy(db, {
    get(target, key) {
      if (key === 'query')
        return (sql: string, ...rest: unknown[]) => {
          texts.push(sql)
          return (target.query as (...a: unknown[]) => Promise<unknown>)(sql, ...rest)
        }
      if (key === 'withClient')
        return <T>(fn: (c: PoolClient) => Promise<T>, options?: { label?: string }) =>
          target.withClient((c) => fn(wrapClient(c)), options)
      const v = Reflect.get(target, key) as unknown
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v
    },
  })
  return { db: spied, texts, failures }
}

function track(messageId: string, properties: Record<string, unknown>, userId: string): EventRow {
  const r = validator.segment(
    { type: 'track', messageId, userId, event: 'Signed Up', properties },
    { projectId, receivedAt: Date.now() },
  )
  if (!r.ok) throw r.error
  return r.row
}

describe('writer: event values never in SQL text', () => {
  it('a 95 KB property of dollar-quote tags is stored byte-exact, bound (not in SQL text), in well under a second of event-loop time', async () => {
    // Every tag a dollar-quoting writer would try ($s$, $s0$, $s1$, …) is in the value.
    const parts = ['$s$', '$$']
    for (let i = 0; parts.join(' ').length < 95_000; i++) parts.push(`$s${i.toString(36)}$`)
    const hostile = parts.join(' ')
    const spy = spyDatabase(t.db)
    const w = new GroupCommitWriter(spy.db)
    await w.start()
    await w.write([track('warm-up', { p: 'x' }, 'warm')]) // partitions, prepared paths
    const row = track('dollar-tags', { p: hostile }, 'u-dollar')
    const elu = performance.eventLoopUtilization()
    const t0 = performance.now()
    const [res] = await w.write([row])
    const wallMs = performance.now() - t0
    const busyMs = performance.eventLoopUtilization(elu).active
    expect(res!.status).toBe('inserted')
    // The value went as a parameter: no tag search, no quoting.
    expect(spy.texts.filter((x) => x.includes('$s0$'))).toEqual([])
    // Event-loop time (not waiting on Postgres): a few ms when bound; the old tag search took
    // seconds. The bound is far from both, so a loaded machine does not make it flake.
    expect(
      busyMs,
      `event loop busy ${busyMs.toFixed(1)} ms (wall ${wallMs.toFixed(1)} ms)`,
    ).toBeLessThan(500)
    const stored = await t.db.query<{ p: string }>(
      "SELECT properties->>'p' AS p FROM events WHERE project_id = $1 AND message_id = 'dollar-tags'",
      [projectId],
    )
    expect(stored.rows[0]!.p === hostile).toBe(true)
    await w.close()
  })

  for (const copyThreshold of [500, 0]) {
    it(`a duplicate messageId (${copyThreshold ? 'one-statement' : 'COPY'} path, then the conflict-safe path) sends no value as SQL text`, async () => {
      const spy = spyDatabase(t.db)
      const w = new GroupCommitWriter(spy.db, { copyThreshold })
      const tag = `c${copyThreshold}`
      const marks = {
        messageId: `msg-dup-${tag}-7c1e`,
        otherId: `msg-fresh-${tag}-91ab`,
        userId: `pii-user-${tag}-alice`,
        email: `alice.${tag}@private.example`,
        secret: `card-4111-${tag}-1111`,
        ua: `Agent/${tag}-9.9 (pii-ua)`,
      }
      const login = (messageId: string) => {
        const r = validator.login(
          {
            messageId,
            userId: marks.userId,
            email: marks.email,
            method: 'email',
            success: false,
            failureReason: marks.secret,
            ip: '198.51.100.23',
          },
          { projectId, receivedAt: Date.now(), userAgent: marks.ua },
        )
        if (!r.ok) throw r.error
        return r.row
      }
      const activity = validator.activity(
        {
          messageId: marks.otherId,
          userId: marks.userId,
          action: 'export',
          metadata: { card: marks.secret },
        },
        { projectId, receivedAt: Date.now() },
      )
      if (!activity.ok) throw activity.error
      expect((await w.write([login(marks.messageId)]))[0]!.status).toBe('inserted')
      // The repeat makes the optimistic flush fail with unique_violation; it reruns safely.
      const res = await w.write([login(marks.messageId), activity.row])
      expect(res.map((r) => r.status)).toEqual(['duplicate', 'inserted'])
      expect(spy.failures).toContain('23505')
      await w.close()

      const values = [...Object.values(marks), projectId, '198.51.100.23']
      expect(spy.texts.length).toBeGreaterThan(0)
      for (const text of spy.texts)
        for (const v of values) expect(text.includes(v), `${v} in SQL text: ${text}`).toBe(false)
      // What the backends show as their last statement: no value either.
      const activityRows = await t.db.query<{ query: string }>(
        'SELECT query FROM pg_stat_activity WHERE datname = current_database()',
      )
      for (const { query } of activityRows.rows)
        for (const v of values) expect(query.includes(v), `${v} in pg_stat_activity`).toBe(false)
    })
  }
})
