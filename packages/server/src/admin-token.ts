import { randomBytes } from 'node:crypto'
import { mkdir, open, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { serverErrors } from './errors.js'

/** Shortest operator token accepted, wherever it comes from. */
export const MIN_ADMIN_TOKEN_LENGTH = 16

function refuse(message: string): never {
  throw serverErrors.create('STRATA_CONFIG_INVALID', { message })
}

/**
 * Reads the saved token, refusing a file others may read (the token is the operator's only
 * credential) or one holding a token too short to be one.
 */
async function readSaved(path: string): Promise<string> {
  const file = await open(path, 'r')
  try {
    // fstat of the opened file: the mode checked is the mode of the file read.
    const { mode } = await file.stat()
    if (process.platform !== 'win32' && (mode & 0o077) !== 0)
      refuse(
        `${path} is readable by other users (mode ${(mode & 0o777).toString(8).padStart(4, '0')}): run \`chmod 600 ${path}\`, or remove it to generate a new token`,
      )
    const token = (await file.readFile('utf8')).trim()
    if (token.length < MIN_ADMIN_TOKEN_LENGTH)
      refuse(
        `${path} holds a token shorter than ${MIN_ADMIN_TOKEN_LENGTH} characters: remove it to generate a new one, or set STRATA_ADMIN_TOKEN`,
      )
    return token
  } finally {
    await file.close()
  }
}

/**
 * The operator token: STRATA_ADMIN_TOKEN when set; otherwise the one saved under the data dir,
 * generated (mode 0600) on first start. `created` tells the caller to print it once. A token
 * shorter than 16 characters, or a saved file readable by group or others, is refused with
 * STRATA_CONFIG_INVALID.
 */
export async function resolveAdminToken(
  configured: string | undefined,
  dataDir: string,
): Promise<{ token: string; created: boolean; path?: string }> {
  if (configured !== undefined) {
    if (configured.length < MIN_ADMIN_TOKEN_LENGTH)
      refuse(`STRATA_ADMIN_TOKEN: must be at least ${MIN_ADMIN_TOKEN_LENGTH} characters`)
    return { token: configured, created: false }
  }
  const path = join(dataDir, 'admin-token')
  try {
    return { token: await readSaved(path), created: false, path }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  // The directory keeps default permissions: embedded Postgres (run as the postgres OS user when
  // we are root) must traverse it; the token file itself is 0600.
  await mkdir(dataDir, { recursive: true })
  const token = `sta_${randomBytes(24).toString('base64url')}`
  // 'wx': two instances starting together must not overwrite each other's token.
  try {
    await writeFile(path, `${token}\n`, { mode: 0o600, flag: 'wx' })
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    // Another instance created it a moment ago and may still be writing it.
    for (let attempt = 0; ; attempt++) {
      try {
        return { token: await readSaved(path), created: false, path }
      } catch (readErr) {
        if (attempt >= 5) throw readErr
        await sleep(50)
      }
    }
  }
  return { token, created: true, path }
}
