import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { open, stat } from 'node:fs/promises'
import { Readable } from 'node:stream'
import { createGunzip } from 'node:zlib'
import { importErrors } from '../errors.js'

/** True when the file is gzip: by `.gz` extension when 'auto', confirmed by the magic bytes. */
export async function isGzip(path: string, gzip: boolean | 'auto' | undefined): Promise<boolean> {
  if (gzip === true || gzip === false) return gzip
  const fh = await open(path, 'r')
  try {
    const buf = Buffer.alloc(2)
    const { bytesRead } = await fh.read(buf, 0, 2, 0)
    return bytesRead === 2 && buf[0] === 0x1f && buf[1] === 0x8b
  } finally {
    await fh.close()
  }
}

export interface ByteRange {
  /** First byte (inclusive). */
  start: number
  /** Last byte (exclusive). */
  end: number
}

export interface OpenedFile {
  stream: Readable
  /** Bytes read from the file so far (compressed bytes for gzip), for progress and ETA. */
  bytesRead(): number
}

/** Opens a (possibly gzip) file as a byte stream; a range applies to plain files only. */
export async function openFile(
  path: string,
  gzip: boolean | 'auto' | undefined,
  range?: ByteRange,
): Promise<OpenedFile> {
  try {
    await stat(path)
  } catch {
    throw importErrors.create('STRATA_IMPORT_SOURCE_NOT_FOUND', {
      message: `import source not found: ${path}`,
    })
  }
  const gz = await isGzip(path, gzip)
  if (gz && range) throw new Error('byte ranges are not possible on gzip input')
  if (range && range.end <= range.start) return { stream: Readable.from([]), bytesRead: () => 0 }
  // 1 MiB reads: fewer syscalls and parser calls than the 64 KiB default.
  const file = createReadStream(path, {
    highWaterMark: 1 << 20,
    ...(range ? { start: range.start, end: range.end - 1 } : {}),
  })
  return { stream: gz ? file.pipe(createGunzip()) : file, bytesRead: () => file.bytesRead }
}

/**
 * Identifies a source file cheaply but robustly enough to refuse resuming on a different file:
 * size plus a SHA-256 of the first and last MiB (hashing a multi-GB file on each resume would cost
 * as much as reading it).
 */
export async function fileFingerprint(path: string): Promise<string> {
  const st = await stat(path).catch(() => {
    throw importErrors.create('STRATA_IMPORT_SOURCE_NOT_FOUND', {
      message: `import source not found: ${path}`,
    })
  })
  const hash = createHash('sha256')
  const fh = await open(path, 'r')
  try {
    const n = Math.min(st.size, 1 << 20)
    const head = Buffer.alloc(n)
    await fh.read(head, 0, n, 0)
    hash.update(head)
    if (st.size > n) {
      const tail = Buffer.alloc(Math.min(st.size - n, 1 << 20))
      await fh.read(tail, 0, tail.length, st.size - tail.length)
      hash.update(tail)
    }
  } finally {
    await fh.close()
  }
  return `size=${st.size};sha256=${hash.digest('hex').slice(0, 32)}`
}
