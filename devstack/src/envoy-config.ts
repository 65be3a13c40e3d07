import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const ENVOY_CONFIG_PATH = join(REPO_ROOT, 'envoy', 'envoy.yaml');

export interface Endpoint {
  host: string;
  port: number;
}

export interface EnvoyRenderOptions {
  listen: Endpoint;
  adminPort: number;
  backend: Endpoint;
  /**
   * authz-service's gRPC endpoint, or several (replicas Envoy balances over); null leaves the
   * ext_authz filter in place but disabled.
   */
  authz: Endpoint | Endpoint[] | null;
  /** billing-sidecar's ALS port; null leaves gRPC access logging out. */
  als: Endpoint | null;
  /**
   * Where Envoy writes the JSON access log billing-sidecar backfills from; unset or null leaves
   * the file access log out. (startEnvoy defaults it to access.log beside the rendered config.)
   */
  accessLogPath?: string | null;
  /**
   * Where the log_reopen listener (POST /reopen_logs forwarded to the admin port) listens;
   * unset leaves it out (on loopback the admin port itself is reachable).
   */
  logReopen?: Endpoint;
  /**
   * The HTTPS listener (public_tls) and where its SDS file is (renderSdsConfig writes one);
   * unset leaves the listener out. `redirect` sends plain HTTP there (tollgate.https_redirect).
   */
  tls?: { listen: Endpoint; sdsPath: string; redirect?: boolean };
  /** Extra clusters' endpoints by cluster name (examples added by later configuration). */
  clusters?: Record<string, Endpoint | Endpoint[]>;
}

type Obj = Record<string, any>;

function hcmOf(config: Obj): Obj {
  const filters = config.static_resources.listeners[0].filter_chains[0].filters as Obj[];
  const hcm = filters.find((f) => f.name === 'envoy.filters.network.http_connection_manager');
  if (!hcm) throw new Error('envoy.yaml: no http_connection_manager on the public listener');
  return hcm.typed_config;
}

function setClusterEndpoint(config: Obj, name: string, ep: Endpoint | Endpoint[]): void {
  const cluster = (config.static_resources.clusters as Obj[]).find((c) => c.name === name);
  if (!cluster) throw new Error(`envoy.yaml: no cluster named ${name}`);
  const list = Array.isArray(ep) ? ep : [ep];
  if (list.length === 0) throw new Error(`cluster ${name}: at least one endpoint`);
  cluster.load_assignment.endpoints = [
    { lb_endpoints: list.map((e) => ({ endpoint: { address: { socket_address: { address: e.host, port_value: e.port } } } })) },
  ];
}

/** The public_tls listener shares the public one's connection manager (a YAML alias): only its address and SDS path change. */
function renderTls(config: Obj, hcm: Obj, tls: EnvoyRenderOptions['tls']): void {
  const listeners = config.static_resources.listeners as Obj[];
  const listener = listeners.find((l) => l.name === 'public_tls');
  if (!listener) return;
  if (!tls) {
    config.static_resources.listeners = listeners.filter((l) => l !== listener);
    return;
  }
  listener.address.socket_address = { address: tls.listen.host, port_value: tls.listen.port };
  const sds = listener.filter_chains[0].transport_socket.typed_config.common_tls_context.tls_certificate_sds_secret_configs[0];
  sds.sds_config.path_config_source.path = tls.sdsPath;
  for (const route of hcm.route_config.virtual_hosts.flatMap((v: Obj) => v.routes as Obj[])) {
    if (route.redirect?.https_redirect) route.redirect.port_redirect = tls.listen.port;
  }
  const runtime = (config.layered_runtime?.layers as Obj[] | undefined)?.find((l) => l.static_layer);
  if (runtime && tls.redirect) runtime.static_layer['tollgate.https_redirect'] = 100;
}

/**
 * Renders the canonical envoy/envoy.yaml for a loopback deployment: the same listeners,
 * filters and routes, with addresses and ports rewritten. Nothing else changes, so what the
 * tests exercise is what Compose and Kubernetes run.
 */
export function renderEnvoyConfig(opts: EnvoyRenderOptions, source = readFileSync(ENVOY_CONFIG_PATH, 'utf8')): string {
  const config = YAML.parse(source) as Obj;
  config.admin.address.socket_address = { address: '127.0.0.1', port_value: opts.adminPort };
  const listener = config.static_resources.listeners[0];
  listener.address.socket_address = { address: opts.listen.host, port_value: opts.listen.port };
  const listeners = config.static_resources.listeners as Obj[];
  const logReopen = listeners.find((l) => l.name === 'log_reopen');
  if (logReopen && opts.logReopen) logReopen.address.socket_address = { address: opts.logReopen.host, port_value: opts.logReopen.port };
  else if (logReopen) config.static_resources.listeners = listeners.filter((l) => l !== logReopen);
  if ((config.static_resources.clusters as Obj[]).some((c) => c.name === 'envoy_admin')) {
    setClusterEndpoint(config, 'envoy_admin', { host: '127.0.0.1', port: opts.adminPort });
  }
  setClusterEndpoint(config, 'backend', opts.backend);
  const hcm = hcmOf(config);
  renderTls(config, hcm, opts.tls);
  if (opts.authz) {
    setClusterEndpoint(config, 'authz', opts.authz);
  } else {
    const f = (hcm.http_filters as Obj[]).find((x) => x.name === 'envoy.filters.http.ext_authz');
    if (f) f.disabled = true;
  }
  if (opts.als) {
    setClusterEndpoint(config, 'billing_als', opts.als);
  } else {
    hcm.access_log = (hcm.access_log as Obj[] | undefined)?.filter((l) => l.name !== 'envoy.access_loggers.http_grpc');
  }
  // Example clusters that stand in for internal services point at backend-hello too.
  for (const c of config.static_resources.clusters as Obj[]) {
    const sa = c.load_assignment?.endpoints?.[0]?.lb_endpoints?.[0]?.endpoint?.address?.socket_address;
    if (c.name !== 'backend' && sa?.address === 'backend-hello') setClusterEndpoint(config, c.name, opts.backend);
  }
  const fileLog = (hcm.access_log as Obj[] | undefined)?.find((l) => l.name === 'envoy.access_loggers.file');
  if (fileLog && opts.accessLogPath) fileLog.typed_config.path = opts.accessLogPath;
  else if (fileLog) hcm.access_log = (hcm.access_log as Obj[]).filter((l) => l !== fileLog);
  for (const [name, ep] of Object.entries(opts.clusters ?? {})) setClusterEndpoint(config, name, ep);
  // Cluster names that resolve on loopback do not need DNS.
  for (const c of config.static_resources.clusters as Obj[]) {
    const addr = c.load_assignment?.endpoints?.[0]?.lb_endpoints?.[0]?.endpoint?.address?.socket_address?.address;
    if (addr && /^(127\.|::1$|localhost$)/.test(addr)) c.type = 'STATIC';
    if (addr === 'localhost') c.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.address = '127.0.0.1';
  }
  return YAML.stringify(config, { lineWidth: 0 });
}
