import type { Database } from '@strata/pg'
import { expect, it } from 'vitest'
import { loadConfig } from '../src/config.js'
import { ReplicaMonitor } from '../src/replica/replica-monitor.js'

// The lag arithmetic on scripted answers: what the primary's WAL position is and what the
// replica has replayed, at which (fake) time. The real standby is in analytics-replica.test.ts.
interface Step {
  primary: number
  replayed: number
  /** Seconds since the last replayed commit; null: none replayed since the standby started. */
  replayAge: number | null
  paused?: boolean
  down?: boolean
}

function fixture(maxLagMs = 10_000) {
  let clock = 1_000_000
  let step: Step = { primary: 0, replayed: 0, replayAge: null }
  const lsn = (n: number) => `${(n / 2 ** 32) >>> 0}/${(n >>> 0).toString(16).toUpperCase()}`
  const primary = {
    query: () => Promise.resolve({ rows: [{ lsn: lsn(step.primary) }] }),
  } as unknown as Database
  const replica = {
    query: () =>
      step.down
        ? Promise.reject(new Error('connect ECONNREFUSED'))
        : Promise.resolve({
            rows: [
              {
                standby: true,
                behind: String(step.primary - step.replayed),
                replayed: String(step.replayed),
                replay_age: step.replayAge,
                paused: step.paused ?? false,
              },
            ],
          }),
  } as unknown as Database
  const monitor = new ReplicaMonitor({ primary, replica, maxLagMs, now: () => clock })
  return {
    monitor,
    async at(seconds: number, s: Step) {
      clock += seconds * 1000
      step = s
      return monitor.check()
    },
  }
}

it('an idle primary: LSNs equal, an hour-old last commit → lag 0, reads on the replica', async () => {
  const f = fixture()
  const s = await f.at(0, { primary: 5000, replayed: 5000, replayAge: 3600 })
  expect(s).toMatchObject({ lagBytes: 0, lagSeconds: 0, readFrom: 'replica', reason: null })
})

it('the first commit after an hour idle is not an hour of lag: bounded by the last caught-up check', async () => {
  const f = fixture()
  await f.at(0, { primary: 5000, replayed: 5000, replayAge: 3600 })
  const s = await f.at(1, { primary: 5200, replayed: 5000, replayAge: 3601 })
  expect(s).toMatchObject({ lagBytes: 200, lagSeconds: 1, readFrom: 'replica' })
})

it('replay stuck: the lag grows with time until past the bound, then the primary; caught up: the replica', async () => {
  const f = fixture(1000)
  await f.at(0, { primary: 5000, replayed: 5000, replayAge: 0.1 })
  expect(
    await f.at(0.5, { primary: 6000, replayed: 5000, replayAge: 0.6, paused: true }),
  ).toMatchObject({ lagSeconds: 0.5, readFrom: 'replica', replayPaused: true })
  expect(
    await f.at(1, { primary: 9000, replayed: 5000, replayAge: 1.6, paused: true }),
  ).toMatchObject({ lagBytes: 4000, lagSeconds: 1.5, readFrom: 'primary', reason: 'lagging' })
  expect(await f.at(0.2, { primary: 9000, replayed: 9000, replayAge: 0.1 })).toMatchObject({
    lagSeconds: 0,
    readFrom: 'replica',
    reason: null,
  })
})

it('no replayed commit since the standby started and never caught up: as old as the first check', async () => {
  const f = fixture(1000)
  await f.at(0, { primary: 9000, replayed: 5000, replayAge: null })
  const s = await f.at(2, { primary: 9500, replayed: 6000, replayAge: null })
  expect(s).toMatchObject({ lagSeconds: 2, readFrom: 'primary' })
})

it('a replica that does not answer is down: the primary, lag unknown', async () => {
  const f = fixture()
  await f.at(0, { primary: 5000, replayed: 5000, replayAge: 1 })
  const s = await f.at(1, { primary: 5000, replayed: 5000, replayAge: 1, down: true })
  expect(s).toMatchObject({ status: 'down', lagSeconds: null, readFrom: 'primary', reason: 'down' })
})

it('STRATA_REPLICA_MAX_LAG: a duration, 10 s by default', () => {
  expect(loadConfig({}).replicaMaxLagMs).toBe(10_000)
  expect(loadConfig({ STRATA_REPLICA_MAX_LAG: '2s' }).replicaMaxLagMs).toBe(2000)
  expect(() => loadConfig({ STRATA_REPLICA_MAX_LAG: 'soon' })).toThrow(/STRATA_REPLICA_MAX_LAG/)
})
