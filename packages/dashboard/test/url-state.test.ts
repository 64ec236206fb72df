import { describe, expect, it } from 'vitest'
import { apiQuery, parseViewState, serializeViewState } from '../src/lib/url-state.js'

const NOW = Date.parse('2026-11-29T14:30:00Z')
const P = '8899b2ab-fd3f-4a3a-b963-f52e52f2b3e8'

describe('view state in the URL', () => {
  it('defaults to the last 30 days, today included, in the default zone', () => {
    expect(parseViewState('', NOW, 'UTC')).toEqual({
      from: '2026-10-31',
      to: '2026-11-29',
      tz: 'UTC',
      interval: 'day',
    })
    // "Today" is the zone's today: already Nov 30 in Tokyo.
    expect(parseViewState('?tz=Asia/Tokyo', Date.parse('2026-11-29T20:00:00Z'), 'UTC').to).toBe(
      '2026-11-30',
    )
  })

  it('reads a shared URL back exactly', () => {
    const search = `?from=2026-11-20&to=2026-11-27&tz=America%2FNew_York&interval=week&project=${P}`
    const state = parseViewState(search, NOW, 'UTC')
    expect(state).toEqual({
      from: '2026-11-20',
      to: '2026-11-27',
      tz: 'America/New_York',
      interval: 'week',
      project: P,
    })
    expect(serializeViewState(state)).toBe(search)
    expect(parseViewState(serializeViewState(state), NOW, 'Europe/Paris')).toEqual(state)
  })

  it('falls back on invalid values and repairs ranges', () => {
    const s = parseViewState(
      '?from=2026-13-01&to=yesterday&tz=Nowhere/City&interval=minute&project=x',
      NOW,
      'Europe/Paris',
    )
    expect(s).toEqual({ from: '2026-10-31', to: '2026-11-29', tz: 'Europe/Paris', interval: 'day' })
    // Reversed: swapped.
    expect(parseViewState('?from=2026-11-27&to=2026-11-20', NOW, 'UTC')).toMatchObject({
      from: '2026-11-20',
      to: '2026-11-27',
    })
    // Longer than the service's 400 days: cut from the start.
    expect(parseViewState('?from=2020-01-01&to=2026-11-29', NOW, 'UTC').from).toBe('2025-10-26')
    // Hourly over more than 80 days would pass the 2000-bucket limit: daily.
    expect(
      parseViewState('?from=2026-01-01&to=2026-11-29&interval=hour', NOW, 'UTC').interval,
    ).toBe('day')
    expect(
      parseViewState('?from=2026-11-01&to=2026-11-29&interval=hour', NOW, 'UTC').interval,
    ).toBe('hour')
  })

  it("uses the runtime's name for a zone, the one its picker lists", () => {
    const own = new Intl.DateTimeFormat('en-US', { timeZone: 'Asia/Kolkata' }).resolvedOptions()
      .timeZone
    const s = parseViewState('?tz=Asia/Kolkata', NOW, 'UTC')
    expect(s.tz).toBe(own)
    expect(Intl.supportedValuesOf('timeZone')).toContain(s.tz)
    expect(parseViewState('?tz=utc', NOW, 'Europe/Paris').tz).toBe('UTC')
  })

  it('keeps page parameters, drops the defaults it does not need', () => {
    const state = parseViewState('', NOW, 'UTC')
    expect(serializeViewState(state, '?result=failure&interval=week')).toBe(
      '?result=failure&from=2026-10-31&to=2026-11-29&tz=UTC',
    )
  })

  it('builds API query strings without empty values', () => {
    expect(apiQuery({ a: 1, b: '', c: undefined, d: null, e: false, tz: 'Europe/Paris' })).toBe(
      '?a=1&e=false&tz=Europe%2FParis',
    )
    expect(apiQuery({})).toBe('')
  })
})
