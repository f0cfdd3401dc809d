// Normalizing etcdctl output so that a transcript from etcd and one from skiff compare
// equal when the two behave the same. Only what must differ between two clusters is
// replaced: cluster and member ids, lease ids, raft terms and indexes, timings, ports,
// database sizes, version strings. Everything else (revisions, keys, values, counts, error
// texts, exit codes, field presence) is left as printed.
//
// Ids are replaced by stable placeholders: members by name (<id:m1>), the cluster by
// <cluster>, leases by order of first appearance in the session (<lease:1>, <lease:2>...),
// which is the same for both clusters since they run the same session.

export interface MemberIdentity {
  name: string;
  /** Decimal, exactly as etcdctl prints it (etcd's ids do not fit in a JS number). */
  id: bigint;
  clientUrl: string;
  peerUrl: string;
}

/** Everything one cluster's outputs are normalized against; lease ids are learned as they appear. */
export class IdTable {
  private readonly leases = new Map<bigint, string>();

  constructor(
    readonly clusterId: bigint,
    readonly members: MemberIdentity[],
  ) {}

  /** The cluster and member ids as printed by `member list -w json` (read from the text: they exceed 2^53). */
  static fromMemberListJson(text: string, urls: { name: string; clientUrl: string; peerUrl: string }[]): IdTable {
    const cluster = /"cluster_id":(\d+)/.exec(text);
    if (!cluster) throw new Error(`no cluster_id in ${text}`);
    const members: MemberIdentity[] = [];
    for (const m of text.matchAll(/\{"ID":(\d+),"name":"([^"]*)"/g)) {
      const u = urls.find((x) => x.name === m[2]);
      if (!u) throw new Error(`member ${m[2]} is not one the harness started`);
      members.push({ name: m[2], id: BigInt(m[1]), clientUrl: u.clientUrl, peerUrl: u.peerUrl });
    }
    if (members.length !== urls.length) throw new Error(`expected ${urls.length} members in ${text}`);
    return new IdTable(BigInt(cluster[1]), members);
  }

  private isKnown(id: bigint): boolean {
    return id === 0n || id === this.clusterId || this.members.some((m) => m.id === id);
  }

  /** Learns the lease ids an output mentions, in order of appearance. */
  learnLeases(text: string): void {
    const found: { at: number; id: bigint }[] = [];
    const add = (at: number, id: bigint): void => {
      if (!this.isKnown(id)) found.push({ at, id });
    };
    for (const m of text.matchAll(/\blease ([0-9a-f]{16})\b/g)) add(m.index!, BigInt(`0x${m[1]}`));
    // `lease list`: one id per line after "found N leases".
    const list = /^found \d+ leases\n((?:[0-9a-f]{16}\n)*)/m.exec(text);
    if (list) for (const m of list[1].matchAll(/[0-9a-f]{16}/g)) add(list.index + m.index!, BigInt(`0x${m[0]}`));
    for (const m of text.matchAll(/"(?:lease|ID|id)":(\d+)/g)) add(m.index!, BigInt(m[1]));
    for (const m of text.matchAll(/"Lease" : (\d+)/g)) add(m.index!, BigInt(m[1]));
    // Lock and election keys: <name>/<lease id in hex>.
    for (const m of text.matchAll(/\b(?:lk|el)\/([0-9a-f]+)\b/g)) add(m.index!, BigInt(`0x${m[1]}`));
    found.sort((a, b) => a.at - b.at);
    for (const f of found) if (!this.leases.has(f.id)) this.leases.set(f.id, `<lease:${this.leases.size + 1}>`);
  }

  leaseIds(): bigint[] {
    return [...this.leases.keys()];
  }

