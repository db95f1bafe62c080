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
//   device-code                 new DeviceCodeCredential({ tenantId, userPromptCallback }): the
//                               callback plays the person, approving the code on the portal's
//                               device page as $DEVICE_USER / $DEVICE_PASSWORD
//   interactive-browser         new InteractiveBrowserCredential({ tenantId }): MSAL Node's loopback
//                               listener and the system browser (the test's stands in for it)
//
// Each scope gets a token twice: the second must come from the cache. The
// last step, "prompts", counts the device-code prompts.
import {
  AzureCliCredential,
  ClientCertificateCredential,
  ClientSecretCredential,
  DefaultAzureCredential,
  DeviceCodeCredential,
  EnvironmentCredential,
  InteractiveBrowserCredential,
  ManagedIdentityCredential,
  WorkloadIdentityCredential,
} from "@azure/identity";
import { need, run } from "./harness.mjs";

const [mode, ...scopes] = process.argv.slice(2);
const env = process.env;

let prompts = 0;

// approveDevice does in the portal what the person does in a browser: sign
// in, enter the code, approve it.
async function approveDevice(info) {
  prompts++;
  const base = new URL(info.verificationUri).origin;
  const form = (fields) => ({
    method: "POST",
    redirect: "manual",
    headers: { "content-type": "application/x-www-form-urlencoded", ...(cookie ? { cookie } : {}) },
    body: new URLSearchParams(fields),
  });
  let cookie = "";
  const signin = await fetch(base + "/portal/signin", form({ username: need("DEVICE_USER"), password: need("DEVICE_PASSWORD"), next: "/portal/device" }));
  cookie = signin.headers.getSetCookie().map((c) => c.split(";")[0]).join("; ");
  if (signin.status !== 303 || !cookie) throw new Error(`portal sign-in: ${signin.status}`);
  for (const path of ["/portal/device", "/portal/device/approve"]) {
    const r = await fetch(base + path, form({ code: info.userCode }));
    if (r.status !== 200) throw new Error(`${path}: ${r.status}`);
  }
}

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
  "interactive-browser": () => new InteractiveBrowserCredential({ tenantId: need("AZURE_TENANT_ID") }),
  "device-code": () =>
    new DeviceCodeCredential({
      tenantId: need("AZURE_TENANT_ID"),
      userPromptCallback: (info) => {
        approveDevice(info).catch((err) => console.error("approving the device code failed:", err));
      },
    }),
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
steps.push(["prompts", () => prompts]);
await run(steps);
