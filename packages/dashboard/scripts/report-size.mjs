// Prints the built dashboard's size: each file raw, gzipped and (from scripts/compress.mjs)
// brotli, and the total a first visit downloads (index.html + JS + CSS). Vite prints per-file
// sizes too; this adds brotli and the totals.
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { gzipSync } from 'node:zlib'

const dist = new URL('../dist/', import.meta.url).pathname

function* files(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) yield* files(path)
    else if (!/\.(br|gz)$/.test(name)) yield path
  }
}

const kb = (n) => `${(n / 1024).toFixed(1)} KiB`
let raw = 0
let gz = 0
let br = 0
const rows = []
for (const path of files(dist)) {
  const body = readFileSync(path)
  const g = gzipSync(body, { level: 9 }).length
  let b
  try {
    b = statSync(`${path}.br`).size
  } catch {
    b = undefined
  }
  rows.push([relative(dist, path), body.length, g, b])
  if (/\.(html|js|css)$/.test(path)) {
    raw += body.length
    gz += g
    br += b ?? g
  }
}
rows.sort((a, b) => b[2] - a[2])
const width = Math.max(...rows.map((r) => r[0].length))
const brText = (b) => (b === undefined ? '' : `  brotli ${kb(b).padStart(9)}`)
console.log('\ndashboard bundle (what the service sends: brotli, else gzip, else raw):')
for (const [name, size, g, b] of rows)
  console.log(
    `  ${name.padEnd(width)}  ${kb(size).padStart(10)}  gzip ${kb(g).padStart(9)}${brText(b)}`,
  )
console.log(
  `  ${'total (html + js + css)'.padEnd(width)}  ${kb(raw).padStart(10)}  gzip ${kb(gz).padStart(9)}${brText(br)}`,
)
