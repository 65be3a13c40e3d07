import { GrpcStatus, type UnaryMethod } from './h2-grpc-server.js';
import { eachField, LEN, readString, type Reader } from './protobuf-wire.js';

/**
 * grpc.health.v1.Health/Check for H2GrpcServer: what Envoy's active health check of the authz
 * cluster asks every second (envoy/envoy.yaml). Watch (server streaming) is not served — nothing
 * here asks for it — and answers UNIMPLEMENTED. The empty service name is the whole server,
 * as the health protocol defines; an unknown name answers NOT_FOUND.
 */
export const HEALTH_CHECK_PATH = '/grpc.health.v1.Health/Check';

export type ServingStatus = 'SERVING' | 'NOT_SERVING';

// HealthCheckResponse.ServingStatus
const STATUS_NUMBER: Record<ServingStatus, number> = { SERVING: 1, NOT_SERVING: 2 };

/** HealthCheckRequest's `service` (field 1); other fields are skipped as protobuf requires. */
function decodeHealthCheckRequest(buf: Buffer): string {
  const r: Reader = { buf, pos: 0 };
  let service = '';
  eachField(r, buf.length, (id, wireType) => {
    if (id !== 1 || wireType !== LEN) return false;
    service = readString(r, buf.length);
    return true;
  });
  return service;
}

export class GrpcHealth {
  private readonly statuses = new Map<string, ServingStatus>();

  constructor(services: string[]) {
    this.set(services, 'SERVING');
  }

  /** Sets the status of these services and of the whole server (''). */
  set(services: string[], status: ServingStatus): void {
    for (const s of ['', ...services]) this.statuses.set(s, status);
  }

  readonly method: UnaryMethod<string, ServingStatus> = {
    decode: decodeHealthCheckRequest,
    encode: (status, headroom) => {
      const buf = Buffer.alloc(headroom + 2);
      buf[headroom] = 0x08; // field 1, varint
      buf[headroom + 1] = STATUS_NUMBER[status];
      return buf;
    },
    handle: (call, callback) => {
      const status = this.statuses.get(call.request);
      if (status === undefined) callback({ code: GrpcStatus.NOT_FOUND, details: `unknown service ${call.request}` });
      else callback(null, status);
    },
  };
}
