"""The Azure SDK for Python's Key Vault clients against the sandbox's vault (flows k1, kn1, kn2).

Usage: key_vault_client.py flow|wrong-resource|missing

  flow            azure-keyvault-certificates and azure-keyvault-secrets read certificate versions
                  made with the sandbox's control endpoint; one `ok` line per check on stdout, exit
                  1 at the first mismatch.
  wrong-resource  the credential hands the SDK a token for the Bot Connector instead of the vault:
                  the vault must refuse it, and the SDK must raise HttpResponseError with status 401.
  missing         a certificate that does not exist: the SDK must raise ResourceNotFoundError.
In the two negative modes the expected error is printed on stderr as
`<ErrorClass> (HttpResponseError) status=<n> code=<code>: <message>` and the exit code is 1.

Reads INTEROP_KEY_VAULT_URL (the vault URL the sandbox printed), INTEROP_IMDS_HOST (its plain-http
IMDS), BOTAUTH_AUTHORITY_HOST and REQUESTS_CA_BUNDLE (the sandbox's CA). Optional
INTEROP_KEY_VAULT_API_VERSION makes the SDK use that api-version instead of its default.

Tokens come from a small TokenCredential of our own that asks the sandbox's IMDS, so the SDK's
challenge dance (a first request without a token, the 401 challenge, then the token) is the SDK's
own. Every request goes through LoopbackSession, which refuses any host that is not loopback and
redirects nothing. The sandbox's web console (on with `--bot`) is the witness of what reached the
vault: its event feed lists every vault request with its status and the caller's decoded token.
Never prints a token or a secret's value.
"""

import base64
import json
import traceback
import os
import secrets
import sys
import urllib.parse

import requests
from azure.core.credentials import AccessToken
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.core.pipeline.transport import RequestsTransport
from azure.keyvault.certificates import CertificateClient, CertificateContentType
from azure.keyvault.secrets import SecretClient
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs12

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
VAULT_RESOURCE = "https://vault.azure.net"
PKCS12 = "application/x-pkcs12"
PEM = "application/x-pem-file"


