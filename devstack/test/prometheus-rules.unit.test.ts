import { execFile } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { REPO_ROOT } from '../src/index.js';

// The alert rules (deploy/prometheus) with the real promtool that scripts/test installs
// (ensure_promtool): the file loads, and each alert's unit tests pass.
const run = promisify(execFile);
const PROMTOOL = process.env.PROMTOOL_BIN || 'promtool';
const DIR = join(REPO_ROOT, 'deploy', 'prometheus');
const RULES = join(DIR, 'tollgate-rules.yaml');
const TESTS = readdirSync(join(DIR, 'tests'))
  .filter((f) => f.endsWith('.yaml'))
  .map((f) => join(DIR, 'tests', f));

interface AlertCase {
  alertname: string;
  exp_alerts?: unknown[];
}
const alertNames = (YAML.parse(readFileSync(RULES, 'utf8')) as { groups: { rules: { alert?: string }[] }[] }).groups
  .flatMap((g) => g.rules)
  .flatMap((r) => (r.alert ? [r.alert] : []));
const cases = TESTS.flatMap(
  (f) => (YAML.parse(readFileSync(f, 'utf8')) as { tests: { alert_rule_test?: AlertCase[] }[] }).tests.flatMap((t) => t.alert_rule_test ?? []) as AlertCase[],
);

describe('Prometheus alert rules', () => {
  it('promtool check rules accepts the rule file', async () => {
    const { stdout } = await run(PROMTOOL, ['check', 'rules', RULES]);
    expect(stdout).toContain(`SUCCESS: ${alertNames.length} rules found`);
  });

  it('promtool test rules passes', async () => {
    const r = await run(PROMTOOL, ['test', 'rules', ...TESTS], { cwd: join(DIR, 'tests') }).catch((e: { stdout: string; stderr: string }) => e);
    expect(`${r.stdout}${r.stderr}`).not.toContain('FAILED');
    expect(r.stdout).toContain('SUCCESS');
  });

  it.each(alertNames)('%s has a test where it fires and one where it does not', (name) => {
    const mine = cases.filter((c) => c.alertname === name);
    expect(mine.some((c) => (c.exp_alerts ?? []).length > 0)).toBe(true);
    expect(mine.some((c) => (c.exp_alerts ?? []).length === 0)).toBe(true);
  });
});
