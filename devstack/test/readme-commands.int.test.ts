import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../src/index.js';
import { checkCommand, extractCommands, helpCommands, listTestFiles, type DocCommand, type RepoFacts } from './doc-commands.js';

const run = promisify(execFile);

// A newcomer types what the README and docs/ say, on a machine with Node and nothing else: no
// pnpm on the PATH (the scripts install it into .tools/). Every documented command must name a
// script, package.json script or CLI command that exists, and the cheap ones must run.
const work = mkdtempSync(join(tmpdir(), 'tollgate-doc-commands-'));
const nodeOnly = join(work, 'bin');
/** The test's PATH minus every directory that holds a pnpm, plus one with only node in it. */
const freshPath = [nodeOnly, ...(process.env.PATH ?? '').split(delimiter).filter((dir) => dir && !existsSync(join(dir, 'pnpm')))].join(delimiter);
const freshEnv: NodeJS.ProcessEnv = { ...process.env, PATH: freshPath, TOLLGATE_STACK_DIR: join(work, 'stack') };
const sh = (file: string, args: string[]) => run(join(REPO_ROOT, file), args, { cwd: REPO_ROOT, env: freshEnv, timeout: 120_000 });

const docs = [
  'README.md',
  ...readdirSync(join(REPO_ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];
const commands: DocCommand[] = docs.flatMap((f) => extractCommands(readFileSync(join(REPO_ROOT, f), 'utf8'), f));
let repo: RepoFacts;

beforeAll(async () => {
  mkdirSync(nodeOnly, { recursive: true });
  symlinkSync(process.execPath, join(nodeOnly, 'node'));
  const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  const stackUsage = await sh('scripts/stack', ['help']);
  const cliHelp = (await sh('scripts/tollgate', ['--help'])).stdout;
  const cliCommands = new Map<string, Set<string>>();
  for (const group of helpCommands(cliHelp)) cliCommands.set(group, helpCommands((await sh('scripts/tollgate', [group, '--help'])).stdout));
  repo = {
    root: REPO_ROOT,
    scripts: new Set(Object.keys(pkg.scripts)),
    stackCommands: new Set([...stackUsage.stdout.replace(/^usage: \S+/, '').matchAll(/(?:^|\|)\s*([a-z]+)/g)].map((m) => m[1]!)),
    cliCommands,
    testFiles: listTestFiles(REPO_ROOT),
  };
}, 180_000);

afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('commands in README.md and docs/', () => {
  it('this PATH is a fresh machine’s: node, and no pnpm', async () => {
    await expect(run('sh', ['-c', 'command -v pnpm'], { env: freshEnv })).rejects.toThrow();
    expect((await run('node', ['--version'], { env: freshEnv })).stdout).toMatch(/^v\d+/);
  });

  it('finds the documented commands', () => {
    const programs = new Set(commands.map((c) => c.words[0]));
    for (const p of ['./scripts/stack', './scripts/test', './scripts/pnpm', './scripts/tollgate']) expect(programs).toContain(p);
    expect(commands.length).toBeGreaterThan(40);
  });

  it('every one names a script, package.json script or CLI command that exists', () => {
    expect(commands.map((c) => checkCommand(c, repo)).filter((p) => p !== null)).toEqual([]);
  });

  it('refuses commands that do not exist', () => {
    const doc = [
      '```bash',
      'pnpm bench:gateway',
      './scripts/nope',
      './scripts/pnpm bench:nope',
      './scripts/pnpm bench:billing -- --seconds 5',
      './scripts/tollgate keys nope key_1',
      './scripts/tollgate nope',
      './scripts/stack restart',
      './scripts/test no-such-test-file',
      '```',
      'Or inline: `tollgate usage user123`.',
    ].join('\n');
    const problems = extractCommands(doc, 'fake.md').map((c) => checkCommand(c, repo));
    expect(
      problems.every((p) => p !== null),
      problems.join('\n'),
    ).toBe(true);
    expect(problems).toHaveLength(9);
  });

  it('runs the cheap ones with no pnpm on the PATH', async () => {
    const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { packageManager: string };
    expect((await sh('scripts/pnpm', ['--version'])).stdout.trim()).toBe(pkg.packageManager.replace(/^pnpm@/, ''));
    expect((await sh('scripts/tollgate', ['--help'])).stdout).toMatch(/^Usage: tollgate/);
    // Through the root package.json script, as docs/cli.md shows.
    expect((await sh('scripts/pnpm', ['--silent', 'tollgate', 'keys', '--help'])).stdout).toMatch(/^Usage: tollgate keys/);
  });
});