class LoopbackSession(requests.Session):
    """A requests session that only talks to loopback and remembers what it sent and got."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def request(self, method, url, *args, **kwargs):
        parsed = urllib.parse.urlsplit(url)
        if parsed.hostname not in LOOPBACK:
            raise requests.ConnectionError(
                "[loopback-guard] refused non-loopback request to %s://%s%s"
                % (parsed.scheme, parsed.hostname, parsed.path))
        headers = kwargs.get("headers") or {}
        response = super().request(method, url, *args, **kwargs)
        self.seen.append({
            "method": method,
            "path": parsed.path,
            "query": parsed.query,
            "authorization": any(k.lower() == "authorization" for k in headers),
            "status": response.status_code,
            "www_authenticate": response.headers.get("WWW-Authenticate"),
            # Error answers only: a 200 may be the console's endless event stream.
            "error": response.text[:160] if response.status_code >= 400 else None,
        })
        return response


class ImdsCredential:
    """An azure.core TokenCredential that gets tokens from the sandbox's IMDS (plain http, as in
    Azure). `resource`, when given, is asked for whatever scope the SDK wants (a negative control)."""

    def __init__(self, session, imds_host, resource=None):
        self.session = session
        self.url = imds_host.rstrip("/") + "/metadata/identity/oauth2/token"
        self.resource = resource
        self.calls = []

    def get_token(self, *scopes, claims=None, tenant_id=None, enable_cae=False, **kwargs):
        self.calls.append({"scopes": scopes, "tenant_id": tenant_id, "claims": claims})
        if len(scopes) != 1 or not scopes[0].endswith("/.default"):
            raise ValueError("one `<resource>/.default` scope expected, got %r" % (scopes,))
        resource = self.resource or scopes[0][: -len("/.default")]
        response = self.session.get(
            self.url,
            params={"api-version": "2018-02-01", "resource": resource},
            headers={"Metadata": "true"},
            timeout=30)
        if response.status_code != 200:
            raise RuntimeError("IMDS answered HTTP %d: %s" % (response.status_code, response.text[:300]))
        body = response.json()
        return AccessToken(body["access_token"], int(body["expires_on"]))


class Env:
    def __init__(self):
        self.vault = os.environ.get("INTEROP_KEY_VAULT_URL", "").rstrip("/")
        self.imds = os.environ.get("INTEROP_IMDS_HOST", "")
        if not (self.vault and self.imds):
            raise SystemExit("INTEROP_KEY_VAULT_URL and INTEROP_IMDS_HOST are required "
                             "(run.sh reads them from the sandbox's output)")
        self.authority = os.environ["BOTAUTH_AUTHORITY_HOST"].rstrip("/")
        self.ca = os.environ["REQUESTS_CA_BUNDLE"]
        self.api_version = os.environ.get("INTEROP_KEY_VAULT_API_VERSION") or None
        self.session = LoopbackSession()
        self.session.verify = self.ca
        # The vault's path on its host (empty: the sandbox's vault is at the root of its origin,
        # as a real vault is).
        self.prefix = urllib.parse.urlsplit(self.vault).path.rstrip("/")

    def collection(self, path):
        """`certificates` or `secrets` for a request path into the vault, else None."""
        if not path.startswith(self.prefix + "/"):
            return None
        first = path[len(self.prefix) + 1:].split("/")[0]
        return first if first in ("certificates", "secrets") else None

    def client_options(self):
        options = {
            # The SDK checks that the challenge's resource (vault.azure.net) is a parent domain
            # of the vault's host, and refuses 127.0.0.1 otherwise; this switch is for exactly
            # that ("Pass `verify_challenge_resource=False` to your client's constructor").
            "verify_challenge_resource": False,
            # The SDK's own requests transport over the loopback-only session, trusting only the
            # sandbox's CA.
            "transport": RequestsTransport(
                session=self.session, session_owner=False, connection_verify=self.ca),
        }
        if self.api_version:
            options["api_version"] = self.api_version
        return options

    def rotate(self, name, **body):
        """A new version through the control endpoint (not vault traffic): its public side."""
        response = self.session.post(
            "%s/keyvault/_sandbox/certificates/%s/rotate" % (self.vault, name), json=body, timeout=60)
        if response.status_code != 200:
            raise RuntimeError("rotate %s: HTTP %d %s" % (name, response.status_code, response.text[:300]))
        return response.json()

    def vault_events(self, name):
        """The console's record of vault requests whose path names `name`, oldest first."""
        events = []
        buffer = b""
        try:
            with self.session.get(self.authority + "/console/events", stream=True,
                                  timeout=(10, 2)) as response:
                if response.status_code != 200:
                    raise RuntimeError(
                        "the sandbox's console answered HTTP %d (it is on with --bot or --console)"
                        % response.status_code)
                # The history arrives at once, then the stream idles: read until it does.
                for chunk in response.iter_content(chunk_size=65536):
                    buffer += chunk
        except requests.ConnectionError:
            pass
        for block in buffer.decode("utf-8", "replace").split("\n\n"):
            for line in block.split("\n"):
                if line.startswith("data: "):
                    event = json.loads(line[len("data: "):])
                    if event.get("kind") == "key_vault" and "/%s" % name.lower() in event["path"].lower():
                        events.append(event)
        return events


def check(ok, what):
    if not ok:
        raise AssertionError("check failed: %s" % what)
    print("ok %s" % what, flush=True)


def sha1(der):
    return x509.load_der_x509_certificate(der).fingerprint(hashes.SHA1())


def same_key(private_key, certificate):
    return private_key.public_key().public_numbers() == certificate.public_key().public_numbers()


def audience(event):
    token = event.get("token") or {}
    return (token.get("claims") or {}).get("aud")


def check_challenge_dance(env, events, segment, what):
    """The first request to the vault carried no token and got the challenge; the SDK then came
    back with a vault token and got its answer."""
    ours = [e for e in events if env.collection(e["path"]) == segment]
    check(len(ours) >= 2, "%s: the sandbox saw %d %s requests" % (what, len(ours), segment))
    first, second = ours[0], ours[1]
    check(first["token"] is None and first["status"] == 401
          and (first.get("www_authenticate") or "").startswith("Bearer authorization="),
          "%s: the first request had no token and got the 401 challenge (%s)" % (what, first["outcome"]))
    check(second["path"] == first["path"] and second["status"] == 200
          and (audience(second) or "").rstrip("/") == VAULT_RESOURCE,
          "%s: the SDK retried %s with a token for %s: HTTP 200" % (what, first["path"], VAULT_RESOURCE))
    unauthorized = [e for e in ours[2:] if e["status"] == 401 or e["token"] is None]
    check(not unauthorized, "%s: no other request went without a token or was refused" % what)


