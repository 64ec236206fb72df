// A chunk worker process for the BullMQ test: processes chunks until SIGTERM.
import { createDatabase } from '@strata/pg'
import { createImportWorker } from '@strata/importer/queue'

const [url, redisUrl, prefix] = process.argv.slice(2) as [string, string, string]
const r = new URL(redisUrl)
const db = await createDatabase({ url, pool: { max: 3 } })
const worker = createImportWorker(db, {
  connection: { host: r.hostname, port: Number(r.port || 6379), maxRetriesPerRequest: null },
  prefix,
  // Short locks so the test sees a killed worker's chunk redelivered within seconds.
  workerOptions: { lockDuration: 1500, stalledInterval: 500 },
})
worker.on('active', (job) => process.stdout.write(`start ${job.data.jobId} ${process.pid}\n`))
worker.on('completed', (job) => process.stdout.write(`chunk ${job.data.jobId} ${process.pid}\n`))
worker.on('failed', (job, err) =>
  process.stdout.write(`failed ${job?.data.jobId} ${err.message}\n`),
)
await worker.waitUntilReady()
process.stdout.write('ready\n')
process.on('SIGTERM', () => {
  void worker
    .close()
    .then(() => db.close())
    .then(() => process.exit(0))
})
