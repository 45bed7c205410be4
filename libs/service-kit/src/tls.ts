import * as grpc from '@grpc/grpc-js';
import type { PeerCertificate } from 'node:tls';
import type { Logger } from './logger';
import { loadMaterial, TlsConfigError, tlsFromEnv, type TlsMaterial, type TlsSettings } from './tls-config';

// gRPC credentials from TlsSettings (tls-config.ts): certificates reloaded from their files, and the caller's identity
// (its verified client certificate) checked on every call against TLS_CLIENT_AUTH and TLS_ALLOWED_CLIENTS.

type CaListener = (update: { caCertificate: Buffer } | null) => void;
type IdentityListener = (update: { certificate: Buffer; privateKey: Buffer } | null) => void;

/**
 * A grpc-js CertificateProvider over the TLS files. While a server or channel uses it, the files are read every
 * reloadIntervalMs; a changed set that makes a valid TLS context is handed on, and new connections use it (existing
 * ones keep theirs). A set that does not (a rotation caught half written) is logged and skipped: the last good set
 * stays in use.
 */
export class ReloadingCertificateProvider implements grpc.experimental.CertificateProvider {
  private current: TlsMaterial;
  private timer?: NodeJS.Timeout;
  private readonly caListeners = new Set<CaListener>();
  private readonly identityListeners = new Set<IdentityListener>();

  constructor(
    private readonly settings: TlsSettings,
    private readonly logger?: Logger,
  ) {
    const { material, error } = loadMaterial(settings);
    if (!material) throw new TlsConfigError(error!);
    this.current = material;
  }

  /** Reads the files now; true when they changed and the new set was taken. */
  reload(): boolean {
    const { material, error } = loadMaterial(this.settings);
    if (!material) {
      this.logger?.warn({ error }, 'TLS files changed but are not a valid set: keeping the previous certificates');
      return false;
    }
    const same = (a?: Buffer, b?: Buffer) => (a && b ? a.equals(b) : a === b);
    if (same(material.ca, this.current.ca) && same(material.cert, this.current.cert) && same(material.key, this.current.key)) return false;
    this.current = material;
    this.logger?.info({ cert_file: this.settings.certFile, ca_file: this.settings.caFile }, 'TLS certificates reloaded');
    for (const listener of this.caListeners) listener(this.caUpdate());
    for (const listener of this.identityListeners) listener(this.identityUpdate());
    return true;
  }

  private caUpdate() {
    return this.current.ca ? { caCertificate: this.current.ca } : null;
  }

  private identityUpdate() {
    return this.current.cert && this.current.key ? { certificate: this.current.cert, privateKey: this.current.key } : null;
  }

  private watch(): void {
    const using = this.caListeners.size + this.identityListeners.size > 0;
    if (using && !this.timer) {
      this.timer = setInterval(() => this.reload(), this.settings.reloadIntervalMs);
      this.timer.unref();
    } else if (!using && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  // grpc-js adds its listener before it starts watching the credentials: the first update comes on the next tick.
  addCaCertificateListener(listener: CaListener): void {
    this.caListeners.add(listener);
    this.watch();
    process.nextTick(() => this.caListeners.has(listener) && listener(this.caUpdate()));
  }

  removeCaCertificateListener(listener: CaListener): void {
    this.caListeners.delete(listener);
    this.watch();
  }

  addIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.add(listener);
    this.watch();
    process.nextTick(() => this.identityListeners.has(listener) && listener(this.identityUpdate()));
  }

  removeIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.delete(listener);
    this.watch();
  }
}

/**
 * Server credentials: plaintext without TLS_CERT_FILE; else TLS with this service's certificate, asking callers for a
 * client certificate and verifying it against TLS_CA_FILE. The handshake does not fail without one: the identity
 * interceptor answers such calls UNAUTHENTICATED, which says more to the caller than a failed handshake.
 */
