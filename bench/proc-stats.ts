// CPU and memory of processes from /proc (Linux): the members' CPU from
// /proc/<pid>/stat (utime + stime, all threads), their RSS from /proc/<pid>/status (VmRSS),
// and the client's own CPU from process.cpuUsage().

import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';

let clockTicksPerSecCached: number | undefined;

/** The kernel's USER_HZ (`getconf CLK_TCK`), the unit of /proc/<pid>/stat times. */
export function clockTicksPerSec(): number {
  if (clockTicksPerSecCached === undefined) {
    let hz = 100;
    try {
      hz = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      // getconf missing: Linux's USER_HZ is 100 on every common architecture
    }
    clockTicksPerSecCached = hz;
  }
  return clockTicksPerSecCached;
}

/** CPU seconds (user + system) a process has used so far, or undefined when it is gone. */
export function processCpuSec(pid: number): number | undefined {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) is in parentheses and may hold spaces: split after it.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state); utime is field 14, stime field 15.
  const utime = Number(rest[14 - 3]);
  const stime = Number(rest[15 - 3]);
  return (utime + stime) / clockTicksPerSec();
}

/** Resident set size in bytes (VmRSS), or undefined when the process is gone. */
export function processRssBytes(pid: number): number | undefined {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(text);
  return m ? Number(m[1]) * 1024 : undefined;
}

/** This process's CPU seconds (user + system). */
export function selfCpuSec(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/**
 * CPU used between start() and stop() by the client (this process) and by each member.
 * A member that dies in between (the failover kill) keeps the last reading taken with
 * sample() before it died.
 */
export class CpuMeter {
  private clientStartSec = 0;
  private readonly memberStartSec: (number | undefined)[] = [];
  private readonly memberLastSec: (number | undefined)[] = [];

  constructor(private readonly pids: readonly (number | undefined)[]) {}

  start(): void {
    this.clientStartSec = selfCpuSec();
    for (let i = 0; i < this.pids.length; i++) {
      const pid = this.pids[i];
      const v = pid === undefined ? undefined : processCpuSec(pid);
      this.memberStartSec[i] = v;
      this.memberLastSec[i] = v;
    }
  }

  /** Takes a reading of every member (call it just before killing one). */
  sample(): void {
    for (let i = 0; i < this.pids.length; i++) {
      const pid = this.pids[i];
      const v = pid === undefined ? undefined : processCpuSec(pid);
      if (v !== undefined) this.memberLastSec[i] = v;
    }
  }

  stop(): { clientSec: number; memberSec: number[] } {
    this.sample();
    const clientSec = selfCpuSec() - this.clientStartSec;
    const memberSec = this.pids.map((_, i) => {
      const a = this.memberStartSec[i];
      const b = this.memberLastSec[i];
      return a === undefined || b === undefined ? 0 : b - a;
    });
    return { clientSec, memberSec };
  }
}
