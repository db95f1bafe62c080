// @azure/ai-language-text's TextAnalysisClient against a Gatehouse account.
//
//   node language.mjs key     AzureKeyCredential($LANGUAGE_KEY)
//   node language.mjs token   DefaultAzureCredential (identity from the environment)
//
// Environment: LANGUAGE_ENDPOINT (the account's properties.endpoint),
// NODE_EXTRA_CA_CERTS, and the credential's variables.
import { AzureKeyCredential, TextAnalysisClient } from "@azure/ai-language-text";
import { DefaultAzureCredential } from "@azure/identity";
import { expectError, need, run } from "./harness.mjs";

const mode = process.argv[2];
const endpoint = need("LANGUAGE_ENDPOINT");
const credential = mode === "key" ? new AzureKeyCredential(need("LANGUAGE_KEY")) : new DefaultAzureCredential();
const client = new TextAnalysisClient(endpoint, credential);

const doc = (d) =>
  d.error
    ? { id: d.id, error: { code: d.error.code, message: d.error.message } }
    : {
        id: d.id,
        primaryLanguage: d.primaryLanguage ?? null,
        sentiment: d.sentiment ?? null,
        confidenceScores: d.confidenceScores ?? null,
        sentences: d.sentences?.map((s) => ({ text: s.text, sentiment: s.sentiment, offset: s.offset, length: s.length, opinions: s.opinions ?? null })) ?? null,
        statistics: d.statistics ?? null,
        warnings: d.warnings,
      };

await run([
  ["language-detection", async () =>
    (await client.analyze("LanguageDetection", [
      "Hello world, this is a sentence written in plain English for the detector.",
      "Bonjour tout le monde, ceci est une phrase écrite en français pour le détecteur.",
      "Hola a todos, esta es una frase escrita en español para el detector de idiomas.",
    ])).map(doc)],
  ["language-detection-hint", async () =>
    (await client.analyze("LanguageDetection", [{ id: "a", text: "Guten Morgen, wie geht es dir heute?", countryHint: "de" }], {
      includeStatistics: true,
      modelVersion: "latest",
    })).map(doc)],
  ["sentiment", async () =>
    (await client.analyze("SentimentAnalysis", [
      "I love this product. It works wonderfully and the team was great!",
      "This is terrible. I hate how slow and broken it is.",
      "The meeting is at noon.",
    ], "en")).map(doc)],
  ["sentiment-opinion-mining", async () =>
    (await client.analyze("SentimentAnalysis", [{ id: "x", text: "The food was great but the service was awful.", language: "en" }], {
      includeOpinionMining: true,
    })).map(doc)],
  ["sentiment-document-errors", async () =>
    (await client.analyze("SentimentAnalysis", [
      { id: "1", text: "", language: "en" },
      { id: "2", text: "Good morning, lovely day.", language: "en" },
    ])).map(doc)],
  // Sentiment takes at most 10 documents: the service refuses the batch.
  ["bad-request", () =>
    expectError(() => client.analyze("SentimentAnalysis", Array.from({ length: 11 }, (_, i) => `Document number ${i}.`), "en"))],
]);
