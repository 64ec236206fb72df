import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { getImportJob, runImport } from '@strata/importer'
import { importerTestEnv, type ImporterTestEnv } from './support/importer-db.js'

let env: ImporterTestEnv
// The third batch's insert kills its own connection once (57P01, like a failover or a
// pg_terminate_backend): a transient error the importer must retry without losing or doubling rows.
beforeAll(async () => {
  env = await importerTestEnv(
    'imptr',
    `CREATE TABLE t (id int NOT NULL, email text NOT NULL);
     CREATE SEQUENCE kill_once;
     CREATE FUNCTION kill_once() RETURNS trigger LANGUAGE plpgsql AS $$
     BEGIN
       IF NEW.id = 250 AND nextval('kill_once') = 1 THEN
         PERFORM pg_terminate_backend(pg_backend_pid());
       END IF;
       RETURN NEW;
     END $$;
     CREATE TRIGGER kill_once BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION kill_once();`,
  )
})
afterAll(async () => env?.close())

describe('transient database errors', () => {
  it('retries a batch after the connection is killed, loading every row once', async () => {
    const lines = ['id,email']
    for (let i = 1; i <= 500; i++) lines.push(`${i},u${i}@x.io`)
    const path = env.file('t.csv', lines.join('\n') + '\n')
    const warnings: unknown[] = []
    const logger = {
      debug() {},
      info() {},
      error() {},
      warn: (o: unknown) => void warnings.push(o),
    }
    const r = await runImport(
      env.db,
      {
        source: { format: 'csv', path },
        target: { table: 't' },
        columns: { id: { type: 'int' }, email: { type: 'email' } },
        batch: { initial: 100, min: 100, max: 100 },
      },
      { logger, retry: { baseMs: 10 } },
    )
    expect(r.status).toBe('completed')
    expect(r.counts).toEqual({ read: 500, loaded: 500, rejected: 0, skipped: 0 })
    const [row] = await env.rows<{ n: number; d: number }>(
      'SELECT count(*)::int AS n, count(DISTINCT id)::int AS d FROM t',
    )
    expect(row).toEqual({ n: 500, d: 500 })
    expect(warnings).toHaveLength(1)
    expect((await getImportJob(env.db, r.jobId)).batches).toBe(5)
  })
})
