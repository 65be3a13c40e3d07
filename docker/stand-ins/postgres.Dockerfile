# Stand-in for the official `postgres:17` image: Debian's PostgreSQL 15 with an entrypoint that
# honours the same POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_DB / PGDATA contract on first
# start. Built by scripts/compose-check as tollgate-local/postgres.
ARG BASE=tollgate-local/debian:bookworm
FROM ${BASE}
# hadolint ignore=DL3008
RUN apt-get update && apt-get install -y --no-install-recommends postgresql-15 && rm -rf /var/lib/apt/lists/*
ENV PATH=/usr/lib/postgresql/15/bin:$PATH PGDATA=/var/lib/postgresql/data
COPY postgres-entrypoint.sh /usr/local/bin/postgres-entrypoint.sh
RUN mkdir -p "$PGDATA" /var/run/postgresql && chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql
USER postgres
EXPOSE 5432
ENTRYPOINT ["/usr/local/bin/postgres-entrypoint.sh"]
