import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'

export type KeyKind = 'write' | 'admin'

// Keys look like `sk_w_<43 base64url chars>` (256 random bits). The first 16 characters are a
// public lookup prefix stored in clear; only the SHA-256 of the whole key is stored. A fast hash
// is right here: the secret has 256 bits of entropy, so there is nothing to brute-force slowly.
const PREFIX_LENGTH = 16
const KEY_RE = /^sk_[wa]_[A-Za-z0-9_-]{43}$/

export function generateKey(kind: KeyKind): { secret: string; prefix: string; hash: Buffer } {
  const secret = `sk_${kind === 'write' ? 'w' : 'a'}_${randomBytes(32).toString('base64url')}`
  return { secret, prefix: secret.slice(0, PREFIX_LENGTH), hash: hashKey(secret) }
}

export function hashKey(secret: string): Buffer {
  return createHash('sha256').update(secret).digest()
}

/** The lookup prefix of a well-formed key, or null (so junk never reaches the database). */
export function keyPrefix(secret: string): string | null {
  return KEY_RE.test(secret) ? secret.slice(0, PREFIX_LENGTH) : null
}

/** Constant-time comparison of a presented key with a stored hash. */
export function keyMatches(secret: string, storedHash: Buffer): boolean {
  const h = hashKey(secret)
  return h.length === storedHash.length && timingSafeEqual(h, storedHash)
}

/** Constant-time string comparison (operator token): hashing first equalises lengths. */
export function safeEqual(a: string, b: string): boolean {
  return timingSafeEqual(hashKey(a), hashKey(b))
}
