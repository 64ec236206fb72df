import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { Services } from '../services.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Every service, built once by createServices (see services.ts). */
    services: Services
  }
}

/** Shares the services with every route and ties their lifecycle to the app's. */
async function servicesPlugin(app: FastifyInstance, opts: { services: Services }): Promise<void> {
  const { services } = opts
  app.decorate('services', services)
  app.addHook('onReady', () => services.start())
  // After in-flight requests: drains queued events, pauses imports, stops timers.
  app.addHook('onClose', () => services.close())
}

export default fp(servicesPlugin, { name: 'strata-services' })
