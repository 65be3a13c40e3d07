#!/usr/bin/env bash
# Runs ./test-api.sh against the cluster's Tollgate, through port-forwards to the envoy and
# authz-service Services (local ports ENVOY_LOCAL_PORT / API_LOCAL_PORT, default 8000 / 8080).
# The admin token is read from the Secret unless ADMIN_TOKEN is set.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
NS=api-proxy
ENVOY_LOCAL_PORT="${ENVOY_LOCAL_PORT:-8000}"
API_LOCAL_PORT="${API_LOCAL_PORT:-8080}"

if [ -z "${ADMIN_TOKEN:-}" ]; then
  ADMIN_TOKEN="$(kubectl get secret -n "$NS" tollgate-secrets -o jsonpath='{.data.ADMIN_TOKEN}' | base64 -d)"
fi
export ADMIN_TOKEN

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
kubectl port-forward -n "$NS" svc/envoy "$ENVOY_LOCAL_PORT:8000" >/dev/null &
pids+=($!)
kubectl port-forward -n "$NS" svc/authz-service "$API_LOCAL_PORT:8080" >/dev/null &
pids+=($!)

# Wait (up to 15 s) until both forwards accept connections.
for _ in $(seq 1 30); do
  if curl -s -o /dev/null "http://127.0.0.1:$ENVOY_LOCAL_PORT/ping" && curl -s -o /dev/null "http://127.0.0.1:$API_LOCAL_PORT/health/live"; then
    break
  fi
  sleep 0.5
done
./test-api.sh "http://127.0.0.1:$ENVOY_LOCAL_PORT" "http://127.0.0.1:$API_LOCAL_PORT"
