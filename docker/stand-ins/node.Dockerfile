# Stand-in for the official `node:26-trixie-slim` image, which this machine cannot pull: the
# local Debian base plus Node's own linux-x64 binary and npm (both from the npm registry),
# trusting the host's CA bundle so npm, corepack and pnpm reach the registry from a build.
# Built by scripts/compose-check as tollgate-local/node; never tagged as an official image.
ARG BASE=tollgate-local/debian:bookworm
FROM ${BASE}
# Node's binary links libatomic, which minbase lacks.
# hadolint ignore=DL3008
RUN apt-get update && apt-get install -y --no-install-recommends libatomic1 && rm -rf /var/lib/apt/lists/*
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY node /usr/local/bin/node
COPY npm /usr/local/lib/node_modules/npm
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \
 && groupadd --gid 1000 node && useradd --uid 1000 --gid node --create-home --shell /bin/bash node
ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt NPM_CONFIG_CAFILE=/etc/ssl/certs/ca-certificates.crt
CMD ["node"]
