import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { defineConfig, type Plugin } from 'vite';

// The first screen loads index.html's entry chunk and its CSS; the budget is 100 KB gzipped.
const FIRST_SCREEN_BUDGET_BYTES = 100 * 1024;

function firstScreenBudget(): Plugin {
  return {
    name: 'tollgate-first-screen-budget',
    apply: 'build',
    writeBundle(options) {
      const dir = options.dir!;
      const html = readFileSync(join(dir, 'index.html'), 'utf8');
      const referenced = [...html.matchAll(/(?:src|href)="\/console\/(assets\/[^"]+)"/g)].map((m) => m[1]!);
      const total = referenced.reduce((sum, file) => sum + gzipSync(readFileSync(join(dir, file))).length, 0);
      const all = readdirSync(join(dir, 'assets')).length;
      console.log(`console first screen: ${(total / 1024).toFixed(1)} KB gzipped (${referenced.length} of ${all} assets; budget 100 KB)`);
      if (total > FIRST_SCREEN_BUDGET_BYTES) throw new Error(`console first screen is ${total} bytes gzipped, over the 100 KB budget`);
    },
  };
}

export default defineConfig({
  root: import.meta.dirname,
  base: '/console/',
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  resolve: { conditions: ['source'] },
  build: { outDir: 'dist', emptyOutDir: true, assetsDir: 'assets', modulePreload: { polyfill: false } },
  plugins: [firstScreenBudget()],
});