def flow(env):
    name = "interop-k1-" + secrets.token_hex(4)
    v1 = env.rotate(name, content_type="pkcs12", not_before_in_secs=-120)
    v2 = env.rotate(name, content_type="pem")
    check(v1["version"] != v2["version"], "control endpoint: two versions of %s" % name)

    credential = ImdsCredential(env.session, env.imds)
    certificates = CertificateClient(env.vault, credential, **env.client_options())
    latest = certificates.get_certificate(name)
    cer = bytes(latest.cer)
    check(latest.properties.version == v2["version"], "get_certificate: the latest version (%s)" % v2["version"])
    check(bytes(latest.properties.x509_thumbprint) == sha1(cer) == bytes.fromhex(v2["sha1_thumbprint"]),
          "get_certificate: properties.x509_thumbprint is the SHA-1 of cer and the control endpoint's thumbprint")
    check(latest.policy is not None and latest.policy.exportable is True,
          "get_certificate: policy key_properties.exportable is true")
    check(latest.policy.content_type == CertificateContentType.pem, "get_certificate: policy content_type is PEM")
    check(latest.id == "%s/certificates/%s/%s" % (env.vault, name, v2["version"])
          and latest.secret_id == "%s/secrets/%s/%s" % (env.vault, name, v2["version"]),
          "get_certificate: id and secret_id under the vault URL")
    check(latest.properties.enabled is True and latest.properties.not_before is not None
          and latest.properties.expires_on is not None and latest.properties.created_on is not None,
          "get_certificate: attributes (enabled, not_before, expires_on, created_on)")
    check(len(credential.calls) == 1 and credential.calls[0]["scopes"] == (VAULT_RESOURCE + "/.default",)
          and credential.calls[0]["tenant_id"],
          "the SDK asked the credential once, for %s/.default in tenant %s"
          % (VAULT_RESOURCE, credential.calls[0]["tenant_id"] if credential.calls else None))

    first = certificates.get_certificate_version(name, v1["version"])
    check(bytes(first.properties.x509_thumbprint) == sha1(bytes(first.cer)) == bytes.fromhex(v1["sha1_thumbprint"])
          and first.policy.content_type == CertificateContentType.pkcs12,
          "get_certificate_version: the PKCS#12 version's thumbprint and content type")

    listed = list(certificates.list_properties_of_certificate_versions(name, max_page_size=1))
    versions = sorted((p.created_on, p.version) for p in listed)
    check([v for _, v in versions] == [v1["version"], v2["version"]],
          "list_properties_of_certificate_versions (max_page_size=1): both versions, by created_on")
    check(all(bytes(p.x509_thumbprint) == bytes.fromhex(v["sha1_thumbprint"])
              for p, v in zip(sorted(listed, key=lambda p: p.created_on), [v1, v2])),
          "list_properties_of_certificate_versions: each version's x509_thumbprint")
    pages = [s for s in env.session.seen if s["path"].endswith("/certificates/%s/versions" % name)]
    check(len(pages) == 2 and "skiptoken=" in pages[1]["query"],
          "list_properties_of_certificate_versions: the SDK followed nextLink (%d pages)" % len(pages))

    secret_credential = ImdsCredential(env.session, env.imds)
    secrets_client = SecretClient(env.vault, secret_credential, **env.client_options())
    pfx = secrets_client.get_secret(name, v1["version"])
    check(pfx.properties.content_type == PKCS12 and pfx.properties.managed is True
          and pfx.properties.key_id == "%s/keys/%s/%s" % (env.vault, name, v1["version"]),
          "get_secret (PKCS#12 version): contentType, managed, kid")
    key, certificate, extra = pkcs12.load_key_and_certificates(base64.b64decode(pfx.value), None)
    check(key is not None and certificate is not None and not extra,
          "get_secret: the PKCS#12 value loads with cryptography's pkcs12 and no password")
    check(certificate.fingerprint(hashes.SHA1()) == bytes.fromhex(v1["sha1_thumbprint"]) and same_key(key, certificate),
          "get_secret: the PFX holds the version's certificate and its matching private key")

    pem = secrets_client.get_secret(name, v2["version"])
    check(pem.properties.content_type == PEM, "get_secret (PEM version): contentType %s" % PEM)
    pem_key = serialization.load_pem_private_key(pem.value.encode("ascii"), None)
    pem_certificates = x509.load_pem_x509_certificates(pem.value.encode("ascii"))
    check(len(pem_certificates) == 1
          and pem_certificates[0].fingerprint(hashes.SHA1()) == bytes.fromhex(v2["sha1_thumbprint"])
          and same_key(pem_key, pem_certificates[0]),
          "get_secret: the PEM holds the version's certificate and its matching private key")
    latest_secret = secrets_client.get_secret(name)
    check(latest_secret.properties.version == v2["version"], "get_secret without a version: the latest")
    secret_versions = list(secrets_client.list_properties_of_secret_versions(name, max_page_size=1))
    check(sorted(p.version for p in secret_versions) == sorted([v1["version"], v2["version"]])
          and {p.content_type for p in secret_versions} == {PKCS12, PEM},
          "list_properties_of_secret_versions (max_page_size=1): both versions and content types")

    requests_sent = [s for s in env.session.seen if env.collection(s["path"])]
    check(not requests_sent[0]["authorization"] and requests_sent[0]["status"] == 401,
          "the SDK's first vault request went without Authorization and got 401")
    events = env.vault_events(name)
    check_challenge_dance(env, events, "certificates", "CertificateClient")
    check_challenge_dance(env, events, "secrets", "SecretClient")
    check(all(e["api_version"] == events[0]["api_version"] for e in events),
          "every request used api-version %s" % events[0]["api_version"])
    return 0


