// Generators of ingestion items for the fuzz tests: a valid login, activity or Segment message,
// mutated by changes that keep it valid (edge-case text, duplicate keys whose last value is
// good, extreme but finite numbers, nesting within bounds, odd but valid timestamps) and, for
// some, one change that makes it invalid. Each case knows whether it is valid: that is the
// oracle of "valid items in a mixed batch are always stored".
import fc from 'fast-check'
import {
  BAD_TEXT,
  EDGE_TEXT,
  Entries,
  goodKey,
  goodNumber,
  goodObject,
  goodText,
  jsonText,
  nested,
  RawJson,
  type JsonLike,
} from './fuzz-support.js'

export const SEGMENT_KINDS = ['track', 'identify', 'page', 'screen', 'group', 'alias'] as const
export type SegmentKind = (typeof SEGMENT_KINDS)[number]
export type Kind = 'login' | 'activity' | SegmentKind

/** Where the message id of a case goes: filled in when the request is built (ids stay unique). */
export class IdSlot {
  constructor(readonly suffix: string) {}
}

type Value = JsonLike | IdSlot
type Fields = [string, Value][]

/**
 * One item: its fields in order (duplicates allowed), or a value that is not an object.
 * `mode`: 'batch' items carry their type; 'route' items go to a route that names the type.
 */
export interface EventCase {
  kind: Kind
  fields: Fields | null
  notObject?: JsonLike
  valid: boolean
  /** The mutations applied, for the failure message. */
  why: string[]
}

export type CaseMode = 'batch' | 'route'

const without = (f: Fields, ...keys: string[]): Fields => f.filter(([n]) => !keys.includes(n))
const set = (f: Fields, k: string, v: Value): Fields => [...without(f, k), [k, v]]

/** Code points, as Ajv's maxLength counts them. */
const codePoints = (s: string) => [...s].length
const text = (max: number) => goodText(8).filter((s) => codePoints(s) <= max)

const MINUTE = 60_000
const HOUR = 60 * MINUTE
const DAY = 24 * HOUR

/** `ms` as ISO 8601 with the given offset (minutes east of UTC) and fraction digits. */
function isoAt(ms: number, offsetMin: number, fraction: number, style: number): string {
  const local = new Date(ms + offsetMin * MINUTE).toISOString() // YYYY-MM-DDTHH:mm:ss.sssZ
  const base = local.slice(0, 19)
  const frac = local.slice(20, 23) + '000000'
  const sep = style % 3 === 2 ? ',' : '.'
  const head = style % 2 === 1 ? base.replace('T', 't') : base
  const sign = offsetMin < 0 ? '-' : '+'
  const abs = Math.abs(offsetMin)
  const hh = String(Math.floor(abs / 60)).padStart(2, '0')
  const mm = String(abs % 60).padStart(2, '0')
  const zone =
    offsetMin === 0 && style % 4 < 2
      ? style % 2
        ? 'z'
        : 'Z'
      : style % 5 === 0
        ? `${sign}${hh}${mm}`
        : `${sign}${hh}:${mm}`
  return `${head}${fraction ? sep + frac.slice(0, fraction) : ''}${zone}`
}

/** A timestamp inside the accepted window (730 days back, 24 h ahead), with margins. */
export const goodTimestamp: fc.Arbitrary<string> = fc
  .record({
    delta: fc.integer({ min: -700 * DAY, max: 23 * HOUR }),
    offset: fc.constantFrom(0, 0, 60, -300, 330, 345, -570, 840, -720),
    fraction: fc.integer({ min: 0, max: 9 }),
    style: fc.nat(),
  })
  .map(({ delta, offset, fraction, style }) => isoAt(Date.now() + delta, offset, fraction, style))

/** Timestamps the validator refuses: not strict ISO 8601 with a zone, or outside the window. */
export const badTimestamp: fc.Arbitrary<JsonLike> = fc.oneof(
  fc.constantFrom<JsonLike>(
    '2026-02-30T00:00:00Z',
    '2026-13-01T00:00:00Z',
    '2026-01-01T24:00:00Z',
    '2026-01-01T00:60:00Z',
    '2026-01-01T00:00:60Z',
    '2026-01-01',
    '2026-01-01T00:00:00',
    '2026-01-01 00:00:00Z',
    '2026-01-01T00:00:00+19:00',
    '2026-01-01T00:00:00.1234567890Z',
    '+275760-09-13T00:00:00Z',
    '-000001-01-01T00:00:00Z',
    'Infinity',
    'yesterday',
    'now',
    '1700000000',
    '',
    '0000-00-00T00:00:00Z',
    '1999-12-31T23:59:59Z',
    '1970-01-01T00:00:00Z',
    '9999-12-31T23:59:59Z',
    '2999-01-01T00:00:00Z',
    1_700_000_000_000,
    -1,
    true,
    null,
    [],
    new Entries([]),
    'x'.repeat(65),
  ),
  fc.integer({ min: 731, max: 5000 }).map((d) => isoAt(Date.now() - d * DAY, 0, 3, 0)),
  fc.integer({ min: 25, max: 10_000 }).map((h) => isoAt(Date.now() + h * HOUR, 0, 0, 0)),
)

