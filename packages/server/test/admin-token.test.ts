import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { resolveAdminToken } from '../src/admin-token.js'
import { serverErrors } from '../src/errors.js'

let dir: string
const GOOD = 'sta_0123456789abcdefghijklmnop'

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'strata-token-'))
})
afterEach(async () => {
  await rm(dir, { recursive: true, force: true })
})

async function saved(content: string, mode: number): Promise<string> {
  const path = join(dir, 'admin-token')
  await writeFile(path, content, { mode })
  await chmod(path, mode) // writeFile's mode is filtered by the umask
  return path
}

async function refusal(promise: Promise<unknown>): Promise<Error> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(serverErrors.is(err, 'STRATA_CONFIG_INVALID'), String(err)).toBe(true)
  return err as Error
}

describe('resolveAdminToken', () => {
  it('generates a 0600 token file on first start, then reads it back', async () => {
    const first = await resolveAdminToken(undefined, dir)
    expect(first.created).toBe(true)
    expect(first.token.length).toBeGreaterThanOrEqual(16)
    expect((await stat(first.path!)).mode & 0o777).toBe(0o600)
    const again = await resolveAdminToken(undefined, dir)
    expect(again).toEqual({ token: first.token, created: false, path: first.path })
  })

  it('a saved token shorter than 16 characters is refused, not used (and not overwritten)', async () => {
    const path = await saved('short\n', 0o600)
    const err = await refusal(resolveAdminToken(undefined, dir))
    expect(err.message).toContain('shorter than 16')
    expect(err.message).toContain(path)
    expect(await readFile(path, 'utf8')).toBe('short\n')
  })

  it('an empty token file is refused', async () => {
    await saved('', 0o600)
    await refusal(resolveAdminToken(undefined, dir))
  })

  it.each([
    ['0644', 0o644],
    ['0640', 0o640],
    ['0604', 0o604],
    ['0660', 0o660],
    ['0666', 0o666],
  ])(
    'a token file with mode %s (group or others may read it) is refused with chmod 600',
    async (_name, mode) => {
      const path = await saved(`${GOOD}\n`, mode)
      const err = await refusal(resolveAdminToken(undefined, dir))
      expect(err.message).toContain(`chmod 600 ${path}`)
    },
  )

  it('a 0600 (or 0400) file with a good token is used', async () => {
    await saved(`${GOOD}\n`, 0o600)
    expect((await resolveAdminToken(undefined, dir)).token).toBe(GOOD)
    await chmod(join(dir, 'admin-token'), 0o400)
    expect((await resolveAdminToken(undefined, dir)).token).toBe(GOOD)
  })

  it('STRATA_ADMIN_TOKEN wins over the file, and must be 16 characters too', async () => {
    await saved('short', 0o644)
    expect(await resolveAdminToken('configured-token-0123456789', dir)).toEqual({
      token: 'configured-token-0123456789',
      created: false,
    })
    await refusal(resolveAdminToken('too-short', dir))
    await refusal(resolveAdminToken('', dir))
  })
})
