import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './proc.js';
import { startRedis, type RunningRedis } from './redis.js';
import { startEnvoy, type RunningEnvoy } from './envoy.js';
import type { EnvoyRenderOptions } from './envoy-config.js';
import { renderSdsConfig } from './tls.js';
import { createTestDatabase, uniqueRedisPrefix, type TestInfra } from './test-infra.js';

interface Part {
  name: string;
  stop: () => unknown;
}

/**
 * What one test file starts, stopped in one call in the reverse order of starting (Envoy before
 * the service it calls, the service before its database is dropped). Created before the file's
 * beforeAll and stopped in its afterAll, so a start that fails half-way still stops what did start:
 *
 *   const stack = new TestStack();
 *   afterAll(() => stack.stop());
 *   beforeAll(async () => { db = await stack.database(infra, 'envoy'); ... });
 *
 * Service-specific parts (authz-service, billing-sidecar) are started by each service's own test
 * helpers through `start`: devstack depends on no service.
 */
export class TestStack {
  private readonly parts: Part[] = [];

  /** Starts one part; a failure names it. `stop` runs in `stop()`, before the parts started earlier. */
  async start<T>(name: string, start: () => Promise<T>, stop: (part: T) => unknown): Promise<T> {
    let part: T;
    try {
      part = await start();
    } catch (e) {
      throw new Error(`test stack: could not start ${name}: ${(e as Error).message}`, { cause: e });
    }
    this.parts.push({ name, stop: () => stop(part) });
    return part;
  }

  /** Something to undo in `stop()` that was not started through `start` (a client to close, say). */
  defer(name: string, stop: () => unknown): void {
    this.parts.push({ name, stop });
  }

  /**
   * A part the test replaces as it goes (a process it kills and starts again): set `current` to
   * each new one, and `stop()` stops whichever is current then, in this slot's place in the order.
   */
  replaceable<T>(name: string, stop: (part: T) => unknown): { current: T | undefined } {
    const slot: { current: T | undefined } = { current: undefined };
    this.defer(name, () => (slot.current === undefined ? undefined : stop(slot.current)));
    return slot;
  }

  /** A new temporary directory (`prefix` names it), removed with everything in it by `stop()`. */
  tempDir(prefix: string): string {
    const dir = mkdtempSync(join(tmpdir(), prefix));
    this.defer(`temporary directory ${dir}`, () => rmSync(dir, { recursive: true, force: true }));
    return dir;
  }

  /** A Postgres database of this file's own on the run's server, dropped last. */
  database(infra: TestInfra, label: string): Promise<{ url: string; drop: () => Promise<void> }> {
    return this.start(
      `Postgres database '${label}' (is the run's Postgres up?)`,
      () => createTestDatabase(infra, label),
      (db) => db.drop(),
    );
  }

  /** A Redis key prefix no other test file uses (nothing to stop: keys are left to the run's Redis). */
  redisPrefix(infra: TestInfra, label: string): string {
    return uniqueRedisPrefix(infra, label);
  }

  /**
   * A Redis server of this file's own on a free port, for a test that stops it to see the
   * service fail (the run's shared Redis must stay up for the other files).
   */
  redis(): Promise<RunningRedis> {
    return this.start(
      'a private Redis',
      async () => startRedis({ dir: this.tempDir('tollgate-redis-'), port: await freePort() }),
      (redis) => redis.process.stop(),
    );
  }

  /** A real Envoy on free loopback ports (the canonical envoy.yaml), stopped before what it calls. */
  envoy(render: LoopbackEnvoyOptions): Promise<RunningEnvoy> {
    return this.start(
      'Envoy',
      () => startLoopbackEnvoy(render),
      (envoy) => envoy.process.stop(),
    );
  }

  /**
   * Stops every part, last started first. Goes on past a part that fails to stop, so the others
   * are still stopped, and then throws naming every part that failed.
   */
  async stop(): Promise<void> {
    const failures: string[] = [];
    for (let part = this.parts.pop(); part; part = this.parts.pop()) {
      try {
        await part.stop();
      } catch (e) {
        failures.push(`${part.name}: ${(e as Error).message}`);
      }
    }
    if (failures.length > 0) throw new Error(`test stack: could not stop ${failures.join('; ')}`);
  }
}

/**
 * For helpers that hand back one `stop()` rather than take a stack: builds on a new stack, and
 * stops what did start when the build fails.
 */
export async function onNewStack<T extends object>(build: (stack: TestStack) => Promise<T>): Promise<T & { stop: () => Promise<void> }> {
  const stack = new TestStack();
  try {
    return Object.assign(await build(stack), { stop: () => stack.stop() });
  } catch (e) {
    await stack.stop().catch(() => {});
    throw e;
  }
}

/** The upstream and the gRPC services an Envoy front calls, all on 127.0.0.1. */
export interface LoopbackEnvoyOptions extends Omit<EnvoyRenderOptions, 'listen' | 'adminPort' | 'backend' | 'authz' | 'als' | 'tls'> {
  /** Adds the HTTPS listener on a free port, serving the certificate in this directory (createLocalTls). */
  tls?: { certDir: string; redirect?: boolean };
  backendPort: number;
  /** ext_authz's Check; null runs Envoy without ext_authz. */
  authzPort: number | null;
  /** The gRPC access-log service; absent sends no access-log stream. */
  alsPort?: number;
}

/** The canonical envoy.yaml rendered for loopback: free listener and admin ports, a temporary directory. */
export async function startLoopbackEnvoy(opts: LoopbackEnvoyOptions): Promise<RunningEnvoy> {
  const { backendPort, authzPort, alsPort, tls, ...render } = opts;
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-envoy-'));
  const sdsPath = join(dir, 'public-tls-sds.yaml');
  if (tls) writeFileSync(sdsPath, renderSdsConfig(tls.certDir));
  return startEnvoy({
    dir,
    render: {
      ...render,
      ...(tls && { tls: { listen: { host: '127.0.0.1', port: await freePort() }, sdsPath, redirect: tls.redirect } }),
      listen: { host: '127.0.0.1', port: await freePort() },
      adminPort: await freePort(),
      backend: { host: '127.0.0.1', port: backendPort },
      authz: authzPort === null ? null : { host: '127.0.0.1', port: authzPort },
      als: alsPort ? { host: '127.0.0.1', port: alsPort } : null,
    },
  });
}
