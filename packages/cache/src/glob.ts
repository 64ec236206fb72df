/** Escapes Redis glob metacharacters, so `s` matches itself in a SCAN MATCH pattern. */
export function escapeGlob(s: string): string {
  return s.replace(/[*?[\]\\]/g, '\\$&')
}

/** The RegExp equivalent of a Redis glob, to apply a pattern delete to L1 as Redis does. */
export function globToRegExp(glob: string): RegExp {
  let re = ''
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!
    if (c === '\\' && i + 1 < glob.length) re += `\\${glob[++i]!}`.replace(/\\([a-zA-Z0-9])/, '$1')
    else if (c === '*') re += '.*'
    else if (c === '?') re += '.'
    else if (c === '[' || c === ']') re += c
    else re += c.replace(/[.+^${}()|\\/-]/g, '\\$&')
  }
  return new RegExp(`^${re}$`, 's')
}