const userRef: fc.Arbitrary<JsonLike> = fc.oneof(
  { weight: 4, arbitrary: text(255) },
  { weight: 1, arbitrary: fc.integer() },
  { weight: 1, arbitrary: fc.constantFrom<JsonLike>(new RawJson('-0'), 1e300, 0.5) },
)

function optional(arb: fc.Arbitrary<[string, Value]>): fc.Arbitrary<[string, Value][]> {
  return fc.option(arb, { nil: undefined }).map((e) => (e ? [e] : []))
}

const idSlot = fc.oneof(fc.constant(''), text(40)).map((s) => new IdSlot(s))

/** A valid item of `kind`, its fields in a shuffled order. */
export function validFields(kind: Kind): fc.Arbitrary<Fields> {
  const common: fc.Arbitrary<Fields>[] = [
    fc.constant<Fields>([['type', kind]]),
    idSlot.map((s): Fields => [['messageId', s]]),
    optional(goodTimestamp.map((t): [string, Value] => ['timestamp', t])),
  ]
  const parts: fc.Arbitrary<Fields>[] = []
  switch (kind) {
    case 'login':
      parts.push(
        text(255).map((v): Fields => [['userId', v]]),
        text(64).map((v): Fields => [['method', v]]),
        fc.boolean().map((v): Fields => [['success', v]]),
        optional(text(320).map((v): [string, Value] => ['email', v])),
        optional(text(1000).map((v): [string, Value] => ['failureReason', v])),
        optional(
          fc
            .constantFrom('1.2.3.4', '::1', '2001:db8::1', '', '10.0.0.255', '::ffff:1.2.3.4')
            .map((v): [string, Value] => ['ip', v]),
        ),
        optional(
          fc
            .constantFrom('desktop', 'mobile', 'tablet', 'bot', 'unknown')
            .map((v): [string, Value] => ['deviceType', v]),
        ),
        optional(text(100).map((v): [string, Value] => ['browser', v])),
        optional(text(2048).map((v): [string, Value] => ['userAgent', v])),
      )
      break
    case 'activity':
      parts.push(
        text(255).map((v): Fields => [['userId', v]]),
        text(64).map((v): Fields => [['action', v]]),
        optional(text(100).map((v): [string, Value] => ['entityType', v])),
        optional(text(255).map((v): [string, Value] => ['entityId', v])),
        optional(goodObject().map((v): [string, Value] => ['metadata', v])),
      )
      break
    default: {
      const who = fc.oneof(
        userRef.map((v): Fields => [['userId', v]]),
        userRef.map((v): Fields => [['anonymousId', v]]),
        fc.tuple(userRef, userRef).map(([u, a]): Fields => [
          ['userId', u],
          ['anonymousId', a],
        ]),
      )
      if (kind === 'alias')
        parts.push(
          userRef.map((v): Fields => [['userId', v]]),
          userRef.map((v): Fields => [['previousId', v]]),
        )
      else parts.push(who)
      if (kind === 'track') parts.push(text(255).map((v): Fields => [['event', v]]))
      if (kind === 'group') parts.push(userRef.map((v): Fields => [['groupId', v]]))
      if (kind === 'page' || kind === 'screen')
        parts.push(optional(text(255).map((v): [string, Value] => ['name', v])))
      const obj = kind === 'identify' || kind === 'group' ? 'traits' : 'properties'
      parts.push(
        optional(goodObject().map((v): [string, Value] => [obj, v])),
        optional(goodObject().map((v): [string, Value] => ['context', v])),
      )
    }
  }
  return fc
    .tuple(...common, ...parts)
    .chain((groups) => fc.shuffledSubarray(groups.flat(), { minLength: groups.flat().length }))
}

