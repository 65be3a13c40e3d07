# syntax=docker/dockerfile:1
# Tollgate's images: one multi-stage file, one final target per service, so the three images
# share a single dependency download and TypeScript build. Build from the repository root:
#
#   docker build --target authz-service   -t tollgate/authz-service .
#   docker build --target billing-sidecar -t tollgate/billing-sidecar .
#   docker build --target backend-hello   -t tollgate/backend-hello .
#
# (docker-compose.yml does this for you.) Node 26 is the Active LTS line since October 2026.
ARG NODE_IMAGE=node:26-trixie-slim

# ---- build: install every workspace dependency, generate proto types, compile to dist/ ------
FROM ${NODE_IMAGE} AS build
# Node 25+ no longer bundles corepack; installed here it runs the exact pnpm that package.json's
# packageManager field names.
RUN npm install --global --no-audit --no-fund corepack@0.36.0 && corepack enable pnpm
ENV CI=true
WORKDIR /src
# The lockfile alone decides what is downloaded, so this layer survives source edits.
COPY pnpm-lock.yaml pnpm-workspace.yaml package.json ./
RUN pnpm fetch
COPY . .
# The root postinstall generates proto/generated (git-ignored, so never in the context).
RUN pnpm install --frozen-lockfile --offline && pnpm run build

# ---- one production tree per service: its dist/ and production dependencies only -----------
# `pnpm deploy` copies workspace dependencies (their "files": dist) instead of linking them.
# The legacy deploy resolves the service's dependency ranges again and needs registry metadata,
# which `pnpm fetch` does not keep: --prefer-offline reads it from the registry when it is missing
# (with --offline it fails on any machine that never ran a resolving install).
FROM build AS deploy-backend-hello
RUN pnpm --filter @tollgate/backend-hello deploy --prod --legacy --prefer-offline --ignore-scripts /out
FROM build AS deploy-authz-service
RUN pnpm --filter @tollgate/authz-service deploy --prod --legacy --prefer-offline --ignore-scripts /out
FROM build AS deploy-billing-sidecar
RUN pnpm --filter @tollgate/billing-sidecar deploy --prod --legacy --prefer-offline --ignore-scripts /out

# ---- runtime base: slim Node, tini as PID 1, unprivileged user -------------------------------
FROM ${NODE_IMAGE} AS runtime
# tini forwards SIGTERM to node (whose own handler drains in-flight requests, see
# common/src/shutdown.ts) and reaps zombies; node as PID 1 would ignore signals it has no
# handler for yet, e.g. during start-up. Versions are not pinned: Debian's archive keeps only
# the current security release, so a pin would break the build at the next update.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production
COPY docker/healthcheck.mjs /usr/local/lib/tollgate/healthcheck.mjs
WORKDIR /app
# The code stays root-owned (read-only to the service); the service runs as the image's `node`
# user, given numerically so Kubernetes' runAsNonRoot can verify it.
USER 1000:1000
ENTRYPOINT ["/usr/bin/tini", "--", "node"]
CMD ["dist/main.js"]
# slim images have no curl: the check is a node fetch of the service's own liveness endpoint.
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
  CMD ["node", "/usr/local/lib/tollgate/healthcheck.mjs"]

# ---- final images -----------------------------------------------------------------------------
FROM runtime AS backend-hello
COPY --from=deploy-backend-hello /out /app
ENV BACKEND_HOST=0.0.0.0 BACKEND_PORT=8081 HEALTHCHECK_PORT_VAR=BACKEND_PORT
EXPOSE 8081

FROM runtime AS authz-service
COPY --from=deploy-authz-service /out /app
ENV AUTHZ_HOST=0.0.0.0 AUTHZ_HTTP_PORT=8080 AUTHZ_GRPC_PORT=9191 HEALTHCHECK_PORT_VAR=AUTHZ_HTTP_PORT
EXPOSE 8080 9191

FROM runtime AS billing-sidecar
COPY --from=deploy-billing-sidecar /out /app
ENV BILLING_HOST=0.0.0.0 BILLING_HTTP_PORT=9293 BILLING_GRPC_PORT=9292 HEALTHCHECK_PORT_VAR=BILLING_HTTP_PORT \
    ENVOY_ACCESS_LOG_PATH=/var/log/tollgate/access.log
EXPOSE 9292 9293
# A capped heap keeps the sidecar's RSS near 180 MB under full ingest (docs/benchmarks.md).
CMD ["--max-old-space-size=128", "dist/main.js"]
