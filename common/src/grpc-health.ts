import type { Server } from '@grpc/grpc-js';
import { HealthImplementation, type ServingStatusMap } from 'grpc-health-check';

export type GrpcServingStatus = 'SERVING' | 'NOT_SERVING';

/**
 * Adds grpc.health.v1.Health to a gRPC server. The empty service name is the whole server,
 * as the gRPC health protocol defines; named services track their own status.
 */
export function addGrpcHealth(server: Server, services: string[]): HealthImplementation {
  const initial: ServingStatusMap = { '': 'SERVING' };
  for (const s of services) initial[s] = 'SERVING';
  const health = new HealthImplementation(initial);
  health.addToServer(server);
  return health;
}

export function setGrpcServing(health: HealthImplementation, services: string[], status: GrpcServingStatus): void {
  for (const s of ['', ...services]) health.setStatus(s, status);
}
