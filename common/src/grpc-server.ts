import * as grpc from '@grpc/grpc-js';
import { createServer, type Server as NetServer } from 'node:net';

/**
 * A gRPC server for the services' hot paths. grpc-js keeps channelz statistics (counters and
 * timestamps per call and per socket) unless told not to; nothing here serves channelz, so that
 * is work on every Check and every access-log stream for no reader.
 */
export function createGrpcServer(options: grpc.ServerOptions = {}): grpc.Server {
  return new grpc.Server({ 'grpc.enable_channelz': 0, ...options });
}

export interface BoundGrpc {
  port: number;
  /** Stops accepting connections; open ones are the gRPC server's to drain (shutdownGrpcServer). */
  close(): void;
}

/**
 * Listens for a gRPC server (plaintext: it sits on a private network behind Envoy) with Nagle's
 * algorithm off on every connection. grpc-js's own bind leaves it on, so a small response
 * written while an earlier one is unacknowledged can wait ~40 ms for the peer's delayed ACK —
 * a tail-latency cliff for ext_authz Checks (docs/benchmarks.md). The sockets are handed to the
 * gRPC server through its connection injector.
 */
export async function bindGrpcServer(server: grpc.Server, host: string, port: number): Promise<BoundGrpc> {
  const injector = server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
  const listener: NetServer = createServer({ noDelay: true, keepAlive: true }, (socket) => injector.injectConnection(socket));
  await new Promise<void>((resolve, reject) => {
    listener.once('error', reject);
    listener.listen(port, host, () => {
      listener.off('error', reject);
      resolve();
    });
  });
  const address = listener.address();
  return {
    port: typeof address === 'object' && address ? address.port : port,
    // net.Server.close's callback waits for every connection to end, which only the gRPC
    // server's shutdown brings about: stop accepting now, do not wait here.
    close: () => {
      listener.close();
    },
  };
}

/** Stops taking calls, lets in-flight ones finish, and forces the rest closed after `graceMs`. */
export function shutdownGrpcServer(server: grpc.Server, graceMs: number): Promise<void> {
  return new Promise((resolve) => {
    const force = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, graceMs);
    server.tryShutdown(() => {
      clearTimeout(force);
      resolve();
    });
  });
}
