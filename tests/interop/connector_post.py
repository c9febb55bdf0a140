"""POSTs a message activity to the sandbox's Bot Connector with the bearer token read on stdin.

Usage: connector_post.py URL < token
Prints `HTTP <status>` and exits 0 on 2xx. Otherwise it prints the status and the response body
on stderr and exits 1. The token itself is never printed.
"""

import sys
import urllib.parse

import requests


def main():
    url = sys.argv[1]
    if urllib.parse.urlsplit(url).hostname not in {"127.0.0.1", "localhost", "::1"}:
        print("refusing non-loopback URL %s" % url, file=sys.stderr)
        return 2
    token = sys.stdin.read().strip()
    if not token:
        print("no token on stdin", file=sys.stderr)
        return 2
    response = requests.post(
        url,
        json={"type": "message", "text": "hi"},
        headers={"Authorization": "Bearer " + token},
        timeout=30,
    )
    if 200 <= response.status_code < 300:
        print("HTTP %d" % response.status_code)
        return 0
    print("HTTP %d %s" % (response.status_code, response.text[:500]), file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
