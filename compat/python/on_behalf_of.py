"""The on-behalf-of flow with azure-identity: a person signs in to a web
API, and the API reads Key Vault as that person with OnBehalfOfCredential:
python3 on_behalf_of.py

Environment, as on-behalf-of.mjs: PERSON_TENANT_ID, PERSON_CLIENT_ID,
PERSON_USERNAME, PERSON_PASSWORD and API_SCOPE for the person's sign-in to
the API (UsernamePasswordCredential); AZURE_AUTHORITY_HOST,
AZURE_TENANT_ID (adfs, as the vault's challenge names it),
AZURE_CLIENT_ID, AZURE_CLIENT_SECRET, AZURE_CLIENT_CERTIFICATE_PATH and
TENANT_GUID for the web API; KEYVAULT_URL,
CLOSED_KEYVAULT_URL, SECRET_NAME and VAULT_SCOPE; OTHER_CLIENT_ID and
OTHER_CLIENT_SECRET for another application.

Steps: person-token; for each form of the API's credential (secret with
tenant adfs; certificate with the tenant GUID and any tenant allowed)
FORM-read, FORM-closed (the error) and FORM-token; other-app (the error).
"""

from azure.identity import OnBehalfOfCredential, UsernamePasswordCredential
from azure.keyvault.secrets import SecretClient

from harness import expect_error, need, no_instance_discovery, run

state = {}


def person_token(_):
    person = UsernamePasswordCredential(
        need("PERSON_CLIENT_ID"), need("PERSON_USERNAME"), need("PERSON_PASSWORD"),
        tenant_id=need("PERSON_TENANT_ID"), **no_instance_discovery()
    )
    state["assertion"] = person.get_token(need("API_SCOPE")).token
    return {"token": state["assertion"]}


def with_secret():
    return OnBehalfOfCredential(
        need("AZURE_TENANT_ID"), need("AZURE_CLIENT_ID"),
        client_secret=need("AZURE_CLIENT_SECRET"), user_assertion=state["assertion"]
    )


def with_certificate():
    with open(need("AZURE_CLIENT_CERTIFICATE_PATH"), "rb") as f:
        pem = f.read()
    return OnBehalfOfCredential(
        need("TENANT_GUID"), need("AZURE_CLIENT_ID"), client_certificate=pem,
        user_assertion=state["assertion"], additionally_allowed_tenants=["*"], **no_instance_discovery()
    )


def read(form, make):
    def step(_):
        state[form] = make()
        s = SecretClient(need("KEYVAULT_URL"), state[form]).get_secret(need("SECRET_NAME"))
        return {"value": s.value, "name": s.name}

    return step


steps = [("person-token", person_token)]
for form, make in (("secret", with_secret), ("certificate", with_certificate)):
    steps += [
        (form + "-read", read(form, make)),
        (form + "-closed", lambda _, form=form: expect_error(
            lambda: SecretClient(need("CLOSED_KEYVAULT_URL"), state[form]).get_secret(need("SECRET_NAME")))),
        (form + "-token", lambda _, form=form: {"token": state[form].get_token(need("VAULT_SCOPE")).token}),
    ]
steps.append((
    "other-app",
    lambda _: expect_error(lambda: OnBehalfOfCredential(
        need("AZURE_TENANT_ID"), need("OTHER_CLIENT_ID"),
        client_secret=need("OTHER_CLIENT_SECRET"), user_assertion=state["assertion"]
    ).get_token(need("VAULT_SCOPE"))),
))
run(steps)
