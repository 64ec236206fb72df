import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync, realpathSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { resolveImportPath } from '@strata/importer'

const root = realpathSync(mkdtempSync(join(tmpdir(), 'strata-paths-')))
const base = join(root, 'imports')
mkdirSync(join(base, 'sub'), { recursive: true })
writeFileSync(join(base, 'ok.csv'), 'a\n')
writeFileSync(join(base, 'sub', 'deep.csv'), 'a\n')
writeFileSync(join(root, 'secret.csv'), 'x\n')
symlinkSync(join(root, 'secret.csv'), join(base, 'link-out.csv'))
symlinkSync(root, join(base, 'dir-out'))
symlinkSync(join(base, 'ok.csv'), join(base, 'link-in.csv'))
afterAll(() => rmSync(root, { recursive: true, force: true }))

describe('resolveImportPath', () => {
  it('accepts files inside the directory', () => {
    expect(resolveImportPath(base, 'ok.csv')).toBe(join(base, 'ok.csv'))
    expect(resolveImportPath(base, 'sub/deep.csv')).toBe(join(base, 'sub', 'deep.csv'))
    expect(resolveImportPath(base, join(base, 'ok.csv'))).toBe(join(base, 'ok.csv'))
    expect(resolveImportPath(base, 'link-in.csv')).toBe(join(base, 'ok.csv'))
    expect(resolveImportPath(base, 'new.rejects.csv')).toBe(join(base, 'new.rejects.csv'))
  })

  it.each([
    ['../secret.csv', "'..'"],
    ['sub/../../secret.csv', "'..'"],
    ['..\\secret.csv', "'..'"],
    [join(root, 'secret.csv'), 'outside'],
    ['/etc/passwd', 'outside'],
    ['link-out.csv', 'symbolic link'],
    ['dir-out/secret.csv', 'symbolic link'],
    ['ok.csv\0.txt', 'NUL'],
    ['', 'empty'],
    ['missing-dir/x.csv', 'parent directory'],
  ])('refuses %j', (p, why) => {
    expect(() => resolveImportPath(base, p)).toThrow(
      expect.objectContaining({
        code: 'STRATA_IMPORT_PATH_NOT_ALLOWED',
        message: expect.stringContaining(why),
      }),
    )
  })
})
