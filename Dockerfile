# Baton's worker and CLI. Multi-stage: dependencies are installed in the first stage, the second holds the app
# and runs as the unprivileged `node` user. Used by docker-compose.yml; deploy/worker.yaml runs the same image.
#   docker build -t baton .
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY activities activities
COPY bin bin
COPY client client
COPY deploy deploy
COPY examples examples
COPY infra infra
COPY spec spec
COPY worker worker
COPY workflows workflows
# The image must typecheck: a broken build fails here, not in a cluster.
RUN node_modules/.bin/tsc -p . --noEmit

FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app /app
# The demo fleet's folder and HAProxy's socket folder belong to the app's user when volumes are first mounted.
RUN mkdir -p /var/lib/baton /run/haproxy && chown node:node /var/lib/baton /run/haproxy
USER node
# The worker by default (deploy/worker.yaml); the CLI with --entrypoint "node bin/baton.js".
ENTRYPOINT ["node_modules/.bin/tsx"]
CMD ["worker/main.ts"]
