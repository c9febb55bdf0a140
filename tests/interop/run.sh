#!/usr/bin/env bash
# Interop: Microsoft's own clients against `botauth sandbox --tls`.
#
#   tests/interop/run.sh            # everything; one PASS/FAIL line per flow, exit 1 if any failed
#   tests/interop/run.sh 1 4 6      # only these flows
#
# Installs pinned MSAL Python and the Azure SDK's Key Vault clients (tests/interop/requirements.txt,
# into target/interop/venv) and pinned botframework-connector + botbuilder
# (tests/interop/package{,-lock}.json, into
# target/interop/node), builds the CLI, and starts one sandbox with TLS and app registrations given
# by flags, plus a botbuilder-js echo bot. The flows:
#   1  MSAL Python, client secret, default settings (authority validation via instance discovery)
#   1b MSAL Python, client secret, instance_discovery = the sandbox's own endpoint
#   2  MSAL Python, certificate by SHA-1 thumbprint (RS256, x5t)
#   3  MSAL Python, certificate + public_certificate (PS256, x5t#S256, x5c)
#   3b MSAL Python, certificate by thumbprint + public_certificate (RS256, x5t, x5c)
#   4  botframework-connector MicrosoftAppCredentials (secret, msal-node)
#   5  botframework-connector CertificateAppCredentials (msal-node, RS256, x5t)
#   5b botframework-connector CertificateAppCredentials with x5c
#   7, 7b msal-node used directly with knownAuthorities (secret; certificate): no request to
#      login.microsoftonline.com may happen
#   6  botbuilder-js CloudAdapter echo bot (ConfigurationBotFrameworkAuthentication), driven by
#      `botauth sandbox --bot`: the reply must reach the sandbox's Bot Connector
#   6b the same bot with a certificate (CertificateServiceClientCredentialsFactory, which needs a
#      one-method subclass to honour ToChannelFromBotLoginUrl; see echo-bot.js)
# Flows 1-5b POST their token to the sandbox's Bot Connector and need a 2xx.
#   u1 botframework-connector UserTokenClientImpl against the sandbox's Token Service
#      (tests/interop/user_token.js): every operation and the answers the real client expects
#   n1, n2 negative controls: a wrong secret and an unsigned token must be refused.
#   k1 the Azure SDK for Python (azure-keyvault-certificates, azure-keyvault-secrets) against the
#      sandbox's Key Vault over https (tests/interop/key_vault_client.py): versions made with the
#      control endpoint; get_certificate (x5t = SHA-1 of cer, exportable), the versions list paged
#      by nextLink, PKCS#12 and PEM secrets whose key matches the certificate. Tokens come from the
#      sandbox's IMDS through a TokenCredential of our own; the SDK's challenge dance (no token, 401
#      challenge, token, retry) must show in the sandbox's console feed.
#   kn1, kn2 negative controls: a Bot Connector token at the vault must give the SDK an
#      HttpResponseError with status 401; a missing certificate a ResourceNotFoundError.
#
# Nothing leaves 127.0.0.1: the Node clients run with loopback-guard.js and the Python client
# with a loopback-only requests session. Both refuse any other host. Each redirects one request,
# Microsoft's instance discovery at login.microsoftonline.com, to the sandbox's own copy.
#
# INTEROP_DEMO_CERT_CONFIG=1 adds flow 6c, which shows a botbuilder limitation (a certificate set
# by configuration alone ignores ToChannelFromBotLoginUrl) and is expected to FAIL.
#
# Environment: PYTHON (default python3), BOTAUTH_INTEROP_DIR (default target/interop; the target
# directory is CARGO_TARGET_DIR when set),
# BOTAUTH_INTEROP_SKIP_BUILD=1 to use an existing target/debug/botauth, BOTAUTH_INTEROP_BIN to run
# another botauth binary (no build), INTEROP_KEY_VAULT_API_VERSION to make the Key Vault clients
# use that api-version instead of their default.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
WORK=${BOTAUTH_INTEROP_DIR:-$TARGET/interop}
PYTHON=${PYTHON:-python3}
BIN=${BOTAUTH_INTEROP_BIN:-$TARGET/debug/botauth}
RUN=$WORK/run
START_SECONDS=$SECONDS

