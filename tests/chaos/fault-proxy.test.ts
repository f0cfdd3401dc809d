// The fault proxy between a real process and an echo server: it tells who connected, and
// passes, delays, black-holes and cuts per directed pair.

import { ChildProcess, spawn } from 'node:child_process';
import * as net from 'node:net';
import { FaultNetwork } from '../../src/chaos/fault-proxy';
import { socketOwnersAvailable } from '../../src/chaos/socket-owner';

// Elsewhere than Linux a skip; in CI (CI=true) these run, and fail if /proc is missing.
const describeLinux = socketOwnersAvailable() || process.env.CI === 'true' ? describe : describe.skip;

/** A process that connects to port, sends a line every 20 ms and prints how many bytes came back. */
function pinger(port: number): { proc: ChildProcess; received(): number; closed(): boolean } {
  const script = `
    const net = require('node:net');
    let got = 0;
    const s = net.connect(${port}, '127.0.0.1');
    s.on('data', (d) => { got += d.length; });
    s.on('error', () => {});
    s.on('close', () => { console.log('closed'); process.exit(0); });
    setInterval(() => { s.write('ping\\n'); console.log('got ' + got); }, 20);
  `;
  const proc = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let received = 0;
  let closed = false;
  let buf = '';
  proc.stdout?.on('data', (d: Buffer) => {
    buf += d.toString();
    const lines = buf.split('\n');
    buf = lines.pop() ?? '';
    for (const l of lines) {
      if (l === 'closed') closed = true;
      else if (l.startsWith('got ')) received = Number(l.slice(4));
    }
  });
  return { proc, received: () => received, closed: () => closed };
}

async function waitFor(cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describeLinux('fault proxy', () => {
  let echo: net.Server;
  let echoPort: number;
  let network: FaultNetwork;
  let proxyPort: number;
  const procs: ChildProcess[] = [];

  beforeEach(async () => {
    echo = net.createServer((s) => {
      s.on('error', () => {});
      s.pipe(s);
    });
    echoPort = await new Promise<number>((r) => echo.listen(0, '127.0.0.1', () => r((echo.address() as net.AddressInfo).port)));
    network = new FaultNetwork();
    proxyPort = await network.addProxy(0, echoPort);
  });

  afterEach(async () => {
    for (const p of procs.splice(0)) if (p.exitCode === null) p.kill('SIGKILL');
    await network.close();
    await new Promise<void>((r) => echo.close(() => r()));
  });

  function startMember(member: number): ReturnType<typeof pinger> {
    const p = pinger(proxyPort);
    procs.push(p.proc);
    network.setPid(member, p.proc.pid);
    return p;
  }

  test('passes bytes both ways for a known process', async () => {
    const p = startMember(1);
    await waitFor(() => p.received() > 50);
    expect(network.stats.connections).toBe(1);
  });

  test('refuses a connection from a process it does not know', async () => {
    const p = pinger(proxyPort);
    procs.push(p.proc);
    await waitFor(() => p.closed());
    expect(network.stats.unidentified).toBe(1);
  });

  test('drop holds the bytes of one direction until the rule is lifted', async () => {
    const p = startMember(1);
    await waitFor(() => p.received() > 0);
    network.setRule(0, 1, { kind: 'drop' }); // the echoes (0 -> 1) stop
    await sleep(100);
    const before = p.received();
    await sleep(300);
    expect(p.received()).toBe(before);
    network.heal();
    await waitFor(() => p.received() >= before + 5 * 15); // the held echoes arrive
    expect(p.closed()).toBe(false);
  });

  test('delay holds each chunk for the delay', async () => {
    const p = startMember(1);
    await waitFor(() => p.received() > 0);
    network.setRule(1, 0, { kind: 'delay', delayMs: 400, jitterMs: 0 });
    await sleep(100);
    const before = p.received();
    await sleep(200);
    expect(p.received() - before).toBeLessThanOrEqual(5 * 2);
    await waitFor(() => p.received() > before + 5 * 10, 3000);
  });

  test('cut resets the connection and refuses new ones', async () => {
    const p = startMember(1);
    await waitFor(() => p.received() > 0);
    network.partition([[0], [1]], { kind: 'cut' });
    await waitFor(() => p.closed());
    const q = startMember(1);
    await waitFor(() => q.closed());
    expect(network.stats.refused).toBe(1);
    network.heal();
    const r = startMember(1);
    await waitFor(() => r.received() > 0);
  });
});
