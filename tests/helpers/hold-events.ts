// Runs fn while a watch hub holds its live events (WatchHub.holdEvents), as one apply of
// several Raft entries does: the revisions fn commits reach each watcher as one response.

export function withEventsHeld<T>(hub: { holdEvents(): () => void }, fn: () => T): T {
  const release = hub.holdEvents();
  try {
    return fn();
  } finally {
    release();
  }
}
