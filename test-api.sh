#!/usr/bin/env bash
# Seed 003's walk-through, as a check of a running Tollgate: create a key, call /hello with and
# without it, hit its rate limit, list keys, revoke and delete, each answer checked. Exits
# non-zero at the first unexpected answer, naming the step.
#
#   ./test-api.sh [GATEWAY_URL [API_URL]]
#
# GATEWAY_URL: Envoy (default http://localhost:8000); API_URL: the key-management API (default
# http://localhost:8080). ADMIN_TOKEN comes from the environment, else from the local stack's
# .stack/admin-token (or $TOLLGATE_STACK_DIR/admin-token). Needs bash, curl and node.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
GATEWAY_URL="${1:-${GATEWAY_URL:-http://localhost:8000}}"
API_URL="${2:-${API_URL:-http://localhost:8080}}"
GATEWAY_URL="${GATEWAY_URL%/}"
API_URL="${API_URL%/}"
# Small, so the limit is reached in a few requests.
RATE_LIMIT="${TEST_RATE_LIMIT_PER_MINUTE:-5}"
USER_ID="test-api-$(date +%s)-$RANDOM"

STEP="setup"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
BODY="$WORK/body"
HEADERS="$WORK/headers"

fail() {
  printf 'test-api: FAILED at step "%s": %s\n' "$STEP" "$*" >&2
  if [ -s "$BODY" ]; then printf 'test-api: response body: %s\n' "$(head -c 500 "$BODY")" >&2; fi
  exit 1
}
step() { STEP="$1"; printf 'test-api: %s\n' "$STEP"; }

for tool in curl node; do
  command -v "$tool" >/dev/null || { STEP="setup"; fail "$tool is required"; }
done

if [ -z "${ADMIN_TOKEN:-}" ]; then
  token_file="${TOLLGATE_STACK_DIR:-$HERE/.stack}/admin-token"
  [ -r "$token_file" ] || fail "ADMIN_TOKEN is not set and $token_file does not exist"
  ADMIN_TOKEN="$(tr -d '[:space:]' < "$token_file")"
fi

