"""azure-identity credentials get tokens: python3 identity.py MODE SCOPE...

Each scope's step gets a token twice (the second must come from the
credential's cache) and returns it for the Go side to verify. In mode
device-code the prompt callback plays the person: it approves the code on
the portal's device page as $DEVICE_USER / $DEVICE_PASSWORD; the last step,
"prompts", counts the prompts. In mode interactive-browser the system
browser is the test's ($BROWSER)."""

import http.cookiejar
import os
import ssl
import sys
import urllib.parse
import urllib.request

from azure.identity import (
    CertificateCredential,
    ClientSecretCredential,
    DefaultAzureCredential,
    DeviceCodeCredential,
    InteractiveBrowserCredential,
    EnvironmentCredential,
    ManagedIdentityCredential,
)

from harness import expect_error, need, no_instance_discovery, run

mode, scopes = sys.argv[1], sys.argv[2:]


prompts = []


def approve_device(verification_uri, user_code, expires_on):
    """What the person does in a browser: sign in, enter the code, approve."""
    prompts.append(user_code)
    base = "{0.scheme}://{0.netloc}".format(urllib.parse.urlsplit(verification_uri))
    ctx = ssl.create_default_context(cafile=os.environ["REQUESTS_CA_BUNDLE"])
    opener = urllib.request.build_opener(
        urllib.request.HTTPSHandler(context=ctx), urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
    )
    for path, fields in (
        ("/portal/signin", {"username": need("DEVICE_USER"), "password": need("DEVICE_PASSWORD"), "next": "/portal/device"}),
        ("/portal/device", {"code": user_code}),
        ("/portal/device/approve", {"code": user_code}),
    ):
        with opener.open(base + path, data=urllib.parse.urlencode(fields).encode()) as resp:
            if resp.status != 200:
                raise RuntimeError("%s: %d" % (path, resp.status))


credentials = {
    "client-secret": lambda: ClientSecretCredential(need("AZURE_TENANT_ID"), need("AZURE_CLIENT_ID"), need("AZURE_CLIENT_SECRET")),
    "client-secret-guid": lambda: ClientSecretCredential(
        need("AZURE_TENANT_ID"), need("AZURE_CLIENT_ID"), need("AZURE_CLIENT_SECRET"), **no_instance_discovery()
    ),
    "client-certificate": lambda: CertificateCredential(
        need("AZURE_TENANT_ID"), need("AZURE_CLIENT_ID"), certificate_path=need("AZURE_CLIENT_CERTIFICATE_PATH")
    ),
    "environment": lambda: EnvironmentCredential(),
    "default": lambda: DefaultAzureCredential(),
    "managed-identity": lambda: ManagedIdentityCredential(),
    "managed-identity-client-id": lambda: ManagedIdentityCredential(client_id=need("APP_IDENTITY_CLIENT_ID")),
    "interactive-browser": lambda: InteractiveBrowserCredential(tenant_id=need("AZURE_TENANT_ID")),
    "device-code": lambda: DeviceCodeCredential(tenant_id=need("AZURE_TENANT_ID"), prompt_callback=approve_device),
}

state = {}


def make(_):
    state["cred"] = credentials[mode]()
    return {"mode": mode}


def token_step(scope):
    def step(_):
        first = state["cred"].get_token(scope)
        again = state["cred"].get_token(scope)
        return {"token": first.token, "expiresOnTimestamp": first.expires_on * 1000, "cached": again.token == first.token}

    return step


steps = [("credential", make)] + [(scope, token_step(scope)) for scope in scopes]
if mode == "client-secret":
    steps.append((
        "wrong-secret",
        lambda _: expect_error(
            lambda: ClientSecretCredential(need("AZURE_TENANT_ID"), need("AZURE_CLIENT_ID"), "not-the-secret").get_token(scopes[0])
        ),
    ))
    steps.append((
        "unknown-resource",
        lambda _: expect_error(lambda: state["cred"].get_token("https://unknown.example.test/.default")),
    ))
if mode == "device-code":
    steps.append(("prompts", lambda _: len(prompts)))
run(steps)
