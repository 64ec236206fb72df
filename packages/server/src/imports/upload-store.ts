import { once } from 'node:events'
import { randomUUID } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { mkdir, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { Transform, type Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { importErrors } from '@strata/importer'

/** Uploaded import files, streamed to `<importDir>/uploads` under a size limit. */
export class UploadStore {
  readonly #importDir: string
  readonly maxBytes: number

  constructor(importDir: string, maxBytes: number) {
    this.#importDir = importDir
    this.maxBytes = maxBytes
  }

  /**
   * Streams `body` to a new file named `<uuid><ext>` and returns its path relative to the
   * import dir. Past `maxBytes` it throws 413 STRATA_IMPORT_UPLOAD_TOO_LARGE and keeps nothing.
   */
  async save(body: Readable, ext: string): Promise<string> {
    const dir = join(this.#importDir, 'uploads')
    await mkdir(dir, { recursive: true })
    const name = `${randomUUID()}${ext}`
    const path = join(dir, name)
    const max = this.maxBytes
    let size = 0
    const limiter = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        size += chunk.length
        if (size > max)
          cb(
            importErrors.create('STRATA_IMPORT_UPLOAD_TOO_LARGE', {
              message: `The upload is larger than ${max} bytes`,
            }),
          )
        else cb(null, chunk)
      },
    })
    const out = createWriteStream(path)
    try {
      await pipeline(body, limiter, out)
    } catch (err) {
      // The file may still be opening when the pipeline fails: unlinking before it closes would
      // run first and leave an empty file behind.
      if (!out.closed) await once(out, 'close').catch(() => {})
      await unlink(path).catch(() => {})
      throw err
    }
    return join('uploads', name)
  }

  /** Removes a stored upload (a path `save` returned); a missing file is not an error. */
  async remove(path: string): Promise<void> {
    await unlink(join(this.#importDir, path)).catch(() => {})
  }
}
