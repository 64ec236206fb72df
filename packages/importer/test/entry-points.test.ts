import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { repoRoot, tsNodeArgs } from '../../../test/support/spawn.js'

const run = promisify(execFile)
const child = fileURLToPath(new URL('./support/loaded-packages.ts', import.meta.url))

/** The node_modules packages that importing `specifier` loads, in a fresh process. */
async function loadedPackages(specifier: string): Promise<Set<string>> {
  const { stdout } = await run(process.execPath, [...tsNodeArgs, child, specifier], {
    cwd: repoRoot,
  })
  return new Set(
    stdout
      .split('\n')
      .filter((l) => l.startsWith('package '))
      .map((l) => l.slice(8)),
  )
}

describe('entry points', () => {
  it('the package index loads neither the queue (bullmq) nor the worker pool (piscina)', async () => {
    const loaded = await loadedPackages('@strata/importer')
    expect(loaded.has('csv-parse') || loaded.has('pg')).toBe(true) // the hook sees packages
    expect(loaded.has('bullmq')).toBe(false)
    expect(loaded.has('piscina')).toBe(false)
  })

  it('@strata/importer/queue loads bullmq', async () => {
    expect((await loadedPackages('@strata/importer/queue')).has('bullmq')).toBe(true)
  })
})
