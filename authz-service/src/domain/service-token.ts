import { SignJWT, jwtVerify, errors as joseErrors, type JWTPayload } from 'jose';
import { randomUUID } from 'node:crypto';
import { pathWithin } from './path-prefix.js';

/**
 * Service tokens (seed 001): HS256 JWTs naming a project, a service and the route prefixes it
 * may call. Signing and verification use `jose`, never hand-rolled crypto. Several secrets are
 * live at once, each with a key id (`kid` header): new tokens are signed with the first, tokens
 * signed with any listed secret verify, so the secret rotates without downtime.
 */
export interface SigningSecret {
  kid: string;
  secret: string;
}

export interface ServiceTokenClaims {
  jti: string;
  project: string;
  service: string;
  routes: string[];
  iat: number;
  exp: number;
}

const ALGORITHM = 'HS256';
const encoder = new TextEncoder();

export async function signServiceToken(
  secrets: readonly SigningSecret[],
  issuer: string,
  claims: { project: string; service: string; routes: string[]; expiresAt: Date; jti?: string },
): Promise<{ token: string; jti: string; kid: string }> {
  const signing = secrets[0];
  if (!signing) throw new Error('no signing secret configured');
  const jti = claims.jti ?? randomUUID();
  const token = await new SignJWT({ project: claims.project, service: claims.service, routes: claims.routes })
    .setProtectedHeader({ alg: ALGORITHM, kid: signing.kid, typ: 'JWT' })
    .setIssuer(issuer)
    .setSubject(`${claims.project}/${claims.service}`)
    .setJti(jti)
    .setIssuedAt()
    .setExpirationTime(Math.floor(claims.expiresAt.getTime() / 1000))
    .sign(encoder.encode(signing.secret));
  return { token, jti, kid: signing.kid };
}

export type VerifyFailure = 'expired' | 'invalid';

export async function verifyServiceToken(
  token: string,
  secrets: readonly SigningSecret[],
  opts: { issuer: string; clockToleranceS: number },
): Promise<{ ok: true; claims: ServiceTokenClaims } | { ok: false; reason: VerifyFailure; detail: string }> {
  const byKid = new Map(secrets.map((s) => [s.kid, encoder.encode(s.secret)]));
  try {
    const { payload } = await jwtVerify(
      token,
      (header) => {
        // Only HS256 and only our key ids: `alg: none` and algorithm confusion fail here.
        if (header.alg !== ALGORITHM) throw new joseErrors.JOSEAlgNotAllowed(`algorithm ${header.alg} not allowed`);
        const key = byKid.get(header.kid ?? 'default');
        if (!key) throw new joseErrors.JWSSignatureVerificationFailed('unknown key id');
        return key;
      },
      { algorithms: [ALGORITHM], issuer: opts.issuer, clockTolerance: opts.clockToleranceS, requiredClaims: ['jti', 'exp', 'iat'] },
    );
    const claims = parseClaims(payload);
    if (!claims) return { ok: false, reason: 'invalid', detail: 'token claims are incomplete' };
    return { ok: true, claims };
  } catch (err) {
    if (err instanceof joseErrors.JWTExpired) return { ok: false, reason: 'expired', detail: 'token has expired' };
    return { ok: false, reason: 'invalid', detail: err instanceof joseErrors.JOSEError ? err.code : 'malformed token' };
  }
}

function parseClaims(p: JWTPayload): ServiceTokenClaims | null {
  const { jti, exp, iat } = p;
  const project = p.project;
  const service = p.service;
  const routes = p.routes;
  if (typeof jti !== 'string' || typeof exp !== 'number' || typeof iat !== 'number') return null;
  if (typeof project !== 'string' || typeof service !== 'string') return null;
  if (!Array.isArray(routes) || !routes.every((r) => typeof r === 'string' && r.startsWith('/'))) return null;
  return { jti, exp, iat, project, service, routes: routes as string[] };
}

export interface ServiceTokenRouteRule {
  prefix: string;
  project: string;
  services?: string[];
}

/** The SERVICE_TOKEN_ROUTES rule covering a path: such a path is for service tokens only. */
export function serviceTokenRouteFor(path: string, rules: readonly ServiceTokenRouteRule[]): ServiceTokenRouteRule | undefined {
  return rules.find((r) => pathWithin(path, r.prefix, 'restrict'));
}

/**
 * A token may call a path when one of its own route prefixes covers it and, if a configured
 * rule covers the path, the token's project (and service, when the rule lists services) match.
 * Matching is path-prefix.ts's: whole segments; the token's routes grant by exact case.
 */
export function tokenAllowsPath(
  claims: Pick<ServiceTokenClaims, 'project' | 'service' | 'routes'>,
  path: string,
  rules: readonly ServiceTokenRouteRule[],
): boolean {
  if (!claims.routes.some((r) => pathWithin(path, r, 'grant'))) return false;
  const rule = serviceTokenRouteFor(path, rules);
  if (!rule) return true;
  return rule.project === claims.project && (!rule.services || rule.services.includes(claims.service));
}
