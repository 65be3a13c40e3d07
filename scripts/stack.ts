// The local stack: Postgres, Redis, Envoy and Tollgate's services on loopback, one command.
// Usage: ./scripts/stack up [--detach] | status | down | logs [component]
// A supervisor (stack-supervisor.ts) restarts a component that dies, with backoff; `up` brings
// back what is down (docs/running.md). This file is the command line around it.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT, httpOk, portOpen, sleep } from '@tollgate/devstack';
import { LOGS, READY, RUN, SUPERVISOR_PID, components, external, restartPolicy, type ComponentInfo } from './stack-config.js';
import { alive, componentStateFile, describeExit, readComponentState, readPid } from './stack-state.js';
import { supervise } from './stack-supervisor.js';

/** Whether each component is up (alive and healthy), as `status` reports it. */
async function probe(c: ComponentInfo): Promise<{ pid: number | undefined; up: boolean }> {
  const pid = readPid(join(RUN, `${c.name}.pid`));
  if (!alive(pid)) return { pid: undefined, up: false };
  return { pid, up: c.health ? await httpOk(c.health) : await portOpen(c.port) };
}

async function status(): Promise<number> {
  const sup = readPid(SUPERVISOR_PID);
  const supAlive = alive(sup);
  const row = (name: string, state: string, port: string, pid: string, restarts: string, lastExit: string) =>
    console.log(`${name.padEnd(17)}${state.padEnd(12)}${port.padEnd(7)}${pid.padEnd(9)}${restarts.padEnd(10)}${lastExit}`);
  row('COMPONENT', 'STATE', 'PORT', 'PID', 'RESTARTS', 'LAST EXIT');
  row('supervisor', supAlive ? 'up' : 'down', '-', supAlive ? String(sup) : '-', '-', '-');
  let allUp = supAlive;
  for (const c of components()) {
    const { pid, up } = await probe(c);
    const known = readComponentState(RUN, c.name);
    allUp &&= up;
    const state = up ? 'up' : supAlive && (known?.state === 'restarting' || known?.state === 'starting') ? known.state : 'down';
    row(c.name, state, String(c.port), pid ? String(pid) : '-', String(known?.restarts ?? 0), describeExit(known?.lastExit ?? null));
  }
  if (external.postgres) console.log(`${'postgres'.padEnd(17)}external (DATABASE_URL)`);
  if (external.redis) console.log(`${'redis'.padEnd(17)}external (REDIS_URL)`);
  return allUp ? 0 : 3;
}

/** Stops components no supervisor owns any more (it crashed), dependents first. */
async function stopLeftovers(): Promise<void> {
  for (const c of components().reverse()) {
    const file = join(RUN, `${c.name}.pid`);
    const pid = readPid(file);
    if (alive(pid)) {
      process.kill(pid, 'SIGTERM');
      const deadline = Date.now() + 10_000;
      while (alive(pid) && Date.now() < deadline) await sleep(100);
      if (alive(pid)) process.kill(pid, 'SIGKILL');
    }
    rmSync(file, { force: true });
    rmSync(componentStateFile(RUN, c.name), { force: true });
  }
}

async function down(): Promise<void> {
  const sup = readPid(SUPERVISOR_PID);
  if (alive(sup)) {
    process.kill(sup, 'SIGTERM');
    const deadline = Date.now() + 30_000;
    while (alive(sup) && Date.now() < deadline) await sleep(100);
  }
  // Anything a crashed supervisor left behind.
  await stopLeftovers();
  rmSync(SUPERVISOR_PID, { force: true });
  rmSync(READY, { force: true });
  console.log('stack: down');
}

/** `up` on a running supervisor: it starts whatever is down now; this waits until all is up. */
async function bringBack(supervisor: number): Promise<number> {
  const downNow: string[] = [];
  for (const c of components()) if (!alive(readPid(join(RUN, `${c.name}.pid`)))) downNow.push(c.name);
  if (downNow.length === 0) {
    console.log('stack: already running (./scripts/stack status; ./scripts/stack down to stop)');
    return (await status()) === 0 ? 0 : 1;
  }
  console.log(`stack: already running; starting what is down: ${downNow.join(', ')}`);
  process.kill(supervisor, 'SIGUSR2');
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline && alive(supervisor)) {
    const probes = await Promise.all(components().map(probe));
    if (probes.every((p) => p.up)) break;
    await sleep(200);
  }
  return (await status()) === 0 ? 0 : 1;
}

async function detach(): Promise<number> {
  mkdirSync(LOGS, { recursive: true });
  const logFile = join(LOGS, 'stack.log');
  const fd = openSync(logFile, 'a');
  rmSync(READY, { force: true });
  const child = spawn(process.execPath, [...process.execArgv, process.argv[1]!, 'up'], {
    cwd: REPO_ROOT,
    detached: true,
    stdio: ['ignore', fd, fd],
    env: { ...process.env, FORCE_COLOR: '0' },
  });
  child.unref();
  const deadline = Date.now() + 180_000;
  while (Date.now() < deadline) {
    if (existsSync(READY)) {
      console.log(`stack: up in the background; logs in .stack/logs/ (./scripts/stack logs)`);
      await status();
      return 0;
    }
    if (!alive(child.pid)) break;
    await sleep(200);
  }
  console.error(`stack: failed to start in the background; last lines of ${logFile}:`);
  console.error(readFileSync(logFile, 'utf8').split('\n').slice(-30).join('\n'));
  await down();
  return 1;
}

async function main(): Promise<void> {
  const [cmd = 'help', ...rest] = process.argv.slice(2);
  switch (cmd) {
    case 'up': {
      restartPolicy();
      const supervisor = readPid(SUPERVISOR_PID);
      if (alive(supervisor)) process.exit(await bringBack(supervisor));
      const orphans = components().filter((c) => alive(readPid(join(RUN, `${c.name}.pid`))));
      if (orphans.length > 0) {
        // Their output goes to the dead supervisor's pipes and nobody would restart them: start afresh.
        console.log(`stack: the supervisor is gone; stopping what it left running (${orphans.map((c) => c.name).join(', ')}) to start the stack again`);
        await stopLeftovers();
      }
      if (rest.includes('--detach') || rest.includes('-d')) process.exit(await detach());
      await supervise();
      return;
    }
    // biome-ignore lint/suspicious/noFallthroughSwitchClause: process.exit() does not return
    case 'status':
      process.exit(await status());
    case 'down':
      await down();
      return;
    case 'logs': {
      const name = rest[0] ?? 'stack';
      const file = join(LOGS, `${name}.log`);
      if (!existsSync(file)) {
        console.error(
          `stack: no log for ${name} (components: ${components()
            .map((c) => c.name)
            .join(', ')})`,
        );
        process.exit(1);
      }
      process.stdout.write(readFileSync(file));
      return;
    }
    default:
      console.log('usage: ./scripts/stack up [--detach] | status | down | logs [component]');
      process.exit(cmd === 'help' || cmd === '--help' ? 0 : 2);
  }
}

await main();
