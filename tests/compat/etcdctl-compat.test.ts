// etcdctl compatibility: ONE scripted etcdctl session (tests/compat/etcdctl-session.ts)
// runs against a fresh 3-member Debian etcd cluster and a fresh 3-member skiff cluster,
// and the transcripts must be equal once what must differ between two clusters (ids,
// terms, timings, ports, sizes, versions) is normalized (tests/compat/normalize.ts).
// Every difference left is a bug in skiff, or an explicit, commented exception in
// normalize.ts. etcd/etcdctl missing: a failure on CI (CI=true), a skip with a warning
// elsewhere.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { requireTool, StoreCluster, StoreKind } from '../helpers/cluster';
import { stopAllEtcdctl } from '../helpers/etcdctl';
import { COMPAT_FLAGS, SESSION } from './etcdctl-session';
import { SessionRunner, TranscriptEntry } from './session';

jest.setTimeout(90_000);

const available = requireTool('etcdctl', 'apt-get install etcd-client') && requireTool('etcd', 'apt-get install etcd-server');

(available ? describe : describe.skip)('one etcdctl session against etcd 3.4 and skiff', () => {
  const clusters: StoreCluster[] = [];
  const transcripts = new Map<StoreKind, TranscriptEntry[]>();

  beforeAll(async () => {
    // Started together, one at a time per kind; each is stopped in afterAll even if the other failed.
    const runs = await Promise.allSettled(
      (['etcd', 'skiff'] as StoreKind[]).map(async (kind) => {
        const c = await StoreCluster.start({ kind, members: 3, flags: COMPAT_FLAGS });
        clusters.push(c);
        transcripts.set(kind, await new SessionRunner(c).run(SESSION));
      }),
    );
    // Both ran to their end (nothing left running for afterAll to race with); then report.
    for (const r of runs) if (r.status === 'rejected') throw r.reason;
    // For a side-by-side look: COMPAT_TRANSCRIPT_DIR=/tmp/x npx jest tests/compat
    const dir = process.env.COMPAT_TRANSCRIPT_DIR;
    if (dir) {
      fs.mkdirSync(dir, { recursive: true });
      for (const [kind, t] of transcripts) fs.writeFileSync(path.join(dir, `${kind}.txt`), t.map((e) => `$ ${e.step}\n${e.out}\n`).join('\n'));
    }
  }, 80_000);

  afterAll(async () => {
    await stopAllEtcdctl();
    await Promise.all(clusters.map((c) => c.stop()));
  });

  test('the session ran every step on both', () => {
    expect(transcripts.get('etcd')!.length).toBe(transcripts.get('skiff')!.length);
    expect(transcripts.get('etcd')!.length).toBeGreaterThan(150);
  });

  test('skiff answers exactly as etcd does, step by step', () => {
    const etcd = transcripts.get('etcd')!;
    const skiff = transcripts.get('skiff')!;
    // Step by step, so that a difference names its command; all differences at once.
    const diffs = etcd.flatMap((e, i) => (skiff[i]?.step === e.step && skiff[i]?.out === e.out ? [] : [{ step: e.step, etcd: e.out, skiff: skiff[i]?.out, skiffStep: skiff[i]?.step }]));
    expect(diffs).toEqual([]);
  });
});
