// @azure/keyvault-secrets' SecretClient against a Gatehouse vault.
//
//   node keyvault.mjs full   every operation on a vault the caller may manage
//   node keyvault.mjs read   read the secret $SECRET_NAME (e.g. as a managed identity)
//   node keyvault.mjs set NAME VALUE   set one secret
//
// Environment: KEYVAULT_URL (the vault's properties.vaultUri) and what
// DefaultAzureCredential reads (AZURE_AUTHORITY_HOST, AZURE_TENANT_ID=adfs,
// AZURE_CLIENT_ID/SECRET, or IDENTITY_ENDPOINT/HEADER), NODE_EXTRA_CA_CERTS.
import { DefaultAzureCredential } from "@azure/identity";
import { SecretClient } from "@azure/keyvault-secrets";
import { expectError, need, run } from "./harness.mjs";

const mode = process.argv[2];
const client = new SecretClient(need("KEYVAULT_URL"), new DefaultAzureCredential());

const props = (p) => ({
  id: p.id,
  name: p.name,
  version: p.version,
  enabled: p.enabled,
  contentType: p.contentType ?? null,
  tags: p.tags ?? null,
  createdOn: p.createdOn?.toISOString() ?? null,
  updatedOn: p.updatedOn?.toISOString() ?? null,
  notBefore: p.notBefore?.toISOString() ?? null,
  expiresOn: p.expiresOn?.toISOString() ?? null,
  recoveryLevel: p.recoveryLevel ?? null,
  recoverableDays: p.recoverableDays ?? null,
  vaultUrl: p.vaultUrl,
});
const secret = (s) => ({ value: s.value ?? null, ...props(s.properties) });
const deleted = (d) => ({
  ...secret(d),
  recoveryId: d.properties.recoveryId ?? null,
  deletedOn: d.properties.deletedOn?.toISOString() ?? null,
  scheduledPurgeDate: d.properties.scheduledPurgeDate?.toISOString() ?? null,
});
const collect = async (iter, f) => {
  const out = [];
  for await (const x of iter) out.push(f(x));
  return out;
};

const name = "compat-secret";
const nbf = new Date(Math.floor(Date.now() / 1000 - 3600) * 1000);
const exp = new Date(Math.floor(Date.now() / 1000 + 86400) * 1000);

const full = [
  ["set", async () =>
    secret(await client.setSecret(name, "value-one", { contentType: "text/plain", tags: { env: "ci" }, notBefore: nbf, expiresOn: exp }))],
  ["set-again", async () => secret(await client.setSecret(name, "value-two"))],
  ["get-latest", async () => secret(await client.getSecret(name))],
  ["get-version", async (r) => secret(await client.getSecret(name, { version: r.set.value.version }))],
  ["update", async (r) =>
    props(await client.updateSecretProperties(name, r.set.value.version, { enabled: false, tags: { rotated: "yes" } }))],
  ["get-disabled", async (r) => expectError(() => client.getSecret(name, { version: r.set.value.version }))],
  ["set-others", async () => {
    for (const n of ["compat-other-1", "compat-other-2"]) await client.setSecret(n, "other");
    return null;
  }],
  ["list", () => collect(client.listPropertiesOfSecrets(), props)],
  ["list-pages", async () => {
    const pages = [];
    for await (const page of client.listPropertiesOfSecrets().byPage({ maxPageSize: 1 })) pages.push(page.map((p) => p.name));
    return pages;
  }],
  ["list-versions", () => collect(client.listPropertiesOfSecretVersions(name), props)],
  ["backup", async () => {
    const b = await client.backupSecret(name);
    backup = b;
    return { length: b?.length ?? 0 };
  }],
  ["delete", async () => deleted(await (await client.beginDeleteSecret(name)).pollUntilDone())],
  ["get-deleted", async () => deleted(await client.getDeletedSecret(name))],
  ["list-deleted", () => collect(client.listDeletedSecrets(), deleted)],
  ["set-while-deleted", () => expectError(() => client.setSecret(name, "value-three"))],
  ["get-while-deleted", () => expectError(() => client.getSecret(name))],
  // The recover poller's result is the SecretProperties of the recovered secret.
  ["recover", async () => props(await (await client.beginRecoverDeletedSecret(name)).pollUntilDone())],
  ["get-recovered", async () => secret(await client.getSecret(name))],
  ["delete-again", async () => deleted(await (await client.beginDeleteSecret(name)).pollUntilDone())],
  ["purge", async () => (await client.purgeDeletedSecret(name)) ?? null],
  ["get-purged", () => expectError(() => client.getDeletedSecret(name))],
  ["restore", async () => props(await client.restoreSecretBackup(backup))],
  ["get-restored", async () => secret(await client.getSecret(name))],
  ["restore-existing", () => expectError(() => client.restoreSecretBackup(backup))],
  ["get-missing", () => expectError(() => client.getSecret("no-such-secret"))],
];
let backup;

const read = [["get", async () => secret(await client.getSecret(need("SECRET_NAME")))]];

const set = [["set", async () => secret(await client.setSecret(process.argv[3], process.argv[4]))]];

const steps = { full, read, set }[mode];
if (!steps) throw new Error(`unknown mode ${mode}`);
await run(steps);