  /** Replaces ids, addresses, timings and sizes in one output. */
  normalize(text: string): string {
    this.learnLeases(text);
    let s = text;
    // etcdctl's client log lines: timestamp and client instance.
    s = s.replace(/"ts":"[^"]*"/g, '"ts":"<ts>"');
    s = s.replace(/client-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, 'client-<uuid>');
    for (const m of this.members) {
      const client = m.clientUrl.replace('http://', '');
      const peer = m.peerUrl.replace('http://', '');
      s = s.split(m.clientUrl).join(`<client-url:${m.name}>`).split(client).join(`<client:${m.name}>`);
      s = s.split(m.peerUrl).join(`<peer-url:${m.name}>`).split(peer).join(`<peer:${m.name}>`);
    }
    for (const [id, ph] of this.leases) {
      const hex = id.toString(16);
      s = s.replace(new RegExp(`\\b${hex.padStart(16, '0')}\\b`, 'g'), ph);
      s = s.replace(new RegExp(`\\b(lk|el)/${hex}\\b`, 'g'), `$1/${ph}`);
      s = s.replace(new RegExp(`"(lease|ID|id)":${id}\\b`, 'g'), `"$1":${ph}`);
      s = s.replace(new RegExp(`"Lease" : ${id}\\b`, 'g'), `"Lease" : ${ph}`);
    }
    // Headers come from whichever member etcdctl's balancer picked: any member.
    s = s.replace(/"member_id":\d+/g, '"member_id":<member>').replace(/"MemberID" : \d+/g, '"MemberID" : <member>');
    s = s.replace(/"leader":\d+/g, '"leader":<leader>');
    for (const m of this.members) {
      s = s.replace(new RegExp(`\\b${m.id}\\b`, 'g'), `<id:${m.name}>`);
      s = s.replace(new RegExp(`\\b${m.id.toString(16)}\\b`, 'g'), `<id:${m.name}>`);
    }
    s = s.replace(new RegExp(`\\b${this.clusterId}\\b`, 'g'), '<cluster>');
    s = s.replace(/"raft_term":\d+/g, '"raft_term":<term>').replace(/"RaftTerm" : \d+/g, '"RaftTerm" : <term>');
    // Status: raft progress, sizes and the server version differ by implementation.
    s = s.replace(/"raftTerm":\d+/g, '"raftTerm":<term>');
    s = s.replace(/"raftIndex":\d+/g, '"raftIndex":<index>').replace(/"raftAppliedIndex":\d+/g, '"raftAppliedIndex":<index>');
    s = s.replace(/"dbSize":\d+/g, '"dbSize":<size>').replace(/"dbSizeInUse":\d+/g, '"dbSizeInUse":<size>');
    s = s.replace(/"version":"\d+\.\d+\.\d+"/g, '"version":"<version>"');
    // Timings.
    s = s.replace(/took = [\d.]+(µs|ms|s)\b/g, 'took = <t>').replace(/"took":"[^"]*"/g, '"took":"<t>"');
    // A lease's remaining TTL depends on when it is asked (an expired one's -1 stays).
    s = s.replace(/remaining\(\d+s\)/g, 'remaining(<ttl>)').replace(/"ttl":\d+/g, '"ttl":<ttl>');
    // Exception: the gRPC layer's own "message too big" text is grpc-go's in etcd and
    // grpc-js's in skiff (raised inside the HTTP/2 stream decoder, before any skiff code).
    // The code (RESOURCE_EXHAUSTED) and the sizes must still agree.
    s = s.replace(/(?:grpc: received|Received) message larger than max \((\d+) vs\.? (\d+)\)/g, '<grpc: received message larger than max ($1 vs. $2)>');
    // Exception: HashKV's hash is over each implementation's own storage encoding (etcd's
    // bolt keys and protobuf values); only whether members agree can be compared.
    const hashes: string[] = [];
    s = s.replace(/"hash":(\d+)/g, (_m, h: string) => {
      if (!hashes.includes(h)) hashes.push(h);
      return `"hash":<hash:${hashes.indexOf(h) + 1}>`;
    });
    return canonicalTables(s);
  }
}

/**
 * etcdctl's tables pad columns to their widest cell, and placeholders change widths:
 * borders become "+", rows their trimmed cells joined by " | ".
 */
