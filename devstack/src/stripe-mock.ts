import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, portOpen, startProcess, waitFor, type ManagedProcess } from './proc.js';
import { REPO_ROOT } from './envoy-config.js';

export function findStripeMock(): string {
  const candidates = [process.env.STRIPE_MOCK_BIN, join(REPO_ROOT, '.tools', 'bin', 'stripe-mock')].filter(Boolean) as string[];
  const found = candidates.find((c) => existsSync(c));
  if (!found) {
    throw new Error('stripe-mock not found: ./scripts/test installs it with `go install github.com/stripe/stripe-mock`, or set STRIPE_MOCK_BIN.');
  }
  return found;
}

export interface RunningStripeMock {
  process: ManagedProcess;
  url: string;
}

export async function startStripeMock(port: number): Promise<RunningStripeMock> {
  // stripe-mock also serves HTTPS, on 12112 unless told otherwise: give it a free port too, so
  // concurrent test runs never collide there.
  const httpsPort = await freePort();
  const proc = startProcess({
    name: 'stripe-mock',
    command: findStripeMock(),
    args: ['-http-addr', `127.0.0.1:${port}`, '-https-addr', `127.0.0.1:${httpsPort}`],
  });
  await waitFor('stripe-mock', () => portOpen(port), { child: proc, timeoutMs: 20_000 });
  return { process: proc, url: `http://127.0.0.1:${port}` };
}
