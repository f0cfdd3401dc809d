// --auto-tls and --peer-auto-tls: a self-signed certificate made at start, as etcd's
// transport.SelfCert does: an ECDSA P-256 key, valid for a year, organization "etcd", the
// listen URLs' hosts as subject alternative names (IPs as IP SANs, names as DNS SANs),
// written to <data-dir>/fixtures/{client,peer}/{cert.pem,key.pem} and reused when there.
// Connections to a member with such a certificate cannot verify it: etcd skips
// verification for them, and so does skiff (TlsFiles.selfSigned).
//
// Node can sign but not build certificates, so the DER is put together here: the few
// ASN.1 types a certificate needs.

import { createPrivateKey, createPublicKey, generateKeyPairSync, KeyObject, randomBytes, sign, X509Certificate } from 'node:crypto';
import * as fs from 'node:fs';
import { isIP } from 'node:net';
import * as path from 'node:path';

export const selfCertLimits = Object.freeze({
  validityMs: 365 * 24 * 3600 * 1000,
  serialBytes: 16,
});

// ---- DER ----

function len(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function tlv(tag: number, content: Buffer): Buffer {
  return Buffer.concat([Buffer.from([tag]), len(content.length), content]);
}

const seq = (...items: Buffer[]): Buffer => tlv(0x30, Buffer.concat(items));
const set = (...items: Buffer[]): Buffer => tlv(0x31, Buffer.concat(items));
const explicit = (n: number, item: Buffer): Buffer => tlv(0xa0 + n, item);
const octets = (b: Buffer): Buffer => tlv(0x04, b);
const bits = (b: Buffer, unusedBits = 0): Buffer => tlv(0x03, Buffer.concat([Buffer.from([unusedBits]), b]));
const bool = (v: boolean): Buffer => tlv(0x01, Buffer.from([v ? 0xff : 0]));
const utf8 = (s: string): Buffer => tlv(0x0c, Buffer.from(s, 'utf8'));

function int(b: Buffer): Buffer {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0 && b[i + 1] < 0x80) i++;
  const v = b.subarray(i);
  return tlv(0x02, v[0] >= 0x80 ? Buffer.concat([Buffer.from([0]), v]) : v);
}

function oid(dotted: string): Buffer {
  const parts = dotted.split('.').map(Number);
  const out: number[] = [parts[0] * 40 + parts[1]];
  for (const p of parts.slice(2)) {
    const group: number[] = [p & 0x7f];
    for (let v = Math.floor(p / 128); v > 0; v = Math.floor(v / 128)) group.unshift(0x80 | (v & 0x7f));
    out.push(...group);
  }
  return tlv(0x06, Buffer.from(out));
}

/** UTCTime (YYMMDDHHMMSSZ) through 2049, GeneralizedTime after, as RFC 5280 asks. */
function time(d: Date): Buffer {
  const iso = d.toISOString().replace(/[-:T]/g, '').slice(0, 14) + 'Z';
  return d.getUTCFullYear() < 2050 ? tlv(0x17, Buffer.from(iso.slice(2))) : tlv(0x18, Buffer.from(iso));
}

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return seq(oid(id), ...(critical ? [bool(true)] : []), octets(value));
}

function ipBytes(ip: string): Buffer {
  if (isIP(ip) === 4) return Buffer.from(ip.split('.').map(Number));
  // IPv6: expand "::" and write eight 16-bit groups.
  const [head, tail] = ip.includes('::') ? ip.split('::') : [ip, undefined];
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

const OID = {
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  organization: '2.5.4.10',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  basicConstraints: '2.5.29.19',
  subjectAltName: '2.5.29.17',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
};

/** A self-signed certificate (PEM) for the hosts, signed with key (EC P-256). */
export function selfSignedCertificate(key: KeyObject, hosts: string[], now = new Date()): string {
  const serial = randomBytes(selfCertLimits.serialBytes);
  serial[0] = (serial[0] & 0x7f) | 0x01;
  const name = seq(set(seq(oid(OID.organization), utf8('etcd'))));
  const sigAlg = seq(oid(OID.ecdsaWithSha256));
  const spki = createPublicKey(key).export({ format: 'der', type: 'spki' });
  const sans = hosts.map((h) => (isIP(h) ? tlv(0x87, ipBytes(h)) : tlv(0x82, Buffer.from(h, 'ascii'))));
  const extensions = [
    // digitalSignature (bit 0) and keyEncipherment (bit 2): 0b10100000, 5 unused bits.
    extension(OID.keyUsage, true, bits(Buffer.from([0xa0]), 5)),
    extension(OID.extKeyUsage, false, seq(oid(OID.serverAuth), oid(OID.clientAuth))),
    extension(OID.basicConstraints, true, seq()),
    ...(sans.length > 0 ? [extension(OID.subjectAltName, false, seq(...sans))] : []),
  ];
  const tbs = seq(
    explicit(0, int(Buffer.from([2]))),
    int(serial),
    sigAlg,
    name,
    seq(time(now), time(new Date(now.getTime() + selfCertLimits.validityMs))),
    name,
    spki,
    explicit(3, seq(...extensions)),
  );
  const signature = sign('sha256', tbs, key);
  const der = seq(tbs, sigAlg, bits(signature));
  const b64 = der.toString('base64').replace(/(.{64})/g, '$1\n');
  return `-----BEGIN CERTIFICATE-----\n${b64.trimEnd()}\n-----END CERTIFICATE-----\n`;
}

/**
 * etcd's SelfCert: cert.pem and key.pem in dir for the hosts of the listen URLs, made once
 * (existing files are kept). Returns their paths.
 */
export function selfCert(dir: string, listenUrls: string[]): { certFile: string; keyFile: string } {
  const certFile = path.join(dir, 'cert.pem');
  const keyFile = path.join(dir, 'key.pem');
  if (fs.existsSync(certFile) && fs.existsSync(keyFile)) {
    // Kept only if it still parses and matches its key.
    try {
      const cert = new X509Certificate(fs.readFileSync(certFile));
      if (cert.checkPrivateKey(createPrivateKey(fs.readFileSync(keyFile)))) return { certFile, keyFile };
    } catch {
      // made again below
    }
  }
  const hosts = [...new Set(listenUrls.map((u) => new URL(u).hostname.replace(/^\[|\]$/g, '')).filter((h) => h !== ''))];
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const pem = selfSignedCertificate(privateKey, hosts);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(keyFile, privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
  fs.writeFileSync(certFile, pem);
  return { certFile, keyFile };
}
