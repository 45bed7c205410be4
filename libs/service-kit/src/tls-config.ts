import * as fs from 'node:fs';
import * as tls from 'node:tls';

/**
 * Transport security of a service and of the clients it makes, from the environment (README "TLS and identities"):
 *
 * | variable               | default  | meaning                                                                      |
 * |------------------------|----------|------------------------------------------------------------------------------|
 * | TLS_CERT_FILE          | –        | PEM certificate (chain) of this service: served to its callers, and shown   |
 * |                        |          | to the services it calls when they ask for a client certificate             |
 * | TLS_KEY_FILE           | –        | its PEM private key (with TLS_CERT_FILE)                                     |
 * | TLS_CA_FILE            | –        | PEM CA bundle that peers' certificates are verified against; clients use TLS |
 * |                        |          | as soon as it is set                                                         |
 * | TLS_CLIENT_AUTH        | none     | none | optional (a verified client certificate names the caller) | require   |
 * |                        |          | (mTLS: a call without one is UNAUTHENTICATED)                                |
 * | TLS_ALLOWED_CLIENTS    | –        | with require: identities (certificate CN or DNS/URI SAN) that may call;      |
 * |                        |          | any other verified client is PERMISSION_DENIED                               |
 * | TLS_RELOAD_INTERVAL_MS | 30000    | how often the files are read again; a changed, valid set serves new          |
 * |                        |          | connections (existing ones keep theirs)                                      |
 * | ALLOW_PLAINTEXT        | –        | 1: serve plaintext on a non-loopback address anyway (refused otherwise)      |
 */
export type ClientAuth = 'none' | 'optional' | 'require';

export interface TlsSettings {
  certFile?: string;
  keyFile?: string;
  caFile?: string;
  clientAuth: ClientAuth;
  /** Identities allowed to call (empty: every verified client, or every client when clientAuth is none). */
  allowedClients: string[];
  reloadIntervalMs: number;
}

/** No TLS: plaintext server and clients (the local stack on loopback). */
export const PLAINTEXT: TlsSettings = { clientAuth: 'none', allowedClients: [], reloadIntervalMs: 30_000 };

/** Invalid TLS settings: the message names the variable. */
export class TlsConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TlsConfigError';
  }
}

function file(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const value = env[name]?.trim();
  if (!value) return undefined;
  try {
    fs.accessSync(value, fs.constants.R_OK);
  } catch {
    throw new TlsConfigError(`${name}: ${value} cannot be read`);
  }
  return value;
}

/** The settings in env; throws TlsConfigError naming the variable when they are inconsistent or a file is invalid. */
export function tlsFromEnv(env: NodeJS.ProcessEnv = process.env): TlsSettings {
  const certFile = file(env, 'TLS_CERT_FILE');
  const keyFile = file(env, 'TLS_KEY_FILE');
  const caFile = file(env, 'TLS_CA_FILE');
  if (Boolean(certFile) !== Boolean(keyFile)) throw new TlsConfigError('TLS_CERT_FILE and TLS_KEY_FILE must be set together');
  if (certFile && !caFile) throw new TlsConfigError('TLS_CA_FILE must be set with TLS_CERT_FILE (peers are verified against it)');
  const clientAuth = (env.TLS_CLIENT_AUTH?.trim() || 'none') as ClientAuth;
  if (!['none', 'optional', 'require'].includes(clientAuth)) {
    throw new TlsConfigError(`TLS_CLIENT_AUTH must be none, optional or require, got '${env.TLS_CLIENT_AUTH}'`);
  }
  if (clientAuth !== 'none' && !certFile) throw new TlsConfigError(`TLS_CLIENT_AUTH=${clientAuth} needs TLS_CERT_FILE, TLS_KEY_FILE and TLS_CA_FILE`);
  const allowedClients = (env.TLS_ALLOWED_CLIENTS ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  // With optional client certificates, a caller could skip the allowlist by showing none.
  if (allowedClients.length > 0 && clientAuth !== 'require') {
    throw new TlsConfigError('TLS_ALLOWED_CLIENTS needs TLS_CLIENT_AUTH=require: a caller without a certificate would pass the allowlist');
  }
  const rawInterval = env.TLS_RELOAD_INTERVAL_MS?.trim();
  const reloadIntervalMs = rawInterval ? Number(rawInterval) : PLAINTEXT.reloadIntervalMs;
  if (!Number.isSafeInteger(reloadIntervalMs) || reloadIntervalMs < 10) {
    throw new TlsConfigError(`TLS_RELOAD_INTERVAL_MS must be an integer >= 10, got '${rawInterval}'`);
  }
  const settings: TlsSettings = { certFile, keyFile, caFile, clientAuth, allowedClients, reloadIntervalMs };
  const problem = loadMaterial(settings).error;
  if (problem) throw new TlsConfigError(problem);
  return settings;
}

/** The PEM files' contents, checked by building a TLS context from them. */
export interface TlsMaterial {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
}

/** Reads the files and checks that they make a TLS context (the key matches the certificate); error names the file. */
export function loadMaterial(settings: TlsSettings): { material?: TlsMaterial; error?: string } {
  const read = (path: string | undefined): Buffer | undefined => (path ? fs.readFileSync(path) : undefined);
  let material: TlsMaterial;
  try {
    material = { ca: read(settings.caFile), cert: read(settings.certFile), key: read(settings.keyFile) };
  } catch (error) {
    return { error: `TLS files cannot be read: ${(error as Error).message}` };
  }
  try {
    if (material.ca) tls.createSecureContext({ ca: material.ca });
  } catch (error) {
    return { error: `TLS_CA_FILE ${settings.caFile}: not a PEM CA certificate (${(error as Error).message})` };
  }
  try {
    if (material.cert) tls.createSecureContext({ cert: material.cert, key: material.key });
  } catch (error) {
    return { error: `TLS_CERT_FILE ${settings.certFile} / TLS_KEY_FILE ${settings.keyFile}: not a matching PEM certificate and key (${(error as Error).message})` };
  }
  return { material };
}

/** 127.0.0.0/8, ::1, localhost: only this machine can reach a server bound there. */
export function isLoopback(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, '');
  return bare === 'localhost' || bare === '::1' || /^127\.\d+\.\d+\.\d+$/.test(bare);
}

/**
 * Plaintext on a non-loopback address is refused unless ALLOW_PLAINTEXT=1 (issue 12: every call crossed the pod
 * network in the clear). Returns the line to log when plaintext is allowed; throws TlsConfigError when it is not.
 */
export function checkPlaintextBind(host: string, env: NodeJS.ProcessEnv = process.env): { level: 'info' | 'warn'; message: string } {
  if (isLoopback(host)) return { level: 'info', message: `transport is plaintext (loopback ${host}; TLS_CERT_FILE, TLS_KEY_FILE and TLS_CA_FILE for TLS)` };
  if (env.ALLOW_PLAINTEXT === '1') return { level: 'warn', message: `transport is plaintext on ${host} (ALLOW_PLAINTEXT=1): calls cross the network unencrypted` };
  throw new TlsConfigError(
    `refusing to serve plaintext gRPC on ${host}: set TLS_CERT_FILE, TLS_KEY_FILE and TLS_CA_FILE, bind HOST=127.0.0.1, or set ALLOW_PLAINTEXT=1`,
  );
}
