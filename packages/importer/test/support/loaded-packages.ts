// Child process for entry-points.test.ts: imports argv[2] and prints, one a line, every
// package under node_modules that the import resolved (through an ESM resolve hook).
import { register } from 'node:module'

const hook = `
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context)
  const m = /\\/node_modules\\/((?:@[^/]+\\/)?[^/]+)\\//.exec(r.url)
  if (m) process.stdout.write('package ' + m[1] + '\\n')
  return r
}`
register(`data:text/javascript,${encodeURIComponent(hook)}`)
await import(process.argv[2]!)
