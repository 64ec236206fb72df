import { realpathSync } from 'node:fs'
import { dirname, isAbsolute, relative, resolve, sep, basename } from 'node:path'
import { importErrors } from './errors.js'

function inside(base: string, p: string): boolean {
  const rel = relative(base, p)
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel))
}

function deny(p: string, why: string): never {
  throw importErrors.create('STRATA_IMPORT_PATH_NOT_ALLOWED', {
    message: `import path ${JSON.stringify(p)} is not allowed: ${why}`,
    details: { path: p, reason: why },
  })
}

/**
 * Resolves a user-supplied path inside `baseDir` (the configured import directory) and returns
 * the real path. Refuses NUL bytes, `..` segments, absolute paths outside the directory, and
 * symlinks (of the file or any parent) that lead out of it. A file that does not exist yet (a
 * reject file) is checked through its parent directory.
 */
export function resolveImportPath(baseDir: string, p: string): string {
  if (typeof p !== 'string' || p.length === 0) deny(String(p), 'empty path')
  if (p.includes('\0')) deny(p, 'NUL byte in path')
  if (p.split(/[\\/]/).includes('..')) deny(p, "'..' segments are not allowed")
  let base: string
  try {
    base = realpathSync(baseDir)
  } catch {
    return deny(p, `the import directory ${baseDir} does not exist`)
  }
  const candidate = resolve(base, p)
  if (!inside(base, candidate)) deny(p, 'outside the import directory')
  let real: string
  try {
    real = realpathSync(candidate)
  } catch {
    // Not there yet: the parent must exist and be inside.
    let parent: string
    try {
      parent = realpathSync(dirname(candidate))
    } catch {
      return deny(p, 'parent directory does not exist')
    }
    real = parent + sep + basename(candidate)
  }
  if (!inside(base, real)) deny(p, 'a symbolic link leads outside the import directory')
  return real
}
