// Generates TypeScript types for the Envoy services Tollgate uses, from the .proto files inside
// @grpc/grpc-js-xds (pinned in package.json, so the output is reproducible). Output is git-ignored
// and rebuilt on every `pnpm install`.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';

function* walk(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) yield* walk(p);
    else if (p.endsWith('.ts')) yield p;
  }
}

const require = createRequire(import.meta.url);
const here = dirname(fileURLToPath(import.meta.url));
const pkgRoot = join(here, '..');
const xdsRoot = dirname(require.resolve('@grpc/grpc-js-xds/package.json'));
const protoLoaderRoot = dirname(require.resolve('@grpc/proto-loader/package.json'));
const { INCLUDE_DIRS, PROTO_FILES, LOADER_OPTIONS } = await import(join(pkgRoot, 'src', 'proto-files.mjs'));

const outDir = join(pkgRoot, 'generated');
rmSync(outDir, { recursive: true, force: true });
const args = [
  join(protoLoaderRoot, 'build', 'bin', 'proto-loader-gen-types.js'),
  '--grpcLib=@grpc/grpc-js',
  `--outDir=${outDir}`,
  '--longs=String',
  '--enums=String',
  '--defaults',
  '--oneofs',
  '--inputTemplate=%s__Input',
  '--outputTemplate=%s',
  ...INCLUDE_DIRS.map((d) => `-I${join(xdsRoot, d)}`),
  ...PROTO_FILES,
];
if (LOADER_OPTIONS.keepCase) args.push('--keepCase');
const r = spawnSync(process.execPath, args, { stdio: 'inherit' });
if (r.status !== 0) {
  console.error('proto type generation failed');
  process.exit(r.status ?? 1);
}
// The generator writes extension-less relative imports; ESM (NodeNext) resolution needs the
// `.js` extension, so add it, deterministically, to every relative import.
for (const file of walk(outDir)) {
  const text = readFileSync(file, 'utf8');
  const fixed = text.replace(/(from '\.{1,2}\/[^']*?)(?<!\.js)'/g, "$1.js'");
  if (fixed !== text) writeFileSync(file, fixed);
}
console.log(`generated Envoy proto types in ${outDir}`);
