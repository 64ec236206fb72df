import { randomUUID } from 'node:crypto'
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv'
import { isObject, pgTextProblem, toPgInet, type StrataError } from '@strata/core'
import { UserAgentParser } from '../enrichment/user-agent-parser.js'
import { eventsErrors, type EventsErrorCode } from '../errors.js'
import { resolveIngestLimits, type IngestLimits, type ResolvedIngestLimits } from '../options.js'
import type {
  ActivityRow,
  DeviceType,
  EventRow,
  LoginRow,
  SegmentRow,
  SegmentType,
} from '../types.js'
import { checkJsonValue } from './json-guard.js'
import { activitySchema, loginSchema, segmentSchema } from './schemas.js'
import { parseIsoTimestamp } from './timestamp.js'

/** Facts about the request an event arrived in. */
export interface IngestContext {
  projectId: string
  /** Server receive time, epoch ms. */
  receivedAt: number
  /** Batch-level sentAt (Segment batches, /v1/events/batch). */
  sentAt?: unknown
  /**
   * Client IP as resolved by the server (trusted proxies applied). Stored only when it is an
   * address Postgres' inet takes (an IPv6 zone id is dropped); otherwise the login has none.
   */
  ip?: string | null
  /** The request's User-Agent header; text Postgres refuses → STRATA_EVENT_INVALID_STRING. */
  userAgent?: string | null
}

export type ValidationResult<R extends EventRow = EventRow> =
  { ok: true; row: R } | { ok: false; messageId: string | null; error: StrataError }

export interface EventValidatorOptions extends Partial<IngestLimits> {
  userAgentParser?: UserAgentParser
}

type Input = Record<string, unknown>

/**
 * Turns untrusted JSON into rows for the writer: structural checks (depth, keys, strings,
 * numbers), compiled JSON Schemas, strict timestamps with clock-skew correction, defaults and
 * user-agent enrichment. Never throws for bad input; returns a per-item error with a stable code.
 */
export class EventValidator {
  readonly limits: ResolvedIngestLimits
  #ua: UserAgentParser
  #login: ValidateFunction
  #activity: ValidateFunction
  #segment: ValidateFunction

  constructor(options: EventValidatorOptions = {}) {
    this.limits = resolveIngestLimits(options)
    this.#ua = options.userAgentParser ?? new UserAgentParser()
    const ajv = new Ajv({
      allErrors: false,
      allowUnionTypes: true,
      strict: true,
      strictRequired: false,
    })
    this.#login = ajv.compile(loginSchema)
    this.#activity = ajv.compile(activitySchema)
    this.#segment = ajv.compile(segmentSchema)
  }

