// Setup (c) of the gateway benchmark: Envoy + OPA's Envoy plugin (ext_authz gRPC, checking the
// API key against hashed keys in OPA's data) + Envoy's rate-limit filter to envoyproxy/ratelimit
// on Redis: the stack a team would assemble from common parts instead of running Tollgate.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import {
  freePort,
  httpOk,
  renderEnvoyConfig,
  startEnvoy,
  startProcess,
  waitFor,
  type Endpoint,
  type ManagedProcess,
  type RunningEnvoy,
} from '@tollgate/devstack';
import type { BenchKey } from './keys.js';
import { requireBenchTool } from './tools.js';

const ALT_POLICY_PATH = join(dirname(fileURLToPath(import.meta.url)), '..', 'alt-stack', 'policy.rego');
/** The policy's package and rule, as the plugin's `path` setting names it. */
const ALT_DECISION_PATH = 'tollgate_bench/allow';
const RATELIMIT_DOMAIN = 'tollgate_bench';
/** OPA's decision puts the key's id here; the rate-limit descriptors are built from it. */
const KEY_ID_HEADER = 'x-api-key-id';

type Obj = Record<string, any>;

/** OPA's data: hashes only, like Tollgate's store, so both do the same hashing per request. */
export function altOpaData(keys: readonly BenchKey[], hashSecret: string): Obj {
  const byHash: Record<string, { id: string; user_id: string }> = {};
  for (const k of keys) byHash[k.hash] = { id: k.id, user_id: k.userId };
  return { tollgate_bench: { hash_secret: hashSecret, keys: byHash } };
}

/**
 * envoyproxy/ratelimit's configuration: a per-minute and a per-day limit per key id, as Tollgate
 * enforces. A descriptor key without a value gives every distinct value its own counter.
 */
export function altRatelimitConfig(limits: { perMinute: number; perDay: number }): string {
  return YAML.stringify({
    domain: RATELIMIT_DOMAIN,
    descriptors: [
      { key: 'api_key_minute', rate_limit: { unit: 'minute', requests_per_unit: limits.perMinute } },
      { key: 'api_key_day', rate_limit: { unit: 'day', requests_per_unit: limits.perDay } },
    ],
  });
}

export interface AltEnvoyOptions {
  listen: Endpoint;
  adminPort: number;
  backend: Endpoint;
  opa: Endpoint;
  ratelimit: Endpoint;
}

/**
 * Envoy's configuration for setup (c). It starts from Tollgate's own envoy/envoy.yaml rendered
 * for loopback, so listener settings, header hygiene and routes are identical across setups:
 * ext_authz points at OPA instead of authz-service, there is no access-log leg (the alternative
 * has no metering), and the rate-limit filter and its cluster are added.
 */
export function renderAltEnvoyConfig(o: AltEnvoyOptions): string {
  const config = YAML.parse(renderEnvoyConfig({ listen: o.listen, adminPort: o.adminPort, backend: o.backend, authz: o.opa, als: null })) as Obj;
  const hcm = (config.static_resources.listeners[0].filter_chains[0].filters as Obj[]).find((f) => f.name === 'envoy.filters.network.http_connection_manager')!
    .typed_config as Obj;

  const filters = hcm.http_filters as Obj[];
  const router = filters.findIndex((f) => f.name === 'envoy.filters.http.router');
  const extAuthz = filters.find((f) => f.name === 'envoy.filters.http.ext_authz')!.typed_config as Obj;
  filters.splice(router, 0, {
    name: 'envoy.filters.http.ratelimit',
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimit',
      domain: RATELIMIT_DOMAIN,
      // The same deadline and failure policy as Tollgate's Check: a slow limiter is bounded,
      // and an unreachable one lets traffic through (Tollgate's RATE_LIMIT_FAILURE_MODE=open).
      timeout: extAuthz.grpc_service.timeout,
      failure_mode_deny: false,
      // Tollgate answers with rate-limit headers; ask the alternative for the same.
      enable_x_ratelimit_headers: 'DRAFT_VERSION_03',
      rate_limit_service: { transport_api_version: 'V3', grpc_service: { envoy_grpc: { cluster_name: 'ratelimit' } } },
    },
  });

  // Descriptors come from the header OPA's decision sets. Clients cannot forge it: the
  // listener's early header mutation removes x-api-key-id before any filter runs.
  const vhost = hcm.route_config.virtual_hosts[0] as Obj;
  const catchAll = (vhost.routes as Obj[]).find((r) => r.match?.prefix === '/' && r.route);
  if (!catchAll) throw new Error('envoy.yaml: no catch-all route to rate-limit');
  catchAll.route.rate_limits = ['api_key_minute', 'api_key_day'].map((descriptorKey) => ({
    actions: [{ request_headers: { header_name: KEY_ID_HEADER, descriptor_key: descriptorKey } }],
  }));

  const authzCluster = (config.static_resources.clusters as Obj[]).find((c) => c.name === 'authz')!;
  (config.static_resources.clusters as Obj[]).push({
    name: 'ratelimit',
    type: 'STATIC',
    connect_timeout: authzCluster.connect_timeout,
    typed_extension_protocol_options: authzCluster.typed_extension_protocol_options,
    load_assignment: {
      cluster_name: 'ratelimit',
      endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: o.ratelimit.host, port_value: o.ratelimit.port } } } }] }],
    },
  });
  return YAML.stringify(config, { lineWidth: 0 });
}

