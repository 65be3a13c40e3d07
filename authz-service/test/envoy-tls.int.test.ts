import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createLocalTls, issueLocalCertificate, TestStack, type LocalTls, type RunningEnvoy } from '@tollgate/devstack';
import { createKey, sleep, startAuthzStack, startEnvoyFront, type TestAuthz } from './helpers.js';

// The public_tls listener through the real Envoy and the real curl: the certificate comes from
// file-based SDS and is replaced by a symlink swap (as a Kubernetes Secret update does).
const run = promisify(execFile);
const infra = inject('infra');
let authz: TestAuthz;
let envoy: RunningEnvoy;
let tls: LocalTls;
let plaintext: string;
const stack = new TestStack();

beforeAll(async () => {
  tls = createLocalTls(mkdtempSync(join(tmpdir(), 'tollgate-tls-')));
  let front;
  ({ authz, front } = await startAuthzStack(stack, infra, 'envoy_tls', { envoy: { tls: { certDir: tls.dir } } }));
  envoy = front.envoy;
  ({ plaintext } = await createKey(authz, { userId: 'tls-user' }));
});

afterAll(() => stack.stop());

const httpsUrl = (path: string) => `https://localhost:${envoy.tlsPort}${path}`;

/** curl's verbose output names the negotiated protocol and the server certificate it verified. */
async function curl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return run('curl', ['-sS', '--max-time', '5', ...args], { encoding: 'utf8' }).then(
    (r) => ({ code: 0, ...r }),
    (e: { code: number; stdout: string; stderr: string }) => e,
  );
}

async function servedSerial(): Promise<string> {
  const { stdout } = await run('sh', [
    '-c',
    `openssl s_client -connect 127.0.0.1:${envoy.tlsPort} -servername localhost </dev/null 2>/dev/null | openssl x509 -noout -serial`,
  ]);
  return stdout
    .trim()
    .replace(/^serial=/, '')
    .toUpperCase();
}

describe('TLS at Envoy', () => {
  it('answers 200 over HTTPS to a client trusting ca.pem, negotiating HTTP/2', async () => {
    const r = await curl(['--cacert', tls.caPath, '-H', `x-api-key: ${plaintext}`, '-w', '\n%{http_code} %{http_version}', httpsUrl('/hello')]);
    expect(r.code).toBe(0);
    const [body, status] = r.stdout.split('\n');
    expect(status).toBe('200 2');
    expect(JSON.parse(body!).message).toBe('Hello, tls-user!');
  });

  it('runs the same Check as the plaintext listener (401 without a key)', async () => {
    const r = await curl(['--cacert', tls.caPath, '--http1.1', '-w', '\n%{http_code}', httpsUrl('/hello')]);
    expect(r.stdout.split('\n').at(-1)).toBe('401');
  });

  it('refuses TLS below 1.2', async () => {
    const r = await curl(['--cacert', tls.caPath, '--tlsv1.1', '--tls-max', '1.1', httpsUrl('/ping')]);
    expect(r.code).not.toBe(0);
  });

  it('a plaintext request to the TLS port fails cleanly (no HTTP answer, connection closed)', async () => {
    const r = await curl(['-w', '%{http_code}', `http://127.0.0.1:${envoy.tlsPort}/ping`]);
    expect(r.code).not.toBe(0);
    expect(r.stdout).toBe('000');
    // Envoy is still serving afterwards.
    expect((await curl(['--cacert', tls.caPath, httpsUrl('/ping')])).stdout).toBe('OK');
  });

  it('serves a replaced certificate without a restart', async () => {
    const before = await servedSerial();
    const pid = envoy.process.pid;
    const serial = issueLocalCertificate(tls.dir);
    expect(serial).not.toBe(before);
    let seen = before;
    for (let i = 0; i < 50 && seen !== serial; i++) {
      await sleep(200);
      seen = await servedSerial();
    }
    expect(seen).toBe(serial);
    expect(envoy.process.pid).toBe(pid);
    const r = await curl(['--cacert', tls.caPath, '-H', `x-api-key: ${plaintext}`, '-w', '\n%{http_code}', httpsUrl('/hello')]);
    expect(r.stdout.split('\n').at(-1)).toBe('200');
  });
});

describe('redirect from HTTP (tollgate.https_redirect)', () => {
  it('off by default: the plaintext listener serves as before', async () => {
    const r = await curl(['-H', `x-api-key: ${plaintext}`, '-w', '\n%{http_code}', `${envoy.url}/hello`]);
    expect(r.stdout.split('\n').at(-1)).toBe('200');
  });

  it('on: plain HTTP gets 301 to the TLS port with the path kept, without a Check; /ping still answers', async () => {
    const { envoy: redirecting } = await startEnvoyFront(stack, authz.grpcPort, { tls: { certDir: tls.dir, redirect: true } });
    const r = await curl(['-w', '%{http_code} %{redirect_url}', `${redirecting.url}/hello?x=1`]);
    expect(r.stdout).toBe(`301 https://127.0.0.1:${redirecting.tlsPort}/hello?x=1`);
    expect((await curl([`${redirecting.url}/ping`])).stdout).toBe('OK');
    const followed = await curl([
      '--cacert',
      tls.caPath,
      '-H',
      `x-api-key: ${plaintext}`,
      '-w',
      '\n%{http_code}',
      `https://localhost:${redirecting.tlsPort}/hello`,
    ]);
    expect(followed.stdout.split('\n').at(-1)).toBe('200');
  });
});
