import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { CHART_COPIES } from '../../scripts/k8s-config.js';
import { REPO_ROOT } from '../src/index.js';

// The Helm chart, checked offline with the real helm (scripts/test installs it) and the
// Kubernetes API schemas (kubernetes-validate, strict). Nothing here talks to a cluster.
const run = promisify(execFile);
const tool = (envVar: string, fallback: string) => process.env[envVar] || join(REPO_ROOT, fallback);
const HELM = tool('HELM_BIN', `.tools/helm-${/HELM_VERSION="([^"]+)"/.exec(readFileSync(join(REPO_ROOT, 'scripts/lib/bootstrap.sh'), 'utf8'))![1]}/helm`);
const KUBERNETES_VALIDATE = tool('KUBERNETES_VALIDATE_BIN', '.venv/bin/kubernetes-validate');
const KUSTOMIZE = tool('KUSTOMIZE_BIN', '.tools/bin/kustomize');
const CHART = join(REPO_ROOT, 'charts', 'tollgate');
const NS = 'api-proxy';

type Obj = Record<string, any>;
const loadAll = (text: string): Obj[] =>
  YAML.parseAllDocuments(text)
    .map((d) => d.toJS() as Obj)
    .filter(Boolean);

if (!existsSync(HELM)) throw new Error(`helm not found at ${HELM}: run ./scripts/test (ensure_helm installs it) or set HELM_BIN`);

const valuesFile = (values: Obj) => {
  const path = join(mkdtempSync(join(tmpdir(), 'tollgate-chart-')), 'values.yaml');
  writeFileSync(path, YAML.stringify(values));
  return path;
};
const template = async (values: Obj = {}) =>
  loadAll((await run(HELM, ['template', 'tollgate', CHART, '--namespace', NS, '-f', valuesFile(values)], { maxBuffer: 16 << 20 })).stdout);
const refusal = async (values: Obj): Promise<string> => {
  const r = await run(HELM, ['template', 'tollgate', CHART, '--namespace', NS, '-f', valuesFile(values)]).catch((e: { stderr: string }) => e);
  if (!('stderr' in r) || !(r as { code?: number }).code) throw new Error(`helm rendered values it should refuse: ${JSON.stringify(values)}`);
  return r.stderr;
};
const find = (docs: Obj[], kind: string, name: string): Obj => {
  const doc = docs.find((d) => d.kind === kind && d.metadata?.name === name);
  if (!doc) throw new Error(`no ${kind} ${name} in ${docs.map((d) => `${d.kind}/${d.metadata?.name}`).join(', ')}`);
  return doc;
};
const has = (docs: Obj[], kind: string, name: string) => docs.some((d) => d.kind === kind && d.metadata?.name === name);
const container = (docs: Obj[], deployment: string, name: string): Obj => {
  const pod = find(docs, 'Deployment', deployment).spec.template.spec;
  return [...(pod.initContainers ?? []), ...pod.containers].find((c: Obj) => c.name === name);
};
const env = (c: Obj, name: string): Obj | undefined => c.env.find((e: Obj) => e.name === name);

/** The values combinations every test below renders (lint + strict schema validation each). */
const MATRIX: Record<string, Obj> = {
  defaults: {},
  'external Postgres and Redis': {
    postgres: { enabled: false, external: { existingSecret: 'db-credentials' } },
    redis: { enabled: false, external: { existingSecret: 'redis-credentials' } },
  },
  'Redis Cluster': { redis: { enabled: false, external: { clusterNodes: 'redis-0.redis:6379,redis-1.redis:6379' } } },
  'external Redis by URL, no example upstream': {
    redis: { enabled: false, external: { url: 'redis://cache.internal:6379' } },
    backendHello: { enabled: false },
  },
  'own TLS Secret and port': { tls: { secretName: 'gateway-tls', servicePort: 443 } },
  'Prometheus Operator and Grafana objects': {
    metrics: {
      serviceMonitor: { enabled: true, labels: { release: 'kube-prometheus' } },
      prometheusRule: { enabled: true },
      grafanaDashboard: { enabled: true },
    },
  },
  'fixed replicas, no HPA or PDB': {
    authzService: { replicas: 4, autoscaling: { enabled: false }, podDisruptionBudget: { enabled: false } },
    envoy: { replicas: 3, podDisruptionBudget: { enabled: false }, service: { type: 'ClusterIP' } },
  },
  'own Secret, images and resources': {
    existingSecret: 'prod-tollgate',
    images: { authzService: { repository: 'registry.example/tollgate/authz-service', tag: '1.2.3' } },
    authzService: { resources: { requests: { cpu: '500m', memory: '256Mi' }, limits: { cpu: '2', memory: '1Gi' } } },
    imagePullSecrets: [{ name: 'registry' }],
    extraSettings: { KEY_CACHE_TTL_MS: 30000 },
  },
};