/** Fields a non-string makes invalid, by kind (the id fields of Segment take numbers too). */
function strictStrings(kind: Kind): string[] {
  if (kind === 'login') return ['messageId', 'userId', 'method']
  if (kind === 'activity') return ['messageId', 'userId', 'action']
  if (kind === 'track') return ['messageId', 'event']
  return ['messageId']
}

/** Field groups whose removal makes the item invalid. */
function required(kind: Kind): string[][] {
  switch (kind) {
    case 'login':
      return [['userId'], ['method'], ['success']]
    case 'activity':
      return [['userId'], ['action']]
    case 'track':
      return [['event'], ['userId', 'anonymousId']]
    case 'group':
      return [['groupId'], ['userId', 'anonymousId']]
    case 'alias':
      return [['userId'], ['previousId']]
    default:
      return [['userId', 'anonymousId']]
  }
}

/** The object-valued field of a kind (metadata, properties, traits), or null. */
function objectField(kind: Kind): string | null {
  if (kind === 'login') return null
  if (kind === 'activity') return 'metadata'
  return kind === 'identify' || kind === 'group' ? 'traits' : 'properties'
}

/** Free text fields and their length limits, by kind. */
function textFields(kind: Kind): [string, number][] {
  switch (kind) {
    case 'login':
      return [
        ['userId', 255],
        ['method', 64],
        ['email', 320],
        ['failureReason', 1000],
        ['browser', 100],
        ['os', 100],
        ['userAgent', 2048],
      ]
    case 'activity':
      return [
        ['userId', 255],
        ['action', 64],
        ['entityType', 100],
        ['entityId', 255],
      ]
    case 'track':
      return [['event', 255]]
    case 'page':
    case 'screen':
      return [['name', 255]]
    default:
      return []
  }
}

type Mutation = { name: string; apply: (f: Fields, kind: Kind) => Fields | null }

const pick = <T>(xs: readonly T[], i: number): T => xs[i % xs.length]!

/** An object holding `value` under a valid key, for the object field (or a top-level extra). */
function putNested(f: Fields, kind: Kind, value: JsonLike, key = 'k'): Fields {
  const field = objectField(kind) ?? 'extra'
  return set(f, field, new Entries([[key, value]]))
}

/** Changes that keep a valid item valid. */
function keepValid(kind: Kind, mode: CaseMode): fc.Arbitrary<Mutation> {
  const options: fc.Arbitrary<Mutation>[] = [
    fc.tuple(fc.nat(), fc.constantFrom(...EDGE_TEXT)).map(([i, s]) => ({
      name: `edge text ${JSON.stringify(s)}`,
      apply: (f, k) => {
        const fields = textFields(k)
        return fields.length ? set(f, pick(fields, i)[0], s) : f
      },
    })),
    fc.tuple(fc.nat(), text(64)).map(([i, s]) => ({
      name: 'duplicate key, good value last',
      apply: (f, k) => {
        const name = pick(
          strictStrings(k).filter((n) => n !== 'messageId'),
          i,
        )
        if (!name) return f
        return [...without(f, name), [name, 42], [name, s]]
      },
    })),
    fc.tuple(goodNumber, goodKey).map(([n, key]) => ({
      name: `number ${jsonText(n)}`,
      apply: (f, k) => (objectField(k) ? putNested(f, k, n, key) : f),
    })),
    fc.integer({ min: 1, max: 25 }).map((d) => ({
      name: `nested ${d} deep`,
      apply: (f, k) => (objectField(k) ? putNested(f, k, nested(d, 'leaf')) : f),
    })),
    fc.tuple(goodTimestamp, fc.boolean()).map(([t, withSentAt]) => ({
      name: `timestamp ${t}${withSentAt ? ' = sentAt' : ''}`,
      apply: (f) => {
        const g = set(without(f, 'sentAt'), 'timestamp', t)
        return withSentAt ? set(g, 'sentAt', t) : g
      },
    })),
    fc.integer({ min: 1000, max: 10_000 }).map((n) => ({
      name: `${n}-character value`,
      apply: (f, k) =>
        objectField(k)
          ? putNested(f, k, 'é'.repeat(n))
          : k === 'login'
            ? set(f, 'failureReason', 'é'.repeat(1000))
            : f,
    })),
  ]
  if (SEGMENT_KINDS.includes(kind as SegmentKind))
    options.push(
      goodObject().map((o) => ({
        name: 'SDK fields',
        apply: (f) => [
          ...f,
          ['channel', 'server'],
          ['_metadata', o],
          ['integrations', new Entries([['All', true]])],
        ],
      })),
    )
  if (mode === 'route')
    options.push(fc.constant({ name: 'no type', apply: (f) => without(f, 'type') }))
  return fc.oneof(...options)
}

