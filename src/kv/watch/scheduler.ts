// Deferred work of the watch hub (catch-up runs, progress ticks) goes through a Scheduler so
// that tests can run it step by step.

import type { Disposable } from './types';

export interface Scheduler {
  /** Runs task on a later turn of the event loop, after pending I/O (setImmediate). */
  soon(task: () => void): Disposable;
  /** Runs task once, delayMs from now. */
  after(delayMs: number, task: () => void): Disposable;
}

/** The real event loop. Timers are unref'd: a watch alone never keeps the process alive. */
export const eventLoopScheduler: Scheduler = {
  soon(task) {
    const handle = setImmediate(task);
    return { dispose: () => clearImmediate(handle) };
  },
  after(delayMs, task) {
    const handle = setTimeout(task, delayMs);
    handle.unref();
    return { dispose: () => clearTimeout(handle) };
  },
};
