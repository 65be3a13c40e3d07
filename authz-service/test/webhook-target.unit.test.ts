import { describe, expect, it } from 'vitest';
import { retryDelayMs } from '../src/webhooks/retry-schedule.js';
import { checkWebhookUrl, guardedLookup, isPublicAddress, WebhookTargetRefused } from '../src/webhooks/target-guard.js';

describe('webhook targets', () => {
  it.each([
    ['8.8.8.8', true],
    ['2606:4700::1111', true],
    ['127.0.0.1', false],
    ['10.1.2.3', false],
    ['172.16.0.1', false],
    ['192.168.1.1', false],
    ['169.254.169.254', false],
    ['100.64.0.1', false],
    ['0.0.0.0', false],
    ['224.0.0.1', false],
    ['::1', false],
    ['fd00::1', false],
    ['fe80::1', false],
    ['::ffff:127.0.0.1', false],
    ['::ffff:8.8.8.8', true],
    ['64:ff9b::7f00:1', false],
    ['not-an-ip', false],
  ])('%s is public: %s', (address, expected) => {
    expect(isPublicAddress(address)).toBe(expected);
  });

  it.each([
    ['ftp://example.com/x', 'http or https'],
    ['https://u:p@example.com/x', 'user name or password'],
    ['https://example.com/x#frag', 'fragment'],
    ['http://localhost:8080/x', 'non-public'],
    ['http://api.localhost/x', 'non-public'],
    ['http://[::1]/x', 'non-public'],
    ['http://10.0.0.1/x', 'non-public'],
    ['nonsense', 'absolute URL'],
  ])('refuses %s', (url, why) => {
    expect(() => checkWebhookUrl(url, false)).toThrow(WebhookTargetRefused);
    expect(() => checkWebhookUrl(url, false)).toThrow(why);
  });

  it('allows private targets only when told to, and never other schemes', () => {
    expect(checkWebhookUrl('http://127.0.0.1:9/x', true).host).toBe('127.0.0.1:9');
    expect(() => checkWebhookUrl('file:///etc/passwd', true)).toThrow('http or https');
    expect(checkWebhookUrl('https://hooks.example.com/a', false).toString()).toBe('https://hooks.example.com/a');
  });

  it('refuses at connection time a name that resolves to loopback', async () => {
    const lookup = guardedLookup(false);
    const err = await new Promise<Error | null>((resolve) => lookup('localhost', {}, (e) => resolve(e)));
    expect(err?.message).toMatch(/resolves to a non-public address/);
    const allowed = await new Promise<string>((resolve, reject) => guardedLookup(true)('localhost', {}, (e, a) => (e ? reject(e) : resolve(String(a)))));
    expect(['127.0.0.1', '::1']).toContain(allowed);
  });
});

describe('retry schedule', () => {
  it('doubles from the base up to the cap, jittered within the upper half', () => {
    const low = (n: number) => retryDelayMs(n, 1000, 60_000, () => 0);
    const high = (n: number) => retryDelayMs(n, 1000, 60_000, () => 1);
    expect([1, 2, 3, 4].map(high)).toEqual([1000, 2000, 4000, 8000]);
    expect([1, 2, 3, 4].map(low)).toEqual([500, 1000, 2000, 4000]);
    expect(high(20)).toBe(60_000);
    expect(low(20)).toBe(30_000);
  });
});
