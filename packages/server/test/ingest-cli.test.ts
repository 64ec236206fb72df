import { spawnSync } from 'node:child_process'
import { createDatabase } from '@strata/pg'
import { ProjectStore } from '@strata/events'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTestDatabase, type TestDatabase } from '../../../test/support/pg.js'
import { cliEntry, repoRoot, tsNodeArgs } from '../../../test/support/spawn.js'

let tdb: TestDatabase
beforeAll(async () => {
  tdb = await createTestDatabase('ingcli')
})
afterAll(async () => {
  await tdb?.drop()
})

function cli(args: string[]) {
  const env: NodeJS.ProcessEnv = { ...process.env, DATABASE_URL: tdb.url, LOG_LEVEL: 'warn' }
  for (const k of ['VITEST', 'VITEST_POOL_ID', 'VITEST_WORKER_ID']) delete env[k]
  return spawnSync(process.execPath, [...tsNodeArgs, cliEntry, ...args], {
    cwd: repoRoot,
    env,
    encoding: 'utf8',
    timeout: 60_000,
  })
}

describe('strata projects / keys', () => {
  it('projects create <name> --json prints the POST /v1/projects answer; the keys work', async () => {
    const r = cli(['projects', 'create', 'acme', '--json'])
    expect(r.status, r.stderr).toBe(0)
    // stdout is exactly the JSON answer (logs, if any, go to stderr).
    expect(r.stdout.trim().split('\n')).toHaveLength(1)
    const out = JSON.parse(r.stdout)
    expect(out).toMatchObject({
      project: { id: expect.any(String), name: 'acme' },
      keys: { write: expect.stringMatching(/^sk_w_/), admin: expect.stringMatching(/^sk_a_/) },
    })
    const db = await createDatabase({ url: tdb.url })
    try {
      const store = new ProjectStore(db)
      expect(await store.verifyKey(out.keys.write)).toMatchObject({
        projectId: out.project.id,
        kind: 'write',
      })
    } finally {
      await db.close()
    }
    const k = cli(['keys', 'create', '--project', out.project.id, '--kind', 'admin', '--json'])
    expect(k.status).toBe(0)
    expect(JSON.parse(k.stdout)).toMatchObject({
      key: { kind: 'admin', projectId: out.project.id },
      secret: expect.stringMatching(/^sk_a_/),
    })
    const list = cli(['projects', 'list', '--json'])
    expect(JSON.parse(list.stdout).items.map((p: { name: string }) => p.name)).toEqual(['acme'])
    expect(cli(['projects', 'create']).status).toBe(1)
  })
})
