import { callerIdentities } from '@alignment/service-kit';
import { TokenAuthenticator, UnauthenticatedError, type AuthenticatedCall, type CallAuthenticator, type Principal } from './auth';

/**
 * Client certificates as principals (README "TLS and identities"). TLS_PRINCIPALS maps certificate identities (the
 * CN or a DNS/URI SAN of a client certificate verified against TLS_CA_FILE; TLS_CLIENT_AUTH=optional or require) to
 * principals: `identity=principal[:admin]`, comma-separated, e.g. `ops-cli=ops:admin,alice-laptop=alice`. A call
 * that carries a bearer token is authenticated by the token (AUTH_TOKENS_FILE) as before; one without is
 * authenticated by its certificate; one with neither, or with a certificate not in the map, is UNAUTHENTICATED.
 */
export class CertificateAuthenticator implements CallAuthenticator {
  constructor(
    private readonly principals: ReadonlyMap<string, Principal>,
    private readonly tokens?: TokenAuthenticator,
  ) {}

  authenticateCall(call: AuthenticatedCall): Principal {
    if (this.tokens && TokenAuthenticator.presented(call.metadata)) return this.tokens.authenticate(call.metadata);
    const identities = callerIdentities(call);
    if (!identities) {
      throw new UnauthenticatedError(
        `missing credentials: present a client certificate named in TLS_PRINCIPALS${this.tokens ? ' or send "authorization: Bearer <token>"' : ''}`,
      );
    }
    for (const identity of identities) {
      const principal = this.principals.get(identity);
      if (principal) return principal;
    }
    throw new UnauthenticatedError(`client certificate ${JSON.stringify(identities)} names no principal in TLS_PRINCIPALS`);
  }
}

/** TLS_PRINCIPALS parsed; an entry that is not `identity=principal[:admin]` throws naming the variable. */
export function parsePrincipals(raw: string): Map<string, Principal> {
  const map = new Map<string, Principal>();
  for (const entry of raw.split(',').map((e) => e.trim()).filter(Boolean)) {
    const match = /^([^=\s]+)=([^:=\s]+)(?::(admin))?$/.exec(entry);
    if (!match) throw new Error(`TLS_PRINCIPALS: '${entry}' is not identity=principal[:admin]`);
    map.set(match[1], { name: match[2], admin: match[3] === 'admin' });
  }
  return map;
}
