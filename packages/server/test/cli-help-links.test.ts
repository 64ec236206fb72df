import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { repoRoot } from '../../../test/support/spawn.js'
import { doctorCommand } from '../src/cli/commands/doctor.js'
import { importCommand } from '../src/cli/commands/import.js'
import { migrateCommand } from '../src/cli/commands/migrate.js'
import { keysCommand, projectsCommand } from '../src/cli/commands/projects.js'
import { seedCommand } from '../src/cli/commands/seed.js'
import { startCommand } from '../src/cli/commands/start.js'

const commands = [
  startCommand,
  migrateCommand,
  projectsCommand,
  keysCommand,
  importCommand,
  doctorCommand,
  seedCommand,
]

describe('strata <command> --help', () => {
  it('points only at documents that exist', () => {
    for (const c of commands)
      for (const [path] of c.usage.matchAll(/\b(?:docs\/[\w./-]+\.md|README\.md)/g))
        expect(existsSync(join(repoRoot, path)), `${c.name} --help: ${path}`).toBe(true)
  })

  it('start points at the README section that lists the variables', () => {
    expect(startCommand.usage).toContain('README.md, Configuration')
    expect(readFileSync(join(repoRoot, 'README.md'), 'utf8')).toMatch(/^## Configuration$/m)
  })
})
