// Child process for the fencing test: takes a @strata/lock lock, writes once with its fencing
// token, then waits for "go" on stdin (the parent SIGSTOPs it past the TTL meanwhile) and
// writes again with the same, now stale, token. Prints one JSON line per step.
import { createInterface } from 'node:readline'
import { createRedisLock } from '@strata/lock'
import pg from 'pg'

const { REDIS_URL, DATABASE_URL, LOCK_KEY, LOCK_PREFIX, LOCK_TTL } = process.env
const say = (o: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(o)}\n`)

const lines = createInterface({ input: process.stdin })
const go = new Promise<void>((resolve) => lines.on('line', (l) => l.trim() === 'go' && resolve()))

const db = new pg.Client({ connectionString: DATABASE_URL })
await db.connect()
const locks = createRedisLock({ url: REDIS_URL!, prefix: LOCK_PREFIX! })
const write = async (body: string, fence: number) =>
  (
    await db.query('UPDATE fenced_report SET body = $1, fence = $2 WHERE id = 1 AND fence < $2', [
      body,
      fence,
    ])
  ).rowCount

try {
  await locks.using(LOCK_KEY!, LOCK_TTL!, async (signal, lock) => {
    say({
      step: 'acquired',
      fence: lock.fence,
      updated: await write('holder A, on time', lock.fence),
    })
    await go
    // The stale write: as if the pause hit between a check of `signal` and the write.
    say({
      step: 'late-write',
      fence: lock.fence,
      signalAborted: signal.aborted,
      updated: await write('holder A, late', lock.fence),
    })
  })
  say({ step: 'using-returned' })
} catch (err) {
  say({ step: 'using-rejected', code: (err as { code?: string }).code ?? String(err) })
} finally {
  lines.close()
  await locks.close()
  await db.end()
}