describe('Helm chart charts/tollgate', () => {
  it.each(Object.entries(MATRIX))('%s: helm lint passes and every rendered manifest validates strictly', async (_name, values) => {
    const lint = await run(HELM, ['lint', '--strict', CHART, '--namespace', NS, '-f', valuesFile(values)]);
    expect(lint.stdout).toMatch(/1 chart\(s\) linted, 0 chart\(s\) failed/);
    const rendered = (await run(HELM, ['template', 'tollgate', CHART, '--namespace', NS, '-f', valuesFile(values)], { maxBuffer: 16 << 20 })).stdout;
    const out = join(mkdtempSync(join(tmpdir(), 'tollgate-chart-')), 'rendered.yaml');
    writeFileSync(out, rendered);
    const r = await run(KUBERNETES_VALIDATE, ['--strict', '--quiet', out]);
    expect(r.stdout + r.stderr).not.toMatch(/ERROR|failed/i);
    for (const d of loadAll(rendered)) expect(d.metadata.namespace, `${d.kind}/${d.metadata.name}`).toBe(NS);
  });

  it('with default values it renders what kubectl apply -k k8s/ applies (but the Namespace)', async () => {
    const helmOnly = ['app.kubernetes.io/instance', 'app.kubernetes.io/managed-by', 'helm.sh/chart'];
    const normalise = (docs: Obj[]) =>
      docs
        .filter((d) => d.kind !== 'Namespace')
        .map((d) => {
          const copy = structuredClone(d);
          for (const labels of [copy.metadata.labels, copy.spec?.template?.metadata?.labels]) for (const l of helmOnly) if (labels) delete labels[l];
          return copy;
        })
        .sort((a, b) => `${a.kind}/${a.metadata.name}`.localeCompare(`${b.kind}/${b.metadata.name}`));
    const kustomized = loadAll((await run(KUSTOMIZE, ['build', join(REPO_ROOT, 'k8s')], { maxBuffer: 16 << 20 })).stdout);
    expect(normalise(await template())).toEqual(normalise(kustomized));
  });

  it("carries the repository's Envoy configuration byte for byte (scripts/sync-k8s-config)", () => {
    for (const [from, to] of CHART_COPIES) expect(readFileSync(to, 'utf8'), `${to} is stale: run ./scripts/sync-k8s-config`).toBe(readFileSync(from, 'utf8'));
  });

  it('external Postgres: no StatefulSet, DATABASE_URL from the named Secret in authz-service and the sidecar', async () => {
    const docs = await template(MATRIX['external Postgres and Redis']);
    expect(has(docs, 'StatefulSet', 'postgres')).toBe(false);
    expect(has(docs, 'StatefulSet', 'redis')).toBe(false);
    for (const c of [container(docs, 'authz-service', 'authz-service'), container(docs, 'envoy', 'billing-sidecar')]) {
      expect(env(c, 'DATABASE_URL')?.valueFrom.secretKeyRef).toEqual({ name: 'db-credentials', key: 'DATABASE_URL' });
      expect(env(c, 'POSTGRES_PASSWORD')).toBeUndefined();
    }
    expect(env(container(docs, 'authz-service', 'authz-service'), 'REDIS_URL')?.valueFrom.secretKeyRef).toEqual({
      name: 'redis-credentials',
      key: 'REDIS_URL',
    });
    expect(find(docs, 'ConfigMap', 'tollgate-settings').data.REDIS_URL).toBeUndefined();
  });

  it('Redis Cluster: REDIS_CLUSTER_NODES in the settings, no in-cluster Redis', async () => {
    const docs = await template(MATRIX['Redis Cluster']);
    const settings = find(docs, 'ConfigMap', 'tollgate-settings').data;
    expect(settings.REDIS_CLUSTER_NODES).toBe('redis-0.redis:6379,redis-1.redis:6379');
    expect(settings.REDIS_URL).toBeUndefined();
    expect(has(docs, 'Service', 'redis')).toBe(false);
  });

  it('TLS: the HTTPS port on the Service and the Envoy container, the Secret mounted whole (no subPath), the SDS file beside it', async () => {
    const docs = await template(MATRIX['own TLS Secret and port']);
    expect(find(docs, 'Service', 'envoy').spec.ports).toContainEqual({ name: 'https', port: 443, targetPort: 'https' });
    const envoy = container(docs, 'envoy', 'envoy');
    expect(envoy.ports).toContainEqual({ name: 'https', containerPort: 8443 });
    const pod = find(docs, 'Deployment', 'envoy').spec.template.spec;
    expect(pod.volumes).toContainEqual({ name: 'tls', secret: { secretName: 'gateway-tls' } });
    const mount = envoy.volumeMounts.find((m: Obj) => m.name === 'tls');
    expect(mount).toMatchObject({ mountPath: '/etc/tollgate-tls', readOnly: true });
    expect(mount.subPath).toBeUndefined();
    expect(find(docs, 'ConfigMap', 'envoy-sds').data['public-tls.yaml']).toBe(readFileSync(join(REPO_ROOT, 'envoy', 'sds', 'public-tls.yaml'), 'utf8'));
  });

  it('monitoring toggles: a ServiceMonitor over the services that serve /metrics, the alert rules, the dashboard', async () => {
    const plain = await template();
    expect(plain.some((d) => d.kind === 'ServiceMonitor' || d.kind === 'PrometheusRule' || d.metadata.name === 'tollgate-dashboard')).toBe(false);
    const docs = await template(MATRIX['Prometheus Operator and Grafana objects']);
    const monitor = find(docs, 'ServiceMonitor', 'tollgate');
    expect(monitor.metadata.labels.release).toBe('kube-prometheus');
    const selected = docs.filter((d) => d.kind === 'Service' && monitor.spec.selector.matchExpressions[0].values.includes(d.metadata.labels.app));
    expect(selected.map((d) => d.metadata.name).sort()).toEqual(['authz-service', 'billing-sidecar']);
    for (const svc of selected) expect(svc.spec.ports.map((p: Obj) => p.name)).toContain(monitor.spec.endpoints[0].port);
    const rules = YAML.parse(readFileSync(join(REPO_ROOT, 'deploy', 'prometheus', 'tollgate-rules.yaml'), 'utf8'));
    expect(find(docs, 'PrometheusRule', 'tollgate').spec).toEqual(rules);
    const dashboard = find(docs, 'ConfigMap', 'tollgate-dashboard');
    expect(dashboard.metadata.labels.grafana_dashboard).toBe('1');
    expect(JSON.parse(dashboard.data['tollgate.json'])).toEqual(JSON.parse(readFileSync(join(REPO_ROOT, 'deploy', 'grafana', 'tollgate.json'), 'utf8')));
  });

  it('replicas, HPA and PDB toggles, Service type, Secret name, images and settings follow the values', async () => {
    const fixed = await template(MATRIX['fixed replicas, no HPA or PDB']);
    expect(find(fixed, 'Deployment', 'authz-service').spec.replicas).toBe(4);
    expect(find(fixed, 'Deployment', 'envoy').spec.replicas).toBe(3);
    expect(fixed.some((d) => d.kind === 'HorizontalPodAutoscaler' || d.kind === 'PodDisruptionBudget')).toBe(false);
    expect(find(fixed, 'Service', 'envoy').spec.type).toBe('ClusterIP');
    expect(find(fixed, 'Service', 'envoy').spec.externalTrafficPolicy).toBeUndefined();

    const own = await template(MATRIX['own Secret, images and resources']);
    const refs = new Set<string>();
    JSON.stringify(own, (key, value) => {
      if (key === 'secretKeyRef') refs.add(value.name);
      return value;
    });
    expect([...refs]).toEqual(['prod-tollgate']);
    const authz = container(own, 'authz-service', 'authz-service');
    expect(authz.image).toBe('registry.example/tollgate/authz-service:1.2.3');
    expect(authz.resources.limits).toEqual({ cpu: '2', memory: '1Gi' });
    expect(find(own, 'Deployment', 'authz-service').spec.template.spec.imagePullSecrets).toEqual([{ name: 'registry' }]);
    expect(find(own, 'ConfigMap', 'tollgate-settings').data.KEY_CACHE_TTL_MS).toBe('30000');
    expect(has(await template(MATRIX['external Redis by URL, no example upstream']), 'Deployment', 'backend-hello')).toBe(false);
  });

  it('a changed Envoy configuration changes the pod checksum (pods roll onto it)', async () => {
    const sum = find(await template(), 'Deployment', 'envoy').spec.template.metadata.annotations['tollgate.dev/envoy-config-sha256'];
    const { createHash } = await import('node:crypto');
    expect(sum).toBe(
      createHash('sha256')
        .update(readFileSync(join(CHART, 'files', 'envoy.yaml'), 'utf8'))
        .digest('hex'),
    );
  });

  it('refuses values that cannot work, naming what is wrong', async () => {
    expect(await refusal({ authzService: { replicas: 0 } })).toMatch(/authzService\/replicas/);
    expect(await refusal({ redis: { enabled: false } })).toMatch(/exactly one of redis\.external\.url/);
    expect(await refusal({ postgres: { enabled: false } })).toMatch(/postgres\.external\.existingSecret/);
    expect(await refusal({ envoy: { service: { type: 'Ingress' } } })).toMatch(/envoy\/service\/type/);
    expect(await refusal({ authzService: { replicass: 2 } })).toMatch(/replicass/);
    expect(await refusal({ redis: { enabled: false, external: { clusterNodes: 'no-port' } } })).toMatch(/clusterNodes/);
  });
});
