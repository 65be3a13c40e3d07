import type { TestStack } from '@tollgate/devstack';
import { Gateway, KeyIssuer, type GatewayOptions } from '../src/index.js';

/**
 * The gateway of separate processes in a temporary directory of its own, and a key issuer on its
 * database, both stopped with the stack. The gateway's stop is registered before it starts: a
 * start that fails half-way still stops the processes it did start.
 */
export async function startGatewayStack(stack: TestStack, prefix: string, opts: Omit<GatewayOptions, 'dir'> = {}): Promise<{ gw: Gateway; issuer: KeyIssuer }> {
  const gw = new Gateway({ ...opts, dir: stack.tempDir(prefix) });
  stack.defer('gateway', () => gw.stop());
  await gw.start();
  const issuer = new KeyIssuer(gw.databaseUrl, gw.secrets.keyHashSecret);
  // Its pool may hold connections to a Postgres a test killed: closing them says nothing.
  stack.defer('key issuer', () => issuer.close().catch(() => {}));
  return { gw, issuer };
}
