import { Packr } from 'msgpackr'
import {
  brotliCompressSync,
  brotliDecompressSync,
  constants as zc,
  deflateRawSync,
  gunzipSync,
  gzipSync,
  inflateRawSync,
} from 'node:zlib'
import { cacheErrors } from './errors.js'
import type { CompressionAlgorithm, SerializerName } from './options.js'

/** What an L2 value carries besides the payload: enough to apply TTL, grace, tags and versions anywhere. */
export interface EntryMeta {
  version: number
  expiresAt: number
  staleUntil: number
  tags: string[] | undefined
}

export interface DecodedEntry extends EntryMeta {
  value: unknown
  size: number
}

const FORMAT = 1
const F_MSGPACK = 1
const F_DEFLATE = 2
const F_GZIP = 4
const F_BROTLI = 8
const HEADER = 28 // format(1) flags(1) version(8) expiresAt(8) staleUntil(8) tagBytes(2)

// useRecords:false keeps the msgpack output plain, so instances need no shared structure table.
const packr = new Packr({ useRecords: false, moreTypes: true })

/**
 * Encodes entries as a fixed binary header + payload. A hand-written header (not a msgpack
 * envelope) lets readers check version/expiry without touching the payload and costs no
 * second serialization pass.
 */
export class Serializer {
  readonly #msgpack: boolean
  readonly #threshold: number | undefined
  readonly #algorithm: CompressionAlgorithm

  constructor(
    name: SerializerName,
    threshold: number | undefined,
    algorithm: CompressionAlgorithm,
  ) {
    this.#msgpack = name === 'msgpack'
    this.#threshold = threshold
    this.#algorithm = algorithm
  }

  /** Serialized payload only (used for L1 size estimates when there is no L2). */
  payload(value: unknown): Buffer {
    return this.#msgpack ? this.#pack(value) : Buffer.from(this.#json(value))
  }

  #pack(value: unknown): Buffer {
    try {
      return packr.pack(value)
    } catch (err) {
      throw cacheErrors.create('STRATA_CACHE_SERIALIZATION_FAILED', { cause: err })
    }
  }

  #json(value: unknown): string {
    let json: string | undefined
    try {
      json = JSON.stringify(value)
    } catch (err) {
      throw cacheErrors.create('STRATA_CACHE_SERIALIZATION_FAILED', { cause: err })
    }
    if (json === undefined)
      throw cacheErrors.create('STRATA_CACHE_SERIALIZATION_FAILED', {
        cause: new TypeError('value is not JSON-serializable'),
      })
    return json
  }

  encode(value: unknown, meta: EntryMeta): Buffer {
    // JSON text is written straight into the entry buffer (no intermediate Buffer + copy)
    // unless it is compressed.
    let json: string | undefined
    let body: Buffer | undefined
    let bodyLen: number
    if (this.#msgpack) {
      body = this.#pack(value)
      bodyLen = body.length
    } else {
      json = this.#json(value)
      bodyLen = Buffer.byteLength(json)
    }
    let flags = this.#msgpack ? F_MSGPACK : 0
    if (this.#threshold !== undefined && bodyLen >= this.#threshold) {
      body ??= Buffer.from(json!)
      switch (this.#algorithm) {
        case 'deflate':
          body = deflateRawSync(body, { level: 1 })
          flags |= F_DEFLATE
          break
        case 'gzip':
          body = gzipSync(body, { level: 1 })
          flags |= F_GZIP
          break
        case 'brotli':
          body = brotliCompressSync(body, { params: { [zc.BROTLI_PARAM_QUALITY]: 1 } })
          flags |= F_BROTLI
          break
      }
      bodyLen = body.length
    }
    const tags = meta.tags?.length ? Buffer.from(meta.tags.join('\n')) : undefined
    const tagLen = tags?.length ?? 0
    if (tagLen > 0xffff)
      throw cacheErrors.create('STRATA_CACHE_INVALID_OPTIONS', { message: 'too many tags' })
    const out = Buffer.allocUnsafe(HEADER + tagLen + bodyLen)
    out[0] = FORMAT
    out[1] = flags
    out.writeDoubleLE(meta.version, 2)
    out.writeDoubleLE(meta.expiresAt, 10)
    out.writeDoubleLE(meta.staleUntil, 18)
    out.writeUInt16LE(tagLen, 26)
    if (tags) tags.copy(out, HEADER)
    if (body) body.copy(out, HEADER + tagLen)
    else out.write(json!, HEADER + tagLen)
    return out
  }

  decode(buf: Buffer): DecodedEntry {
    try {
      if (buf.length < HEADER || buf[0] !== FORMAT) throw new TypeError('unknown entry format')
      const flags = buf[1]!
      const tagLen = buf.readUInt16LE(26)
      const start = HEADER + tagLen
      let value: unknown
      if ((flags & (F_DEFLATE | F_GZIP | F_BROTLI | F_MSGPACK)) === 0) {
        // Plain JSON, the default: decode the text in place (no subarray view per entry).
        value = JSON.parse(buf.toString('utf8', start))
      } else {
        let body = buf.subarray(start)
        if (flags & F_DEFLATE) body = inflateRawSync(body)
        else if (flags & F_GZIP) body = gunzipSync(body)
        else if (flags & F_BROTLI) body = brotliDecompressSync(body)
        value = flags & F_MSGPACK ? packr.unpack(body) : JSON.parse(body.toString())
      }
      return {
        value,
        version: buf.readDoubleLE(2),
        expiresAt: buf.readDoubleLE(10),
        staleUntil: buf.readDoubleLE(18),
        tags: tagLen ? buf.toString('utf8', HEADER, HEADER + tagLen).split('\n') : undefined,
        size: buf.length,
      }
    } catch (err) {
      throw cacheErrors.create('STRATA_CACHE_SERIALIZATION_FAILED', { cause: err })
    }
  }

  /** Reads only the version from an encoded entry (no payload decode). */
  static version(buf: Buffer): number {
    return buf.length >= HEADER ? buf.readDoubleLE(2) : 0
  }
}
