# Stand-in for the official `redis:8` image: Debian's Redis 7. Like the official image it
# serves the network with no config file (protected mode off) and keeps data in /data.
# Built by scripts/compose-check as tollgate-local/redis.
ARG BASE=tollgate-local/debian:bookworm
FROM ${BASE}
# hadolint ignore=DL3008
RUN apt-get update && apt-get install -y --no-install-recommends redis-server && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /data && chown redis:redis /data
COPY redis-entrypoint.sh /usr/local/bin/redis-entrypoint.sh
WORKDIR /data
USER redis
EXPOSE 6379
ENTRYPOINT ["/usr/local/bin/redis-entrypoint.sh"]
CMD ["redis-server"]
