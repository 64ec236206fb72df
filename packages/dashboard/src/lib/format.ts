// Number formatting for people; one fixed locale so that figures read the same for everyone
// (and tests can parse them): thousands separated by commas, a dot for decimals.

const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 })
const decimal1 = new Intl.NumberFormat('en-US', { maximumFractionDigits: 1 })
const decimal2 = new Intl.NumberFormat('en-US', {
  minimumFractionDigits: 0,
  maximumFractionDigits: 2,
})

const DASH = '—'
const isNum = (v: number | null | undefined): v is number =>
  typeof v === 'number' && Number.isFinite(v)

/** 1234567 → "1,234,567"; null → "—". */
export function formatCount(v: number | null | undefined): string {
  return isNum(v) ? integer.format(v) : DASH
}

/** A fraction as a percentage with one decimal: 0.90351 → "90.4 %". */
export function formatPercent(fraction: number | null | undefined, digits = 1): string {
  if (!isNum(fraction)) return DASH
  return `${(fraction * 100).toFixed(digits)} %`
}

/** Milliseconds, adaptive: 0.071 → "0.07 ms", 37.3 → "37.3 ms", 2150 → "2.15 s". */
export function formatMs(ms: number | null | undefined): string {
  if (!isNum(ms)) return DASH
  if (ms >= 1000) return `${decimal2.format(ms / 1000)} s`
  if (ms >= 10) return `${decimal1.format(ms)} ms`
  return `${decimal2.format(ms)} ms`
}

/** A duration in seconds, in the two largest units: 14495 → "4 h 1 min", 42 → "42 s". */
export function formatDuration(seconds: number | null | undefined): string {
  if (!isNum(seconds)) return DASH
  const s = Math.round(Math.max(0, seconds))
  const d = Math.floor(s / 86_400)
  const h = Math.floor((s % 86_400) / 3600)
  const m = Math.floor((s % 3600) / 60)
  const r = s % 60
  if (d > 0) return h ? `${d} d ${h} h` : `${d} d`
  if (h > 0) return m ? `${h} h ${m} min` : `${h} h`
  if (m > 0) return r ? `${m} min ${r} s` : `${m} min`
  return `${r} s`
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB']

/** Bytes in binary units: 5514 → "5.4 KiB". */
export function formatBytes(bytes: number | null | undefined): string {
  if (!isNum(bytes)) return DASH
  let v = bytes
  let u = 0
  while (Math.abs(v) >= 1024 && u < UNITS.length - 1) {
    v /= 1024
    u++
  }
  return `${u === 0 ? integer.format(v) : decimal1.format(v)} ${UNITS[u]}`
}

/** Rows per second: 12345.6 → "12,346 rows/s". */
export function formatRate(rps: number | null | undefined): string {
  return isNum(rps) ? `${integer.format(rps)} rows/s` : DASH
}

/** Shares of a total, largest first: { a: 3, b: 1 } → [["a", 3, 0.75], ["b", 1, 0.25]]. */
export function shares(counts: Record<string, number>): [string, number, number][] {
  const total = Object.values(counts).reduce((a, b) => a + b, 0)
  return Object.entries(counts)
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .map(([k, v]) => [k, v, total > 0 ? v / total : 0])
}

/** A short id for tables: the first 8 characters of a uuid. */
export function shortId(id: string): string {
  return id.length > 12 ? id.slice(0, 8) : id
}
