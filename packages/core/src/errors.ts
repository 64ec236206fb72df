/** Shape of one entry in an error registry: the code is the key. */
export interface ErrorDefinition {
  /** HTTP status the server answers with when this error reaches the edge. */
  status: number
  /** Default human message; a throw site may give a more specific one. */
  message: string
}

export interface StrataErrorOptions {
  message?: string
  details?: unknown
  cause?: unknown
}

/** Every error Strata throws on purpose: a stable `STRATA_*` code, an HTTP status, details. */
export class StrataError extends Error {
  readonly code: string
  readonly status: number
  readonly details: unknown

  constructor(
    code: string,
    status: number,
    message: string,
    options: Omit<StrataErrorOptions, 'message'> = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'StrataError'
    this.code = code
    this.status = status
    this.details = options.details
  }

  toJSON(): { code: string; message: string; details?: unknown } {
    return this.details === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, details: this.details }
  }
}

export interface ErrorRegistry<C extends string> {
  /** Package that owns these codes (for docs). */
  readonly area: string
  readonly definitions: Readonly<Record<C, ErrorDefinition>>
  /** Builds a StrataError for `code`; the message defaults to the registry's. */
  create(code: C, options?: StrataErrorOptions): StrataError
  /** True when `err` is a StrataError carrying `code`. */
  is(err: unknown, code?: C): err is StrataError
}

/**
 * Declares a package's error codes in one place. Codes must be `STRATA_<AREA>_<CONDITION>`-style
 * upper snake case; the docs test keeps docs/reference/errors.md in sync with every registry.
 */
export function defineErrors<const D extends Record<string, ErrorDefinition>>(
  area: string,
  definitions: D,
): ErrorRegistry<Extract<keyof D, string>> {
  for (const code of Object.keys(definitions)) {
    if (!/^STRATA_[A-Z0-9]+(_[A-Z0-9]+)*$/.test(code)) throw new Error(`invalid error code ${code}`)
  }
  const frozen = Object.freeze({ ...definitions })
  return {
    area,
    definitions: frozen,
    create(code, options = {}) {
      const def = frozen[code]
      return new StrataError(code, def.status, options.message ?? def.message, options)
    },
    is(err, code): err is StrataError {
      return (
        err instanceof StrataError && (code === undefined ? err.code in frozen : err.code === code)
      )
    },
  }
}

export function isStrataError(err: unknown): err is StrataError {
  return err instanceof StrataError
}