/** Changes of which any one makes a valid item invalid. */
function makeInvalid(kind: Kind, mode: CaseMode): fc.Arbitrary<Mutation> {
  const bad = fc.constantFrom(...BAD_TEXT)
  const options: fc.Arbitrary<Mutation>[] = [
    fc
      .tuple(fc.nat(), fc.constantFrom<JsonLike>(42, true, null, [], new Entries([]), 1.5))
      .map(([i, v]) => ({
        name: `wrong type ${jsonText(v)}`,
        apply: (f, k) => set(f, pick(strictStrings(k), i), v),
      })),
    fc.tuple(fc.nat(), bad, fc.boolean()).map(([i, s, inside]) => ({
      name: `bad text ${JSON.stringify(s)}`,
      apply: (f) => {
        const strings = f.filter(
          ([n, v]) => n !== 'type' && (typeof v === 'string' || v instanceof IdSlot),
        )
        const [name, v] = pick(strings, i)
        return set(f, name, inside && typeof v === 'string' ? v + s : s)
      },
    })),
    fc.tuple(bad, fc.boolean()).map(([s, asKey]) => ({
      name: `bad text nested ${asKey ? 'key' : 'value'} ${JSON.stringify(s)}`,
      apply: (f, k) => (asKey ? putNested(f, k, 1, s) : putNested(f, k, s)),
    })),
    fc.nat().map((i) => ({
      name: 'required field missing',
      apply: (f, k) => without(f, ...pick(required(k), i)),
    })),
    fc
      .tuple(fc.constantFrom('__proto__', 'constructor', 'prototype'), fc.boolean())
      .map(([key, top]) => ({
        name: `${top ? '' : 'nested '}key ${key}`,
        apply: (f, k) =>
          top || !objectField(k)
            ? [...f, [key, new Entries([['polluted', true]])]]
            : putNested(f, k, true, key),
      })),
    fc.tuple(fc.nat(), fc.integer({ min: 256, max: 10_000 })).map(([i, n]) => ({
      name: `${n}-character id`,
      apply: (f, k) => set(f, pick(strictStrings(k), i), 'x'.repeat(n)),
    })),
    badTimestamp.map((t) => ({
      name: `bad timestamp ${jsonText(t)}`,
      // Alone: with its own sentAt only their difference counts (clock-skew correction).
      apply: (f) => set(without(f, 'sentAt'), 'timestamp', t),
    })),
    fc
      .tuple(goodTimestamp, fc.constantFrom('yesterday', '2026-02-30T00:00:00Z', ''))
      .map(([t, s]) => ({
        name: `bad sentAt ${JSON.stringify(s)}`,
        apply: (f) => set(set(f, 'timestamp', t), 'sentAt', s),
      })),
    fc.constantFrom('1e309', '-1e400', '1e999999').map((n) => ({
      name: `overflowing number ${n}`,
      apply: (f, k) => putNested(f, k, new RawJson(n)),
    })),
    fc.integer({ min: 33, max: 120 }).map((d) => ({
      name: `nested ${d} deep`,
      apply: (f, k) => putNested(f, k, nested(d)),
    })),
    fc.nat().map((i) => ({
      name: 'duplicate key, bad value last',
      apply: (f, k) => {
        const name = pick(strictStrings(k), i)
        return [...without(f, name), [name, 'ok'], [name, 42]]
      },
    })),
    fc.constant({ name: 'not an object', apply: () => null }),
    fc.constantFrom<JsonLike>([], 'text', 7, true).map((v) => ({
      name: `object field is ${jsonText(v)}`,
      apply: (f, k) => set(f, objectField(k) ?? 'success', k === 'login' ? 'yes' : v),
    })),
  ]
  if (kind === 'login' || kind === 'activity')
    options.push(
      goodKey.map((key) => ({
        name: 'unknown field',
        apply: (f) => [...f, [`unknown ${key}`, 1]],
      })),
    )
  if (kind === 'login')
    options.push(
      fc.constantFrom('phone', 'DESKTOP', '', 'desktop\u0000').map((d) => ({
        name: `deviceType ${JSON.stringify(d)}`,
        apply: (f) => set(f, 'deviceType', d),
      })),
      fc.constantFrom('not-an-ip', '999.1.1.1', '::g', '1.2.3').map((ip) => ({
        name: `ip ${ip}`,
        apply: (f) => set(f, 'ip', ip),
      })),
    )
  if (mode === 'batch')
    options.push(
      fc
        .constantFrom<JsonLike | undefined>('Login', 'logins', '', 42, null, undefined, 'track ')
        .map((t) => ({
          name: `type ${t === undefined ? 'missing' : jsonText(t)}`,
          apply: (f) => (t === undefined ? without(f, 'type') : set(f, 'type', t)),
        })),
    )
  return fc.oneof(...options)
}

