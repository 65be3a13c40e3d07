// Keeps Kubernetes' copy of the Envoy configuration in step with envoy/envoy.yaml, the file
// the local stack, the tests and Docker Compose load. `kubectl apply -f k8s/configmap.yaml`
// (seed 003's manual order) needs the configuration inside the manifest itself, so it is
// copied there rather than generated at apply time; the copy's checksum goes onto the Envoy
// pod template so a changed configuration rolls the pods.
//
// The Helm chart carries its own copies (a chart can read only files inside it), kept here too.
//
//   ./scripts/sync-k8s-config           rewrite k8s/configmap.yaml, k8s/envoy.yaml and the chart's files/
//   ./scripts/sync-k8s-config --check   exit 1 (saying what differs) when they are stale
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';

const HERE = fileURLToPath(import.meta.url);
const ROOT = join(dirname(HERE), '..');
export const K8S_CONFIGMAP = join(ROOT, 'k8s', 'configmap.yaml');
export const K8S_ENVOY = join(ROOT, 'k8s', 'envoy.yaml');
const ENVOY_CONFIG = join(ROOT, 'envoy', 'envoy.yaml');
const CHART_FILES = join(ROOT, 'charts', 'tollgate', 'files');
/** Repository file → the chart's copy of it. */
export const CHART_COPIES: ReadonlyArray<readonly [string, string]> = [
  [ENVOY_CONFIG, join(CHART_FILES, 'envoy.yaml')],
  [join(ROOT, 'envoy', 'sds', 'public-tls.yaml'), join(CHART_FILES, 'envoy-sds.yaml')],
  [join(ROOT, 'deploy', 'prometheus', 'tollgate-rules.yaml'), join(CHART_FILES, 'prometheus-rules.yaml')],
  [join(ROOT, 'deploy', 'grafana', 'tollgate.json'), join(CHART_FILES, 'grafana-dashboard.json')],
];
const CHECKSUM_ANNOTATION = 'tollgate.dev/envoy-config-sha256';

function envoyConfigChecksum(config: string): string {
  return createHash('sha256').update(config).digest('hex');
}

function findDoc(docs: YAML.Document[], kind: string, name: string, file: string): YAML.Document {
  const doc = docs.find((d) => d.get('kind') === kind && d.getIn(['metadata', 'name']) === name);
  if (!doc) throw new Error(`${file}: no ${kind} named ${name}`);
  return doc;
}

/** The two manifests as they should be for the given Envoy configuration (comments kept). */
export function renderK8sConfig(envoyConfig: string, configmap: string, deployment: string): { configmap: string; deployment: string } {
  const cmDocs = YAML.parseAllDocuments(configmap) as YAML.Document[];
  const value = new YAML.Scalar(envoyConfig);
  // A literal block keeps the text exactly as written (every newline, no folding).
  value.type = YAML.Scalar.BLOCK_LITERAL;
  findDoc(cmDocs, 'ConfigMap', 'envoy-config', 'k8s/configmap.yaml').setIn(['data', 'envoy.yaml'], value);

  const depDocs = YAML.parseAllDocuments(deployment) as YAML.Document[];
  findDoc(depDocs, 'Deployment', 'envoy', 'k8s/envoy.yaml').setIn(
    ['spec', 'template', 'metadata', 'annotations', CHECKSUM_ANNOTATION],
    envoyConfigChecksum(envoyConfig),
  );
  const print = (docs: YAML.Document[]) => docs.map((d) => d.toString({ lineWidth: 0 })).join('');
  return { configmap: print(cmDocs), deployment: print(depDocs) };
}

function main(): number {
  const check = process.argv.includes('--check');
  const current = { configmap: readFileSync(K8S_CONFIGMAP, 'utf8'), deployment: readFileSync(K8S_ENVOY, 'utf8') };
  const wanted = renderK8sConfig(readFileSync(ENVOY_CONFIG, 'utf8'), current.configmap, current.deployment);
  const staleCopies = CHART_COPIES.filter(([from, to]) => !existsSync(to) || readFileSync(from, 'utf8') !== readFileSync(to, 'utf8'));
  const stale = [
    ...(wanted.configmap !== current.configmap ? ['k8s/configmap.yaml'] : []),
    ...(wanted.deployment !== current.deployment ? ['k8s/envoy.yaml'] : []),
    ...staleCopies.map(([, to]) => relative(ROOT, to)),
  ];
  if (check) {
    if (stale.length) console.error(`out of step with envoy/envoy.yaml: ${stale.join(', ')} (run scripts/sync-k8s-config)`);
    return stale.length ? 1 : 0;
  }
  writeFileSync(K8S_CONFIGMAP, wanted.configmap);
  writeFileSync(K8S_ENVOY, wanted.deployment);
  for (const [from, to] of staleCopies) copyFileSync(from, to);
  console.log(stale.length ? `updated ${stale.join(', ')}` : 'k8s/ already in step with envoy/envoy.yaml');
  return 0;
}

// Run as a script (not when the tests import it).
if (process.argv[1] === HERE) process.exit(main());
