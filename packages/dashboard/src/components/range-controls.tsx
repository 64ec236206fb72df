import { useMemo } from 'react'
import { INTERVALS, type Interval } from '../lib/url-state.js'
import { isDate, timeZones } from '../lib/time.js'
import { useView } from '../view.js'

/** From / To / Time zone (and Interval on the Overview): the URL's view state. */
export function RangeControls({ interval = false, note }: { interval?: boolean; note?: string }) {
  const { state, set } = useView()
  const zones = useMemo(() => {
    const all = timeZones()
    return all.includes(state.tz) ? all : [state.tz, ...all]
  }, [state.tz])
  return (
    <div className="controls" role="group" aria-label="Date range">
      <label>
        From
        <input
          type="date"
          value={state.from}
          max={state.to}
          required
          onChange={(e) => isDate(e.target.value) && set({ from: e.target.value })}
        />
      </label>
      <label>
        To
        <input
          type="date"
          value={state.to}
          min={state.from}
          required
          onChange={(e) => isDate(e.target.value) && set({ to: e.target.value })}
        />
      </label>
      <label className="tz">
        Time zone
        <select value={state.tz} onChange={(e) => set({ tz: e.target.value })}>
          {zones.map((z) => (
            <option key={z} value={z}>
              {z}
            </option>
          ))}
        </select>
      </label>
      {interval ? (
        <label>
          Interval
          <select
            value={state.interval}
            onChange={(e) => set({ interval: e.target.value as Interval })}
          >
            {INTERVALS.map((i) => (
              <option key={i} value={i}>
                {i}
              </option>
            ))}
          </select>
        </label>
      ) : null}
      {note ? <p className="muted small note">{note}</p> : null}
    </div>
  )
}
