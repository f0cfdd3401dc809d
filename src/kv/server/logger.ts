// Structured logs (pino, JSON lines on stderr), with the member's name on every line.

import pino from 'pino';
import type { Logger } from '../../raft';

export function createLogger(opts: { name: string; level: string }): Logger & pino.Logger {
  return pino({ level: opts.level, base: { member: opts.name } }, pino.destination(2));
}
