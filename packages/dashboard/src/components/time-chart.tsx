// Time series with uPlot: ~50 KB minified (~22 KB gzip), canvas-drawn, fast with thousands of
// points, no dependencies. ECharts does more but weighs ~10× as much; the dashboard needs bars
// and lines over time, which uPlot does well. Breakdowns are plain HTML bars (bar-list.tsx).
import { useEffect, useMemo, useRef, useState } from 'react'
import uPlot from 'uplot'
import 'uplot/dist/uPlot.min.css'
import { formatCount } from '../lib/format.js'
import { axisLabel, formatInstant } from '../lib/time.js'
import { cssVar, useThemeName } from '../lib/use-theme.js'

export interface ChartSeries {
  label: string
  values: number[]
  /** A CSS custom property holding the colour, e.g. '--ok'. */
  color: string
}

interface TimeChartProps {
  caption: string
  /** Bucket starts, ISO 8601. */
  starts: string[]
  series: ChartSeries[]
  /** Stacked bars (series stacked in order, first at the bottom) or lines. */
  kind: 'stacked-bars' | 'lines'
  tz: string
  height?: number
}

export function TimeChart({ caption, starts, series, kind, tz, height = 240 }: TimeChartProps) {
  const box = useRef<HTMLDivElement>(null)
  const theme = useThemeName()
  const [hover, setHover] = useState<number | null>(null)
  const xs = useMemo(() => starts.map((s) => Date.parse(s) / 1000), [starts])

  useEffect(() => {
    const el = box.current
    if (!el || xs.length === 0) return
    const text = cssVar('--muted')
    const grid = cssVar('--grid')
    // Stacked bars: draw the running totals, tallest first, so each layer shows its own part.
    const plotted =
      kind === 'stacked-bars'
        ? series
            .map((_, i) =>
              xs.map((_x, j) => series.slice(0, i + 1).reduce((a, s) => a + (s.values[j] ?? 0), 0)),
            )
            .reverse()
        : series.map((s) => s.values)
    const ordered = kind === 'stacked-bars' ? [...series].reverse() : series
    const bars = uPlot.paths.bars!({ size: [0.8, 48], gap: 1 })
    const axis = {
      stroke: text,
      grid: { stroke: grid, width: 1 },
      ticks: { stroke: grid, width: 1 },
    }
    const u = new uPlot(
      {
        width: Math.max(200, el.clientWidth),
        height,
        legend: { show: false },
        cursor: { drag: { x: false, y: false }, points: { show: kind === 'lines' } },
        tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), tz),
        scales: {
          x: { time: true },
          y: { range: (_u, _min, max) => [0, max > 0 ? max * 1.05 : 1] },
        },
        axes: [
          {
            ...axis,
            size: 32, // one line of labels
            values: (_u, ticks, _i, _space, step) =>
              ticks.map((t) => axisLabel(t * 1000, tz, step >= 86_400)),
          },
          { ...axis, size: 56, values: (_u, ticks) => ticks.map((t) => formatCount(t)) },
        ],
        series: [
          {},
          ...ordered.map((s) => {
            const c = cssVar(s.color)
            return kind === 'stacked-bars'
              ? {
                  label: s.label,
                  stroke: c,
                  fill: c,
                  width: 0,
                  paths: bars,
                  points: { show: false },
                }
              : { label: s.label, stroke: c, width: 2 }
          }),
        ],
        hooks: { setCursor: [(self) => setHover(self.cursor.idx ?? null)] },
      },
      [xs, ...plotted],
      el,
    )
    const resize = new ResizeObserver(() =>
      u.setSize({ width: Math.max(200, el.clientWidth), height }),
    )
    resize.observe(el)
    return () => {
      resize.disconnect()
      u.destroy()
    }
  }, [xs, series, kind, tz, height, theme])

  const idx = hover !== null && hover < xs.length ? hover : null
  const totals = series.map((s) => s.values.reduce((a, v) => a + v, 0))
  return (
    <figure className="card chart">
      <figcaption>{caption}</figcaption>
      {xs.length === 0 ? (
        <p className="empty">No data</p>
      ) : (
        <>
          <div ref={box} className="chart-box" aria-hidden="true" />
          <p className="legend">
            <span className="muted">
              {idx === null
                ? kind === 'lines'
                  ? 'Latest'
                  : 'Total'
                : formatInstant(starts[idx]!, tz, false)}
            </span>
            {series.map((s, i) => (
              <span key={s.label} className="legend-item">
                <span className="swatch" style={{ background: `var(${s.color})` }} />
                {s.label}{' '}
                <strong>
                  {formatCount(
                    idx !== null
                      ? s.values[idx]
                      : kind === 'lines'
                        ? s.values[s.values.length - 1]
                        : totals[i],
                  )}
                </strong>
              </span>
            ))}
          </p>
          <p className="sr-only">
            {caption}: {xs.length} points from {formatInstant(starts[0]!, tz, false)} to{' '}
            {formatInstant(starts[starts.length - 1]!, tz, false)}.
          </p>
        </>
      )}
    </figure>
  )
}
