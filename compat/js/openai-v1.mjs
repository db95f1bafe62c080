// openai's plain OpenAI client on Azure OpenAI's v1 API, the way Azure
// documents it: baseURL …/openai/v1/ and the account key (or an identity
// token) as the API key; the deployment is the model.
//
//   node openai-v1.mjs              apiKey from OPENAI_API_KEY (a key or a token)
//   node openai-v1.mjs credential   apiKey: getBearerTokenProvider(new DefaultAzureCredential(),
//                                   "https://ai.azure.com/.default"), as openai-node's azure.md has it
//
// Environment: OPENAI_BASE_URL (the account's endpoint + "openai/v1/"),
// AZURE_OPENAI_DEPLOYMENT, NODE_EXTRA_CA_CERTS, and OPENAI_API_KEY or the
// credential's variables.
import { DefaultAzureCredential, getBearerTokenProvider } from "@azure/identity";
import OpenAI from "openai";
import { expectError, need, run } from "./harness.mjs";

const deployment = need("AZURE_OPENAI_DEPLOYMENT");
const client =
  process.argv[2] === "credential"
    ? new OpenAI({ apiKey: getBearerTokenProvider(new DefaultAzureCredential(), "https://ai.azure.com/.default") })
    : new OpenAI(); // OPENAI_BASE_URL, OPENAI_API_KEY

await run([
  ["models", async () => {
    const page = await client.models.list();
    return { ids: page.data.map((m) => m.id) };
  }],
  ["model", async () => {
    const m = await client.models.retrieve(deployment);
    return { id: m.id, object: m.object };
  }],
  ["chat", async () => {
    const c = await client.chat.completions.create({ model: deployment, messages: [{ role: "user", content: "Say hello" }] });
    return { content: c.choices[0]?.message?.content ?? null };
  }],
  ["response", async () => {
    const r = await client.responses.create({ model: deployment, input: "Say hello" });
    return { id: r.id, content: r.output_text };
  }],
  ["response-get", async (results) => {
    const r = await client.responses.retrieve(results.response.value.id);
    return { id: r.id, content: r.output_text };
  }],
  ["response-stream", async () => {
    const stream = await client.responses.create({ model: deployment, input: "Say hello", stream: true });
    let content = "";
    let completed = null;
    for await (const event of stream) {
      if (event.type === "response.output_text.delta") content += event.delta;
      if (event.type === "response.completed") completed = event.response.status;
    }
    return { content, completed };
  }],
  ["embedding-unknown-deployment", () => expectError(() => client.embeddings.create({ model: "no-such-deployment", input: "x" }))],
]);
