import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { isIP, type LookupFunction } from 'node:net';
import ipaddr from 'ipaddr.js';

/**
 * Where webhook deliveries may go. A webhook URL is input the service then fetches, so unless
 * WEBHOOK_ALLOW_PRIVATE_TARGETS is on, only public unicast addresses are reachable: not
 * loopback, private, link-local (cloud metadata at 169.254.169.254), unique-local, CGNAT,
 * multicast, reserved or addresses embedded in v6 transition ranges. The check runs at
 * registration (for what the URL alone says) and again on every connection, on the address the
 * connection then uses, so a name that resolves somewhere else later (DNS rebinding) is caught.
 */
export class WebhookTargetRefused extends Error {}

export function isPublicAddress(address: string): boolean {
  if (!ipaddr.isValid(address)) return false;
  let parsed = ipaddr.parse(address);
  if (parsed.kind() === 'ipv6' && (parsed as ipaddr.IPv6).isIPv4MappedAddress()) parsed = (parsed as ipaddr.IPv6).toIPv4Address();
  return parsed.range() === 'unicast';
}

/** Names that always mean this host, whatever DNS says. */
const LOCAL_NAMES = /(^|\.)(localhost|localdomain)\.?$/i;

/** Validates a URL an operator registers; throws WebhookTargetRefused saying why. */
export function checkWebhookUrl(raw: string, allowPrivate: boolean): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new WebhookTargetRefused('url is not an absolute URL');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new WebhookTargetRefused('url must be http or https');
  // Credentials in a URL end up in logs and in every list answer.
  if (url.username || url.password) throw new WebhookTargetRefused('url must not carry a user name or password');
  if (url.hash) throw new WebhookTargetRefused('url must not have a #fragment');
  if (allowPrivate) return url;
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (isIP(host) ? !isPublicAddress(host) : LOCAL_NAMES.test(host)) {
    throw new WebhookTargetRefused(`url points at a non-public address (${host}); WEBHOOK_ALLOW_PRIVATE_TARGETS allows that`);
  }
  return url;
}

/**
 * A `lookup` for http(s).request that resolves as usual and refuses the connection when any
 * address the name resolves to is not public. (An IP-literal host never reaches a lookup: the
 * dispatcher checks it with checkWebhookUrl before connecting.)
 */
export function guardedLookup(allowPrivate: boolean): LookupFunction {
  return (hostname, options, callback) => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses: LookupAddress[]) => {
      if (err) return callback(err, '', 0);
      const refused = allowPrivate ? undefined : addresses.find((a) => !isPublicAddress(a.address));
      if (refused || addresses.length === 0) {
        const e = new WebhookTargetRefused(
          refused ? `${hostname} resolves to a non-public address (${refused.address})` : `${hostname} resolves to no address`,
        ) as NodeJS.ErrnoException;
        e.code = 'EWEBHOOKTARGET';
        return callback(e, '', 0);
      }
      if (options.all) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, addresses);
      callback(null, addresses[0]!.address, addresses[0]!.family);
    });
  };
}
