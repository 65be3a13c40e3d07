import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

/** Where a script lives, coarsely: a package under node_modules, Node itself, or the repo. */
function owner(url: string): string {
  if (!url) return '(native / V8)';
  if (url.startsWith('node:')) return 'node: core';
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + '/node_modules/'.length).split('/');
    return rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!;
  }
  const m = /\/(authz-service|billing-sidecar|common|proto|devstack|backend-hello)\/src\//.exec(url);
  return m ? `tollgate ${m[1]}` : url;
}

/**
 * The self time of a V8 CPU profile (`node --cpu-prof`) by owner and by function, as shares of
 * all samples: where a Node service spends its CPU, without opening a flame-graph viewer.
 */
export function summariseProfile(path: string, top = 12): string {
  const profile = JSON.parse(readFileSync(path, 'utf8')) as { nodes: ProfileNode[] };
  let total = 0;
  let idle = 0;
  const byOwner = new Map<string, number>();
  const byFunction = new Map<string, number>();
  for (const n of profile.nodes) {
    const hits = n.hitCount ?? 0;
    if (!hits) continue;
    // Shares are of busy time: how long the service idled depends on the load, not its code.
    if (n.callFrame.functionName === '(idle)') {
      idle += hits;
      continue;
    }
    total += hits;
    const fn = n.callFrame.functionName || '(anonymous)';
    const o = owner(n.callFrame.url);
    byOwner.set(o, (byOwner.get(o) ?? 0) + hits);
    const where = n.callFrame.url ? `${n.callFrame.url.split('/').slice(-2).join('/')}:${n.callFrame.lineNumber + 1}` : '';
    const key = `${fn} ${where}`.trim();
    byFunction.set(key, (byFunction.get(key) ?? 0) + hits);
  }
  const pct = (n: number) => `${((n / Math.max(1, total)) * 100).toFixed(1).padStart(5)}%`;
  const rank = (m: Map<string, number>) => [...m.entries()].sort((a, b) => b[1] - a[1]).slice(0, top);
  return [
    `busy in ${total} of ${total + idle} samples; self time of the busy samples by owner:`,
    ...rank(byOwner).map(([k, v]) => `  ${pct(v)}  ${k}`),
    'by function:',
    ...rank(byFunction).map(([k, v]) => `  ${pct(v)}  ${k}`),
  ].join('\n');
}

/**
 * Each service's main-thread profile under `dir` (one sub-directory per service). Of a
 * process's profiles the largest is its main thread; the others are helper threads (tsx's
 * module loader) that idle once the code is loaded.
 */
export function profilesIn(dir: string): string[] {
  const out: string[] = [];
  for (const service of readdirSync(dir, { withFileTypes: true })) {
    if (!service.isDirectory()) continue;
    const files = readdirSync(join(dir, service.name))
      .filter((f) => f.endsWith('.cpuprofile'))
      .map((f) => join(dir, service.name, f))
      .map((p) => ({ p, size: statSync(p).size }))
      .sort((a, b) => b.size - a.size);
    if (files[0]) out.push(files[0].p);
  }
  return out;
}
