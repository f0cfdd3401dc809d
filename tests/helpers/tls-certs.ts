// Test certificates made with openssl: a CA, a member certificate for 127.0.0.1 (IP SAN,
// usable as server and as client, as etcd's docs advise for peers) and client
// certificates whose CN is a user name. EC P-256 keys: fast to make.

import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface CertPair {
  cert: string;
  key: string;
}

export interface TestCerts {
  dir: string;
  ca: string;
  /** CN "skiff-member", SAN IP:127.0.0.1 and DNS:localhost, serverAuth + clientAuth. */
  member: CertPair;
  /** By CN. */
  clients: Record<string, CertPair>;
  /** Signed by a second CA that the members do not trust. */
  stranger: CertPair;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
}

const EXTENSIONS = `[member]
subjectAltName=IP:127.0.0.1,DNS:localhost
extendedKeyUsage=serverAuth,clientAuth
keyUsage=digitalSignature,keyEncipherment
basicConstraints=CA:FALSE
[client]
extendedKeyUsage=clientAuth
keyUsage=digitalSignature,keyEncipherment
basicConstraints=CA:FALSE
`;

function newKeyAndCsr(dir: string, name: string, cn: string): void {
  openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`], dir);
}

function newCa(dir: string, name: string): void {
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.crt`, '-days', '2', '-subj', `/CN=${name}`], dir);
}

function sign(dir: string, name: string, ca: string, section: 'member' | 'client'): CertPair {
  openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-out', `${name}.crt`, '-days', '2', '-extfile', 'ext.cnf', '-extensions', section], dir);
  return { cert: path.join(dir, `${name}.crt`), key: path.join(dir, `${name}.key`) };
}

/** Makes the certificates in dir (created if needed). */
export function makeTestCerts(dir: string, clientNames: string[]): TestCerts {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'ext.cnf'), EXTENSIONS);
  newCa(dir, 'ca');
  newKeyAndCsr(dir, 'member', 'skiff-member');
  const member = sign(dir, 'member', 'ca', 'member');
  const clients: Record<string, CertPair> = {};
  for (const cn of clientNames) {
    newKeyAndCsr(dir, `client-${cn}`, cn);
    clients[cn] = sign(dir, `client-${cn}`, 'ca', 'client');
  }
  newCa(dir, 'other-ca');
  newKeyAndCsr(dir, 'stranger', 'root');
  const stranger = sign(dir, 'stranger', 'other-ca', 'client');
  return { dir, ca: path.join(dir, 'ca.crt'), member, clients, stranger };
}
