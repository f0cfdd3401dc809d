// The run's trace: a running hash of every event (always on, cheap, used to prove that a seed
// replays identically) and, when verbose, one human-readable line per event.

export class Trace {
  private hashValue = 0x811c9dc5;
  readonly lines: string[] = [];
  eventCount = 0;

  /** `sink` receives each verbose line as it happens (stderr in the CLI); lines are kept too. */
  constructor(
    readonly verbose: boolean,
    private readonly sink?: (line: string) => void,
    private readonly linesKeptMax = 200_000,
  ) {}

  get hash(): number {
    return this.hashValue >>> 0;
  }

  /**
   * Records an event. `nums` go into the hash; `describe` is only called when verbose, so a
   * quiet run never builds strings.
   */
  event(step: number, kind: string, nums: readonly number[], describe?: () => string): void {
    this.eventCount++;
    let h = this.hashValue;
    h = mix(h, step);
    for (let i = 0; i < kind.length; i++) h = mix(h, kind.charCodeAt(i));
    for (const n of nums) h = mix(h, n);
    this.hashValue = h;
    if (this.verbose) {
      const line = `[${step}] ${kind}${describe ? ' ' + describe() : ''}`;
      if (this.lines.length < this.linesKeptMax) this.lines.push(line);
      this.sink?.(line);
    }
  }
}

// Bound once: a global looked up on every call is slow inside jest's sandbox.
const imul = Math.imul;

/** FNV-1a over a number's low 32 bits (four bytes); callers pass integers. */
export function mix(h: number, n: number): number {
  const v = n | 0;
  h = imul(h ^ (v & 0xff), 0x01000193);
  h = imul(h ^ ((v >>> 8) & 0xff), 0x01000193);
  h = imul(h ^ ((v >>> 16) & 0xff), 0x01000193);
  h = imul(h ^ (v >>> 24), 0x01000193);
  return h >>> 0;
}

export function mixString(h: number, s: string): number {
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i) & 0xff;
    h = imul(h, 0x01000193);
    h ^= s.charCodeAt(i) >>> 8;
    h = imul(h, 0x01000193);
  }
  return h >>> 0;
}
