"""MSAL Python against the sandbox: prints the access token on stdout, nothing else.

Usage: msal_client.py secret|secret-discovery|thumbprint|x5c|thumbprint-x5c|wrong-secret

Reads the sandbox's exported environment (BOTAUTH_AUTHORITY_HOST, TENANT_ID, CLIENT_ID,
CLIENT_SECRET, REQUESTS_CA_BUNDLE) plus INTEROP_CERT_KEY / INTEROP_CERT_PEM /
INTEROP_CERT_SHA1 for the certificate modes.

Every HTTP request goes through LoopbackSession, which refuses any host that is not loopback.
It does one redirect: in `secret` mode MSAL runs with its default settings
(validate_authority=True, instance_discovery=None). MSAL then asks
https://login.microsoftonline.com/common/discovery/instance about the custom authority, and
that one request is sent to the sandbox's own /common/discovery/instance instead.
"""

import os
import sys
import urllib.parse

import msal
import requests

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
DISCOVERY_HOST = "login.microsoftonline.com"
DISCOVERY_PATH = "/common/discovery/instance"
SCOPE = "https://api.botframework.com/.default"


class LoopbackSession(requests.Session):
    def __init__(self, sandbox):
        super().__init__()
        self.sandbox = sandbox.rstrip("/")

    def request(self, method, url, *args, **kwargs):
        parsed = urllib.parse.urlsplit(url)
        if parsed.hostname not in LOOPBACK:
            if parsed.hostname == DISCOVERY_HOST and parsed.path == DISCOVERY_PATH:
                redirected = self.sandbox + parsed.path + (
                    "?" + parsed.query if parsed.query else "")
                query = kwargs.get("params")
                print("[loopback-guard] %s%s -> %s" % (
                    url, "?" + urllib.parse.urlencode(query) if query else "", redirected),
                    file=sys.stderr)
                url = redirected
            else:
                raise requests.ConnectionError(
                    "[loopback-guard] refused non-loopback request to %s://%s%s"
                    % (parsed.scheme, parsed.hostname, parsed.path))
        return super().request(method, url, *args, **kwargs)


def read(path):
    with open(path, encoding="ascii") as f:
        return f.read()


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else "secret"
    host = os.environ["BOTAUTH_AUTHORITY_HOST"].rstrip("/")
    authority = "%s/%s" % (host, os.environ["TENANT_ID"])
    session = LoopbackSession(host)
    options = {"instance_discovery": False}
    if mode == "secret":
        credential = os.environ["CLIENT_SECRET"]
        options = {}  # MSAL's defaults: authority validation via instance discovery
    elif mode == "secret-discovery":
        # Instance discovery asked of the sandbox itself, as the README documents.
        credential = os.environ["CLIENT_SECRET"]
        options = {"instance_discovery": host + DISCOVERY_PATH}
    elif mode == "wrong-secret":
        credential = os.environ["CLIENT_SECRET"] + "-not"
    elif mode == "thumbprint":
        credential = {
            "private_key": read(os.environ["INTEROP_CERT_KEY"]),
            "thumbprint": os.environ["INTEROP_CERT_SHA1"],
        }
    elif mode == "x5c":
        # No thumbprint: MSAL >= 1.35 derives SHA-256, signs PS256 with x5t#S256 and sends x5c.
        credential = {
            "private_key": read(os.environ["INTEROP_CERT_KEY"]),
            "public_certificate": read(os.environ["INTEROP_CERT_PEM"]),
        }
    elif mode == "thumbprint-x5c":
        # The older subject-name/issuer form: RS256 + SHA-1 x5t + x5c.
        credential = {
            "private_key": read(os.environ["INTEROP_CERT_KEY"]),
            "thumbprint": os.environ["INTEROP_CERT_SHA1"],
            "public_certificate": read(os.environ["INTEROP_CERT_PEM"]),
        }
    else:
        print("unknown mode %r" % mode, file=sys.stderr)
        return 2
    app = msal.ConfidentialClientApplication(
        os.environ["CLIENT_ID"],
        client_credential=credential,
        authority=authority,
        http_client=session,
        **options)
    result = app.acquire_token_for_client(scopes=[SCOPE])
    token = result.get("access_token")
    if not token:
        print("no access_token: error=%s error_description=%s" % (
            result.get("error"), result.get("error_description")), file=sys.stderr)
        return 1
    print(token)
    return 0


if __name__ == "__main__":
    sys.exit(main())
