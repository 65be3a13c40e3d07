#!/usr/bin/env bash
# Removes everything k8s/deploy.sh created: the whole api-proxy namespace, including the
# Secret and the Postgres and Redis volumes (their data is gone afterwards).
set -euo pipefail
kubectl delete namespace api-proxy --ignore-not-found --wait=true
echo "[cleanup] namespace api-proxy deleted"
