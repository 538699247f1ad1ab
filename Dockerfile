# syntax=docker/dockerfile:1
# Build stage: compile TypeScript and the better-sqlite3 addon.
FROM node:22-bookworm-slim AS build
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json tsconfig.json ./
COPY src ./src
COPY bin ./bin
COPY scripts ./scripts
# "prepare" compiles src/ into dist/ during the install.
RUN npm ci --no-audit --no-fund --ignore-scripts=false \
 && npm prune --omit=dev

# Runtime stage: production dependencies only, non-root, data on a volume.
FROM node:22-bookworm-slim
ENV NODE_ENV=production \
    LATCHKEY_PROXY_ADDR=0.0.0.0:7480 \
    LATCHKEY_ADMIN_ADDR=0.0.0.0:7481 \
    LATCHKEY_DB=/data/latchkey.db \
    LATCHKEY_MASTER_KEY_FILE=/data/master.key
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY bin ./bin
COPY config ./config
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
EXPOSE 7480 7481
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:7481/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
ENTRYPOINT ["node", "--max-semi-space-size=64", "dist/src/cli.js"]
CMD ["serve"]
