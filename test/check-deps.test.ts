import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { checkDeps } from '../scripts/check-deps.mjs'

let roots: string[] = []
afterEach(() => {
  for (const r of roots) rmSync(r, { recursive: true, force: true })
  roots = []
})

/** A checkout with the given files (path → content) in a temp dir. */
function tree(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'strata-check-deps-'))
  roots.push(root)
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true })
    writeFileSync(join(root, path), content)
  }
  return root
}

const corePackage = { 'packages/core/package.json': '{ "name": "@strata/core" }' }

describe('check-deps: import cycles inside a package', () => {
  it('fails on a two-file cycle, naming both files', () => {
    const root = tree({
      ...corePackage,
      'packages/core/src/a.ts': "import { b } from './b.js'\nexport const a = () => b\n",
      'packages/core/src/b.ts': "import { a } from './a.js'\nexport const b = () => a\n",
    })
    const problems = checkDeps(root)
    expect(problems).toHaveLength(1)
    expect(problems[0]).toContain('packages/core/src: import cycle')
    expect(problems[0]).toContain('a.ts')
    expect(problems[0]).toContain('b.ts')
  })

  it('counts type-only imports and folders (a .js specifier names the .ts file)', () => {
    const root = tree({
      ...corePackage,
      'packages/core/src/types.ts':
        "import type { Health } from './health/check.js'\nexport type T = Health\n",
      'packages/core/src/health/check.ts':
        "import type { T } from '../types.js'\nexport type Health = { t?: T }\n",
    })
    expect(checkDeps(root)).toEqual([
      'packages/core/src: import cycle health/check.ts → types.ts → health/check.ts',
    ])
  })

  it('passes without the cycle', () => {
    const root = tree({
      ...corePackage,
      'packages/core/src/a.ts': "import { b } from './b.js'\nexport const a = () => b\n",
      'packages/core/src/b.ts':
        "// import { a } from './a.js' (a comment, not an import)\nexport const b = 1\n",
      'packages/core/src/index.ts': "export { a } from './a.js'\nexport { b } from './b.js'\n",
    })
    expect(checkDeps(root)).toEqual([])
  })
})

describe('check-deps: layering', () => {
  it('fails on an upward import between packages', () => {
    const root = tree({
      ...corePackage,
      'packages/pg/package.json':
        '{ "name": "@strata/pg", "dependencies": { "@strata/core": "0.1.0" } }',
      'packages/core/src/index.ts':
        "import type { Pool } from '@strata/pg'\nexport type P = Pool\n",
    })
    expect(checkDeps(root)).toEqual([
      'packages/core/src/index.ts imports @strata/pg: not allowed from core',
    ])
  })
})
