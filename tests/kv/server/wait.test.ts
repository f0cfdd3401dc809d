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
