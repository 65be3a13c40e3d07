import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { TestStack, onNewStack } from '../src/test-stack.js';

describe('TestStack', () => {
  it('stops parts last started first, deferred ones included', async () => {
    const stack = new TestStack();
    const stopped: string[] = [];
    await stack.start(
      'database',
      async () => 'db',
      () => stopped.push('database'),
    );
    await stack.start(
      'service',
      async () => 'svc',
      () => stopped.push('service'),
    );
    stack.defer('client', () => stopped.push('client'));
    await stack.stop();
    expect(stopped).toEqual(['client', 'service', 'database']);
  });

  it('names the part that could not start, and keeps what did start for stop()', async () => {
    const stack = new TestStack();
    const stopped: string[] = [];
    await stack.start(
      'database',
      async () => 'db',
      () => stopped.push('database'),
    );
    await expect(
      stack.start(
        'Envoy',
        () => Promise.reject(new Error('no binary')),
        () => stopped.push('Envoy'),
      ),
    ).rejects.toThrow('test stack: could not start Envoy: no binary');
    await stack.stop();
    expect(stopped).toEqual(['database']);
  });

  it('stops every part past one that fails to stop, then names it', async () => {
    const stack = new TestStack();
    const stopped: string[] = [];
    await stack.start(
      'database',
      async () => 'db',
      () => stopped.push('database'),
    );
    await stack.start(
      'service',
      async () => 'svc',
      () => Promise.reject(new Error('stuck')),
    );
    await expect(stack.stop()).rejects.toThrow('test stack: could not stop service: stuck');
    expect(stopped).toEqual(['database']);
  });

  it('onNewStack stops what did start when the build fails', async () => {
    const stopped: string[] = [];
    await expect(
      onNewStack(async (stack) => {
        await stack.start(
          'database',
          async () => 'db',
          () => stopped.push('database'),
        );
        throw new Error('service refused its config');
      }),
    ).rejects.toThrow('service refused its config');
    expect(stopped).toEqual(['database']);
  });

  it('removes its temporary directory, with what was written in it, on stop()', async () => {
    const stack = new TestStack();
    const dir = stack.tempDir('tollgate-stack-test-');
    writeFileSync(join(dir, 'log'), 'x');
    expect(existsSync(dir)).toBe(true);
    await stack.stop();
    expect(existsSync(dir)).toBe(false);
  });

  it('stops the part a replaceable slot holds when stop() comes, not the ones it held before', async () => {
    const stack = new TestStack();
    const stopped: string[] = [];
    const slot = stack.replaceable<string>('process', (p) => stopped.push(p));
    slot.current = 'first';
    slot.current = 'second';
    stack.defer('client', () => stopped.push('client'));
    await stack.stop();
    expect(stopped).toEqual(['client', 'second']);
  });
});
