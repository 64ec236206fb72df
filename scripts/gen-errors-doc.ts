// Regenerates docs/reference/errors.md from every package's error registry.
import { writeFileSync } from 'node:fs'
import { renderErrorsDoc } from '../packages/server/src/error-catalog.js'

writeFileSync(new URL('../docs/reference/errors.md', import.meta.url), renderErrorsDoc())
console.log('docs/reference/errors.md written')
