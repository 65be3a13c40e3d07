// The authorizer of the gateway benchmark's "Envoy + no-op ext_authz" setup: bench/noop-authz,
// a Go ext_authz server that allows every Check at once with a fixed identity (see its main.go).
import { freePort, portOpen, startProcess, waitFor, type Endpoint, type ManagedProcess } from '@tollgate/devstack';
import { requireBenchTool } from './tools.js';

export interface NoopAuthzOptions {
  /** The identity every Check answers with: a real key's, so billing records it like Tollgate's. */
  userId: string;
  keyId: string;
  /** The limits its rate-limit response headers name. */
  limits: { perMinute: number; perDay: number };
}

export interface RunningNoopAuthz {
  endpoint: Endpoint;
  process: ManagedProcess;
}

/** The server's command line. */
function noopAuthzArgs(listen: Endpoint, o: NoopAuthzOptions): string[] {
  return [
    '-addr',
    `${listen.host}:${listen.port}`,
    '-user-id',
    o.userId,
    '-key-id',
    o.keyId,
    '-per-minute',
    String(o.limits.perMinute),
    '-per-day',
    String(o.limits.perDay),
  ];
}

/** Starts bench/noop-authz (built by scripts/bench-gateway) on a free loopback port. */
export async function startNoopAuthz(o: NoopAuthzOptions): Promise<RunningNoopAuthz> {
  const endpoint = { host: '127.0.0.1', port: await freePort() };
  const p = startProcess({ name: 'noop-authz', command: requireBenchTool('noop-authz'), args: noopAuthzArgs(endpoint, o) });
  try {
    await waitFor('noop-authz', () => portOpen(endpoint.port, endpoint.host), { child: p, timeoutMs: 30_000 });
  } catch (err) {
    await p.stop();
    throw err;
  }
  return { endpoint, process: p };
}
