#!/bin/sh
# `redis-server ARGS…` runs with protected mode off (the container network is the boundary, as
# with the official image); anything else runs as given (redis-cli, a shell).
set -e
if [ "$1" = redis-server ]; then
  shift
  exec redis-server --protected-mode no --dir /data "$@"
fi
exec "$@"
