// Simple tokens, as etcd 3.4's --auth-token=simple: an opaque "<16 letters>.<raft index>"
// string mapped to a user name. A token is assigned when the Authenticate request that
// created it is applied, so every member knows it; each member forgets it on its own once
// it has not been used for the TTL (etcd's simpleTokenTTLKeeper; a use refreshes it).
// Tokens live in memory only: a restarted member no longer knows the tokens issued before.

export const tokenLimits = Object.freeze({
  /** etcd's simpleTokenTTLDefault: 5 minutes. */
  ttlMsDefault: 5 * 60 * 1000,
  /** Tokens kept at most; beyond it the least recently assigned go first. */
  tokensMax: 100_000,
  /** Letters in a token's random prefix (etcd's defaultSimpleTokenLength). */
  prefixLetters: 16,
});

const TOKEN_RE = /^([A-Za-z]+)\.(\d+)$/;

/** The Raft index a token was assigned at, or undefined when it is not a simple token. */
export function tokenIndex(token: string): number | undefined {
  const m = TOKEN_RE.exec(token);
  if (!m) return undefined;
  const index = Number(m[2]);
  return Number.isSafeInteger(index) ? index : undefined;
}

export interface SimpleTokensOptions {
  ttlMs?: number;
  now?: () => number;
}

interface Entry {
  user: string;
  expiresAtMs: number;
}

export class SimpleTokens {
  private readonly tokens = new Map<string, Entry>();
  private readonly ttlMs: number;
  private readonly now: () => number;

  constructor(opts: SimpleTokensOptions = {}) {
    this.ttlMs = opts.ttlMs ?? tokenLimits.ttlMsDefault;
    this.now = opts.now ?? Date.now;
  }

  get size(): number {
    return this.tokens.size;
  }

  assign(token: string, user: string): void {
    this.tokens.delete(token);
    this.tokens.set(token, { user, expiresAtMs: this.now() + this.ttlMs });
    if (this.tokens.size > tokenLimits.tokensMax) this.sweep();
    while (this.tokens.size > tokenLimits.tokensMax) {
      const oldest = this.tokens.keys().next().value as string;
      this.tokens.delete(oldest);
    }
  }

  /** The user a live token stands for (and the token's TTL starts again), or undefined. */
  lookup(token: string): string | undefined {
    const e = this.tokens.get(token);
    if (!e) return undefined;
    const now = this.now();
    if (e.expiresAtMs <= now) {
      this.tokens.delete(token);
      return undefined;
    }
    e.expiresAtMs = now + this.ttlMs;
    return e.user;
  }

  /** Forgets every token of a user (deleted, or its password changed). */
  invalidateUser(user: string): void {
    for (const [t, e] of this.tokens) if (e.user === user) this.tokens.delete(t);
  }

  clear(): void {
    this.tokens.clear();
  }

  /** Drops expired tokens. */
  sweep(): void {
    const now = this.now();
    for (const [t, e] of this.tokens) if (e.expiresAtMs <= now) this.tokens.delete(t);
  }
}
