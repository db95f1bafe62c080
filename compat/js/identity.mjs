// Credentials of @azure/identity getting tokens from Gatehouse.
//
//   node identity.mjs MODE SCOPE...
//
// MODE picks the credential, built the way an application builds it, with
// everything else from the environment (AZURE_AUTHORITY_HOST,
// AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET,
// AZURE_CLIENT_CERTIFICATE_PATH, AZURE_FEDERATED_TOKEN_FILE,
// IDENTITY_ENDPOINT/IDENTITY_HEADER inside
// `gatehouse run --identity`, NODE_EXTRA_CA_CERTS):
//
//   client-secret               new ClientSecretCredential(tenant, id, secret)
//   client-secret-guid          … with { disableInstanceDiscovery: true } (GUID tenant)
//   client-certificate          new ClientCertificateCredential(tenant, id, certPath)
//   client-certificate-guid     … with { disableInstanceDiscovery: true }
//   workload-identity           new WorkloadIdentityCredential() (AZURE_FEDERATED_TOKEN_FILE)
//   azure-cli                   new AzureCliCredential() (after `az login`; AZURE_CONFIG_DIR)
//   environment                 new EnvironmentCredential()
//   default                     new DefaultAzureCredential()
//   managed-identity            new ManagedIdentityCredential()
//   managed-identity-client-id  new ManagedIdentityCredential({ clientId: $APP_IDENTITY_CLIENT_ID })
//   managed-identity-resource-id new ManagedIdentityCredential({ resourceId: $APP_IDENTITY_RESOURCE_ID })
//
// Each scope gets a token twice: the second must come from the cache.
import {
  AzureCliCredential,
  ClientCertificateCredential,
  ClientSecretCredential,
  DefaultAzureCredential,
  EnvironmentCredential,
  ManagedIdentityCredential,
  WorkloadIdentityCredential,
} from "@azure/identity";
import { need, run } from "./harness.mjs";

const [mode, ...scopes] = process.argv.slice(2);
const env = process.env;

const credentials = {
  "client-secret": () => new ClientSecretCredential(need("AZURE_TENANT_ID"), need("AZURE_CLIENT_ID"), need("AZURE_CLIENT_SECRET")),
  "client-secret-guid": () =>
    new ClientSecretCredential(need("AZURE_TENANT_ID"), need("AZURE_CLIENT_ID"), need("AZURE_CLIENT_SECRET"), {
      disableInstanceDiscovery: true,
    }),
  "client-certificate": () =>
    new ClientCertificateCredential(need("AZURE_TENANT_ID"), need("AZURE_CLIENT_ID"), need("AZURE_CLIENT_CERTIFICATE_PATH")),
  "client-certificate-guid": () =>
    new ClientCertificateCredential(need("AZURE_TENANT_ID"), need("AZURE_CLIENT_ID"), need("AZURE_CLIENT_CERTIFICATE_PATH"), {
      disableInstanceDiscovery: true,
    }),
  "workload-identity": () => new WorkloadIdentityCredential(),
  "azure-cli": () => new AzureCliCredential(),
  environment: () => new EnvironmentCredential(),
  default: () => new DefaultAzureCredential(),
  "managed-identity": () => new ManagedIdentityCredential(),
  "managed-identity-client-id": () => new ManagedIdentityCredential({ clientId: need("APP_IDENTITY_CLIENT_ID") }),
  "managed-identity-resource-id": () => new ManagedIdentityCredential({ resourceId: need("APP_IDENTITY_RESOURCE_ID") }),
};

let cred;
const steps = [
  [
    "credential",
    () => {
      const make = credentials[mode];
      if (!make) throw new Error(`unknown mode ${mode}`);
      cred = make();
      return { env: { tenant: env.AZURE_TENANT_ID ?? null, identityEndpoint: env.IDENTITY_ENDPOINT ?? null } };
    },
  ],
];
for (const scope of scopes) {
  steps.push([
    scope,
    async () => {
      const first = await cred.getToken(scope);
      const again = await cred.getToken(scope);
      return {
        token: first.token,
        expiresOnTimestamp: first.expiresOnTimestamp,
        refreshAfterTimestamp: first.refreshAfterTimestamp ?? null,
        tokenType: first.tokenType ?? null,
        cached: again.token === first.token,
      };
    },
  ]);
}
await run(steps);