function canonicalTables(s: string): string {
  return s
    .split('\n')
    .map((line) => {
      if (/^\+[-+]+\+$/.test(line)) return '+';
      if (/^\|.*\|$/.test(line)) return `| ${line.slice(1, -1).split('|').map((c) => c.trim()).join(' | ')} |`;
      return line;
    })
    .join('\n');
}

// ---- Canonical orders: where etcd itself promises no order (or orders by ids that differ) ----

/** Sorts all lines (member list, endpoint health). */
export function sortLines(s: string): string {
  const lines = s.split('\n');
  const last = lines[lines.length - 1] === '' ? lines.pop() : undefined;
  lines.sort();
  if (last !== undefined) lines.push(last);
  return lines.join('\n');
}

/** Sorts a table's data rows (between the second and last borders), keeping the header. */
export function sortTableRows(s: string): string {
  const lines = s.split('\n');
  const borders = lines.flatMap((l, i) => (l === '+' ? [i] : []));
  if (borders.length < 3) return s;
  const [, start, end] = borders;
  const rows = lines.slice(start + 1, end).sort();
  return [...lines.slice(0, start + 1), ...rows, ...lines.slice(end)].join('\n');
}

/**
 * `lease timetolive --keys`: etcd lists a lease's keys in Go map order (random); sorted
 * here, in the simple form and in -w json (base64 keys).
 */
export function sortLeaseKeys(s: string): string {
  return s
    .replace(/attached keys\(\[([^\]]*)\]\)/g, (_m, keys: string) => `attached keys([${keys.split(' ').sort().join(' ')}])`)
    .replace(/"keys":\[([^\]]*)\]/g, (_m, keys: string) => `"keys":[${keys.split(',').sort().join(',')}]`);
}

/** `lease list`: the ids after the count line, sorted (etcd orders by expiry, and a follower's by map order). */
export function sortLeaseList(s: string): string {
  const m = /^(found \d+ leases\n)([\s\S]*)$/.exec(s);
  return m ? m[1] + sortLines(m[2]) : s;
}

/** A JSON array or an object's array field, sorted by a key of its elements. */
export function sortJson(s: string, opts: { field?: string; by: string }): string {
  const lines = s.split('\n');
  return lines
    .map((line) => {
      if (!/^[[{]["{]/.test(line)) return line;
      const j = JSON.parse(line.replace(/:(<[^>]+>)/g, ':"$1"'));
      const arr = opts.field ? j[opts.field] : j;
      if (Array.isArray(arr)) arr.sort((a: Record<string, unknown>, b: Record<string, unknown>) => String(a[opts.by]).localeCompare(String(b[opts.by])));
      return JSON.stringify(j);
    })
    .join('\n');
}

/**
 * endpoint status: which member leads differs between two clusters. The IS LEADER column
 * (table), the is-leader field (simple) become <bool>, and a line says how many lead.
 */
export function canonLeader(s: string): string {
  let leaders = 0;
  const out = s
    .split('\n')
    .map((line) => {
      if (line.startsWith('|') && !line.includes('IS LEADER')) {
        const cells = line.split('|').slice(1, -1).map((c) => c.trim());
        if (cells.length === 10 && (cells[4] === 'true' || cells[4] === 'false')) {
          if (cells[4] === 'true') leaders++;
          cells[4] = '<bool>';
          // DB SIZE is humanized ("20 kB"): its own placeholder; RAFT TERM/INDEX likewise.
          cells[2] = '<version>';
          cells[3] = '<size>';
          cells[6] = '<term>';
          cells[7] = '<index>';
          cells[8] = '<index>';
          return `| ${cells.join(' | ')} |`;
        }
      }
      const simple = /^(<client:m\d>), (<id:m\d>), [\d.]+, [^,]+, (true|false), (true|false), \d+, \d+, \d+, (.*)$/.exec(line);
      if (simple) {
        if (simple[3] === 'true') leaders++;
        return `${simple[1]}, ${simple[2]}, <version>, <size>, <bool>, ${simple[4]}, <term>, <index>, <index>, ${simple[5]}`;
      }
      return line;
    })
    .join('\n');
  return `${out}[leaders: ${leaders}]\n`;
}