export interface RunningAltStack {
  envoy: RunningEnvoy;
  opa: ManagedProcess;
  ratelimit: ManagedProcess;
  stop: () => Promise<void>;
}

/** Starts OPA's Envoy plugin, envoyproxy/ratelimit and Envoy for setup (c); `stop` ends all three. */
export async function startAltStack(opts: {
  dir: string;
  backend: Endpoint;
  redisUrl: string;
  keys: readonly BenchKey[];
  hashSecret: string;
  limits: { perMinute: number; perDay: number };
}): Promise<RunningAltStack> {
  mkdirSync(opts.dir, { recursive: true });
  const started: ManagedProcess[] = [];
  const stop = async () => {
    for (const p of started.reverse()) await p.stop();
  };
  try {
    const dataPath = join(opts.dir, 'opa-data.json');
    writeFileSync(dataPath, JSON.stringify(altOpaData(opts.keys, opts.hashSecret)));
    const opaGrpc = await freePort();
    const opaHttp = await freePort();
    const opa = startProcess({
      name: 'opa-envoy-plugin',
      command: requireBenchTool('opa-envoy-plugin'),
      args: [
        'run',
        '--server',
        '--addr',
        `127.0.0.1:${opaHttp}`,
        '--disable-telemetry',
        '--log-level',
        'error',
        '--set',
        `plugins.envoy_ext_authz_grpc.addr=127.0.0.1:${opaGrpc}`,
        '--set',
        `plugins.envoy_ext_authz_grpc.path=${ALT_DECISION_PATH}`,
        // Decision logs would add work Tollgate's Check does not do (and print every key id).
        '--set',
        'decision_logs.console=false',
        ALT_POLICY_PATH,
        dataPath,
      ],
    });
    started.push(opa);
    await waitFor('opa-envoy-plugin', () => httpOk(`http://127.0.0.1:${opaHttp}/health?plugins`), { child: opa, timeoutMs: 30_000 });

    // ratelimit reads RUNTIME_ROOT/RUNTIME_SUBDIRECTORY/RUNTIME_APPDIRECTORY/*.yaml.
    const runtimeRoot = join(opts.dir, 'ratelimit-runtime');
    mkdirSync(join(runtimeRoot, 'ratelimit', 'config'), { recursive: true });
    writeFileSync(join(runtimeRoot, 'ratelimit', 'config', 'bench.yaml'), altRatelimitConfig(opts.limits));
    const rlGrpc = await freePort();
    const rlHttp = await freePort();
    const redis = new URL(opts.redisUrl);
    const ratelimit = startProcess({
      name: 'ratelimit',
      command: requireBenchTool('ratelimit'),
      args: [],
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOST: '127.0.0.1',
        PORT: String(rlHttp),
        GRPC_HOST: '127.0.0.1',
        GRPC_PORT: String(rlGrpc),
        DEBUG_HOST: '127.0.0.1',
        DEBUG_PORT: String(await freePort()),
        LOG_LEVEL: 'warn',
        USE_STATSD: 'false',
        BACKEND_TYPE: 'redis',
        REDIS_SOCKET_TYPE: 'tcp',
        REDIS_URL: `${redis.hostname}:${redis.port || 6379}`,
        RUNTIME_ROOT: runtimeRoot,
        RUNTIME_SUBDIRECTORY: 'ratelimit',
        RUNTIME_APPDIRECTORY: 'config',
        // The files are written before start and never swapped, so there is no symlink to watch.
        RUNTIME_WATCH_ROOT: 'false',
      },
    });
    started.push(ratelimit);
    await waitFor('ratelimit', () => httpOk(`http://127.0.0.1:${rlHttp}/healthcheck`), { child: ratelimit, timeoutMs: 30_000 });

    const listen = { host: '127.0.0.1', port: await freePort() };
    const adminPort = await freePort();
    const envoy = await startEnvoy({
      dir: join(opts.dir, 'envoy'),
      render: { listen, adminPort, backend: opts.backend, authz: null, als: null },
      config: renderAltEnvoyConfig({
        listen,
        adminPort,
        backend: opts.backend,
        opa: { host: '127.0.0.1', port: opaGrpc },
        ratelimit: { host: '127.0.0.1', port: rlGrpc },
      }),
    });
    started.push(envoy.process);
    return { envoy, opa, ratelimit, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
