// A lock holder paused past its TTL (a real process, SIGSTOPped): another process takes the
// lock with a larger fencing token, and the stale holder's late write is refused by the guarded
// UPDATE (`WHERE fence < $token`), as packages/lock/README.md prescribes.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { createRedisLock, type Lock } from '@strata/lock'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { signal } from '../support/ports.js'
import { startPrivatePg, type PrivatePg } from '../support/private-pg.js'
import { startPrivateRedis, type PrivateRedis } from '../support/private-redis.js'
import { repoRoot, tsNodeArgs } from '../support/spawn.js'
import { report, sleep } from './support/fault-kit.js'

const holderScript = fileURLToPath(new URL('./children/lock-holder.ts', import.meta.url))

let pgs: PrivatePg
let redis: PrivateRedis
let dbUrl: string

beforeAll(async () => {
  ;[pgs, redis] = await Promise.all([startPrivatePg(), startPrivateRedis()])
  dbUrl = await pgs.createDatabase('fencing')
  await pgs.query(
    `CREATE TABLE fenced_report (id int PRIMARY KEY, body text NOT NULL, fence bigint NOT NULL);
     INSERT INTO fenced_report VALUES (1, 'initial', 0)`,
    [],
    'fencing',
  )
})

afterAll(async () => {
  await redis?.stop()
  await pgs?.stop()
})

describe('lock holder paused past its TTL', () => {
  it('6. the fencing token refuses the stale holder’s late write', async () => {
    const ttlMs = 2000
    const prefix = 'faults:lock:'
    const child = spawn(process.execPath, [...tsNodeArgs, holderScript], {
      cwd: repoRoot,
      env: {
        ...process.env,
        REDIS_URL: redis.url,
        DATABASE_URL: dbUrl,
        LOCK_KEY: 'report:daily',
        LOCK_PREFIX: prefix,
        LOCK_TTL: `${ttlMs}ms`,
      },
      stdio: ['pipe', 'pipe', 'pipe'],
    })
    let stderr = ''
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    const exited = once(child, 'exit')
    const steps: Record<string, unknown>[] = []
    const lines = createInterface({ input: child.stdout })
    const next = async (step: string) => {
      for (let i = 0; i < 600 && !steps.some((s) => s.step === step); i++) {
        if (child.exitCode !== null) break
        await sleep(50)
      }
      const found = steps.find((s) => s.step === step)
      if (!found) throw new Error(`holder never printed ${step}; stderr:\n${stderr}`)
      return found
    }
    lines.on('line', (l) => steps.push(JSON.parse(l) as Record<string, unknown>))

    const locks = createRedisLock({ url: redis.url, prefix })
    let mine: Lock | undefined
    try {
      const acquired = await next('acquired')
      expect(acquired.updated).toBe(1)
      // Paused (think: a long GC pause or a frozen VM) well past the TTL; the watchdog can't run.
      signal(child.pid!, 'SIGSTOP')
      const pausedAt = Date.now()
      await sleep(ttlMs + 1000)
      mine = await locks.acquire('report:daily', '10s', { wait: '5s' })
      const takenOverAfterMs = Date.now() - pausedAt
      expect(mine.fence).toBeGreaterThan(acquired.fence as number)
      const c = await pgs.connect('fencing')
      const newHolderUpdated = await c
        .query('UPDATE fenced_report SET body = $1, fence = $2 WHERE id = 1 AND fence < $2', [
          'holder B',
          mine.fence,
        ])
        .then((r) => r.rowCount)
        .finally(() => c.end())
      expect(newHolderUpdated).toBe(1)

      // The stale holder wakes up and writes with its old token.
      signal(child.pid!, 'SIGCONT')
      child.stdin.write('go\n')
      const late = await next('late-write')
      const ended = await Promise.race([next('using-rejected'), next('using-returned')])
      const [row] = await pgs.query<{ body: string; fence: string }>(
        'SELECT body, fence FROM fenced_report WHERE id = 1',
        [],
        'fencing',
      )
      report('lock-fencing', {
        ttlMs,
        pausedMs: Date.now() - pausedAt,
        takenOverAfterMs,
        staleFence: acquired.fence,
        newFence: mine.fence,
        lateWriteUpdated: late.updated,
        holderSawAbort: late.signalAborted,
        holderOutcome: ended,
        final: row,
      })
      expect(late.updated).toBe(0)
      expect(row).toEqual({ body: 'holder B', fence: String(mine.fence) })
      // using() tells the stale holder its work was not protected.
      expect(ended).toMatchObject({ step: 'using-rejected', code: 'STRATA_LOCK_LOST' })
      await mine.release()
      mine = undefined
    } finally {
      if (child.exitCode === null) {
        signal(child.pid!, 'SIGCONT')
        child.stdin.end()
        const t = setTimeout(() => signal(child.pid!, 'SIGKILL'), 10_000)
        await exited
        clearTimeout(t)
      }
      await mine?.release().catch(() => {})
      await locks.close()
    }
  })

  // Without persistence the counter is lost with Redis' memory; it restarts from Redis' clock.
  it('6b. fencing tokens keep increasing across a Redis restart (no persistence)', async () => {
    const prefix = 'faults:lock-restart:'
    const c = await pgs.connect('fencing')
    const before: number[] = []
    try {
      await c.query(`INSERT INTO fenced_report VALUES (2, 'initial', 0)`)
      const locks = createRedisLock({ url: redis.url, prefix })
      try {
        for (let i = 0; i < 3; i++) {
          const l = await locks.acquire('report:weekly', '5s')
          before.push(l.fence)
          await c.query(
            'UPDATE fenced_report SET body = $1, fence = $2 WHERE id = 2 AND fence < $2',
            [`holder ${i}`, l.fence],
          )
          await l.release()
        }
      } finally {
        await locks.close()
      }
      await redis.kill()
      await redis.restart()
      const again = createRedisLock({ url: redis.url, prefix })
      try {
        const l = await again.acquire('report:weekly', '5s')
        const { rowCount } = await c.query(
          'UPDATE fenced_report SET body = $1, fence = $2 WHERE id = 2 AND fence < $2',
          ['holder after restart', l.fence],
        )
        await l.release()
        report('lock-fence-after-redis-restart', {
          fencesBefore: before,
          fenceAfter: l.fence,
          guardedWriteOfNewHolderUpdated: rowCount,
        })
        expect(l.fence).toBeGreaterThan(Math.max(...before))
        expect(rowCount).toBe(1)
      } finally {
        await again.close()
      }
    } finally {
      await c.end()
    }
  })
})
