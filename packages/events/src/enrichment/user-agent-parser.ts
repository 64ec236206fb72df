import Bowser from 'bowser'
import { LRUCache } from 'lru-cache'
import type { DeviceType } from '../types.js'

export interface ParsedUserAgent {
  deviceType: DeviceType
  browser: string | null
  os: string | null
}

const UNKNOWN: ParsedUserAgent = Object.freeze({ deviceType: 'unknown', browser: null, os: null })

// Bowser knows the big crawlers by name; this catches generic tools and unnamed crawlers.
const GENERIC_BOT = /bot\b|crawl|spider|slurp|curl\/|wget\/|python-requests|headless|httpclient/i

/**
 * User agent → device type, browser and OS, with bowser (MIT; ua-parser-js 2.x is AGPL).
 * Parsing costs tens of µs and real traffic repeats a few thousand distinct strings, so results
 * are kept in an LRU.
 */
export class UserAgentParser {
  #cache: LRUCache<string, ParsedUserAgent>

  constructor(options: { maxEntries?: number } = {}) {
    this.#cache = new LRUCache({ max: options.maxEntries ?? 10_000 })
  }

  parse(userAgent: string | null | undefined): ParsedUserAgent {
    if (!userAgent) return UNKNOWN
    const hit = this.#cache.get(userAgent)
    if (hit) return hit
    const parsed = parseUncached(userAgent)
    this.#cache.set(userAgent, parsed)
    return parsed
  }
}

function parseUncached(ua: string): ParsedUserAgent {
  let result: Bowser.Parser.ParsedResult
  try {
    result = Bowser.parse(ua)
  } catch {
    return UNKNOWN
  }
  const platform = result.platform.type
  let deviceType: DeviceType
  if (platform === 'bot' || GENERIC_BOT.test(ua)) deviceType = 'bot'
  else if (platform === 'desktop' || platform === 'mobile' || platform === 'tablet')
    deviceType = platform
  else deviceType = 'unknown'
  return Object.freeze({
    deviceType,
    browser: result.browser.name || null,
    os: result.os.name || null,
  })
}