log() { printf '[interop] %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 2
}
sha() { cat "$@" | openssl dgst -sha256 -r | cut -d' ' -f1; }

# ---------------------------------------------------------------------------------------------
# Prerequisites and pinned clients
# ---------------------------------------------------------------------------------------------
for tool in "$PYTHON" node npm openssl cargo; do
  command -v "$tool" >/dev/null || die "$tool is required"
done
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 20 ] || die "Node 20 or later is required (found $(node --version))"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 9))' || die "Python 3.9 or later is required"

mkdir -p "$WORK"

VENV=$WORK/venv
VPY=$VENV/bin/python
want=$(sha "$HERE/requirements.txt")
if [ ! -x "$VPY" ] || [ "$(cat "$VENV/.botauth-requirements" 2>/dev/null)" != "$want" ]; then
  log "installing MSAL Python and the Key Vault clients ($(grep -m1 '^msal==' "$HERE/requirements.txt"), $(grep -m1 '^azure-keyvault-certificates==' "$HERE/requirements.txt")) into $VENV"
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV" ||
    die "\`$PYTHON -m venv\` failed (on Debian/Ubuntu: apt-get install python3-venv)"
  "$VPY" -m pip install --disable-pip-version-check --no-input -q -r "$HERE/requirements.txt"
  echo "$want" >"$VENV/.botauth-requirements"
fi

NODE_DIR=$WORK/node
want=$(sha "$HERE/package.json" "$HERE/package-lock.json")
if [ ! -d "$NODE_DIR/node_modules" ] || [ "$(cat "$NODE_DIR/.botauth-lock" 2>/dev/null)" != "$want" ]; then
  log "installing botframework-connector and botbuilder (package-lock.json) into $NODE_DIR"
  rm -rf "$NODE_DIR"
  mkdir -p "$NODE_DIR"
  cp "$HERE/package.json" "$HERE/package-lock.json" "$NODE_DIR/"
  (cd "$NODE_DIR" && npm install --no-audit --no-fund --loglevel=error >/dev/null)
  echo "$want" >"$NODE_DIR/.botauth-lock"
fi
export NODE_PATH=$NODE_DIR/node_modules
NODE=(node --require "$HERE/loopback-guard.js")

if [ "${BOTAUTH_INTEROP_SKIP_BUILD:-}" != 1 ] && [ -z "${BOTAUTH_INTEROP_BIN:-}" ]; then
  log "building the CLI"
  (cd "$ROOT" && cargo build -q -p botauth-cli)
fi
[ -x "$BIN" ] || die "$BIN is missing"
"$BIN" sandbox --help | grep -q -- '--tls' || die "this botauth has no \`sandbox --tls\` yet"

# ---------------------------------------------------------------------------------------------
# Scratch state, test certificate, processes
# ---------------------------------------------------------------------------------------------
rm -rf "$RUN"
mkdir -p "$RUN"

CERT_KEY=$RUN/client-key.pem
CERT_PEM=$RUN/client-cert.pem
openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 2 -subj "/CN=botauth-interop-client" \
  -keyout "$CERT_KEY" -out "$CERT_PEM" 2>/dev/null
CERT_SHA1=$(openssl x509 -in "$CERT_PEM" -noout -fingerprint -sha1 | cut -d= -f2 | tr -d ':')
export INTEROP_CERT_KEY=$CERT_KEY INTEROP_CERT_PEM=$CERT_PEM INTEROP_CERT_SHA1=$CERT_SHA1

APP_ID=$("$VPY" -c 'import uuid; print(uuid.uuid4())')
TENANT=$("$VPY" -c 'import uuid; print(uuid.uuid4())')
SECRET=$("$VPY" -c 'import secrets; print("interop~" + secrets.token_urlsafe(24))')

PIDS=()
CHAT_FD=
cleanup() {
  local pid i
  if [ -n "$CHAT_FD" ]; then exec {CHAT_FD}>&- || true; fi
  for pid in "${PIDS[@]}"; do kill -INT "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do
    for i in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
}
trap cleanup EXIT

