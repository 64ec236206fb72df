import { describe, expect, it } from 'vitest'
import { EventValidator, parseIsoTimestamp, UserAgentParser, eventsErrors } from '@strata/events'

const ctx = {
  projectId: '00000000-0000-0000-0000-000000000001',
  receivedAt: Date.parse('2026-06-01T12:00:00Z'),
}

describe('parseIsoTimestamp', () => {
  it('accepts ISO 8601 with Z or an offset, fractions to ns', () => {
    expect(parseIsoTimestamp('2026-06-01T10:00:00Z')).toBe(Date.parse('2026-06-01T10:00:00Z'))
    expect(parseIsoTimestamp('2026-06-01T12:00:00+02:00')).toBe(Date.parse('2026-06-01T10:00:00Z'))
    expect(parseIsoTimestamp('2026-06-01T12:00:00.123456789+0200')).toBe(
      Date.parse('2026-06-01T10:00:00.123Z'),
    )
  })
  it('rejects what Date.parse would guess at', () => {
    for (const s of [
      '2026-06-01',
      '2026-06-01T10:00:00',
      '2026-02-29T00:00:00Z',
      '2026-13-01T00:00:00Z',
      '2026-06-01T24:00:00Z',
      'Mon, 01 Jun 2026 10:00:00 GMT',
      '+275760-09-13T00:00:00Z',
      'Infinity',
    ])
      expect(parseIsoTimestamp(s), s).toBeNaN()
    expect(parseIsoTimestamp('2028-02-29T00:00:00Z')).not.toBeNaN()
  })
})

describe('UserAgentParser', () => {
  const p = new UserAgentParser()
  it.each([
    [
      'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1',
      'mobile',
      'Safari',
      'iOS',
    ],
    [
      'Mozilla/5.0 (iPad; CPU OS 16_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.0 Mobile/15E148 Safari/604.1',
      'tablet',
      'Safari',
      'iOS',
    ],
    [
      'Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0',
      'desktop',
      'Firefox',
      'Linux',
    ],
    [
      'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)',
      'bot',
      'Googlebot',
      null,
    ],
    ['curl/8.5.0', 'bot', null, null],
    ['', 'unknown', null, null],
  ])('%s', (ua, deviceType, browser, os) => {
    expect(p.parse(ua)).toEqual({ deviceType, browser, os })
  })
})

describe('EventValidator', () => {
  const v = new EventValidator()
  it('maps Segment messages onto the events table', () => {
    const r = v.segment(
      {
        type: 'identify',
        userId: 42,
        traits: { a: 1 },
        context: { ip: '1.2.3.4' },
        messageId: 'm',
      },
      ctx,
    )
    expect(r.ok && r.row).toMatchObject({
      kind: 'event',
      type: 'identify',
      userId: '42',
      properties: { a: 1 },
      context: { ip: '1.2.3.4' },
      ts: ctx.receivedAt,
    })
    const alias = v.segment({ type: 'alias', userId: 'new', previousId: 'old' }, ctx)
    expect(alias.ok && alias.row.properties).toEqual({ previousId: 'old' })
  })
  it('uses originalTimestamp and batch sentAt for the skew correction', () => {
    const r = v.segment(
      { type: 'track', event: 'E', anonymousId: 'a', originalTimestamp: '2026-06-01T13:59:50Z' },
      { ...ctx, sentAt: '2026-06-01T14:00:00Z' },
    )
    expect(r.ok && r.row.ts).toBe(ctx.receivedAt - 10_000)
  })
  it('rejects unknown fields of logins with their path', () => {
    const r = v.login({ userId: 'u', method: 'email', success: true, userid: 'x' }, ctx)
    expect(!r.ok && [r.error.code, r.error.message]).toEqual([
      'STRATA_EVENT_INVALID',
      '/userid is not a known field',
    ])
  })
  it('every code in the registry is STRATA_-prefixed and has a 4xx/5xx status', () => {
    for (const [code, def] of Object.entries(eventsErrors.definitions)) {
      expect(code).toMatch(/^STRATA_/)
      expect(def.status).toBeGreaterThanOrEqual(400)
    }
  })
})
