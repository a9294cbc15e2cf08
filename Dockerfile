# The keeper as a container: `docker build -t recurring-billing-keeper .` then
#   docker run -d --name keeper -v keeper-data:/data -v /etc/keeper:/config:ro \
#     -e KEEPER_KEYSTORE_PASSWORD=... -p 127.0.0.1:9464:9464 recurring-billing-keeper
# /config/keeper.json is what `keeper init` wrote (store.dataDir "/data"). The keeper is PID 1 and handles SIGTERM
# itself (docker stop: it stops within 15 s). test/keeper/service/dockerfile.ts performs these steps without Docker.

# Build stage: compile the contracts' TypeChain bindings and bundle the keeper (dist/keeper.mjs).
FROM node:22-bookworm-slim AS build
WORKDIR /app
COPY . .
RUN npm ci
RUN npm run build:keeper

# Runtime stage: production dependencies and the bundle only (no Hardhat, no compiler, no sources).
FROM node:22-bookworm-slim
# V8 heap limits (keeper/src/node-flags.ts): the keeper's live heap is small, but V8 would grow it to the machine.
ENV NODE_ENV=production \
    NODE_OPTIONS="--max-old-space-size=128 --max-semi-space-size=4" \
    KEEPER_METRICS_HOST=0.0.0.0 \
    KEEPER_DATA_DIR=/data
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts
COPY --from=build /app/dist/keeper.mjs ./dist/keeper.mjs
COPY --from=build /app/dist/static ./dist/static
USER node
VOLUME ["/data"]
EXPOSE 9464
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
  CMD ["node", "-e", "fetch('http://127.0.0.1:9464/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "dist/keeper.mjs"]
CMD ["run", "--config", "/config/keeper.json"]