export function serverCredentials(settings: TlsSettings, logger?: Logger): grpc.ServerCredentials {
  if (!settings.certFile) return grpc.ServerCredentials.createInsecure();
  const provider = new ReloadingCertificateProvider(settings, logger);
  // One provider in both roles: grpc-js 1.14's createCertificateProviderServerCredentials hands its two providers to
  // the constructor in the other order, and the same object is right either way.
  return grpc.experimental.createCertificateProviderServerCredentials(provider, provider, false);
}

/** Channel credentials: plaintext without TLS_CA_FILE; else TLS verifying the server, with TLS_CERT_FILE as the client's. */
export function channelCredentials(settings: TlsSettings, logger?: Logger): grpc.ChannelCredentials {
  if (!settings.caFile) return grpc.credentials.createInsecure();
  const provider = new ReloadingCertificateProvider(settings, logger);
  return grpc.experimental.createCertificateProviderChannelCredentials(provider, settings.certFile ? provider : null);
}

let envCredentials: grpc.ChannelCredentials | undefined;

/** This process's channel credentials from its environment (tlsFromEnv), made once. */
export function channelCredentialsFromEnv(): grpc.ChannelCredentials {
  envCredentials ??= channelCredentials(tlsFromEnv());
  return envCredentials;
}

/** The names a certificate gives its holder: the subject CN, then every DNS and URI subject alternative name. */
export function certificateIdentities(certificate: PeerCertificate): string[] {
  const names = new Set<string>();
  const cn = certificate.subject?.CN as string | string[] | undefined;
  for (const name of [cn ?? []].flat()) names.add(name);
  for (const entry of (certificate.subjectaltname ?? '').split(',')) {
    const match = /^\s*(DNS|URI):(.+?)\s*$/.exec(entry);
    if (match) names.add(match[2]);
  }
  return [...names];
}

/** The caller's identities from its verified client certificate; undefined when it showed none (or one not verified). */
export function callerIdentities(call: { getAuthContext(): { sslPeerCertificate?: PeerCertificate } | null }): string[] | undefined {
  const certificate = call.getAuthContext()?.sslPeerCertificate;
  return certificate ? certificateIdentities(certificate) : undefined;
}

/** Why a caller may not call: UNAUTHENTICATED without a verified certificate, PERMISSION_DENIED outside the allowlist. */
export function identityVerdict(settings: TlsSettings, identities: string[] | undefined): grpc.StatusObject | undefined {
  if (settings.clientAuth === 'none') return undefined;
  if (!identities) {
    if (settings.clientAuth === 'optional') return undefined;
    return { code: grpc.status.UNAUTHENTICATED, details: 'TLS_CLIENT_AUTH=require: no client certificate verified by this service\'s TLS_CA_FILE', metadata: new grpc.Metadata() };
  }
  if (settings.allowedClients.length > 0 && !identities.some((id) => settings.allowedClients.includes(id))) {
    return {
      code: grpc.status.PERMISSION_DENIED,
      details: `client certificate identity ${JSON.stringify(identities)} is not in TLS_ALLOWED_CLIENTS`,
      metadata: new grpc.Metadata(),
    };
  }
  return undefined;
}

/** A server interceptor that rejects, before any handler runs, the calls identityVerdict refuses. */
export function identityInterceptor(settings: TlsSettings, logger?: Logger): grpc.ServerInterceptor {
  return (methodDescriptor, call) =>
    new grpc.ServerInterceptingCall(call, {
      start(next) {
        next({
          onReceiveMetadata(metadata, mdNext) {
            const verdict = identityVerdict(settings, callerIdentities(call));
            if (!verdict) return mdNext(metadata);
            logger?.info({ rpc: methodDescriptor.path.slice(1), code: grpc.status[verdict.code!], details: verdict.details }, 'request rejected');
            call.sendStatus(verdict as grpc.StatusObject);
          },
        });
      },
    });
}
