# syntax=docker/dockerfile:1.7
# The coordinator image: the public API (alignment.v1.Coordinator); runs rounds as a resumable state machine.
# TypeScript on Node 20, run from source with tsx exactly as `nx run coordinator:serve` does (the workspace has no
# compile step; libs resolve through tsconfig paths). Build from the repository root (the build context is trimmed
# to what is copied below by coordinator.Dockerfile.dockerignore):
#
#   docker build -f deploy/docker/coordinator.Dockerfile -t alignment/coordinator:0.1.0 .
#
# Stages: deps (every npm package: codegen needs buf and ts-proto) -> build (contracts codegen) -> prod-deps
# (dev packages pruned) -> runtime (non-root; writes only to /tmp and the mounted /data). Base image and choices:
# deploy/docker/README.md.

ARG NODE_IMAGE=node:20.20.2-bookworm-slim

FROM ${NODE_IMAGE} AS deps
# Only used when better-sqlite3 finds no prebuilt binary for this platform and compiles its addon.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# onnxruntime-node's install step downloads CUDA provider files; "skip" keeps the bundled CPU build (what libs/lm
# runs). A CUDA build passes --build-arg ONNXRUNTIME_NODE_INSTALL=cuda12 (deploy/k8s/components/lm-on-gpu).
ARG ONNXRUNTIME_NODE_INSTALL=skip
ENV ONNXRUNTIME_NODE_INSTALL=${ONNXRUNTIME_NODE_INSTALL}
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --no-audit --no-fund

FROM deps AS build
COPY tsconfig.json tsconfig.base.json ./
COPY proto proto
COPY tools/codegen tools/codegen
COPY libs libs
RUN bash tools/codegen/contracts.sh

FROM deps AS prod-deps
# tsx (a dev dependency) runs the service; it and its esbuild binary are put back after the prune.
RUN npm prune --omit=dev --no-audit --no-fund

FROM ${NODE_IMAGE} AS runtime
RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin app
WORKDIR /app
COPY --from=prod-deps /app/node_modules node_modules
COPY --from=deps /app/node_modules/tsx node_modules/tsx
COPY --from=deps /app/node_modules/esbuild node_modules/esbuild
COPY --from=deps /app/node_modules/@esbuild node_modules/@esbuild
COPY package.json tsconfig.json tsconfig.base.json ./
COPY --from=build /app/libs libs
COPY services/coordinator services/coordinator
ENV NODE_ENV=production \
    PORT=50051
# Numeric, so Kubernetes can verify runAsNonRoot.
USER 10001:10001
EXPOSE 50051
# Node is PID 1 and handles SIGTERM itself (NOT_SERVING, drain up to 10 s, exit). tsx transpiles on load and caches
# in /tmp (an emptyDir in the pod; the root filesystem is read-only).
ENTRYPOINT ["node", "--import", "tsx", "services/coordinator/src/main.ts"]
