import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

// No service depends on another service (docs/architecture.md, "Service boundaries"): a service
// is one of the images the Dockerfile builds, and it may use shared packages only. What two
// services both need (the decision metadata, the usage read model) lives in a shared package.
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SERVICES = ['authz-service', 'billing-sidecar', 'backend-hello'];
const SHARED = ['common', 'proto', 'usage-model'];
/** Clients (the CLI, the web console, the SDK) and test tooling drive the services from outside, so they may depend on them. */
const TOOLING = ['cli', 'console', 'devstack', 'bench', 'reliability', 'sdk'];
const DEPENDENCY_FIELDS = ['dependencies', 'devDependencies', 'peerDependencies', 'optionalDependencies'] as const;

type PackageJson = Partial<Record<(typeof DEPENDENCY_FIELDS)[number], Record<string, string>>> & { name: string };

const packageJson = (dir: string): PackageJson => JSON.parse(readFileSync(join(root, dir, 'package.json'), 'utf8'));
const nameOf = (dir: string) => packageJson(dir).name;

/** The workspace packages (folders) a package.json names, in any dependency field. */
function workspaceDependencies(pkg: PackageJson, fields: readonly string[] = DEPENDENCY_FIELDS): string[] {
  const byName = new Map([...SERVICES, ...SHARED, ...TOOLING].map((dir) => [nameOf(dir), dir]));
  const names = fields.flatMap((f) => Object.keys(pkg[f as keyof PackageJson] ?? {}));
  return names.map((n) => byName.get(n)).filter((d): d is string => d !== undefined);
}

/**
 * The other workspace packages one source file imports: by package name, or by a relative path
 * that leaves its own package.
 */
function importedPackages(file: string, source: string): string[] {
  const own = relative(root, file).split(sep)[0];
  const dirs = [...SERVICES, ...SHARED, ...TOOLING];
  const names = new Map(dirs.map((dir) => [nameOf(dir), dir]));
  const found: string[] = [];
  for (const [, spec] of source.matchAll(/(?:\bfrom\s*|\bimport\s*\(?\s*)['"]([^'"]+)['"]/g)) {
    const target = spec!.startsWith('.') ? relative(root, resolve(dirname(file), spec!)).split(sep)[0] : names.get(spec!.split('/').slice(0, 2).join('/'));
    if (target && target !== own && dirs.includes(target)) found.push(target);
  }
  return found;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(join(root, dir, 'src'), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && /\.(ts|mts|js|mjs)$/.test(e.name))
    .map((e) => join(e.parentPath, e.name));
}

describe('service boundaries', () => {
  it('every workspace package is a service, a shared package or tooling, and the services are the images', () => {
    const workspace: string[] = parse(readFileSync(join(root, 'pnpm-workspace.yaml'), 'utf8')).packages;
    expect([...workspace].sort()).toEqual([...SERVICES, ...SHARED, ...TOOLING].sort());
    const images = [...readFileSync(join(root, 'Dockerfile'), 'utf8').matchAll(/^FROM runtime AS (\S+)$/gm)].map((m) => m[1]);
    expect(images.sort()).toEqual([...SERVICES].sort());
  });

  it('no service’s package.json names another service, in any dependency field', () => {
    const found = SERVICES.flatMap((dir) =>
      workspaceDependencies(packageJson(dir))
        .filter((d) => SERVICES.includes(d) && d !== dir)
        .map((d) => `${dir} → ${d}`),
    );
    expect(found).toEqual([]);
  });

  it('shared packages depend only on shared packages (and test tooling, for their tests)', () => {
    const found = SHARED.flatMap((dir) => {
      const pkg = packageJson(dir);
      const bad = [
        ...workspaceDependencies(pkg, ['dependencies', 'peerDependencies', 'optionalDependencies']).filter((d) => !SHARED.includes(d)),
        ...workspaceDependencies(pkg, ['devDependencies']).filter((d) => SERVICES.includes(d)),
      ];
      return bad.map((d) => `${dir} → ${d}`);
    });
    expect(found).toEqual([]);
  });

  it('no source file of a service or shared package imports a service, by name or by path', () => {
    const found: string[] = [];
    for (const dir of [...SERVICES, ...SHARED]) {
      for (const file of sourceFiles(dir)) {
        for (const target of importedPackages(file, readFileSync(file, 'utf8'))) {
          if (SERVICES.includes(target) || (SHARED.includes(dir) && !SHARED.includes(target))) found.push(`${relative(root, file)} → ${target}`);
        }
      }
    }
    expect(found).toEqual([]);
  });

  it('the checks see a dependency and an import of another service', () => {
    expect(workspaceDependencies({ name: 'x', devDependencies: { '@tollgate/billing-sidecar': 'workspace:*', zod: '^4' } })).toEqual(['billing-sidecar']);
    const file = join(root, 'authz-service', 'src', 'http', 'x.ts');
    const source = [
      "import { readUserUsage } from '@tollgate/billing-sidecar/usage';",
      "import type { BillingConfig } from '../../../billing-sidecar/src/config.js';",
      "const m = await import('@tollgate/backend-hello');",
      "import { HttpError } from '@tollgate/common';",
      "import { deny } from '../check/decision.js';",
    ].join('\n');
    expect(importedPackages(file, source)).toEqual(['billing-sidecar', 'billing-sidecar', 'backend-hello', 'common']);
  });
});
