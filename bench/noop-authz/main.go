// noop-authz: an ext_authz gRPC server that costs as little as one can. Every Check is allowed
// at once with one CheckResponse built at start: the identity headers, the removals, the
// rate-limit response headers and the dynamic metadata that authz-service answers an allowed
// API-key request with (common/src/authz-metadata.ts), so Envoy and billing-sidecar do all of
// their real work and only the authorizer's is missing. The gateway benchmark's
// "Envoy + no-op ext_authz" setup is the limit an out-of-process authorizer can approach.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/structpb"
)

type identity struct {
	userID, keyID string
	perMinute     int64
	perDay        int64
}

func header(key, value string) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{
		Header:       &corev3.HeaderValue{Key: key, Value: value},
		AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
	}
}

// okResponse is the answer to every Check. Its shape follows authz-service's for an allowed
// request with an API key whose minute window is the tightest (authz-service/src/check/
// checker.ts and rate-limit-headers.ts), so Envoy applies as many header mutations as it does
// behind Tollgate.
func okResponse(id identity) *authv3.CheckResponse {
	remaining := id.perMinute - 1
	return &authv3.CheckResponse{
		Status: &rpcstatus.Status{Code: int32(codes.OK)},
		HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{
			Headers: []*corev3.HeaderValueOption{
				header("x-user-id", id.userID),
				header("x-api-key-id", id.keyID),
				// The bench keys are full_access, whose scope list is "*".
				header("x-api-key-scopes", "*"),
			},
			HeadersToRemove: []string{"authorization", "x-api-key", "x-service-project", "x-service-name", "x-token-id"},
			ResponseHeadersToAdd: []*corev3.HeaderValueOption{
				header("x-ratelimit-limit", fmt.Sprint(id.perMinute)),
				header("x-ratelimit-remaining", fmt.Sprint(remaining)),
				header("x-ratelimit-reset", "60"),
				header("ratelimit-policy", fmt.Sprintf(`"minute";q=%d;w=60, "day";q=%d;w=86400`, id.perMinute, id.perDay)),
				header("ratelimit", fmt.Sprintf(`"minute";r=%d;t=60`, remaining)),
			},
		}},
		DynamicMetadata: &structpb.Struct{Fields: map[string]*structpb.Value{
			"credential": structpb.NewStringValue("api_key"),
			"user_id":    structpb.NewStringValue(id.userID),
			"key_id":     structpb.NewStringValue(id.keyID),
			"decision":   structpb.NewStringValue("allow"),
			"cost":       structpb.NewStringValue("1"),
		}},
	}
}

type server struct {
	authv3.UnimplementedAuthorizationServer
	ok *authv3.CheckResponse
}

// Check answers the prepared response: gRPC only reads it to encode, so one message serves
// every concurrent call.
func (s *server) Check(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	return s.ok, nil
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "address to listen on (host:port)")
	var id identity
	flag.StringVar(&id.userID, "user-id", "bench_user", "the x-user-id header and user_id metadata every Check answers")
	flag.StringVar(&id.keyID, "key-id", "key_bench", "the x-api-key-id header and key_id metadata every Check answers")
	flag.Int64Var(&id.perMinute, "per-minute", 100_000_000, "the per-minute limit the rate-limit headers name")
	flag.Int64Var(&id.perDay, "per-day", 1_000_000_000, "the per-day limit the rate-limit headers name")
	flag.Parse()

	lis, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "noop-authz: %v\n", err)
		os.Exit(1)
	}
	s := grpc.NewServer()
	authv3.RegisterAuthorizationServer(s, &server{ok: okResponse(id)})
	// The bench waits for this line, then for the port.
	fmt.Printf("noop-authz listening on %s\n", lis.Addr())
	if err := s.Serve(lis); err != nil {
		fmt.Fprintf(os.Stderr, "noop-authz: %v\n", err)
		os.Exit(1)
	}
}
