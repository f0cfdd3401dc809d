// Issue 4, TLS: real 3-process clusters with etcd's TLS flags, driven by Debian's etcdctl
// with --cacert/--cert/--key. The tests make their own CA and certificates with openssl
// (member certificate with the IP SAN 127.0.0.1, client certificates whose CN is a user).
//
//   * server-only TLS for clients (--cert-file/--key-file) and mutual TLS between peers
//     (--peer-client-cert-auth): etcdctl with the CA works, without it or over plaintext it
//     does not, and a peer connection without a trusted client certificate is refused;
//   * mutual TLS for clients (--trusted-ca-file --client-cert-auth): a client without a
//     certificate, or with one from another CA, is refused; with auth enabled the
//     certificate's CN is the user; a token (--user) takes precedence; calls a follower
//     forwards to the leader (lease keep-alive, member add) go over TLS too.
//
// The same checks run against etcd 3.4 where it is installed, to show the outputs agree.
// openssl, etcdctl or the build missing: a failure on CI (CI=true), a skip with a warning
// elsewhere.

import { X509Certificate } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { hasProgram, requireTool, StoreCluster, StoreKind } from '../helpers/cluster';
import { etcdctlOk, EtcdctlResult, runEtcdctl, stopAllEtcdctl } from '../helpers/etcdctl';
import { makeTestCerts, TestCerts } from '../helpers/tls-certs';

jest.setTimeout(90_000);

const available = requireTool('etcdctl', 'apt-get install etcd-client') && requireTool('openssl', 'apt-get install openssl');
const kinds: StoreKind[] = hasProgram('etcd') && process.env.SKIFF_TLS_SKIP_ETCD !== '1' ? ['skiff', 'etcd'] : ['skiff'];
const describeIf = available ? describe : describe.skip;

/** Flags for a connection that must fail fast. */
const FAST = ['--dial-timeout=1s', '--command-timeout=2s'];

function lastLine(r: EtcdctlResult): string | undefined {
  return r.stderr.trimEnd().split('\n').pop();
}

/** Opens a TLS connection to host:port and reports how it ends within timeoutMs: 'open' if it stays up. */
function probeTls(port: number, opts: tls.ConnectionOptions, timeoutMs = 2000): Promise<string> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ALPNProtocols: ['h2'], ...opts });
    const done = (how: string): void => {
      clearTimeout(t);
      socket.destroy();
      resolve(how);
    };
    const t = setTimeout(() => done('open'), timeoutMs);
    socket.on('error', (e: NodeJS.ErrnoException) => done(`error ${e.code ?? e.message}`));
    socket.on('close', () => done('closed'));
    // HTTP/2 client preface: a server that accepted the handshake answers with its settings.
    socket.on('secureConnect', () => socket.write('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'));
  });
}

function tlsFlags(c: TestCerts, client: { trustedCa: boolean; certAuth: boolean }): string[] {
  return [
    `--cert-file=${c.member.cert}`,
    `--key-file=${c.member.key}`,
    ...(client.trustedCa ? [`--trusted-ca-file=${c.ca}`] : []),
    ...(client.certAuth ? ['--client-cert-auth'] : []),
    `--peer-cert-file=${c.member.cert}`,
    `--peer-key-file=${c.member.key}`,
    `--peer-trusted-ca-file=${c.ca}`,
    '--peer-client-cert-auth',
  ];
}

