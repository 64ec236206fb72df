import pino, { type DestinationStream, type Logger } from 'pino'
import type { StrataConfig } from './config.js'

/**
 * pino writes JSON, so CR/LF from input is always escaped and can't forge log lines.
 * Credentials never reach the log: headers carrying them are redacted, URLs lose their query.
 */
export function createLogger(
  config: Pick<StrataConfig, 'logLevel'>,
  destination?: DestinationStream,
): Logger {
  const options: pino.LoggerOptions = {
    level: config.logLevel,
    base: { service: 'strata' },
    redact: {
      paths: [
        'req.headers.authorization',
        'req.headers.cookie',
        'req.headers["x-api-key"]',
        '*.password',
        '*.token',
        '*.adminToken',
        '*.writeKey',
      ],
      censor: '[redacted]',
    },
    serializers: {
      req: (req: { method: string; url: string; ip?: string; id?: string }) => ({
        id: req.id,
        method: req.method,
        // Query strings may carry keys (Segment's writeKey); paths are enough to debug.
        url: typeof req.url === 'string' ? req.url.split('?')[0]!.slice(0, 512) : req.url,
        ip: req.ip,
      }),
      res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
      err: pino.stdSerializers.err,
    },
  }
  return destination ? pino(options, destination) : pino(options)
}

/**
 * CLI commands print their answers on stdout (often JSON); their logs go to stderr, and at
 * `warn` unless LOG_LEVEL asks for more detail than the service's default.
 */
export function createCliLogger(config: Pick<StrataConfig, 'logLevel'>): Logger {
  return createLogger(
    { logLevel: config.logLevel === 'info' ? 'warn' : config.logLevel },
    pino.destination(2),
  )
}
