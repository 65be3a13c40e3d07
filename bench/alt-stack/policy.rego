# The API-key check of the alternative stack (setup c of the gateway benchmark): what a team
# would write for OPA's Envoy plugin instead of running Tollgate. It does the same work per
# request as Tollgate's Check: read the key from `Authorization: Bearer` or `X-API-Key`, hash it
# with HMAC-SHA-256 under a server secret, look the hash up, and pass the key's identity to the
# upstream (and to Envoy's rate-limit filter) in place of the key.
#
# Data (bench/src/alt-stack.ts writes it):
#   tollgate_bench.hash_secret              the HMAC secret
#   tollgate_bench.keys[<hex hash>]         {"id": ..., "user_id": ...}
package tollgate_bench

headers := input.attributes.request.http.headers

credential := trim_prefix(headers.authorization, "Bearer ") if startswith(headers.authorization, "Bearer ")

credential := headers["x-api-key"] if not headers.authorization

key := data.tollgate_bench.keys[crypto.hmac.sha256(credential, data.tollgate_bench.hash_secret)]

default allow := {
	"allowed": false,
	"http_status": 401,
	"headers": {
		"content-type": "application/json",
		"www-authenticate": "Bearer realm=\"api\"",
	},
	"body": "{\"error\":\"invalid_api_key\"}",
}

allow := {
	"allowed": true,
	"headers": {
		"x-api-key-id": key.id,
		"x-user-id": key.user_id,
	},
	"request_headers_to_remove": ["authorization", "x-api-key"],
} if key
