/** Where a Redis deployment lives, from one configuration string. */
export type RedisTarget =
  | { cluster: false; url: string }
  | { cluster: true; nodes: { host: string; port: number }[]; password?: string; username?: string }

/**
 * Parses REDIS_URL's accepted forms: `redis://…` / `rediss://…` (one node), `redis+cluster://h1:p1,h2:p2`
 * or a plain comma list `h1:p1,h2:p2` (Cluster seed nodes), and a bare `host:port`.
 * Throws a RangeError naming the bad part.
 */
export function parseRedisTarget(value: string): RedisTarget {
  const trimmed = value.trim()
  const isCluster = trimmed.startsWith('redis+cluster://') || trimmed.includes(',')
  const toUrl = (part: string): URL => {
    const withScheme = /^[a-z+]+:\/\//i.test(part) ? part : `redis://${part}`
    let u: URL
    try {
      u = new URL(withScheme)
    } catch {
      throw new RangeError(`not a Redis address: ${JSON.stringify(part)}`)
    }
    if (!['redis:', 'rediss:', 'redis+cluster:'].includes(u.protocol) || !u.hostname)
      throw new RangeError(`not a Redis address: ${JSON.stringify(part)}`)
    return u
  }
  if (!isCluster) return { cluster: false, url: toUrl(trimmed).toString() }
  const parts = trimmed
    .replace(/^redis\+cluster:\/\//, '')
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)
  if (!parts.length) throw new RangeError(`no Redis Cluster nodes in ${JSON.stringify(value)}`)
  const urls = parts.map(toUrl)
  const first = urls[0]!
  return {
    cluster: true,
    nodes: urls.map((u) => ({ host: u.hostname, port: Number(u.port || 6379) })),
    ...(first.password ? { password: decodeURIComponent(first.password) } : {}),
    ...(first.username ? { username: decodeURIComponent(first.username) } : {}),
  }
}