free_port() {
  "$VPY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits for a line matching $2 (grep -E) in file $1 while process $3 is alive.
wait_for_line() {
  local file=$1 pattern=$2 pid=$3 seconds=${4:-60} i
  for i in $(seq 1 $((seconds * 10))); do
    grep -qE "$pattern" "$file" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# Exports the sandbox's `export KEY='VALUE'` lines (shell-quoted) into this shell.
load_exports() {
  local line key value re="^export ([A-Za-z_][A-Za-z0-9_]*)='(.*)'\$"
  while IFS= read -r line; do
    if [[ $line =~ $re ]]; then
      key=${BASH_REMATCH[1]}
      value=${BASH_REMATCH[2]//"'\\''"/"'"}
      export "$key=$value"
      printf '%s\n' "$key" >>"$RUN/exported-keys"
    fi
  done <"$1"
}

# ---------------------------------------------------------------------------------------------
# The sandbox (TLS, registrations by flag, chatting with the echo bot)
# ---------------------------------------------------------------------------------------------
BOT_PORT=$(free_port)
BOT_URL=http://127.0.0.1:$BOT_PORT/api/messages
mkfifo "$RUN/chat.in"
exec {CHAT_FD}<>"$RUN/chat.in"

log "starting botauth sandbox --tls (app $APP_ID, tenant $TENANT)"
"$BIN" sandbox --tls --port 0 --state-dir "$RUN/sandbox-state" \
  --app-id "$APP_ID" --tenant-id "$TENANT" --secret "$SECRET" --certificate "$CERT_PEM" \
  --oauth-connection graph --bot "$BOT_URL" <"$RUN/chat.in" >"$RUN/sandbox.out" 2>"$RUN/sandbox.err" &
SANDBOX_PID=$!
PIDS+=("$SANDBOX_PID")
REQUIRED_KEYS=(BOTAUTH_AUTHORITY_HOST BOTAUTH_METADATA_URL BOTAUTH_ALLOWED_SERVICE_URLS
  CLIENT_ID TENANT_ID CLIENT_SECRET SSL_CERT_FILE NODE_EXTRA_CA_CERTS REQUESTS_CA_BUNDLE)
for key in "${REQUIRED_KEYS[@]}"; do
  if ! wait_for_line "$RUN/sandbox.out" "^export $key=" "$SANDBOX_PID" 60; then
    log "the sandbox did not start or exported no $key; its stdout and stderr:"
    sed 's/^/  /' "$RUN/sandbox.out" "$RUN/sandbox.err" >&2
    exit 1
  fi
done
load_exports "$RUN/sandbox.out"
[[ $BOTAUTH_AUTHORITY_HOST == https://127.0.0.1:* ]] ||
  die "BOTAUTH_AUTHORITY_HOST is $BOTAUTH_AUTHORITY_HOST, expected https://127.0.0.1:PORT"
for pair in "CLIENT_ID:$APP_ID" "TENANT_ID:$TENANT" "CLIENT_SECRET:$SECRET"; do
  key=${pair%%:*}
  [ "${!key}" = "${pair#*:}" ] || log "warning: the sandbox exported a $key different from the flag given"
done
# The vault's URL and the IMDS host are comments, not exports (an exported BOTAUTH_KEY_VAULT_URL
# would configure a bot's certificate source).
export INTEROP_KEY_VAULT_URL INTEROP_IMDS_HOST
INTEROP_KEY_VAULT_URL=$(sed -nE "s/^# Key Vault: BOTAUTH_KEY_VAULT_URL='([^']*)'.*/\1/p" "$RUN/sandbox.out" | head -n1)
INTEROP_IMDS_HOST=$(sed -nE "s/.*AZURE_POD_IDENTITY_AUTHORITY_HOST='([^']*)'.*/\1/p" "$RUN/sandbox.out" | head -n1)
SERVICE_URL=${BOTAUTH_ALLOWED_SERVICE_URLS%%[, ]*}
CONNECTOR=${SERVICE_URL%/}/v3/conversations/interop/activities
log "sandbox at $BOTAUTH_AUTHORITY_HOST; Connector $CONNECTOR"

# ---------------------------------------------------------------------------------------------
# Flows
# ---------------------------------------------------------------------------------------------
declare -a RESULTS=()
FAILED=0
SELECTED=" $* "
selected() { [ "$SELECTED" = "  " ] || [[ $SELECTED == *" $1 "* ]]; }

record() { # status id description detail
  local line
  line=$(printf '%-4s %-3s %s' "$1" "$2" "$3")
  [ -n "${4:-}" ] && line="$line: $4"
  RESULTS+=("$line")
  printf '%s\n' "$line"
  [ "$1" = PASS ] || FAILED=1
}

# Last meaningful stderr lines, on one line.
err_summary() {
  grep -vE '^\s*$|^\s+at |^\[loopback-guard\] https://login' "$1" 2>/dev/null | tail -n 3 |
    tr '\n' ' ' | sed 's/ *$//' | cut -c1-600
}

token_flow() { # id description command...
  local id=$1 desc=$2 token t0=$SECONDS
  shift 2
  selected "$id" || return 0
  local err=$RUN/flow-$id.err
  if ! token=$(timeout 120 "$@" 2>"$err"); then
    record FAIL "$id" "$desc" "no token: $(err_summary "$err")"
    return 0
  fi
  if ! printf '%s\n' "$token" | timeout 60 "$VPY" "$HERE/connector_post.py" "$CONNECTOR" \
    >"$RUN/flow-$id.post" 2>>"$err"; then
    record FAIL "$id" "$desc" "token issued, Connector refused it: $(err_summary "$err")"
    return 0
  fi
  record PASS "$id" "$desc" "token accepted by the Connector ($(cat "$RUN/flow-$id.post"), $((SECONDS - t0))s)"
}

PYC=("$VPY" "$HERE/msal_client.py")
JSC=("${NODE[@]}" "$HERE/connector_client.js")
token_flow 1 "msal-python secret" "${PYC[@]}" secret
token_flow 1b "msal-python secret, instance discovery at the sandbox" "${PYC[@]}" secret-discovery
token_flow 2 "msal-python certificate (thumbprint)" "${PYC[@]}" thumbprint
token_flow 3 "msal-python certificate + public_certificate (x5c)" "${PYC[@]}" x5c
token_flow 3b "msal-python certificate thumbprint + public_certificate" "${PYC[@]}" thumbprint-x5c
token_flow 4 "botframework-connector MicrosoftAppCredentials" "${JSC[@]}" secret
token_flow 5 "botframework-connector CertificateAppCredentials" "${JSC[@]}" cert
token_flow 5b "botframework-connector CertificateAppCredentials + x5c" "${JSC[@]}" cert-x5c
token_flow 7 "msal-node direct, knownAuthorities (secret)" "${NODE[@]}" "$HERE/msal_node_client.js" secret
token_flow 7b "msal-node direct, knownAuthorities (certificate)" "${NODE[@]}" "$HERE/msal_node_client.js" cert

# Negative controls: the same plumbing must fail when the credential or the token is wrong.
refused_flow() { # id description pattern command...
  local id=$1 desc=$2 pattern=$3
  shift 3
  selected "$id" || return 0
  local err=$RUN/flow-$id.err
  if timeout 120 "$@" >"$RUN/flow-$id.out" 2>"$err"; then
    record FAIL "$id" "$desc" "expected a refusal, got success"
  elif grep -qE "$pattern" "$err"; then
    record PASS "$id" "$desc" "refused as expected ($(grep -oE "$pattern" "$err" | head -n1))"
  else
    record FAIL "$id" "$desc" "refused, but not with /$pattern/: $(err_summary "$err")"
  fi
}
refused_flow n1 "msal-python wrong secret is refused" "invalid_client" "${PYC[@]}" wrong-secret
refused_flow n2 "Connector refuses an unsigned token" "HTTP 401" \
  sh -c 'printf "%s\n" "eyJhbGciOiJub25lIn0.eyJ4IjoxfQ." | "$0" "$1" "$2"' "$VPY" "$HERE/connector_post.py" "$CONNECTOR"

# User sign-in: Microsoft's UserTokenClientImpl against the sandbox's Token Service.
if selected u1; then
  if [ -z "${BOTAUTH_TOKEN_SERVICE_URL:-}" ]; then
    record FAIL u1 "botframework-connector UserTokenClientImpl" "the sandbox exported no BOTAUTH_TOKEN_SERVICE_URL"
  elif timeout 120 "${NODE[@]}" "$HERE/user_token.js" graph >"$RUN/flow-u1.out" 2>"$RUN/flow-u1.err"; then
    record PASS u1 "botframework-connector UserTokenClientImpl" "$(grep -c '^ok ' "$RUN/flow-u1.out") checks against the sandbox's Token Service"
  else
    record FAIL u1 "botframework-connector UserTokenClientImpl" "$(tail -n 1 "$RUN/flow-u1.out" 2>/dev/null) $(err_summary "$RUN/flow-u1.err")"
  fi
fi

# Key Vault: the Azure SDK for Python against the sandbox's vault.
KVC=("$VPY" "$HERE/key_vault_client.py")
if selected k1; then
  t0=$SECONDS
  if [ -z "$INTEROP_KEY_VAULT_URL" ] || [ -z "$INTEROP_IMDS_HOST" ]; then
    record FAIL k1 "azure-keyvault-certificates + azure-keyvault-secrets" "the sandbox printed no Key Vault URL or IMDS host"
  elif timeout 180 "${KVC[@]}" flow >"$RUN/flow-k1.out" 2>"$RUN/flow-k1.err"; then
    record PASS k1 "azure-keyvault-certificates + azure-keyvault-secrets" "$(grep -c '^ok ' "$RUN/flow-k1.out") checks against the sandbox's vault ($((SECONDS - t0))s)"
  else
    record FAIL k1 "azure-keyvault-certificates + azure-keyvault-secrets" "after $(grep -c '^ok ' "$RUN/flow-k1.out") checks: $(tail -n 1 "$RUN/flow-k1.err" | cut -c1-600)"
  fi
fi
refused_flow kn1 "Key Vault refuses a Bot Connector token (SDK: HTTP 401)" \
  "HttpResponseError\) status=401 code=Unauthorized: AKV10022" "${KVC[@]}" wrong-resource
refused_flow kn2 "missing certificate gives ResourceNotFoundError" \
  "ResourceNotFoundError \(HttpResponseError\) status=404 code=CertificateNotFound" "${KVC[@]}" missing

BOT_PID=
stop_bot() {
  [ -n "$BOT_PID" ] || return 0
  kill -INT "$BOT_PID" 2>/dev/null || true
  wait "$BOT_PID" 2>/dev/null || true
  BOT_PID=
}

echo_flow() { # id credential description
  local id=$1 credential=$2 desc=$3 t0=$SECONDS
  selected "$id" || return 0
  local said="interop $id hello $RANDOM" out=$RUN/echo-bot-$id.out err=$RUN/echo-bot-$id.err
  stop_bot
  INTEROP_BOT_CREDENTIAL=$credential "${NODE[@]}" "$HERE/echo-bot.js" "$BOT_PORT" >"$out" 2>"$err" &
  BOT_PID=$!
  PIDS+=("$BOT_PID")
  if ! wait_for_line "$out" "^listening on " "$BOT_PID" 30; then
    record FAIL "$id" "$desc" "the echo bot did not start: $(err_summary "$err")"
    return 0
  fi
  local before
  before=$(wc -l <"$RUN/sandbox.out")
  printf '%s\n' "$said" >&"$CHAT_FD"
  if wait_for_line "$RUN/sandbox.out" "^< echo: $said\$" "$SANDBOX_PID" 60; then
    record PASS "$id" "$desc" "sandbox printed '< echo: $said' ($((SECONDS - t0))s)"
  else
    local chat
    chat=$(tail -n +"$((before + 1))" "$RUN/sandbox.out" | grep -E '^(>|<|!)' | tr '\n' ' ' | cut -c1-300 || true)
    record FAIL "$id" "$desc" "no echo reached the Connector; sandbox said: ${chat:-nothing}; bot: $(err_summary "$err")"
  fi
}
echo_flow 6 secret "botbuilder-js CloudAdapter echo bot (secret) via sandbox --bot"
echo_flow 6b cert "botbuilder-js CloudAdapter echo bot (certificate) via sandbox --bot"
[ -n "${INTEROP_DEMO_CERT_CONFIG:-}" ] && echo_flow 6c cert-config "(demo) echo bot, certificate by configuration only"
stop_bot

# ---------------------------------------------------------------------------------------------
printf '\n'
log "summary ($((SECONDS - START_SECONDS))s; logs in $RUN):"
for line in "${RESULTS[@]}"; do printf '  %s\n' "$line" >&2; done
exit "$FAILED"
