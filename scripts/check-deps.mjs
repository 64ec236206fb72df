// Dependency checks: server → events/importer → pg/cache/lock → core, nothing upward, and no
// import cycles between the files of a package.
// - Package level: package.json dependencies and the actual `@strata/*` imports in each
//   package's src.
// - File level: relative imports under packages/*/src, type-only and dynamic ones included (a
//   cycle of `import type` is still two modules that cannot be understood apart).
// `node scripts/check-deps.mjs [root]` (default: the current directory); `checkDeps(root)`
// returns the problems for tests.
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve, sep } from 'node:path'
import { pathToFileURL } from 'node:url'
import ts from 'typescript'

export const LAYER = {
  core: -1,
  pg: 0,
  cache: 0,
  lock: 0,
  events: 1,
  importer: 1,
  server: 2,
  dashboard: 3,
}

function* walk(dir) {
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry)
    if (statSync(path).isDirectory()) yield* walk(path)
    else if (/\.(ts|tsx|mts|js|mjs)$/.test(entry)) yield path
  }
}

/** Module specifiers a file imports or re-exports (static, type-only and dynamic). */
function importsOf(file) {
  return ts
    .preProcessFile(readFileSync(file, 'utf8'), true, true)
    .importedFiles.map((f) => f.fileName)
}

/** The .ts/.tsx file a relative specifier names (`./x.js` is `./x.ts` in NodeNext), if any. */
function resolveRelative(from, specifier) {
  const base = resolve(dirname(from), specifier)
  const stem = base.replace(/\.(js|jsx|mjs)$/, '')
  const candidates = /\.(js|jsx|mjs)$/.test(base)
    ? [`${stem}.ts`, `${stem}.tsx`, `${stem}.mts`]
    : [base, `${base}.ts`, `${base}.tsx`, join(base, 'index.ts'), join(base, 'index.tsx')]
  return candidates.find((c) => /\.(ts|tsx|mts)$/.test(c) && existsSync(c) && statSync(c).isFile())
}

/**
 * Strongly connected components of more than one file (or a file importing itself): each is a
 * set of modules that import one another in a ring. Tarjan's algorithm, iterative.
 */
function cycles(graph) {
  let next = 0
  const index = new Map()
  const low = new Map()
  const stack = []
  const onStack = new Set()
  const found = []
  for (const root of graph.keys()) {
    if (index.has(root)) continue
    const work = [[root, 0]]
    index.set(root, next)
    low.set(root, next++)
    stack.push(root)
    onStack.add(root)
    while (work.length) {
      const frame = work[work.length - 1]
      const [v, i] = frame
      const edges = graph.get(v)
      if (i < edges.length) {
        frame[1]++
        const w = edges[i]
        if (!index.has(w)) {
          index.set(w, next)
          low.set(w, next++)
          stack.push(w)
          onStack.add(w)
          work.push([w, 0])
        } else if (onStack.has(w)) low.set(v, Math.min(low.get(v), index.get(w)))
        continue
      }
      work.pop()
      if (work.length) {
        const parent = work[work.length - 1][0]
        low.set(parent, Math.min(low.get(parent), low.get(v)))
      }
      if (low.get(v) === index.get(v)) {
        const component = []
        let w
        do {
          w = stack.pop()
          onStack.delete(w)
          component.push(w)
        } while (w !== v)
        if (component.length > 1 || edges.includes(v)) found.push(component.sort())
      }
    }
  }
  return found
}

/** One concrete ring through `component`, starting at its first file: a → b → … → a. */
function ringThrough(graph, component) {
  const members = new Set(component)
  const start = component[0]
  const seen = new Set([start])
  const path = [start]
  const dfs = (v) => {
    for (const w of graph.get(v)) {
      if (w === start) return true
      if (!members.has(w) || seen.has(w)) continue
      seen.add(w)
      path.push(w)
      if (dfs(w)) return true
      path.pop()
    }
    return false
  }
  dfs(start)
  return [...path, start]
}

/** Import cycles between the files of one package's src, as messages. */
function packageCycles(root, srcDir) {
  const files = [...walk(srcDir)].filter((f) => /\.(ts|tsx|mts)$/.test(f))
  const graph = new Map(files.map((f) => [f, []]))
  for (const file of files)
    for (const spec of importsOf(file)) {
      if (!spec.startsWith('.')) continue
      const target = resolveRelative(file, spec)
      if (target && graph.has(target) && !graph.get(file).includes(target))
        graph.get(file).push(target)
    }
  const rel = (f) => relative(srcDir, f).split(sep).join('/')
  const where = relative(root, srcDir).split(sep).join('/')
  return cycles(graph).map((component) => {
    const ring = ringThrough(graph, component).map(rel).join(' → ')
    const all = component.length > 2 ? ` (all in the cycle: ${component.map(rel).join(', ')})` : ''
    return `${where}: import cycle ${ring}${all}`
  })
}

/** Every layering and cycle problem under `root` (a checkout with a packages/ folder). */
export function checkDeps(root = '.') {
  const problems = []
  const packages = join(root, 'packages')
  for (const name of readdirSync(packages)) {
    if (!statSync(join(packages, name)).isDirectory()) continue
    const layer = LAYER[name]
    if (layer === undefined) {
      problems.push(`packages/${name}: not in the layer table of scripts/check-deps.mjs`)
      continue
    }
    const allowed = (dep) => dep !== name && LAYER[dep] !== undefined && LAYER[dep] < layer
    const pkg = JSON.parse(readFileSync(join(packages, name, 'package.json'), 'utf8'))
    for (const dep of Object.keys({ ...pkg.dependencies, ...pkg.devDependencies })) {
      if (dep.startsWith('@strata/') && !allowed(dep.slice(8)))
        problems.push(
          `packages/${name}/package.json depends on ${dep}: not allowed (layers: ${JSON.stringify(LAYER)})`,
        )
    }
    const srcDir = join(packages, name, 'src')
    if (!existsSync(srcDir)) continue
    for (const file of walk(srcDir)) {
      const shown = relative(root, file).split(sep).join('/')
      for (const spec of importsOf(file)) {
        const m = /^@strata\/([a-z-]+)/.exec(spec)
        if (!m) continue
        if (!allowed(m[1]))
          problems.push(`${shown} imports @strata/${m[1]}: not allowed from ${name}`)
        else if (!pkg.dependencies?.[`@strata/${m[1]}`])
          problems.push(
            `${shown} imports @strata/${m[1]} but packages/${name}/package.json does not list it`,
          )
      }
    }
    problems.push(...packageCycles(root, srcDir))
  }
  return problems
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const problems = checkDeps(process.argv[2] ?? '.')
  if (problems.length) {
    console.error(problems.join('\n'))
    process.exit(1)
  }
  console.log('dependency direction and import cycles: ok')
}
