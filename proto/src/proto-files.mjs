// Shared by the runtime loader and the type generator, so types and runtime always agree.
export const INCLUDE_DIRS = ['deps/envoy-api', 'deps/xds', 'deps/googleapis', 'deps/protoc-gen-validate'];
export const PROTO_FILES = ['envoy/service/auth/v3/external_auth.proto', 'envoy/service/accesslog/v3/als.proto'];
export const LOADER_OPTIONS = {
  keepCase: false,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
};
