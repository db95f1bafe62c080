// openai's AzureOpenAI client against a Gatehouse OpenAI account: chat
// completions, transcription, speech, image generation and the Responses
// API.
//
//   node openai.mjs key     apiKey from AZURE_OPENAI_API_KEY (the client reads it itself)
//   node openai.mjs token   azureADTokenProvider: getBearerTokenProvider(new DefaultAzureCredential(),
//                           "https://cognitiveservices.azure.com/.default")
//
// Environment: AZURE_OPENAI_ENDPOINT (the account's endpoint),
// OPENAI_API_VERSION, AZURE_OPENAI_DEPLOYMENT (a deployment name),
// NODE_EXTRA_CA_CERTS, and the credential's variables.
import { DefaultAzureCredential, getBearerTokenProvider } from "@azure/identity";
import { AzureOpenAI, toFile } from "openai";
import { expectError, need, run } from "./harness.mjs";

const mode = process.argv[2];
const deployment = need("AZURE_OPENAI_DEPLOYMENT");
const auth =
  mode === "token"
    ? { azureADTokenProvider: getBearerTokenProvider(new DefaultAzureCredential(), "https://cognitiveservices.azure.com/.default") }
    : {};
// One client routes by the body's model, one is bound to the deployment.
const client = new AzureOpenAI({ ...auth });
const bound = new AzureOpenAI({ ...auth, deployment });
const messages = [
  { role: "system", content: "You are terse." },
  { role: "user", content: "Say hello" },
];

const completion = (c) => ({
  id: c.id,
  object: c.object,
  model: c.model,
  content: c.choices[0]?.message?.content ?? null,
  finishReason: c.choices[0]?.finish_reason ?? null,
  usage: c.usage ?? null,
});

await run([
  ["chat", async () => completion(await client.chat.completions.create({ model: deployment, messages, temperature: 0 }))],
  ["chat-bound-deployment", async () => completion(await bound.chat.completions.create({ model: "ignored-by-the-path", messages }))],
  ["chat-with-response", async () => {
    const { data, response } = await client.chat.completions.create({ model: deployment, messages }).withResponse();
    return { content: data.choices[0]?.message?.content ?? null, status: response.status, requestId: response.headers.get("x-request-id") ?? response.headers.get("apim-request-id") };
  }],
  ["chat-stream", async () => {
    const stream = await client.chat.completions.create({ model: deployment, messages, stream: true });
    let content = "";
    let chunks = 0;
    let finishReason = null;
    for await (const chunk of stream) {
      chunks++;
      content += chunk.choices[0]?.delta?.content ?? "";
      finishReason = chunk.choices[0]?.finish_reason ?? finishReason;
    }
    return { content, chunks, finishReason };
  }],
  ["chat-stream-helper", async () => {
    const runner = client.chat.completions.stream({ model: deployment, messages });
    const final = await runner.finalChatCompletion();
    return { content: final.choices[0]?.message?.content ?? null };
  }],
  ["unknown-deployment", () => expectError(() => client.chat.completions.create({ model: "no-such-deployment", messages }))],
  // The dated API's models: the base models the account can deploy (the
  // server's model catalog).
  ["models", async () => {
    const ids = [];
    for await (const m of client.models.list()) ids.push(m.id);
    const one = await client.models.retrieve(ids[0]);
    return { ids, retrieved: one.id };
  }],
  // Media: a transcription is multipart/form-data (openai-node's FormData),
  // speech answers audio bytes, an image generation JSON.
  ["transcription", async () => {
    const audio = Buffer.alloc(100000, "RIFF\r\n--");
    const r = await client.audio.transcriptions.create({ model: deployment, file: await toFile(audio, "speech.wav"), language: "de" });
    return { content: r.text };
  }],
  ["speech", async () => {
    const r = await client.audio.speech.create({ model: deployment, input: "guten tag", voice: "alloy" });
    return { content: Buffer.from(await r.arrayBuffer()).toString("latin1"), object: r.headers.get("content-type") };
  }],
  ["image", async () => {
    const r = await client.images.generate({ model: deployment, prompt: "a gate" });
    return { content: r.data[0].revised_prompt };
  }],
  // The Responses API: created by the body's model at …/openai/responses,
  // then read back, listed, deleted and streamed.
  ["response", async () => {
    const r = await client.responses.create({ model: deployment, input: "Say hello" });
    return { id: r.id, object: r.object, finishReason: r.status, content: r.output_text };
  }],
  ["response-get", async (results) => {
    const r = await client.responses.retrieve(results.response.value.id);
    return { id: r.id, content: r.output_text };
  }],
  ["response-input-items", async (results) => {
    const page = await client.responses.inputItems.list(results.response.value.id);
    return { chunks: page.data.length };
  }],
  ["response-delete", async (results) => {
    await client.responses.delete(results.response.value.id);
    return {};
  }],
  ["response-get-deleted", (results) => expectError(() => client.responses.retrieve(results.response.value.id))],
  ["response-stream", async () => {
    const stream = await client.responses.create({ model: deployment, input: "Say hello", stream: true });
    let content = "";
    let chunks = 0;
    let finishReason = null;
    for await (const event of stream) {
      if (event.type === "response.output_text.delta") {
        chunks++;
        content += event.delta;
      } else if (event.type === "response.completed") {
        finishReason = event.response.status;
      }
    }
    return { content, chunks, finishReason };
  }],
]);
