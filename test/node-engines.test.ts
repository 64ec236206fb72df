import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { repoRoot } from './support/spawn.js'

interface LockEntry {
  version?: string
  engines?: { node?: string } | string[]
}

// The smallest Node the repository supports (root package.json engines, @types/node ^20.19).
const SUPPORTED = [20, 19] as const

/** The lowest Node version a range admits (`>=A.B`, `^A.B`, `A`, joined by `||`), when it says one. */
function lowestNode(range: string): [number, number] | undefined {
  const mins = range
    .split('||')
    .map((part) => /^\s*(?:>=|\^|~)?\s*v?(\d+)(?:\.(\d+))?/.exec(part))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => [Number(m[1]), Number(m[2] ?? 0)] as [number, number])
  if (mins.length === 0) return undefined
  return mins.reduce((a, b) => (b[0] < a[0] || (b[0] === a[0] && b[1] < a[1]) ? b : a))
}

describe('package-lock.json', () => {
  it('installs nothing that wants a newer Node than 20.19 (npm ci prints no EBADENGINE)', () => {
    const lock = JSON.parse(readFileSync(join(repoRoot, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, LockEntry>
    }
    const tooNew: string[] = []
    for (const [path, entry] of Object.entries(lock.packages)) {
      const node = !Array.isArray(entry.engines) ? entry.engines?.node : undefined
      const low = node ? lowestNode(node) : undefined
      if (!low) continue
      if (low[0] > SUPPORTED[0] || (low[0] === SUPPORTED[0] && low[1] > SUPPORTED[1]))
        tooNew.push(`${path}@${entry.version}: node ${node}`)
    }
    expect(tooNew).toEqual([])
  })
})