describeIf.each(kinds)('TLS on a 3-member %s cluster', (kind) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `skiff-tls-${kind}-`));
  let certs: TestCerts;

  beforeAll(() => {
    certs = makeTestCerts(path.join(dir, 'certs'), ['alice', 'root']);
  });

  afterAll(async () => {
    await stopAllEtcdctl();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  describe('server-only TLS for clients, mutual TLS between peers', () => {
    let cluster: StoreCluster | undefined;
    let ep = '';
    const withCa = (): string[] => [`--cacert=${certs.ca}`];

    beforeAll(async () => {
      cluster = await StoreCluster.start({ kind, members: 3, clientScheme: 'https', peerScheme: 'https', flags: tlsFlags(certs, { trustedCa: false, certAuth: false }) });
      ep = cluster.endpoints();
    }, 30_000);

    afterAll(async () => {
      await cluster?.stop();
    });

    test('etcdctl with --cacert works on every member; the cluster advertises https URLs', async () => {
      expect(await etcdctlOk(ep, [...withCa(), 'put', 'tls-a', '1'])).toBe('OK\n');
      for (const m of cluster!.members) expect(await etcdctlOk(m.clientUrl, [...withCa(), 'get', 'tls-a', '--print-value-only'])).toBe('1\n');
      const members = await etcdctlOk(ep, [...withCa(), 'member', 'list']);
      for (const m of cluster!.members) expect(members).toContain(`, started, ${m.name}, ${m.peerUrl}, ${m.clientUrl}, false`);
      // A client certificate is not needed (no trusted CA for clients), but accepted.
      const alice = certs.clients.alice;
      expect(await etcdctlOk(ep, [...withCa(), `--cert=${alice.cert}`, `--key=${alice.key}`, 'get', 'tls-a', '--print-value-only'])).toBe('1\n');
      // Keep-alives reach the leader from every member (followers forward them over TLS).
      const grant = await etcdctlOk(ep, [...withCa(), 'lease', 'grant', '30']);
      const id = /^lease ([0-9a-f]{16}) granted/.exec(grant)![1];
      for (const m of cluster!.members) expect(await etcdctlOk(m.clientUrl, [...withCa(), 'lease', 'keep-alive', '--once', id])).toBe(`lease ${id} keepalived with TTL(30)\n`);
    });

    test('without the CA, or in plaintext, a client gets nowhere', async () => {
      const [noCa, plain] = await Promise.all([
        runEtcdctl(cluster!.members[0].clientUrl, [...FAST, 'get', 'tls-a']),
        runEtcdctl(cluster!.members[0].clientUrl.replace('https://', 'http://'), [...FAST, 'get', 'tls-a']),
      ]);
      expect({ code: noCa.code, stdout: noCa.stdout, last: lastLine(noCa) }).toEqual({ code: 1, stdout: '', last: 'Error: context deadline exceeded' });
      expect(plain.code).not.toBe(0);
      expect(plain.stdout).toBe('');
    });

    test('a peer connection without a trusted client certificate is refused', async () => {
      const port = Number(new URL(cluster!.members[1].peerUrl).port);
      const ca = fs.readFileSync(certs.ca);
      const [none, stranger] = await Promise.all([probeTls(port, { ca }), probeTls(port, { ca, cert: fs.readFileSync(certs.stranger.cert), key: fs.readFileSync(certs.stranger.key) })]);
      expect(none).toMatch(/^(error|closed)/);
      expect(stranger).toMatch(/^(error|closed)/);
      // The member's own certificate is accepted (skiff's peer port speaks gRPC; etcd's
      // rafthttp closes on a gRPC preface, so there only the refusals are compared).
      if (kind === 'skiff') expect(await probeTls(port, { ca, cert: fs.readFileSync(certs.member.cert), key: fs.readFileSync(certs.member.key) })).toBe('open');
    });

    test('a restarted member catches up over the peer TLS links', async () => {
      // A follower goes down (a write forwarded to a leader that just died would wait for its timeout).
      const status = JSON.parse(await etcdctlOk(ep, [...withCa(), 'endpoint', 'status', '-w', 'json'])) as { Endpoint: string; Status: { header: { member_id: number }; leader: number } }[];
      const followers = status.filter((st) => st.Status.header.member_id !== st.Status.leader).map((st) => cluster!.members.findIndex((m) => m.clientUrl === st.Endpoint));
      const [down, up] = followers;
      await cluster!.kill(down);
      expect(await etcdctlOk(cluster!.members[up].clientUrl, [...withCa(), 'put', 'tls-b', '2'])).toBe('OK\n');
      cluster!.spawnMember(down);
      await cluster!.waitHealthy();
      const deadline = Date.now() + 10_000;
      let got = '';
      while (Date.now() < deadline) {
        got = await etcdctlOk(cluster!.members[down].clientUrl, [...withCa(), 'get', 'tls-b', '--print-value-only', '--consistency=s']);
        if (got === '2\n') break;
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(got).toBe('2\n');
    });
  });

  describe('--auto-tls and --peer-auto-tls: self-signed certificates made at start', () => {
    let cluster: StoreCluster | undefined;
    const skipVerify = ['--insecure-transport=false', '--insecure-skip-tls-verify'];

    beforeAll(async () => {
      cluster = await StoreCluster.start({ kind, members: 3, clientScheme: 'https', peerScheme: 'https', flags: ['--auto-tls', '--peer-auto-tls'] });
    }, 30_000);

    afterAll(async () => {
      await cluster?.stop();
    });

    test('members talk TLS with unverified self-signed certificates; so may clients', async () => {
      const ep = cluster!.endpoints();
      expect(await etcdctlOk(ep, [...skipVerify, 'put', 'auto', '1'])).toBe('OK\n');
      for (const m of cluster!.members) expect(await etcdctlOk(m.clientUrl, [...skipVerify, 'get', 'auto', '--print-value-only'])).toBe('1\n');
      // Keep-alive on a follower is forwarded to the leader over the same kind of TLS.
      const grant = await etcdctlOk(ep, [...skipVerify, 'lease', 'grant', '30']);
      const id = /^lease ([0-9a-f]{16}) granted/.exec(grant)![1];
      for (const m of cluster!.members) expect(await etcdctlOk(m.clientUrl, [...skipVerify, 'lease', 'keep-alive', '--once', id])).toBe(`lease ${id} keepalived with TTL(30)\n`);
      const verifying = await runEtcdctl(ep, [...FAST, 'get', 'auto']);
      expect({ code: verifying.code, last: lastLine(verifying) }).toEqual({ code: 1, last: 'Error: context deadline exceeded' });
      for (const side of ['client', 'peer']) {
        const cert = new X509Certificate(fs.readFileSync(path.join(cluster!.members[0].dataDir, 'fixtures', side, 'cert.pem')));
        expect(cert.subjectAltName).toContain('IP Address:127.0.0.1');
      }
    });
  });

  describe('mutual TLS for clients; the certificate CN is the auth user', () => {
    let cluster: StoreCluster | undefined;
    let ep = '';
    const as = (cn: 'alice' | 'root'): string[] => [`--cacert=${certs.ca}`, `--cert=${certs.clients[cn].cert}`, `--key=${certs.clients[cn].key}`];

    beforeAll(async () => {
      cluster = await StoreCluster.start({ kind, members: 3, clientScheme: 'https', peerScheme: 'https', flags: tlsFlags(certs, { trustedCa: true, certAuth: true }) });
      ep = cluster.endpoints();
    }, 30_000);

    afterAll(async () => {
      await cluster?.stop();
    });

    test('a client without a certificate, or with one from another CA, is refused', async () => {
      const [noCert, stranger] = await Promise.all([
        runEtcdctl(ep, [...FAST, `--cacert=${certs.ca}`, 'get', 'x']),
        runEtcdctl(ep, [...FAST, `--cacert=${certs.ca}`, `--cert=${certs.stranger.cert}`, `--key=${certs.stranger.key}`, 'get', 'x']),
      ]);
      expect({ code: noCert.code, stdout: noCert.stdout, last: lastLine(noCert) }).toEqual({ code: 1, stdout: '', last: 'Error: context deadline exceeded' });
      expect({ code: stranger.code, stdout: stranger.stdout, last: lastLine(stranger) }).toEqual({ code: 1, stdout: '', last: 'Error: context deadline exceeded' });
      expect(await etcdctlOk(ep, [...as('alice'), 'put', 'mtls', 'ok'])).toBe('OK\n');
    });

    test('with auth enabled, the CN names the user; a token takes precedence', async () => {
      const root = as('root');
      expect(await etcdctlOk(ep, [...root, 'user', 'add', 'root:rootpw'])).toBe('User root created\n');
      expect(await etcdctlOk(ep, [...root, 'user', 'add', 'alice:alicepw'])).toBe('User alice created\n');
      expect(await etcdctlOk(ep, [...root, 'role', 'add', 'mine'])).toBe('Role mine created\n');
      expect(await etcdctlOk(ep, [...root, 'role', 'grant-permission', 'mine', 'readwrite', '--prefix', 'alice/'])).toBe('Role mine updated\n');
      expect(await etcdctlOk(ep, [...root, 'user', 'grant-role', 'alice', 'mine'])).toBe('Role mine is granted to user alice\n');
      expect(await etcdctlOk(ep, [...root, 'auth', 'enable'])).toBe('Authentication Enabled\n');

      // CN=alice, no --user: alice's permissions, on every member.
      for (const m of cluster!.members) expect(await etcdctlOk(m.clientUrl, [...as('alice'), 'put', `alice/${m.name}`, 'v'])).toBe('OK\n');
      const denied = await runEtcdctl(ep, [...as('alice'), 'get', 'mtls']);
      expect({ code: denied.code, last: lastLine(denied) }).toEqual({ code: 1, last: 'Error: etcdserver: permission denied' });
      const adminDenied = await runEtcdctl(ep, [...as('alice'), 'user', 'list']);
      expect({ code: adminDenied.code, last: lastLine(adminDenied) }).toEqual({ code: 1, last: 'Error: etcdserver: permission denied' });
      // CN=root: the root role.
      expect(await etcdctlOk(ep, [...root, 'user', 'list'])).toBe('alice\nroot\n');
      expect(await etcdctlOk(ep, [...root, 'get', 'mtls', '--print-value-only'])).toBe('ok\n');
      // alice's certificate with root's password: the token wins.
      expect(await etcdctlOk(ep, [...as('alice'), '--user', 'root:rootpw', 'get', 'mtls', '--print-value-only'])).toBe('ok\n');
    });

    test('calls forwarded by a follower to the leader go over TLS', async () => {
      const status = JSON.parse(await etcdctlOk(ep, [...as('root'), 'endpoint', 'status', '-w', 'json'])) as { Endpoint: string; Status: { header: { member_id: number }; leader: number } }[];
      const follower = status.find((s) => s.Status.header.member_id !== s.Status.leader)!.Endpoint;
      const grant = await etcdctlOk(follower, [...as('alice'), 'lease', 'grant', '30']);
      const id = /^lease ([0-9a-f]{16}) granted/.exec(grant)![1];
      expect(await etcdctlOk(follower, [...as('alice'), 'lease', 'keep-alive', '--once', id])).toBe(`lease ${id} keepalived with TTL(30)\n`);
      // A learner that never starts: the quorum is unchanged. Added and removed through the follower.
      // (etcd may answer "unhealthy cluster" while it has not heard from every member lately: again.)
      let added = '';
      for (let attempt = 1; added === ''; attempt++) {
        const r = await runEtcdctl(follower, [...as('alice'), '--user', 'root:rootpw', 'member', 'add', 'ghost', '--learner', '--peer-urls=https://127.0.0.1:1']);
        if (r.code === 0) added = r.stdout;
        else if (attempt >= 5 || !r.stderr.includes('unhealthy cluster')) throw new Error(`member add failed: ${r.stderr}`);
        else await new Promise((res) => setTimeout(res, 500));
      }
      // etcdctl prints ids with %16x (space-padded).
      const ghost = /Member +([0-9a-f]+) added to cluster/.exec(added)?.[1];
      expect({ added, ghost: typeof ghost }).toEqual({ added: expect.stringContaining('added to cluster') as unknown, ghost: 'string' });
      expect(await etcdctlOk(follower, [...as('alice'), '--user', 'root:rootpw', 'member', 'remove', ghost!])).toMatch(new RegExp(`^Member +${ghost} removed from cluster +[0-9a-f]+\\n$`));
    });
  });
});
