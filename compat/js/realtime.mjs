// openai's Realtime API clients against a Gatehouse OpenAI account: a
// session is created, a message and response.create are sent, the reply
// arrives in output_text deltas and response.done.
//
//   node realtime.mjs key       OpenAIRealtimeWS.azure(new AzureOpenAI({apiKey})): the key in an api-key header
//   node realtime.mjs token     OpenAIRealtimeWS.azure(new AzureOpenAI({azureADTokenProvider})): a bearer header
//   node realtime.mjs browser   OpenAIRealtimeWebSocket.azure (the browser class): the key in the URL's
//                               query, subprotocol "realtime"; Node's WebSocket (ws where Node has none)
//   node realtime.mjs v1        OpenAIRealtimeWS.create(new OpenAI({baseURL: …/openai/v1/, apiKey})): a bearer key
//
// Environment: AZURE_OPENAI_ENDPOINT, OPENAI_API_VERSION, AZURE_OPENAI_DEPLOYMENT,
// NODE_EXTRA_CA_CERTS, and AZURE_OPENAI_API_KEY or the credential's variables.
import { DefaultAzureCredential, getBearerTokenProvider } from "@azure/identity";
import OpenAI, { AzureOpenAI } from "openai";
import { OpenAIRealtimeWebSocket } from "openai/realtime/websocket";
import { OpenAIRealtimeWS } from "openai/realtime/ws";
import { WebSocket as WS } from "ws";
import { need, run } from "./harness.mjs";

const mode = process.argv[2];
const deployment = need("AZURE_OPENAI_DEPLOYMENT");
const endpoint = need("AZURE_OPENAI_ENDPOINT");

async function open() {
  switch (mode) {
    case "key":
      return OpenAIRealtimeWS.azure(new AzureOpenAI(), { deploymentName: deployment });
    case "token":
      return OpenAIRealtimeWS.azure(
        new AzureOpenAI({
          azureADTokenProvider: getBearerTokenProvider(new DefaultAzureCredential(), "https://cognitiveservices.azure.com/.default"),
        }),
        { deploymentName: deployment },
      );
    case "browser":
      globalThis.WebSocket ??= WS;
      return OpenAIRealtimeWebSocket.azure(new AzureOpenAI(), { deploymentName: deployment });
    case "v1":
      return OpenAIRealtimeWS.create(
        new OpenAI({ baseURL: endpoint.replace(/\/+$/, "") + "/openai/v1/", apiKey: need("AZURE_OPENAI_API_KEY") }),
        { model: deployment },
      );
  }
  throw new Error("unknown mode " + mode);
}

// session resolves with the first event, or rejects with the socket's
// error (a refused handshake).
function session(rt) {
  return new Promise((resolve, reject) => {
    rt.on("session.created", resolve);
    rt.on("error", reject);
  });
}

await run([
  ["conversation", async () => {
    const rt = await open();
    const created = await session(rt);
    const done = new Promise((resolve, reject) => {
      let text = "";
      rt.on("response.output_text.delta", (ev) => (text += ev.delta));
      rt.on("response.done", (ev) => resolve({ text, status: ev.response.status, usage: ev.response.usage }));
      rt.on("error", reject);
    });
    rt.send({
      type: "conversation.item.create",
      item: { type: "message", role: "user", content: [{ type: "input_text", text: "hello over " + mode }] },
    });
    rt.send({ type: "response.create" });
    const result = await done;
    rt.close();
    return {
      model: created.session.model,
      url: rt.url.pathname + "?" + [...rt.url.searchParams.keys()].sort().join(","),
      websocket: mode === "browser" ? (globalThis.WebSocket === WS ? "ws" : "node") : "ws",
      ...result,
    };
  }],
  ["wrong-deployment", async () => {
    const rt = mode === "v1"
      ? await OpenAIRealtimeWS.create(
          new OpenAI({ baseURL: endpoint.replace(/\/+$/, "") + "/openai/v1/", apiKey: need("AZURE_OPENAI_API_KEY") }),
          { model: "no-such-deployment" },
        )
      : await OpenAIRealtimeWS.azure(new AzureOpenAI(mode === "token" ? {
          azureADTokenProvider: getBearerTokenProvider(new DefaultAzureCredential(), "https://cognitiveservices.azure.com/.default"),
        } : {}), { deploymentName: "no-such-deployment" });
    try {
      await session(rt);
    } catch (err) {
      return { refused: String(err.message ?? err).slice(0, 300) };
    }
    throw new Error("connected to a deployment that does not exist");
  }],
]);
