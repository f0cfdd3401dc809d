// TLS on the client and peer listeners, from etcd's flags (--cert-file, --key-file,
// --trusted-ca-file, --client-cert-auth and their --peer-* twins), as etcd 3.4 does it:
//
//   * An https:// listen URL needs a certificate and key; an http:// one ignores them.
//   * The server asks for and verifies client certificates when a trusted CA file is given
//     or --client-cert-auth is on (etcd's TLSInfo.ServerConfig: RequireAndVerifyClientCert
//     in both cases). Only --client-cert-auth makes a verified certificate's CN the user
//     name for auth (see auth-admin.ts).
//   * Connections this member opens (to peers; to the leader's client URL when forwarding)
//     verify the other side against the trusted CA with the URL's host as the name (an IP
//     host needs an IP SAN) and present this member's own certificate.
//   * --auto-tls / --peer-auto-tls without certificate files: a self-signed certificate
//     (self-cert.ts); connections made with it skip verification, as etcd's do.
//   * The metrics URLs stay plain http.

import * as grpc from '@grpc/grpc-js';
import * as fs from 'node:fs';
import type * as tls from 'node:tls';
import { ConfigError } from './config';

/** One side's TLS flags (client or peer); empty strings for unset files. */
export interface TlsFiles {
  certFile: string;
  keyFile: string;
  trustedCaFile: string;
  /** --client-cert-auth / --peer-client-cert-auth. */
  clientCertAuth: boolean;
  /** Made by --auto-tls / --peer-auto-tls: the other side's certificate is not verified (as etcd). */
  selfSigned?: boolean;
}

export const noTls: TlsFiles = Object.freeze({ certFile: '', keyFile: '', trustedCaFile: '', clientCertAuth: false });

export function hasCert(t: TlsFiles | undefined): t is TlsFiles {
  return t !== undefined && t.certFile !== '' && t.keyFile !== '';
}

function isSecure(url: string): boolean {
  const p = new URL(url).protocol;
  return p === 'https:' || p === 'unixs:';
}

/** etcd's refusals at start for TLS listen URLs without certificates. */
export function checkTlsUrls(opts: { listenClientUrls: string[]; listenPeerUrls: string[]; clientTls?: TlsFiles; peerTls?: TlsFiles }): void {
  for (const u of opts.listenClientUrls) {
    if (isSecure(u) && !hasCert(opts.clientTls)) throw new ConfigError(`TLS key/cert (--cert-file, --key-file) must be provided for client url ${u} with HTTPS scheme`);
  }
  for (const u of opts.listenPeerUrls) {
    if (isSecure(u) && !hasCert(opts.peerTls)) throw new ConfigError(`cannot listen on TLS for ${new URL(u).host}: KeyFile and CertFile are not presented (--peer-cert-file, --peer-key-file)`);
  }
  for (const t of [opts.clientTls, opts.peerTls]) {
    if (!t) continue;
    if ((t.certFile === '') !== (t.keyFile === '')) throw new ConfigError('both a certificate file and a key file must be given (--cert-file/--key-file, --peer-cert-file/--peer-key-file)');
    for (const f of [t.certFile, t.keyFile, t.trustedCaFile]) {
      if (f !== '' && !fs.existsSync(f)) throw new ConfigError(`open ${f}: no such file or directory`);
    }
  }
}

function read(file: string): Buffer | null {
  return file === '' ? null : fs.readFileSync(file);
}

/** Credentials for a listener at `url`: TLS for https, plaintext for http. */
export function serverCredentials(url: string, tls: TlsFiles | undefined): grpc.ServerCredentials {
  if (!isSecure(url) || !hasCert(tls)) return grpc.ServerCredentials.createInsecure();
  const requireClientCert = tls.trustedCaFile !== '' || tls.clientCertAuth;
  return grpc.ServerCredentials.createSsl(read(tls.trustedCaFile), [{ cert_chain: fs.readFileSync(tls.certFile), private_key: fs.readFileSync(tls.keyFile) }], requireClientCert);
}

/** TLS options for the client listener at `url` (our own gRPC server); undefined for plaintext. */
export function serverTlsOptions(url: string, t: TlsFiles | undefined): tls.TlsOptions | undefined {
  if (!isSecure(url) || !hasCert(t)) return undefined;
  const requireClientCert = t.trustedCaFile !== '' || t.clientCertAuth;
  const ca = read(t.trustedCaFile);
  return {
    cert: fs.readFileSync(t.certFile),
    key: fs.readFileSync(t.keyFile),
    ...(ca === null ? {} : { ca }),
    requestCert: requireClientCert,
    rejectUnauthorized: requireClientCert,
  };
}

/**
 * TLS options for the connections the peer transport opens to https peers: the same
 * verification and certificate as channelCredentials below.
 */
export function connectionTlsOptions(t: TlsFiles | undefined): tls.ConnectionOptions {
  const c = t ?? noTls;
  const own = hasCert(c) ? { cert: fs.readFileSync(c.certFile), key: fs.readFileSync(c.keyFile) } : {};
  if (c.selfSigned) return { ...own, rejectUnauthorized: false };
  const ca = read(c.trustedCaFile);
  return { ...own, ...(ca === null ? {} : { ca }) };
}

/**
 * Credentials for a connection this member opens to `url`: TLS for https (verifying the
 * server against the trusted CA, presenting this member's certificate), plaintext for http.
 */
export function channelCredentials(url: string, tls: TlsFiles | undefined): grpc.ChannelCredentials {
  if (!isSecure(url)) return grpc.credentials.createInsecure();
  const t = tls ?? noTls;
  if (t.selfSigned) return grpc.credentials.createSsl(null, null, null, { rejectUnauthorized: false });
  return t.certFile !== '' && t.keyFile !== '' ? grpc.credentials.createSsl(read(t.trustedCaFile), fs.readFileSync(t.keyFile), fs.readFileSync(t.certFile)) : grpc.credentials.createSsl(read(t.trustedCaFile));
}

/**
 * Credentials for a call this member makes to another member's client URL (a forwarded
 * keep-alive or membership change): this member's client certificate, and the client
 * trusted CA to verify the other member, or the peer trusted CA when no client CA is set
 * (server-only client TLS, where the members' certificates usually share the peers' CA).
 */
export function memberClientCredentials(url: string, client: TlsFiles | undefined, peer: TlsFiles | undefined): grpc.ChannelCredentials {
  const c = client ?? noTls;
  if (c.trustedCaFile !== '' || c.selfSigned || !peer || peer.trustedCaFile === '') return channelCredentials(url, c);
  return channelCredentials(url, { ...c, trustedCaFile: peer.trustedCaFile });
}
