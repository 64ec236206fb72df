import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createDatabase, isDataError, pgErrors, sqlState, type Database } from '@strata/pg'
import { createTestDatabase, type TestDatabase } from '../../../test/support/pg.js'

let tdb: TestDatabase
let db: Database

beforeAll(async () => {
  tdb = await createTestDatabase('sqlstate')
  db = await createDatabase({ url: tdb.url, pool: { max: 2, statementTimeoutMs: 200 } })
  await db.query(`CREATE TABLE item (id int PRIMARY KEY, name text NOT NULL CHECK (name <> ''))`)
  await db.query(`INSERT INTO item VALUES (1, 'one')`)
})

afterAll(async () => {
  await db?.close()
  await tdb?.drop()
})

/** The error db.query throws (a StrataError with the server's error as its cause). */
async function failure(sql: string): Promise<unknown> {
  const err = await db.query(sql).then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(pgErrors.is(err)).toBe(true)
  return err
}

const raise = (state: string) =>
  `DO $$ BEGIN RAISE EXCEPTION 'x' USING ERRCODE = '${state}'; END $$`

describe('isDataError: errors Postgres raises for the data of a row', () => {
  it.each([
    ['22P02 invalid text representation', `SELECT 'abc'::int`, '22P02'],
    ['22003 numeric value out of range', `SELECT 2147483647::int + 1`, '22003'],
    ['23505 unique violation', `INSERT INTO item VALUES (1, 'again')`, '23505'],
    ['23502 not null violation', `INSERT INTO item VALUES (2, NULL)`, '23502'],
    ['23514 check violation', `INSERT INTO item VALUES (3, '')`, '23514'],
    [
      '21000 one statement updating a row twice',
      `INSERT INTO item VALUES (4, 'a'), (4, 'b') ON CONFLICT (id) DO UPDATE SET name = excluded.name`,
      '21000',
    ],
    ['P0001 a trigger raising an exception', raise('P0001'), 'P0001'],
    ['54000 program limit exceeded', raise('54000'), '54000'],
  ])('%s', async (_name, sql, state) => {
    const err = await failure(sql)
    expect(sqlState(err)).toBe(state)
    expect(isDataError(err)).toBe(true)
    expect(isDataError((err as Error).cause)).toBe(true) // the raw pg error too
  })
})

describe('isDataError: errors that do not blame a row', () => {
  it.each([
    ['57014 statement timeout', `SELECT pg_sleep(2)`, '57014'],
    ['42P01 undefined table', `SELECT * FROM no_such_table`, '42P01'],
    [
      '42804 datatype mismatch (found while planning)',
      `INSERT INTO item (id, name) SELECT 'x'::text, 'y'`,
      '42804',
    ],
    ['40001 serialization failure', raise('40001'), '40001'],
    ['40P01 deadlock', raise('40P01'), '40P01'],
    ['53100 disk full', raise('53100'), '53100'],
    ['08006 connection failure', raise('08006'), '08006'],
    ['25P02 transaction aborted', raise('25P02'), '25P02'],
  ])('%s', async (_name, sql, state) => {
    const err = await failure(sql)
    expect(sqlState(err)).toBe(state)
    expect(isDataError(err)).toBe(false)
  })
})

describe('sqlState', () => {
  it('reads details.code of an error rebuilt without its cause (worker threads)', () => {
    const rebuilt = pgErrors.create('STRATA_DB_QUERY_FAILED', { details: { code: '23505' } })
    expect(sqlState(rebuilt)).toBe('23505')
    expect(isDataError(rebuilt)).toBe(true)
  })

  it('is undefined for errors without a SQLSTATE', () => {
    expect(sqlState(new Error('boom'))).toBeUndefined()
    expect(sqlState(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }))).toBeUndefined()
    expect(sqlState(pgErrors.create('STRATA_DB_CLOSED'))).toBeUndefined()
    expect(sqlState('23505')).toBeUndefined()
    expect(sqlState(null)).toBeUndefined()
    expect(isDataError(undefined)).toBe(false)
  })
})