  /** A login for `POST /v1/logins` or a `type: "login"` batch item. */
  login(input: unknown, ctx: IngestContext): ValidationResult<LoginRow> {
    const pre = this.#precheck(input, this.#login)
    if (!pre.ok) return pre
    const o = pre.input
    const times = this.#times(o, o.timestamp, ctx)
    if (!times.ok) return times
    // An IPv6 zone id (`fe80::1%eth0`) is valid to Node and refused by Postgres' inet: it is
    // dropped here, so the flush never meets an address it cannot store.
    let ip: string | null = null
    if (typeof o.ip === 'string') {
      ip = o.ip === '' ? null : toPgInet(o.ip)
      if (o.ip !== '' && ip === null)
        return this.#fail(
          o,
          'STRATA_EVENT_INVALID_IP',
          `ip ${JSON.stringify(o.ip)} is not an IP address`,
        )
    } else if (ctx.ip) ip = toPgInet(ctx.ip) // the request's own address is not the client's fault
    const userAgent = (o.userAgent as string | undefined) ?? ctx.userAgent ?? null
    const uaProblem = userAgent === null ? null : pgTextProblem(userAgent)
    if (uaProblem)
      return this.#fail(o, 'STRATA_EVENT_INVALID_STRING', `the User-Agent header ${uaProblem}`)
    const parsed = this.#ua.parse(userAgent)
    return {
      ok: true,
      row: {
        kind: 'login',
        projectId: ctx.projectId,
        messageId: times.messageId,
        ts: times.ts,
        receivedAt: ctx.receivedAt,
        userId: o.userId as string,
        email: (o.email as string | undefined) ?? null,
        method: o.method as string,
        success: o.success as boolean,
        failureReason: (o.failureReason as string | undefined) ?? null,
        sessionId: (o.sessionId as string | undefined) ?? null,
        ip,
        deviceType: (o.deviceType as DeviceType | undefined) ?? parsed.deviceType,
        browser: (o.browser as string | undefined) ?? parsed.browser,
        os: (o.os as string | undefined) ?? parsed.os,
        userAgent: userAgent ? userAgent.slice(0, 2048) : null,
      },
    }
  }

  /** An activity for `POST /v1/activities` or a `type: "activity"` batch item. */
  activity(input: unknown, ctx: IngestContext): ValidationResult<ActivityRow> {
    const pre = this.#precheck(input, this.#activity)
    if (!pre.ok) return pre
    const o = pre.input
    const times = this.#times(o, o.timestamp, ctx)
    if (!times.ok) return times
    return {
      ok: true,
      row: {
        kind: 'activity',
        projectId: ctx.projectId,
        messageId: times.messageId,
        ts: times.ts,
        receivedAt: ctx.receivedAt,
        userId: o.userId as string,
        sessionId: (o.sessionId as string | undefined) ?? null,
        action: o.action as string,
        entityType: (o.entityType as string | undefined) ?? null,
        entityId: (o.entityId as string | undefined) ?? null,
        metadata: o.metadata ?? null,
      },
    }
  }

  /** A Segment message (track, identify, page, screen, group, alias). */
  segment(input: unknown, ctx: IngestContext): ValidationResult<SegmentRow> {
    const pre = this.#precheck(input, this.#segment)
    if (!pre.ok) return pre
    const o = pre.input
    const times = this.#times(o, o.timestamp ?? o.originalTimestamp, ctx)
    if (!times.ok) return times
    const type = o.type as SegmentType
    const str = (v: unknown): string | null => (v === undefined || v === null ? null : String(v))
    let name: string | null = null
    let properties: unknown = null
    switch (type) {
      case 'track':
        name = o.event as string
        properties = o.properties ?? null
        break
      case 'page':
      case 'screen':
        name = str(o.name)
        properties = o.properties ?? null
        break
      case 'identify':
        properties = o.traits ?? null
        break
      case 'group':
        name = str(o.groupId)
        properties = o.traits ?? null
        break
      case 'alias':
        properties = { previousId: str(o.previousId) }
        break
    }
    return {
      ok: true,
      row: {
        kind: 'event',
        projectId: ctx.projectId,
        messageId: times.messageId,
        ts: times.ts,
        receivedAt: ctx.receivedAt,
        type,
        name,
        userId: str(o.userId),
        anonymousId: str(o.anonymousId),
        properties,
        context: o.context ?? null,
      },
    }
  }

  /** One item of `POST /v1/events/batch`: dispatches on `type`. */
  batchItem(input: unknown, ctx: IngestContext): ValidationResult {
    const type = isObject(input) ? input.type : undefined
    if (type === 'login') return this.login(input, ctx)
    if (type === 'activity') return this.activity(input, ctx)
    if (typeof type === 'string' && (segmentTypes as readonly string[]).includes(type))
      return this.segment(input, ctx)
    return {
      ok: false,
      messageId: messageIdOf(input),
      error: eventsErrors.create('STRATA_EVENT_UNKNOWN_TYPE', {
        message: `Unknown event type ${JSON.stringify(type ?? null)}: expected login, activity or a Segment type`,
        details: { path: '/type' },
      }),
    }
  }

  #precheck(
    input: unknown,
    validate: ValidateFunction,
  ): { ok: true; input: Input } | { ok: false; messageId: string | null; error: StrataError } {
    if (!isObject(input)) {
      return {
        ok: false,
        messageId: null,
        error: eventsErrors.create('STRATA_EVENT_INVALID', {
          message: 'Event must be a JSON object',
        }),
      }
    }
    const structural = checkJsonValue(input, this.limits.maxDepth)
    if (structural) return { ok: false, messageId: messageIdOf(input), error: structural }
    if (!validate(input)) {
      return { ok: false, messageId: messageIdOf(input), error: schemaError(validate.errors ?? []) }
    }
    return { ok: true, input }
  }

  #times(
    o: Input,
    timestamp: unknown,
    ctx: IngestContext,
  ):
    | { ok: true; ts: number; messageId: string }
    | { ok: false; messageId: string | null; error: StrataError } {
    const messageId = (o.messageId as string | undefined) ?? randomUUID()
    let ts = ctx.receivedAt
    if (timestamp !== undefined) {
      const t = typeof timestamp === 'string' ? parseIsoTimestamp(timestamp) : NaN
      if (Number.isNaN(t))
        return this.#fail(
          o,
          'STRATA_EVENT_INVALID_TIMESTAMP',
          `timestamp ${JSON.stringify(timestamp)} is not an ISO 8601 date-time with a time zone`,
        )
      ts = t
      const sentAtRaw = o.sentAt ?? ctx.sentAt
      if (sentAtRaw !== undefined && sentAtRaw !== null) {
        const sentAt = typeof sentAtRaw === 'string' ? parseIsoTimestamp(sentAtRaw) : NaN
        if (Number.isNaN(sentAt))
          return this.#fail(
            o,
            'STRATA_EVENT_INVALID_TIMESTAMP',
            `sentAt ${JSON.stringify(sentAtRaw)} is not an ISO 8601 date-time with a time zone`,
          )
        // The client's clock may be off; its own sentAt - timestamp interval is trustworthy.
        ts = ctx.receivedAt - (sentAt - t)
      }
    }
    if (
      ts > ctx.receivedAt + this.limits.maxFutureMs ||
      ts < ctx.receivedAt - this.limits.maxPastMs
    ) {
      return this.#fail(
        o,
        'STRATA_EVENT_TIMESTAMP_OUT_OF_RANGE',
        // The window itself, so the caller can tell a clock that is off from a wrong unit.
        `timestamp resolves to ${new Date(ts).toISOString()}, outside the accepted window ${new Date(ctx.receivedAt - this.limits.maxPastMs).toISOString()} – ${new Date(ctx.receivedAt + this.limits.maxFutureMs).toISOString()} (at most ${Math.round(this.limits.maxPastMs / 86_400_000)} days in the past, ${Math.round(this.limits.maxFutureMs / 3_600_000)} h in the future)`,
      )
    }
    return { ok: true, ts, messageId }
  }

  #fail(
    o: Input,
    code: EventsErrorCode,
    message: string,
  ): { ok: false; messageId: string | null; error: StrataError } {
    return { ok: false, messageId: messageIdOf(o), error: eventsErrors.create(code, { message }) }
  }
}

