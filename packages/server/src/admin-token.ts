import { randomBytes } from 'node:crypto'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'

/**
 * The operator token: STRATA_ADMIN_TOKEN when set; otherwise the one saved under the data dir,
 * generated (mode 0600) on first start. `created` tells the caller to print it once.
 */
export async function resolveAdminToken(
  configured: string | undefined,
  dataDir: string,
): Promise<{ token: string; created: boolean; path?: string }> {
  if (configured) return { token: configured, created: false }
  const path = join(dataDir, 'admin-token')
  try {
    const saved = (await readFile(path, 'utf8')).trim()
    if (saved.length >= 16) return { token: saved, created: false, path }
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
    if ((err as NodeJS.ErrnoException).code === 'EEXIST')
      return { token: (await readFile(path, 'utf8')).trim(), created: false, path }
    throw err
  }
  return { token, created: true, path }
}