/**
 * A case of one of `kinds`: valid fields, up to two changes that keep it valid, then, for
 * `invalidPercent` % of cases, one change that makes it invalid.
 */
export function eventCase(
  kinds: readonly Kind[],
  mode: CaseMode,
  invalidPercent = 40,
): fc.Arbitrary<EventCase> {
  return fc.constantFrom(...kinds).chain((kind) =>
    fc
      .record({
        fields: validFields(kind),
        keep: fc.array(keepValid(kind, mode), { maxLength: 2 }),
        breakIt: fc.oneof(
          { weight: 100 - invalidPercent, arbitrary: fc.constant(undefined) },
          { weight: invalidPercent, arbitrary: makeInvalid(kind, mode) },
        ),
        notObject: fc.constantFrom<JsonLike>(
          null,
          1,
          'login',
          true,
          [],
          [new Entries([['type', kind]])],
        ),
      })
      .map(({ fields, keep, breakIt, notObject }): EventCase => {
        let f: Fields | null = fields
        const why: string[] = []
        for (const m of keep) {
          f = m.apply(f, kind)!
          why.push(m.name)
        }
        if (breakIt) {
          f = breakIt.apply(f, kind)
          why.push(`INVALID: ${breakIt.name}`)
        }
        return f === null
          ? { kind, fields: null, notObject, valid: false, why }
          : { kind, fields: f, valid: breakIt === undefined, why }
      }),
  )
}

/** Case → JSON value, each IdSlot filled with a fresh message id; returns the id it used. */
export function render(
  c: EventCase,
  freshId: () => string,
): { value: JsonLike; id: string | null } {
  if (c.fields === null) return { value: c.notObject ?? null, id: null }
  let id: string | null = null
  const entries = c.fields.map(([k, v]): [string, JsonLike] => {
    if (!(v instanceof IdSlot)) return [k, v]
    id = `${freshId()}${v.suffix}`
    return [k, id]
  })
  return { value: new Entries(entries), id }
}

/** One item of a generated batch as sent: its JSON, message id, validity and case. */
export interface BatchItem {
  value: JsonLike
  id: string | null
  valid: boolean
  c: EventCase
  /** Index of the item this one repeats (same message id), if it is a repeat. */
  repeats?: number
}

/** What the batch routes must answer for `items`. */
export interface BatchExpectation {
  accepted: number
  duplicates: number
  rejected: number[]
}

/**
 * Renders `cases` with fresh ids, then inserts repeats of valid items (same id, same JSON) at
 * the given positions: `[which valid item, where]`. The first copy of an id is stored, every
 * later one counts as a duplicate.
 */
export function renderBatch(
  cases: EventCase[],
  repeats: [number, number][],
  freshId: () => string,
): { items: BatchItem[]; expected: BatchExpectation } {
  const items: BatchItem[] = cases.map((c) => ({ ...render(c, freshId), valid: c.valid, c }))
  for (const [which, where] of repeats) {
    const valid = items.filter((i) => i.valid && i.repeats === undefined)
    if (valid.length === 0) break
    const source = valid[which % valid.length]!
    const at = where % (items.length + 1)
    items.splice(at, 0, { ...source, repeats: items.indexOf(source) })
  }
  const validIds = items.filter((i) => i.valid).map((i) => i.id)
  const unique = new Set(validIds).size
  return {
    items,
    expected: {
      accepted: unique,
      duplicates: validIds.length - unique,
      rejected: items.flatMap((item, i) => (item.valid ? [] : [i])),
    },
  }
}

/** Each item, whether it is valid, what was done to it, and the server's verdict on it. */
export function explainBatch(items: BatchItem[], answer: any): string {
  return items
    .map(({ c, repeats }, i) => {
      const r = answer?.rejected?.find((x: { index: number }) => x.index === i)
      const verdict = r ? `rejected ${r.error.code}: ${r.error.message}` : 'not rejected'
      const what = repeats === undefined ? c.why.join('; ') || 'as generated' : 'a repeat'
      return `  [${i}] ${c.kind} ${c.valid ? 'valid' : 'invalid'} (${what}) → ${verdict}`
    })
    .join('\n')
}
