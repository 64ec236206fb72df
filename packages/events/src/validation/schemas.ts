import { DEVICE_TYPES, SEGMENT_TYPES } from '../types.js'

// JSON Schemas compiled once by Ajv. Semantic checks that a schema expresses badly (timestamps,
// ranges relative to receive time, unstorable strings) live in event-validator.ts.

const id = { type: 'string', minLength: 1, maxLength: 255 } as const
// Session ids appear in URL paths (GET /v1/sessions/:id), where the server caps a segment at 200.
const sessionId = { type: 'string', minLength: 1, maxLength: 200 } as const
const text = (max: number) => ({ type: 'string', maxLength: max }) as const
const ts = { type: 'string', minLength: 1, maxLength: 64 } as const
const idOrNumber = { type: ['string', 'number'], minLength: 1, maxLength: 255 } as const

export const loginSchema = {
  $id: 'strata:login',
  type: 'object',
  required: ['userId', 'method', 'success'],
  additionalProperties: false,
  properties: {
    type: { const: 'login' },
    messageId: id,
    userId: id,
    email: text(320),
    method: { type: 'string', minLength: 1, maxLength: 64 },
    success: { type: 'boolean' },
    failureReason: text(1000),
    sessionId,
    ip: text(64),
    userAgent: text(2048),
    deviceType: { enum: DEVICE_TYPES },
    browser: text(100),
    os: text(100),
    timestamp: ts,
    sentAt: ts,
  },
} as const

export const activitySchema = {
  $id: 'strata:activity',
  type: 'object',
  required: ['userId', 'action'],
  additionalProperties: false,
  properties: {
    type: { const: 'activity' },
    messageId: id,
    userId: id,
    sessionId,
    action: { type: 'string', minLength: 1, maxLength: 64 },
    entityType: text(100),
    entityId: text(255),
    metadata: { type: 'object' },
    timestamp: ts,
    sentAt: ts,
  },
} as const

/**
 * Segment's message spec, loosely: SDKs (analytics-node, RudderStack) add their own fields
 * (_metadata, channel, rudderId, originalTimestamp...), so unknown properties are allowed.
 */
export const segmentSchema = {
  $id: 'strata:segment',
  type: 'object',
  required: ['type'],
  properties: {
    type: { enum: SEGMENT_TYPES },
    messageId: id,
    userId: idOrNumber,
    anonymousId: idOrNumber,
    event: { type: 'string', minLength: 1, maxLength: 255 },
    name: text(255),
    groupId: idOrNumber,
    previousId: idOrNumber,
    properties: { type: 'object' },
    traits: { type: 'object' },
    context: { type: 'object' },
    timestamp: ts,
    originalTimestamp: ts,
    sentAt: ts,
  },
  allOf: [
    {
      if: { properties: { type: { const: 'track' } } },
      then: { required: ['event'] },
    },
    {
      if: { properties: { type: { const: 'group' } } },
      then: { required: ['groupId'] },
    },
    {
      if: { properties: { type: { const: 'alias' } } },
      then: { required: ['userId', 'previousId'] },
      else: { anyOf: [{ required: ['userId'] }, { required: ['anonymousId'] }] },
    },
  ],
} as const
