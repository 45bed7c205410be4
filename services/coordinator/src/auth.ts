import { createHash, timingSafeEqual } from 'node:crypto';
import * as fs from 'node:fs';
import type { PeerCertificate } from 'node:tls';
import type * as grpc from '@grpc/grpc-js';
import { PermissionDeniedError } from '@alignment/errors';
import type { Run } from '@alignment/contracts';

/** Who is calling: a name from the tokens file, and whether it may act on every run. */
export interface Principal {
  name: string;
  admin: boolean;
}

/** No credentials, or credentials nobody issued: UNAUTHENTICATED. */
export class UnauthenticatedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnauthenticatedError';
  }
}

/** A call as an authenticator sees it: its metadata, and its transport (a verified client certificate). */
export interface AuthenticatedCall {
  metadata: grpc.Metadata;
  getAuthContext(): { sslPeerCertificate?: PeerCertificate } | null;
}

/** Who a call comes from; throws UnauthenticatedError when it cannot say. */
export interface CallAuthenticator {
  authenticateCall(call: AuthenticatedCall): Principal;
}

/** When the coordinator authenticates no one: every caller acts as this admin, and runs have no owner. */
export const ANONYMOUS: Principal = { name: '', admin: true };

interface Entry {
  digest: Buffer;
  principal: Principal;
}

/**
 * Bearer tokens from a file (issue 12: no authentication; a third party's CancelRun failed someone else's run). One
 * token per line, `<token> <principal> [admin]`; blank lines and `#` comments are ignored. The file is read again when
 * it changes, so tokens are added and revoked without a restart. Callers send `authorization: Bearer <token>`.
 */
export class TokenAuthenticator implements CallAuthenticator {
  private entries: Entry[] = [];
  private loadedMtimeMs = -1;

  constructor(private readonly file: string) {
    this.reload();
  }

  authenticateCall(call: AuthenticatedCall): Principal {
    return this.authenticate(call.metadata);
  }

  /** True when the metadata carries a bearer token (valid or not). */
  static presented(metadata: grpc.Metadata): boolean {
    return metadata.get('authorization').length > 0;
  }

  authenticate(metadata: grpc.Metadata): Principal {
    this.reload();
    const header = metadata.get('authorization')[0];
    const token = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1] : undefined;
    if (!token) throw new UnauthenticatedError('missing credentials: send the metadata "authorization: Bearer <token>"');
    const digest = sha256(token);
    // Every entry is compared, in constant time each, so the answer's timing says nothing about which matched.
    let found: Principal | undefined;
    for (const entry of this.entries) if (timingSafeEqual(entry.digest, digest)) found = entry.principal;
    if (!found) throw new UnauthenticatedError('the bearer token is not one this coordinator issued');
    return found;
  }

  private reload(): void {
    let mtimeMs: number;
    try {
      mtimeMs = fs.statSync(this.file).mtimeMs;
    } catch {
      throw new Error(`AUTH_TOKENS_FILE ${this.file} cannot be read`);
    }
    if (mtimeMs === this.loadedMtimeMs) return;
    this.entries = parseTokens(fs.readFileSync(this.file, 'utf8'), this.file);
    this.loadedMtimeMs = mtimeMs;
  }
}

export function parseTokens(text: string, file: string): Entry[] {
  const entries: Entry[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/#.*/, '').trim();
    if (line === '') return;
    const [token, name, role, ...extra] = line.split(/\s+/);
    if (!name || extra.length > 0 || (role !== undefined && role !== 'admin') || token.length < 16) {
      throw new Error(`${file}:${i + 1}: expected "<token of at least 16 characters> <principal> [admin]"`);
    }
    entries.push({ digest: sha256(token), principal: { name, admin: role === 'admin' } });
  });
  return entries;
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/** A run's owner or an admin may read, watch, cancel and resume it; anyone else gets PERMISSION_DENIED. */
export function authorizeRun(principal: Principal, run: Pick<Run, 'runId' | 'owner'>): void {
  if (principal.admin || run.owner === principal.name) return;
  throw new PermissionDeniedError('run_id', `run '${run.runId}' belongs to another principal`);
}
