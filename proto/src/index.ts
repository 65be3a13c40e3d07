import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { INCLUDE_DIRS, PROTO_FILES, LOADER_OPTIONS } from './proto-files.mjs';
import type { ProtoGrpcType as AuthProto } from '../generated/external_auth.js';
import type { ProtoGrpcType as AlsProto } from '../generated/als.js';

export type { AuthorizationHandlers } from '../generated/envoy/service/auth/v3/Authorization.js';
export type { AuthorizationClient } from '../generated/envoy/service/auth/v3/Authorization.js';
export type { CheckRequest, CheckRequest__Input } from '../generated/envoy/service/auth/v3/CheckRequest.js';
export type { CheckResponse, CheckResponse__Input } from '../generated/envoy/service/auth/v3/CheckResponse.js';
export type { AttributeContext } from '../generated/envoy/service/auth/v3/AttributeContext.js';
export type { _envoy_service_auth_v3_AttributeContext_HttpRequest as AttributeContextHttpRequest } from '../generated/envoy/service/auth/v3/AttributeContext.js';
export type { HeaderValueOption__Input } from '../generated/envoy/config/core/v3/HeaderValueOption.js';
export type { Struct, Struct__Input } from '../generated/google/protobuf/Struct.js';
export type { Value, Value__Input } from '../generated/google/protobuf/Value.js';
export type { AccessLogServiceHandlers, AccessLogServiceClient } from '../generated/envoy/service/accesslog/v3/AccessLogService.js';
export type { StreamAccessLogsMessage, StreamAccessLogsMessage__Input } from '../generated/envoy/service/accesslog/v3/StreamAccessLogsMessage.js';
export type { StreamAccessLogsResponse } from '../generated/envoy/service/accesslog/v3/StreamAccessLogsResponse.js';
export type { HTTPAccessLogEntry, HTTPAccessLogEntry__Input } from '../generated/envoy/data/accesslog/v3/HTTPAccessLogEntry.js';

const require = createRequire(import.meta.url);

/** Where @grpc/grpc-js-xds keeps Envoy's API protos (and their imports). */
export function envoyProtoIncludeDirs(): string[] {
  const xdsRoot = dirname(require.resolve('@grpc/grpc-js-xds/package.json'));
  return INCLUDE_DIRS.map((d) => join(xdsRoot, d));
}

export type EnvoyProtos = AuthProto & AlsProto;

let cached: EnvoyProtos | undefined;

/**
 * Loads ext_authz (`envoy.service.auth.v3.Authorization`) and ALS
 * (`envoy.service.accesslog.v3.AccessLogService`) once per process.
 */
export function loadEnvoyProtos(): EnvoyProtos {
  if (!cached) {
    const definition = protoLoader.loadSync(PROTO_FILES, {
      ...LOADER_OPTIONS,
      includeDirs: envoyProtoIncludeDirs(),
    });
    cached = grpc.loadPackageDefinition(definition) as unknown as EnvoyProtos;
  }
  return cached;
}

/** gRPC service names, as Envoy and the gRPC health protocol spell them. */
export const AUTHORIZATION_SERVICE = 'envoy.service.auth.v3.Authorization';
export const ACCESS_LOG_SERVICE = 'envoy.service.accesslog.v3.AccessLogService';

/** google.rpc.Code values used in CheckResponse.status. */
export const RpcCode = {
  OK: 0,
  PERMISSION_DENIED: 7,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
  RESOURCE_EXHAUSTED: 8,
} as const;
