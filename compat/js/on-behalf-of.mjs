// The on-behalf-of flow with @azure/identity: a person signs in to a web
// API, and the API reads Key Vault as that person with OnBehalfOfCredential.
//
//   node on-behalf-of.mjs
//
// Environment (besides AZURE_AUTHORITY_HOST and NODE_EXTRA_CA_CERTS):
//
//   PERSON_TENANT_ID, PERSON_CLIENT_ID,   the person's sign-in to the API: UsernamePasswordCredential
//   PERSON_USERNAME, PERSON_PASSWORD,     (disableInstanceDiscovery) of a public client, for the API's
//   API_SCOPE                             {identifier URI}/.default
//   AZURE_TENANT_ID, AZURE_CLIENT_ID,     the web API: tenant adfs (the vault's challenge names it),
//   AZURE_CLIENT_SECRET,                  its secret, and its certificate (with tenant TENANT_GUID,
//   AZURE_CLIENT_CERTIFICATE_PATH,        disableInstanceDiscovery and any tenant allowed)
//   TENANT_GUID
//   KEYVAULT_URL, CLOSED_KEYVAULT_URL,    a vault the person may read, one they may not, the secret
//   SECRET_NAME, VAULT_SCOPE              in both, and the vault resource's scope
//   OTHER_CLIENT_ID, OTHER_CLIENT_SECRET  another application, which must not use the person's token
//
// Steps: person-token; for each form of the API's credential (secret,
// certificate) FORM-read, FORM-closed (the error) and FORM-token (the
// token the API got for the vault); other-app (the error).
import { OnBehalfOfCredential, UsernamePasswordCredential } from "@azure/identity";
import { SecretClient } from "@azure/keyvault-secrets";
import { expectError, need, run } from "./harness.mjs";

let assertion;

const forms = {
  secret: () =>
    new OnBehalfOfCredential({
      tenantId: need("AZURE_TENANT_ID"),
      clientId: need("AZURE_CLIENT_ID"),
      clientSecret: need("AZURE_CLIENT_SECRET"),
      userAssertionToken: assertion,
    }),
  certificate: () =>
    new OnBehalfOfCredential({
      tenantId: need("TENANT_GUID"),
      clientId: need("AZURE_CLIENT_ID"),
      certificatePath: need("AZURE_CLIENT_CERTIFICATE_PATH"),
      userAssertionToken: assertion,
      disableInstanceDiscovery: true,
      additionallyAllowedTenants: ["*"],
    }),
};

const steps = [
  [
    "person-token",
    async () => {
      const person = new UsernamePasswordCredential(
        need("PERSON_TENANT_ID"),
        need("PERSON_CLIENT_ID"),
        need("PERSON_USERNAME"),
        need("PERSON_PASSWORD"),
        { disableInstanceDiscovery: true },
      );
      assertion = (await person.getToken(need("API_SCOPE"))).token;
      return { token: assertion };
    },
  ],
];
for (const [form, make] of Object.entries(forms)) {
  let cred;
  steps.push(
    [
      `${form}-read`,
      async () => {
        cred = make();
        const s = await new SecretClient(need("KEYVAULT_URL"), cred).getSecret(need("SECRET_NAME"));
        return { value: s.value ?? null, name: s.name };
      },
    ],
    [`${form}-closed`, () => expectError(() => new SecretClient(need("CLOSED_KEYVAULT_URL"), cred).getSecret(need("SECRET_NAME")))],
    [`${form}-token`, async () => ({ token: (await cred.getToken(need("VAULT_SCOPE"))).token })],
  );
}
steps.push([
  "other-app",
  () =>
    expectError(() =>
      new OnBehalfOfCredential({
        tenantId: need("AZURE_TENANT_ID"),
        clientId: need("OTHER_CLIENT_ID"),
        clientSecret: need("OTHER_CLIENT_SECRET"),
        userAssertionToken: assertion,
      }).getToken(need("VAULT_SCOPE")),
    ),
]);
await run(steps);