# request METHOD URL [curl args...]: sets STATUS; the body is in $BODY, headers in $HEADERS.
request() {
  local method="$1" url="$2"
  shift 2
  : > "$BODY"
  : > "$HEADERS"
  STATUS="$(curl -sS -X "$method" -o "$BODY" -D "$HEADERS" -w '%{http_code}' --max-time 10 "$@" "$url" 2>"$WORK/curl.err")" \
    || fail "$method $url: no answer ($(tr -d '\n' < "$WORK/curl.err"))"
}
admin() { request "$@" -H "Authorization: Bearer $ADMIN_TOKEN" -H 'Content-Type: application/json'; }
expect_status() {
  [ "$STATUS" = "$1" ] || fail "expected HTTP $1, got $STATUS"
}
# json EXPR: evaluates EXPR with `b` bound to the response body parsed as JSON; prints the result.
json() {
  node -e '
    let b;
    try { b = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")); }
    catch { console.error("response is not JSON"); process.exit(2); }
    const v = (0, eval)("(b) => (" + process.argv[2] + ")")(b);
    process.stdout.write(v === undefined || v === null ? "" : String(v));
  ' "$BODY" "$1" || fail "could not read $1 from the response"
}
header() { grep -i "^$1:" "$HEADERS" | head -n1 | cut -d: -f2- | tr -d ' \r'; }

create_key() {
  admin POST "$API_URL/api/keys" --data "{\"user_id\":\"$USER_ID\",\"name\":\"$1\",\"rate_limit_per_minute\":$2,\"rate_limit_per_day\":10000}"
  expect_status 201
  KEY_ID="$(json 'b.id')"
  KEY="$(json 'b.key')"
  [[ "$KEY_ID" =~ ^key_[A-Za-z0-9]+$ ]] || fail "id \"$KEY_ID\" does not look like key_<base62>"
  [ -n "$KEY" ] || fail "no plaintext key in the response"
}

echo "test-api: gateway $GATEWAY_URL, management API $API_URL, user $USER_ID"

step "gateway health without a key"
request GET "$GATEWAY_URL/health"
expect_status 200

step "management API refuses a call without the admin token"
request GET "$API_URL/api/keys/$USER_ID"
expect_status 401

step "create a key (rate_limit_per_minute=$RATE_LIMIT)"
create_key "test-api limited key" "$RATE_LIMIT"
LIMITED_ID="$KEY_ID"
LIMITED_KEY="$KEY"

step "/hello without a key is refused"
request GET "$GATEWAY_URL/hello"
expect_status 401
[ -n "$(json 'b.error')" ] || fail "401 body has no \"error\""

step "/hello with the key (Authorization: Bearer)"
request GET "$GATEWAY_URL/hello" -H "Authorization: Bearer $LIMITED_KEY"
expect_status 200
[ "$(json 'b.message')" = "Hello, $USER_ID!" ] || fail "unexpected message \"$(json 'b.message')\""

step "/hello with the key (X-API-Key)"
request GET "$GATEWAY_URL/hello" -H "X-API-Key: $LIMITED_KEY"
expect_status 200

step "rate limit: 429 with Retry-After within $RATE_LIMIT requests a minute"
# Two requests are already counted; a minute boundary may reset the window once, so allow
# two windows' worth before calling it a failure.
limited=""
attempts=$((RATE_LIMIT * 2 + 2))
for _ in $(seq 1 "$attempts"); do
  request GET "$GATEWAY_URL/hello" -H "Authorization: Bearer $LIMITED_KEY"
  case "$STATUS" in
    200) ;;
    429) limited=yes; break ;;
    *) fail "expected 200 or 429, got $STATUS" ;;
  esac
done
[ -n "$limited" ] || fail "no 429 after $attempts more requests"
[[ "$(header retry-after)" =~ ^[0-9]+$ ]] || fail "429 without a numeric Retry-After header"

step "create a second key (for revocation)"
create_key "test-api revoked key" 1000
REVOKED_ID="$KEY_ID"
REVOKED_KEY="$KEY"
request GET "$GATEWAY_URL/hello" -H "Authorization: Bearer $REVOKED_KEY"
expect_status 200

step "list the user's keys"
admin GET "$API_URL/api/keys/$USER_ID"
expect_status 200
[ "$(json 'b.object')" = "list" ] || fail "object is not \"list\""
[ "$(json "b.data.some((k) => k.id === '$LIMITED_ID') && b.data.some((k) => k.id === '$REVOKED_ID')")" = "true" ] \
  || fail "the list lacks $LIMITED_ID or $REVOKED_ID"
[ "$(json 'JSON.stringify(b).includes("'"$LIMITED_KEY"'")')" = "false" ] || fail "the list shows a plaintext key"

step "revoke the second key"
admin POST "$API_URL/api/keys/$REVOKED_ID/revoke" --data '{"reason":"test-api.sh"}'
expect_status 200

step "the revoked key gets 401 through the gateway within a second"
revoked_at_ms=$(($(date +%s%N) / 1000000))
while :; do
  request GET "$GATEWAY_URL/hello" -H "Authorization: Bearer $REVOKED_KEY"
  [ "$STATUS" = 401 ] && break
  elapsed_ms=$(($(date +%s%N) / 1000000 - revoked_at_ms))
  [ "$elapsed_ms" -lt 1000 ] || fail "still HTTP $STATUS ${elapsed_ms} ms after revocation"
  sleep 0.1
done

step "delete both keys"
for id in "$LIMITED_ID" "$REVOKED_ID"; do
  admin DELETE "$API_URL/api/keys/$id"
  expect_status 200
done

STEP="done"
echo "test-api: all steps passed"
