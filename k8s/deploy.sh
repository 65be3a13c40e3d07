#!/usr/bin/env bash
# Deploys Tollgate to the cluster kubectl points at, in namespace api-proxy (seed 003's order):
# namespace, secret, configuration, Postgres and Redis (waited for), then the services.
#
# Images: tollgate/authz-service, tollgate/billing-sidecar and tollgate/backend-hello must be
# available to the cluster. BUILD_IMAGES=1 builds them with docker first; for k3s also set
# K3S_IMPORT=1 to import them into k3s' containerd (Docker Desktop shares docker's images).
#
# The Secret `tollgate-secrets` is created once, from ADMIN_TOKEN / KEY_HASH_SECRETS /
# POSTGRES_PASSWORD / STRIPE_API_KEY in the environment, generating what is unset; an
# existing Secret is never overwritten. The admin token is printed to retrieve it later:
#   kubectl get secret -n api-proxy tollgate-secrets -o jsonpath='{.data.ADMIN_TOKEN}' | base64 -d
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
NS=api-proxy
say() { printf '\033[1m[deploy]\033[0m %s\n' "$*"; }

command -v kubectl >/dev/null || { echo "kubectl is required" >&2; exit 1; }

if [ "${BUILD_IMAGES:-0}" = 1 ]; then
  for target in authz-service billing-sidecar backend-hello; do
    say "building tollgate/$target"
    docker build --target "$target" -t "tollgate/$target:latest" .
    if [ "${K3S_IMPORT:-0}" = 1 ]; then
      docker save "tollgate/$target:latest" | sudo k3s ctr images import -
    fi
  done
fi

# URL-safe random values: letters and digits only (POSTGRES_PASSWORD goes into DATABASE_URL).
random_secret() { LC_ALL=C tr -dc 'A-Za-z0-9' < /dev/urandom | head -c "$1"; }

kubectl apply -f k8s/namespace.yaml
if kubectl get secret -n "$NS" tollgate-secrets >/dev/null 2>&1; then
  say "secret tollgate-secrets exists; left as it is"
else
  say "creating secret tollgate-secrets"
  ADMIN_TOKEN="${ADMIN_TOKEN:-$(random_secret 40)}"
  kubectl create secret generic tollgate-secrets -n "$NS" \
    --from-literal=ADMIN_TOKEN="$ADMIN_TOKEN" \
    --from-literal=KEY_HASH_SECRETS="${KEY_HASH_SECRETS:-$(random_secret 48)}" \
    --from-literal=POSTGRES_PASSWORD="${POSTGRES_PASSWORD:-$(random_secret 32)}" \
    --from-literal=STRIPE_API_KEY="${STRIPE_API_KEY:-}"
  say "admin token stored in the secret (see the header of k8s/deploy.sh to read it back)"
fi

if kubectl get secret -n "$NS" tollgate-tls >/dev/null 2>&1; then
  say "secret tollgate-tls exists; left as it is"
else
  # A self-signed stand-in so the HTTPS listener starts; replace it with a real certificate
  # (kubectl create secret tls ... --dry-run=client -o yaml | kubectl apply -f -): Envoy
  # picks the update up without a restart.
  say "creating secret tollgate-tls (self-signed for localhost: replace it with your certificate)"
  tls_tmp="$(mktemp -d)"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 -subj /CN=localhost \
    -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout "$tls_tmp/tls.key" -out "$tls_tmp/tls.crt" 2>/dev/null
  kubectl create secret tls tollgate-tls -n "$NS" --cert="$tls_tmp/tls.crt" --key="$tls_tmp/tls.key"
  rm -rf "$tls_tmp"
fi

kubectl apply -f k8s/configmap.yaml
kubectl apply -f k8s/postgres.yaml
kubectl apply -f k8s/redis.yaml
say "waiting for Postgres and Redis"
kubectl rollout status statefulset/postgres -n "$NS" --timeout=180s
kubectl rollout status statefulset/redis -n "$NS" --timeout=180s

kubectl apply -f k8s/api-key-service.yaml
kubectl apply -f k8s/backend-service.yaml
kubectl apply -f k8s/billing-sidecar.yaml
kubectl apply -f k8s/envoy.yaml
say "waiting for the services"
for d in authz-service backend-hello envoy; do
  kubectl rollout status "deployment/$d" -n "$NS" --timeout=180s
done
say "deployed. Try it: ./k8s/test.sh"
kubectl get pods,svc -n "$NS"
