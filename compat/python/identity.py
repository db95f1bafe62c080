"""azure-identity credentials get tokens: python3 identity.py MODE SCOPE...

Each scope's step gets a token twice (the second must come from the
credential's cache) and returns it for the Go side to verify."""

import sys

from azure.identity import (
    CertificateCredential,
    ClientSecretCredential,
    DefaultAzureCredential,
    EnvironmentCredential,
    ManagedIdentityCredential,
)

from harness import expect_error, need, run

mode, scopes = sys.argv[1], sys.argv[2:]


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
run(steps)
