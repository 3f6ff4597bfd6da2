"""What the conformance scripts share: a per-check report and calls to
Courier's HTTP API (API_URL)."""

import json
import os
import urllib.request

API = os.environ["API_URL"]


class Report:
    """PASS/FAIL lines, one per check, so a failure names what broke."""

    def __init__(self):
        self.passes = self.failures = 0

    def check(self, label, ok, detail=""):
        print(("PASS " if ok else "FAIL ") + label + ("" if ok else f": {detail}"))
        if ok:
            self.passes += 1
        else:
            self.failures += 1


def http(method, path, body=None):
    """`method path` on the API: (status, parsed body)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(API + path, data=data, method=method, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")
