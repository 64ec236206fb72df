/** SQL fragments and range arithmetic shared by the analytics queries. */

// Parameters of the range queries (AnalyticsQueries#rangeParams builds them): $1 project, $2 from, $3 to, $4 interval,
// $5 tz, $6..$7 the whole UTC hours inside [from, to), $8..$9 the whole UTC days inside those.
//
// Range membership does not depend on the zone: totals and breakdowns sum daily rollups over
// [$8, $9), hourly rollups over the rest of [$6, $7), and raw rows only for the partial hours
// [$2, $6) and [$7, $3). Series need each hour's local bucket: computed once per hour (a few
// thousand date_trunc calls, not one per row). An hour is "aligned" when it lies in one bucket:
// every hour in whole-hour zones; in half-hour zones (Asia/Kolkata) the hour straddling each
// local midnight (for interval=hour, every hour) is not, and its rows are bucketed from raw
// rows. A UTC day is aligned when it lies in one bucket (UTC; weeks in most zones). Exact always.
export const RANGE_CTES = `hours AS (
    SELECT h, date_trunc($4, h, $5) AS start,
           date_trunc($4, h, $5) = date_trunc($4, h + interval '59 minutes 59.999999 seconds', $5) AS aligned
    FROM generate_series($6::timestamptz, $7::timestamptz - interval '1 hour', interval '1 hour') h),
  days AS (
    SELECT d, date_trunc($4, d, $5) AS start,
           date_trunc($4, d, $5) = date_trunc($4, d + interval '1 day' - interval '1 microsecond', $5) AS aligned
    FROM generate_series($8::timestamptz, $9::timestamptz - interval '1 day', interval '1 day') d)`
// Raw pieces of the range: the partial edge hours, and the unaligned hours (series only).
export const EDGES = `SELECT $2::timestamptz AS a, $6::timestamptz AS b UNION ALL SELECT $7, $3`
export const UNALIGNED = `SELECT h AS a, h + interval '1 hour' AS b FROM hours WHERE NOT aligned`
// Every bucket start meeting [from, to): an aligned hour's bucket is known from `hours`; the
// rest of the range (edge pieces, unaligned hours) is sampled on a 15-minute grid plus each
// piece's last instant. Bucket lengths and boundaries are multiples of 15 minutes in every zone
// (Nepal +05:45, Lord Howe's 30-minute DST), so the samples hit every bucket.
export const BUCKETS = `SELECT start FROM hours WHERE aligned
  UNION SELECT date_trunc($4, g, $5) FROM (${EDGES} UNION ALL ${UNALIGNED}) x,
    generate_series(x.a, x.b - interval '1 microsecond', interval '15 minutes') g
  UNION SELECT date_trunc($4, x.b - interval '1 microsecond', $5) FROM (${EDGES} UNION ALL ${UNALIGNED}) x
    WHERE x.b > x.a`

/**
 * Unique users of `kind` ('l' logins, 'a' any activity) as CTEs `total_uniques (n)` and
 * `series_uniques (start, n)`: the OR of the user bitmaps (migration 0007) of every piece of the
 * range, popcounted per 8192-user chunk. Daily bitmaps for whole UTC days (in the series only
 * for aligned days), hourly ones for the other aligned hours, and bitmaps built from the raw
 * rows given (`edges`: partial edge hours; `unaligned`: hours straddling two buckets).
 */
