#!/usr/bin/env bash
# Makes a CA and a certificate per service with openssl, for TLS and mTLS between the services (README "TLS and
# identities", deploy/README.md "TLS"):
#
#   bash tools/deploy/make-certs.sh OUT_DIR [NAME ...]      NAMEs default to the five services
#   bash tools/deploy/make-certs.sh --secrets OUT_DIR       also OUT_DIR/secrets.yaml: a Secret <NAME>-tls per name
#   kubectl apply -f OUT_DIR/secrets.yaml                    (then the pods of deploy/k8s/base start)
#
# OUT_DIR/ca.crt and ca.key are made once and reused, so running the script again re-issues the service certificates
# under the same CA (a rotation: the services reload the files, TLS_RELOAD_INTERVAL_MS). Each NAME.crt has the
# subject CN=NAME (its identity for TLS_ALLOWED_CLIENTS), DNS names NAME, NAME.$NAMESPACE, NAME.$NAMESPACE.svc,
# NAME.$NAMESPACE.svc.cluster.local and localhost, the address 127.0.0.1, and serves both as server and client
# certificate. Keys are EC P-256, unencrypted, mode 600. Environment: NAMESPACE (default alignment), DAYS (365).
set -euo pipefail

secrets=0
if [ "${1:-}" = "--secrets" ]; then secrets=1; shift; fi
[ $# -ge 1 ] || { echo "usage: make-certs.sh [--secrets] OUT_DIR [NAME ...]" >&2; exit 2; }
out=$1
shift
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(coordinator generator judge dro-solver trainer)
namespace=${NAMESPACE:-alignment}
days=${DAYS:-365}
mkdir -p "$out"
umask 077

if [ ! -s "$out/ca.crt" ] || [ ! -s "$out/ca.key" ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days "$days" \
    -subj "/CN=alignment-ca" -keyout "$out/ca.key" -out "$out/ca.crt" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
fi

for name in "${names[@]}"; do
  [[ $name =~ ^[a-z0-9]([a-z0-9-]*[a-z0-9])?$ ]] || { echo "make-certs.sh: '$name' is not a DNS label" >&2; exit 2; }
  ext=$(mktemp)
  printf '%s\n' \
    "basicConstraints=critical,CA:FALSE" \
    "keyUsage=critical,digitalSignature,keyEncipherment" \
    "extendedKeyUsage=serverAuth,clientAuth" \
    "subjectAltName=DNS:$name,DNS:$name.$namespace,DNS:$name.$namespace.svc,DNS:$name.$namespace.svc.cluster.local,DNS:localhost,IP:127.0.0.1" \
    > "$ext"
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=$name" \
    -keyout "$out/$name.key.new" -out "$out/$name.csr" 2>/dev/null
  openssl x509 -req -in "$out/$name.csr" -CA "$out/ca.crt" -CAkey "$out/ca.key" -set_serial "0x$(openssl rand -hex 16)" \
    -days "$days" -extfile "$ext" -out "$out/$name.crt.new" 2>/dev/null
  rm -f "$ext" "$out/$name.csr"
  # Key then certificate, each replaced in one rename: a reader sees the old pair, a new key with the old
  # certificate (rejected as a set and skipped by the reloader), or the new pair.
  mv "$out/$name.key.new" "$out/$name.key"
  mv "$out/$name.crt.new" "$out/$name.crt"
done

if [ $secrets = 1 ]; then
  b64() { base64 -w0 < "$1"; }
  {
    for name in "${names[@]}"; do
      printf -- '---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: %s-tls\n  namespace: %s\n  labels:\n    app: %s\ntype: kubernetes.io/tls\ndata:\n' \
        "$name" "$namespace" "$name"
      printf '  tls.crt: %s\n  tls.key: %s\n  ca.crt: %s\n' "$(b64 "$out/$name.crt")" "$(b64 "$out/$name.key")" "$(b64 "$out/ca.crt")"
    done
  } > "$out/secrets.yaml"
fi
printf 'make-certs.sh: CA and certificates for %s in %s\n' "${names[*]}" "$out" >&2