const segmentTypes = ['track', 'identify', 'page', 'screen', 'group', 'alias'] as const

function messageIdOf(v: unknown): string | null {
  const id = isObject(v) ? v.messageId : undefined
  return typeof id === 'string' ? id : null
}

/** One clear message from Ajv's first error. */
function schemaError(errors: ErrorObject[]): StrataError {
  if (errors.some((e) => e.keyword === 'anyOf' && e.instancePath === '')) {
    return eventsErrors.create('STRATA_EVENT_INVALID', {
      message: 'userId or anonymousId is required',
      details: { path: '/' },
    })
  }
  const e = errors.find((x) => x.keyword !== 'if' && x.keyword !== 'anyOf') ?? errors[0]
  if (!e) return eventsErrors.create('STRATA_EVENT_INVALID')
  let path = e.instancePath || '/'
  let message = e.message ?? 'is invalid'
  if (e.keyword === 'required') {
    const missing = (e.params as { missingProperty: string }).missingProperty
    path = `${e.instancePath}/${missing}`
    message = `is required`
  } else if (e.keyword === 'additionalProperties') {
    const extra = (e.params as { additionalProperty: string }).additionalProperty
    path = `${e.instancePath}/${extra}`
    message = 'is not a known field'
  } else if (e.keyword === 'enum') {
    message = `must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.join(', ')}`
  }
  return eventsErrors.create('STRATA_EVENT_INVALID', {
    message: `${path} ${message}`,
    details: { path, keyword: e.keyword },
  })
}