export function uniquesCtes(kind: 'l' | 'a', edges: string, unaligned: string): string {
  const fromRaw = (rows: string, start: string) =>
    // OFFSET 0: the id lookup runs once per row, not once per use of `uid` (it was inlined thrice).
    `SELECT ${start} AS start, uid >> 13 AS chunk, strata_bitmap(array_agg(DISTINCT uid & 8191)) AS bits
     FROM (SELECT ts, ${UID('r')} AS uid FROM (${rows}) r OFFSET 0) r WHERE uid IS NOT NULL GROUP BY 1, 2`
  return `total_parts AS (
      SELECT chunk, bits FROM user_bitmaps
      WHERE project_id = $1 AND kind = '${kind}' AND grain = 'd' AND bucket >= $8 AND bucket < $9
      UNION ALL
      SELECT chunk, bits FROM user_bitmaps
      WHERE project_id = $1 AND kind = '${kind}' AND grain = 'h'
        AND ((bucket >= $6 AND bucket < $8) OR (bucket >= $9 AND bucket < $7))
      UNION ALL SELECT chunk, bits FROM (${fromRaw(edges, 'NULL::timestamptz')}) e),
    total_uniques AS (
      SELECT coalesce(sum(n), 0)::bigint AS n
      FROM (SELECT bit_count(bit_or(bits)) AS n FROM total_parts GROUP BY chunk) s),
    hourly_bits AS (
      SELECT h.h, h.start FROM hours h LEFT JOIN days d ON d.d = date_trunc('day', h.h, 'UTC') AND d.aligned
      WHERE h.aligned AND d.d IS NULL),
    -- Buckets with a whole day or hour in them take the bitmap path; the raw rows in them are
    -- turned into bitmaps. Buckets made of raw pieces only (interval=hour in a half-hour zone)
    -- are a plain COUNT(DISTINCT), with no id lookups.
    bitmap_starts AS (
      SELECT start FROM days WHERE aligned UNION SELECT start FROM hourly_bits),
    raw_rows AS (
      SELECT ts, user_id, date_trunc($4, ts, $5) AS start FROM (${edges} UNION ALL ${unaligned}) r),
    series_parts AS (
      SELECT d.start, b.chunk, b.bits FROM days d JOIN user_bitmaps b
        ON b.project_id = $1 AND b.kind = '${kind}' AND b.grain = 'd' AND b.bucket = d.d
      WHERE d.aligned
      UNION ALL
      SELECT h.start, b.chunk, b.bits FROM hourly_bits h JOIN user_bitmaps b
        ON b.project_id = $1 AND b.kind = '${kind}' AND b.grain = 'h' AND b.bucket = h.h
      UNION ALL ${fromRaw('SELECT ts, user_id FROM raw_rows WHERE start IN (SELECT start FROM bitmap_starts)', 'date_trunc($4, ts, $5)')}),
    series_uniques AS (
      SELECT start, sum(n)::bigint AS n
      FROM (SELECT start, bit_count(bit_or(bits)) AS n FROM series_parts GROUP BY start, chunk) s
      GROUP BY start
      UNION ALL
      SELECT start, count(DISTINCT user_id) FROM raw_rows
      WHERE start NOT IN (SELECT start FROM bitmap_starts)
      GROUP BY start)`
}

// Raw rows of one piece `x` of the range. OFFSET 0 keeps the subquery from being flattened, so
// each piece is its own index range scan: flattened, the planner (misled by generate_series'
// default row estimate) joined the pieces against a scan of the project's whole table.
export const RAW_ROWS = (table: 'login_events' | 'activity_logs') =>
  `SELECT * FROM ${table} r WHERE r.project_id = $1 AND r.ts >= x.a AND r.ts < x.b OFFSET 0`

// A raw row's user id (migration 0007), looked up per row: the raw pieces are a few hours of
// rows, and a correlated index lookup keeps that true even when statistics are stale (a new
// project looked like one row to the planner, which then joined every row of both tables).
export const UID = (alias: string) =>
  `(SELECT i.uid FROM analytics_user_ids i WHERE i.project_id = $1 AND i.user_id = ${alias}.user_id)`

/** First whole UTC hour at or after `from`, and the end of the last whole hour before `to`. */
export function wholeHours(from: number, to: number): [number, number] {
  const a = Math.ceil(from / 3_600_000) * 3_600_000
  const b = Math.floor(to / 3_600_000) * 3_600_000
  return a < b ? [a, b] : [from, from]
}

/**
 * The whole UTC days inside the whole hours [a, b), as [d1, d2); when there are none, [b, b) so
 * that hourly bitmaps cover all of [a, b).
 */
export function wholeDays(a: number, b: number): [number, number] {
  const d1 = Math.ceil(a / 86_400_000) * 86_400_000
  const d2 = Math.floor(b / 86_400_000) * 86_400_000
  return d1 < d2 ? [d1, d2] : [b, b]
}

export const US_TEXT = (col: string) =>
  `to_char(${col} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`

export const iso = (ms: number) => new Date(ms).toISOString()
export const num = (v: unknown) => Number(v ?? 0)
export const ms = (v: unknown) => (v instanceof Date ? v.getTime() : Date.parse(String(v)))
