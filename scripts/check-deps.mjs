// Dependency-direction check: server → events/importer → pg/cache/lock, nothing upward, no cycles.
// Checks both package.json dependencies and the actual `@strata/*` imports in each package's src.
import { readFileSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'

const LAYER = {
  core: -1,
  pg: 0,
  cache: 0,
  lock: 0,
  events: 1,
  importer: 1,
  server: 2,
  dashboard: 3,
}
const problems = []

function* walk(dir) {
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry)
    if (statSync(path).isDirectory()) yield* walk(path)
    else if (/\.(ts|tsx|js|mjs)$/.test(entry)) yield path
  }
}

for (const name of readdirSync('packages')) {
  const layer = LAYER[name]
  if (layer === undefined) {
    problems.push(`packages/${name}: not in the layer table of scripts/check-deps.mjs`)
    continue
  }
  const allowed = (dep) => dep !== name && LAYER[dep] !== undefined && LAYER[dep] < layer
  const pkg = JSON.parse(readFileSync(`packages/${name}/package.json`, 'utf8'))
  for (const dep of Object.keys({ ...pkg.dependencies, ...pkg.devDependencies })) {
    if (dep.startsWith('@strata/') && !allowed(dep.slice(8)))
      problems.push(
        `packages/${name}/package.json depends on ${dep}: not allowed (layers: ${JSON.stringify(LAYER)})`,
      )
  }
  let src
  try {
    src = [...walk(`packages/${name}/src`)]
  } catch {
    continue
  }
  for (const file of src) {
    for (const m of readFileSync(file, 'utf8').matchAll(/from\s+['"]@strata\/([a-z-]+)/g)) {
      if (!allowed(m[1])) problems.push(`${file} imports @strata/${m[1]}: not allowed from ${name}`)
      else if (!pkg.dependencies?.[`@strata/${m[1]}`])
        problems.push(
          `${file} imports @strata/${m[1]} but packages/${name}/package.json does not list it`,
        )
    }
  }
}

if (problems.length) {
  console.error(problems.join('\n'))
  process.exit(1)
}
console.log('dependency direction: ok')
