// Request waiters: a result failed before anyone awaits it must not become an unhandled
// rejection (which ends the process): a member waiting for a leader to propose to hit
// its request timeout that way, and died (found by the chaos harness).

import { Wait } from '../../../src/kv/server/wait';

test('failing a registered request before it is awaited is no unhandled rejection; the awaiter still sees it', async () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (e: unknown): void => {
    unhandled.push(e);
  };
  process.on('unhandledRejection', onUnhandled);
  try {
    const wait = new Wait<number>();
    const early = wait.register(1);
    wait.fail(1, new Error('etcdserver: no leader'));
    const stopped = wait.register(2);
    wait.failAll(new Error('etcdserver: server stopped'));
    await new Promise((r) => setTimeout(r, 20));
    expect(unhandled).toEqual([]);
    await expect(early).rejects.toThrow('etcdserver: no leader');
    await expect(stopped).rejects.toThrow('etcdserver: server stopped');
    const ok = wait.register(3);
    wait.trigger(3, 42);
    await expect(ok).resolves.toBe(42);
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }
});

test('expire fails only the waiters past their deadline, with the error of that moment, and gives the next deadline', async () => {
  const wait = new Wait<number>();
  const a = wait.register(1, 1000);
  const forever = wait.register(2);
  const b = wait.register(3, 2000);
  const c = wait.register(4, 1500);
  expect(wait.expire(999, () => new Error('not yet'))).toBe(1000);
  expect(wait.size).toBe(4);
  let calls = 0;
  expect(wait.expire(1500, () => new Error(`timed out ${++calls}`))).toBe(2000);
  await expect(a).rejects.toThrow('timed out 1');
  await expect(c).rejects.toThrow('timed out 2');
  expect(wait.size).toBe(2);
  expect(wait.expire(5000, () => new Error('etcdserver: request timed out'))).toBeUndefined();
  await expect(b).rejects.toThrow('etcdserver: request timed out');
  // No deadline: only trigger, fail or failAll end it.
  expect(wait.has(2)).toBe(true);
  wait.trigger(2, 7);
  await expect(forever).resolves.toBe(7);
  expect(wait.expire(Number.MAX_SAFE_INTEGER, () => new Error('x'))).toBeUndefined();
});

test('a listener is called once, synchronously, by trigger, fail, failAll or expire; later settlements are ignored', () => {
  const wait = new Wait<number>();
  const calls: string[] = [];
  const listener = (name: string) => (e: Error | undefined, v: number | undefined) => calls.push(e !== undefined ? `${name}: ${e.message}` : `${name} = ${v}`);
  wait.listen(1, Infinity, listener('a'));
  wait.listen(2, 100, listener('b'));
  wait.listen(3, Infinity, listener('c'));
  wait.listen(4, Infinity, listener('d'));
  wait.trigger(1, 5);
  expect(calls).toEqual(['a = 5']);
  wait.trigger(1, 6);
  wait.fail(1, new Error('late'));
  expect(wait.expire(100, () => new Error('etcdserver: request timed out'))).toBeUndefined();
  wait.fail(3, new Error('etcdserver: no leader'));
  wait.failAll(new Error('etcdserver: server stopped'));
  expect(calls).toEqual(['a = 5', 'b: etcdserver: request timed out', 'c: etcdserver: no leader', 'd: etcdserver: server stopped']);
  expect(wait.size).toBe(0);
});