def refused(error):
    """One line naming the SDK's error, its status and Key Vault's error code, on stderr."""
    code = getattr(getattr(error, "error", None), "code", None)
    message = (getattr(getattr(error, "error", None), "message", None) or str(error)).splitlines()[0]
    print("%s (%s) status=%s code=%s: %s" % (
        type(error).__name__, "HttpResponseError" if isinstance(error, HttpResponseError) else "?",
        getattr(error, "status_code", None), code, message), file=sys.stderr)
    return 1


def wrong_resource(env):
    name = "interop-kn1-" + secrets.token_hex(4)
    version = env.rotate(name)["version"]
    credential = ImdsCredential(env.session, env.imds, resource="https://api.botframework.com")
    client = CertificateClient(env.vault, credential, **env.client_options())
    # The negative controls name a version: they test the token and the 404, not how the latest
    # version is addressed (k1 does that).
    try:
        client.get_certificate_version(name, version)
    except HttpResponseError as error:
        statuses = [s["status"] for s in env.session.seen if env.collection(s["path"])]
        print("the vault answered %s; the credential was asked %d time(s)" % (statuses, len(credential.calls)),
              file=sys.stderr)
        return refused(error)
    print("the vault released a certificate for a Bot Connector token", file=sys.stderr)
    return 0


def missing(env):
    client = CertificateClient(env.vault, ImdsCredential(env.session, env.imds), **env.client_options())
    try:
        client.get_certificate_version("interop-kn2-missing-" + secrets.token_hex(4), secrets.token_hex(16))
    except ResourceNotFoundError as error:
        return refused(error)
    print("a missing certificate was found", file=sys.stderr)
    return 0


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else "flow"
    modes = {"flow": flow, "wrong-resource": wrong_resource, "missing": missing}
    if mode not in modes:
        print("unknown mode %r" % mode, file=sys.stderr)
        return 2
    env = Env()
    try:
        return modes[mode](env)
    except AssertionError as error:
        print(error, file=sys.stderr)
        return 1
    except Exception as error:  # pylint:disable=broad-except
        # The traceback for the log, then one line for run.sh's summary: what the SDK raised and
        # the vault request that led there.
        traceback.print_exc()
        last = env.session.seen[-1] if env.session.seen else None
        where = "no request sent" if last is None else "last request %s %s%s -> HTTP %d %s" % (
            last["method"], last["path"], "?" + last["query"] if last["query"] else "",
            last["status"], " ".join((last["error"] or "").split()))
        print("%s: %s; %s" % (type(error).__name__, str(error).splitlines()[0][:200], where),
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
