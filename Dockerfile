# syntax=docker/dockerfile:1
# tokenscaler container image: the compiled controller, gateway and CLI on Node 24 LTS.
#
#   docker build -t tokenscaler:dev .
#   docker run --rm tokenscaler:dev kv --model llama-3.1-70b --gpu h100-80gb --tp 4
#
# Stages: `build` compiles TypeScript to dist/ with the dev dependencies; `prod-deps` installs only the
# runtime dependencies from the lock file; the runtime stage holds the built output, those dependencies
# and nothing else, and runs as a numeric non-root user (Kubernetes runAsNonRoot can verify it).
# test/dockerfile.test.ts replays these steps without a Docker engine.

ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM ${NODE_IMAGE} AS prod-deps
WORKDIR /app
COPY package.json package-lock.json ./
# No install scripts: the runtime dependencies are plain JavaScript.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

FROM ${NODE_IMAGE} AS runtime
ARG VERSION=0.0.0-dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="tokenscaler" \
      org.opencontainers.image.description="Token-aware autoscaler for GPU LLM inference on Kubernetes" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
# The runtime needs node only: drop npm, npx, corepack and yarn (and their CVEs) from the image, and link
# the entry point as `tokenscaler` on PATH (for `kubectl exec ... tokenscaler status`).
RUN rm -rf /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/corepack \
      /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack /opt/yarn-* /usr/local/bin/yarn /usr/local/bin/yarnpkg \
 && ln -s /app/bin/tokenscaler.js /usr/local/bin/tokenscaler
ENV NODE_ENV=production
WORKDIR /app
COPY package.json ./
COPY --from=prod-deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY bin/tokenscaler.js ./bin/tokenscaler.js
# 65532: the conventional "nonroot" uid/gid; the Helm chart runs the pod with the same ids.
USER 65532:65532
ENTRYPOINT ["tokenscaler"]
CMD ["--help"]
