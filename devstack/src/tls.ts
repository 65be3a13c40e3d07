import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from './envoy-config.js';

const SDS_CONFIG_PATH = join(REPO_ROOT, 'envoy', 'sds', 'public-tls.yaml');
/** Where Compose and Kubernetes mount the certificate Secret. */
const SDS_CERT_DIR = '/etc/tollgate-tls';

/** What a local TLS directory holds: `ca.pem` is what a client trusts. */
export interface LocalTls {
  dir: string;
  caPath: string;
  certPath: string;
  keyPath: string;
}

const openssl = (args: string[], cwd: string) => execFileSync('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });

/**
 * A CA and a localhost certificate signed by it (SANs localhost, 127.0.0.1, ::1), made with the
 * openssl CLI, no network. The certificate and key are laid out as a Kubernetes Secret volume
 * is (tls.crt -> ..data/tls.crt, ..data -> a timestamped directory) so that replacing them
 * (issueLocalCertificate again) is the same atomic symlink swap Envoy sees in a cluster.
 * An existing CA is kept, so clients that trust ca.pem keep trusting a reissued certificate.
 */
export function createLocalTls(dir: string): LocalTls {
  mkdirSync(dir, { recursive: true });
  if (!existsSync(join(dir, 'ca.pem'))) {
    openssl(
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-keyout',
        'ca-key.pem',
        '-out',
        'ca.pem',
        '-days',
        '3650',
        '-subj',
        '/CN=Tollgate local CA',
      ],
      dir,
    );
  }
  if (!existsSync(join(dir, 'tls.crt'))) issueLocalCertificate(dir);
  return { dir, caPath: join(dir, 'ca.pem'), certPath: join(dir, 'tls.crt'), keyPath: join(dir, 'tls.key') };
}

/** Signs a new localhost certificate with the directory's CA and swaps it in; returns its serial (hex, upper case). */
export function issueLocalCertificate(dir: string): string {
  const version = mkdtempSync(join(dir, '..cert-'));
  writeFileSync(join(version, 'san.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\nextendedKeyUsage=serverAuth\n');
  openssl(
    ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'tls.key', '-out', 'tls.csr', '-subj', '/CN=localhost'],
    version,
  );
  openssl(
    [
      'x509',
      '-req',
      '-in',
      'tls.csr',
      '-CA',
      '../ca.pem',
      '-CAkey',
      '../ca-key.pem',
      '-CAcreateserial',
      '-CAserial',
      'serial',
      '-days',
      '365',
      '-extfile',
      'san.ext',
      '-out',
      'tls.crt',
    ],
    version,
  );
  const serial = openssl(['x509', '-in', 'tls.crt', '-noout', '-serial'], version)
    .toString()
    .trim()
    .replace(/^serial=/, '');
  for (const f of ['tls.csr', 'san.ext', 'serial']) rmSync(join(version, f), { force: true });
  // The swap a kubelet makes: a new ..data symlink renamed over the old one, in one step.
  const dataLink = join(dir, '..data');
  const previous = existsSync(dataLink) ? readlinkSync(dataLink) : null;
  const tmpLink = join(dir, '..data_tmp');
  rmSync(tmpLink, { force: true });
  symlinkSync(version.slice(dir.length + 1), tmpLink);
  renameSync(tmpLink, dataLink);
  if (previous) rmSync(join(dir, previous), { recursive: true, force: true });
  for (const f of ['tls.crt', 'tls.key']) if (!existsSync(join(dir, f))) symlinkSync(join('..data', f), join(dir, f));
  return serial.toUpperCase();
}

/** envoy/sds/public-tls.yaml pointed at a local TLS directory instead of the mounted Secret. */
export function renderSdsConfig(certDir: string, source = readFileSync(SDS_CONFIG_PATH, 'utf8')): string {
  return source.replaceAll(`${SDS_CERT_DIR}/`, `${certDir}/`).replaceAll(`path: ${SDS_CERT_DIR} `, `path: ${certDir} `);
}
