// Finds the shell commands the README and docs/ tell a reader to type, and says which of them
// name something that does not exist. Used by readme-commands.int.test.ts.
import { accessSync, constants, existsSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';

export interface DocCommand {
  /** file:line where the command is written. */
  where: string;
  /** The words of one simple command, env assignments removed. */
  words: string[];
}

/** Languages of fenced blocks that are data or code, never commands. */
const NOT_SHELL = new Set(['json', 'ts', 'typescript', 'js', 'javascript', 'yaml', 'yml', 'rego', 'proto', 'sql']);

/** Command lines: every line of a fenced shell (or untagged) block, and inline code spans. */
export function extractCommands(markdown: string, file: string): DocCommand[] {
  const out: DocCommand[] = [];
  const lines = markdown.split('\n');
  let fence: string | null = null;
  let pending = '';
  let pendingLine = 0;
  lines.forEach((line, i) => {
    const fenceMatch = /^\s*```(\w*)/.exec(line);
    if (fenceMatch) {
      fence = fence === null ? fenceMatch[1]!.toLowerCase() : null;
      return;
    }
    if (fence !== null) {
      if (NOT_SHELL.has(fence)) return;
      if (!pending) pendingLine = i + 1;
      const text = stripComment(line);
      if (text.endsWith('\\')) {
        pending += `${text.slice(0, -1)} `;
        return;
      }
      for (const words of simpleCommands(pending + text)) out.push({ where: `${file}:${pendingLine}`, words });
      pending = '';
      return;
    }
    for (const span of line.matchAll(/`([^`]+)`/g)) {
      const text = span[1]!;
      if (!/^(\.\/|pnpm |tollgate |[A-Z_]+=\S* )/.test(text)) continue;
      for (const words of simpleCommands(text)) out.push({ where: `${file}:${i + 1}`, words });
    }
  });
  return out;
}

function stripComment(line: string): string {
  const hash = line.search(/(^|\s)#/);
  return (hash < 0 ? line : line.slice(0, hash)).trimEnd();
}

/** Splits a command line on && || ; | and $( … ), drops leading VAR=value words. */
function simpleCommands(line: string): string[][] {
  const parts: string[] = [];
  const inner = line.replace(/\$\(([^)]*)\)/g, (_m, cmd: string) => {
    parts.push(cmd);
    return 'SUBSHELL';
  });
  parts.push(...inner.split(/&&|\|\||;|\|/));
  return parts
    .map((p) => words(p).filter((w, idx, all) => !(/^[A-Za-z_][A-Za-z0-9_]*=/.test(w) && all.slice(0, idx).every((x) => /^[A-Za-z_][A-Za-z0-9_]*=/.test(x)))))
    .filter((w) => w.length > 0);
}

function words(text: string): string[] {
  return [...text.matchAll(/"[^"]*"|'[^']*'|\S+/g)].map((m) => m[0]);
}

export interface RepoFacts {
  root: string;
  /** Names of the root package.json scripts. */
  scripts: Set<string>;
  /** Subcommands of ./scripts/stack (from its usage line). */
  stackCommands: Set<string>;
  /** The CLI's command tree: group → its subcommands (empty when the group is a command itself). */
  cliCommands: Map<string, Set<string>>;
  /** Every test file's path relative to the root, for ./scripts/test filters. */
  testFiles: string[];
}

const PNPM_BUILTINS = new Set(['install', 'run', 'exec', '--version']);
/** CLI options that take a value (docs/cli.md, "Connection"). */
const CLI_VALUE_OPTIONS = new Set(['--api-url', '--token']);

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** What is wrong with one documented command, or null when it names only real things. */
export function checkCommand(cmd: DocCommand, repo: RepoFacts): string | null {
  const [program, ...args] = cmd.words;
  const at = `${cmd.where}: \`${cmd.words.join(' ')}\``;
  if (program === 'pnpm') return `${at}: pnpm is not on a fresh machine's PATH; write ./scripts/pnpm`;
  if (program === 'tollgate') return `${at}: tollgate is not on a fresh machine's PATH; write ./scripts/tollgate`;
  if (!program?.startsWith('./')) return null;
  const path = join(repo.root, program);
  if (!existsSync(path)) return `${at}: ${program} does not exist`;
  if (!executable(path)) return `${at}: ${program} is not executable`;
  const operands = args.filter((a) => !a.startsWith('['));
  switch (relative(repo.root, path)) {
    case 'scripts/pnpm':
      return checkPnpm(at, operands, repo);
    case 'scripts/tollgate':
      return checkCli(at, operands, repo);
    case 'scripts/stack':
      return operands[0] && !repo.stackCommands.has(operands[0]) ? `${at}: ./scripts/stack has no command ${operands[0]}` : null;
    case 'scripts/test':
      return checkTestFilters(at, operands, repo);
    default:
      return null;
  }
}

function checkPnpm(at: string, [first, second]: string[], repo: RepoFacts): string | null {
  if (first === undefined) return null;
  if (repo.scripts.has(first)) {
    // pnpm hands a `--` after the script's name to the script, whose parseArgs then refuses the options.
    return second === '--' ? `${at}: pnpm passes "--" on to the script; drop it` : null;
  }
  if (!PNPM_BUILTINS.has(first)) return `${at}: package.json has no script ${first}`;
  if (first === 'run' && (second === undefined || !repo.scripts.has(second))) return `${at}: package.json has no script ${second}`;
  if (first === 'exec' && (second === undefined || !existsSync(join(repo.root, 'node_modules', '.bin', second)))) return `${at}: no workspace binary ${second}`;
  return null;
}

function checkCli(at: string, args: string[], repo: RepoFacts): string | null {
  const rest = [...args];
  while (rest[0]?.startsWith('-')) {
    const option = rest.shift()!;
    if (CLI_VALUE_OPTIONS.has(option)) rest.shift();
  }
  const [group, sub] = rest;
  if (group === undefined || group === '--help') return null;
  const subs = repo.cliCommands.get(group);
  if (!subs) return `${at}: the CLI has no command ${group}`;
  if (subs.size > 0 && (sub === undefined || !subs.has(sub))) return `${at}: the CLI has no command ${group} ${sub ?? ''}`.trimEnd();
  return null;
}

function checkTestFilters(at: string, args: string[], repo: RepoFacts): string | null {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg.startsWith('-')) {
      if (arg === '--project') i++;
      continue;
    }
    if (!repo.testFiles.some((f) => f.includes(arg))) return `${at}: no test file matches ${arg}`;
  }
  return null;
}

/** Test files under the workspace packages (what vitest's filters match against). */
export function listTestFiles(root: string): string[] {
  const found: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (entry.name === 'node_modules' || entry.name.startsWith('.')) continue;
      const full = join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.name.endsWith('.test.ts')) found.push(relative(root, full));
    }
  };
  walk(root);
  return found;
}

/** Command names of a commander help text's "Commands:" section (without `help`). */
export function helpCommands(help: string): Set<string> {
  const section = help.split(/^Commands:\s*$/m)[1] ?? '';
  return new Set([...section.matchAll(/^ {2}([a-z][\w-]*)/gm)].map((m) => m[1]!).filter((name) => name !== 'help'));
}
