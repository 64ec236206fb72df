// @strata/pg and @strata/cache as libraries in an app of your own: a pool on PostgreSQL and a
// cache in front of a query, so repeated reads skip the database.
//
//   DATABASE_URL=postgres://... node --import tsx examples/library/app.ts
import { createCache } from '@strata/cache'
import { createDatabase } from '@strata/pg'

const url = process.env.DATABASE_URL
if (!url) {
  console.error(
    'set DATABASE_URL (with Strata running: `npm run strata -- db url --show-password`)',
  )
  process.exit(1)
}

const db = await createDatabase({ url, pool: { max: 5 } })
// In process only; add `l2: { redis: process.env.REDIS_URL }` to share it across instances.
const cache = createCache({ namespace: 'example', ttl: '1m' })

let queries = 0
async function productCount(): Promise<number> {
  return cache.getOrSet('products:count', async () => {
    queries++
    const { rows } = await db.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM example_products',
      [],
      { label: 'example:product-count' },
    )
    return rows[0]!.n
  })
}

try {
  await db.query('CREATE TABLE IF NOT EXISTS example_products (id int PRIMARY KEY, name text)')
  await db.query(
    `INSERT INTO example_products VALUES (1, 'lamp'), (2, 'desk') ON CONFLICT (id) DO NOTHING`,
  )
  const first = await productCount()
  const second = await productCount() // from the cache: no second query
  console.log(JSON.stringify({ products: first, again: second, queries }))
} finally {
  await cache.close()
  await db.close()
}
