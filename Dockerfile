# syntax=docker/dockerfile:1
# Strata service image. Build from the repository root:
#   docker build -t strata .
# Run (the service reads its configuration from the environment, see docs/reference/options.md):
#   docker run -p 3000:3000 -e DATABASE_URL=postgres://… -e REDIS_URL=redis://… strata
# deploy/compose.yaml runs it with PostgreSQL, PgBouncer and Redis.

ARG NODE_VERSION=20

# ---- build: every dependency, TypeScript compiled, dashboard bundled ----
FROM node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /app
# Manifests first, so the dependency layer is reused while only sources change.
COPY package.json package-lock.json ./
COPY packages/core/package.json packages/core/
COPY packages/pg/package.json packages/pg/
COPY packages/cache/package.json packages/cache/
COPY packages/lock/package.json packages/lock/
COPY packages/events/package.json packages/events/
COPY packages/importer/package.json packages/importer/
COPY packages/server/package.json packages/server/
COPY packages/dashboard/package.json packages/dashboard/
COPY bench/package.json bench/
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build
# What the runtime needs of each package: its manifest, its compiled code and its SQL migrations.
RUN set -eu; \
    for p in core pg cache lock events importer server; do \
      mkdir -p /out/packages/$p; \
      cp -r packages/$p/package.json packages/$p/dist /out/packages/$p/; \
      if [ -d packages/$p/migrations ]; then cp -r packages/$p/migrations /out/packages/$p/; fi; \
    done; \
    mkdir -p /out/packages/dashboard; \
    cp -r packages/dashboard/package.json packages/dashboard/dist /out/packages/dashboard/

# ---- deps: production dependencies of @strata/server and the workspaces it uses, nothing else ----
FROM node:${NODE_VERSION}-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
COPY packages/core/package.json packages/core/
COPY packages/pg/package.json packages/pg/
COPY packages/cache/package.json packages/cache/
COPY packages/lock/package.json packages/lock/
COPY packages/events/package.json packages/events/
COPY packages/importer/package.json packages/importer/
COPY packages/server/package.json packages/server/
COPY packages/dashboard/package.json packages/dashboard/
COPY bench/package.json bench/
# --workspace leaves out the dashboard's React, the benchmarks' clients and every devDependency;
# the @strata/* links in node_modules point at packages/, filled from the build stage below.
RUN npm ci --omit=dev --workspace=@strata/server --no-audit --no-fund && npm cache clean --force

# ---- runtime ----
FROM node:${NODE_VERSION}-bookworm-slim AS runtime
# tini as PID 1: forwards SIGTERM/SIGINT to node and reaps orphans (node is not an init).
# `docker run --init` does the same where the image is run without this entrypoint.
RUN apt-get update \
  && apt-get install -y --no-install-recommends tini \
  && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000 \
    STRATA_DATA_DIR=/var/lib/strata
WORKDIR /app
COPY --from=deps /app/package.json /app/package-lock.json ./
COPY --from=deps /app/node_modules ./node_modules
# npm ci nests a workspace's dependencies under packages/<name>/node_modules when their versions
# differ from the hoisted ones: those come with the manifests, the build output goes on top.
COPY --from=deps /app/packages ./packages
COPY --from=build /out/packages ./packages
# The data dir holds the import uploads (and an embedded PostgreSQL when DATABASE_URL is unset):
# owned by the unprivileged user the service runs as.
RUN mkdir -p /var/lib/strata && chown node:node /var/lib/strata
USER node
EXPOSE 3000
VOLUME ["/var/lib/strata"]
# /readyz is 200 only when the database answers: a replica that lost it leaves the load balancer.
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/readyz').then((r)=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["/usr/bin/tini", "--"]
# node directly, no npm or shell in between: SIGTERM reaches the service, which drains and exits
# within its 25 s grace (compose and Kubernetes wait 30 s).
CMD ["node", "packages/server/dist/cli/main.js", "start"]
