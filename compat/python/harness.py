"""Shared by the Python compatibility scripts, as harness.mjs is by the
JavaScript ones: runs named steps in order and prints one JSON object on
stdout, {"steps": {name: {"ok": true, "value": ...} | {"ok": false, "error": ...}}},
for cmd/gatehouse/internal/compattest to assert on. A failing step does not
stop the ones after it.

Nothing here configures a client: the scripts build the official clients
from environment variables and endpoint URLs, as an application does. The
one thing done for them is name resolution: vault hosts are
{vault}.vault.localhost, which glibc does not resolve, so *.localhost is
resolved to 127.0.0.1 (RFC 6761 section 6.3) inside this process only.
no_instance_discovery names, for the installed azure-identity, the option
an application passes with a GUID tenant.
"""

import json
import os
import socket
import sys

_getaddrinfo = socket.getaddrinfo


def _resolve_localhost(host, *args, **kwargs):
    if isinstance(host, str) and host.lower().endswith(".localhost"):
        host = "127.0.0.1"
    return _getaddrinfo(host, *args, **kwargs)


socket.getaddrinfo = _resolve_localhost


def describe(err):
    """Keeps the fields of an SDK error the Go side asserts on:
    HttpResponseError (status_code, error.code), ClientAuthenticationError
    (its message carries the AADSTS code)."""
    out = {"name": type(err).__name__, "message": str(err)[:2000]}
    status = getattr(err, "status_code", None)
    if status is not None:
        out["statusCode"] = status
    odata = getattr(err, "error", None)
    code = getattr(odata, "code", None)
    if code is not None:
        out["code"] = code
    return out


def run(steps):
    results = {}
    for name, fn in steps:
        try:
            value = fn(results)
            results[name] = {"ok": True, "value": value}
        except Exception as err:  # every failure is reported, none stops the run
            results[name] = {"ok": False, "error": describe(err)}
    sys.stdout.write(json.dumps({"steps": results}, default=str) + "\n")


def expect_error(fn):
    """Runs fn, which must fail, and returns the error's description."""
    try:
        value = fn()
    except Exception as err:
        return describe(err)
    raise AssertionError("expected an error, got %r" % (value,))


def no_instance_discovery():
    """The option that skips MSAL's instance discovery (a call to
    login.microsoftonline.com) for a GUID tenant: disable_instance_discovery
    since azure-identity 1.13.0; instance_discovery=False in the 1.13 betas
    Debian ships."""
    import inspect

    from azure.identity._internal.msal_credentials import MsalCredential

    if "disable_instance_discovery" in inspect.signature(MsalCredential.__init__).parameters:
        return {"disable_instance_discovery": True}
    return {"instance_discovery": False}


def need(name):
    value = os.environ.get(name)
    if not value:
        raise KeyError(name + " is not set")
    return value
