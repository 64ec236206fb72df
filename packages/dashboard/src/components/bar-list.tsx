import { formatCount, formatPercent, shares } from '../lib/format.js'

interface BarListProps {
  caption: string
  counts: Record<string, number>
  /** Only the largest n; the rest are summed as "other". @defaultValue 8 */
  top?: number
}

/**
 * A breakdown as horizontal bars (plain HTML and CSS: a label, a bar and the figure per line,
 * readable by screen readers and at any width; a donut would say less in more pixels).
 */
export function BarList({ caption, counts, top = 8 }: BarListProps) {
  const rows = shares(counts)
  const shown = rows.slice(0, top)
  const rest = rows.slice(top)
  if (rest.length)
    shown.push([
      `other (${rest.length})`,
      rest.reduce((a, r) => a + r[1], 0),
      rest.reduce((a, r) => a + r[2], 0),
    ])
  const max = Math.max(...shown.map((r) => r[2]), 0)
  return (
    <figure className="card">
      <figcaption>{caption}</figcaption>
      {shown.length === 0 ? (
        <p className="empty">No data</p>
      ) : (
        <ul className="bars">
          {shown.map(([name, n, share]) => (
            <li key={name}>
              <span className="bar-label">{name}</span>
              <span className="bar-track" aria-hidden="true">
                <span
                  className="bar-fill"
                  style={{ width: `${max > 0 ? (share / max) * 100 : 0}%` }}
                />
              </span>
              <span className="bar-value">
                {formatCount(n)} <span className="muted">({formatPercent(share)})</span>
              </span>
            </li>
          ))}
        </ul>
      )}
    </figure>
  )
}
