"""azure-ai-textanalytics TextAnalyticsClient against an account endpoint:
python3 language.py key | aad (LANGUAGE_ENDPOINT, LANGUAGE_KEY for key; the
environment's credential for aad; LANGUAGE_API_VERSION, when set, picks the
client's api_version, e.g. v3.1 for the Text Analytics v3 routes)."""

import os
import sys

from azure.ai.textanalytics import AnalyzeSentimentAction, TextAnalyticsClient
from azure.core.credentials import AzureKeyCredential
from azure.identity import DefaultAzureCredential

from harness import expect_error, need, run

mode = sys.argv[1]
endpoint = need("LANGUAGE_ENDPOINT")
credential = AzureKeyCredential(need("LANGUAGE_KEY")) if mode == "key" else DefaultAzureCredential()
options = {"api_version": os.environ["LANGUAGE_API_VERSION"]} if os.environ.get("LANGUAGE_API_VERSION") else {}
client = TextAnalyticsClient(endpoint, credential, **options)


def detect(_):
    out = []
    for d in client.detect_language(["Hello world, this is a sentence in English.", "Bonjour tout le monde, comment allez-vous?", ""]):
        if d.is_error:
            out.append({"id": d.id, "error": d.error.code})
        else:
            out.append({"id": d.id, "language": d.primary_language.iso6391_name, "name": d.primary_language.name,
                        "score": d.primary_language.confidence_score})
    return out


def sentiment(_):
    out = []
    docs = ["The food was wonderful and the staff were lovely. The parking was terrible."]
    for d in client.analyze_sentiment(docs, show_opinion_mining=True, show_stats=True):
        out.append({
            "id": d.id, "sentiment": d.sentiment,
            "scores": [d.confidence_scores.positive, d.confidence_scores.neutral, d.confidence_scores.negative],
            "sentences": [{"text": s.text, "sentiment": s.sentiment, "offset": s.offset, "length": s.length} for s in d.sentences],
            # The SDK follows the targets' relation references to build these.
            "opinions": [
                {"target": o.target.text, "sentiment": o.target.sentiment,
                 "assessments": [{"text": a.text, "sentiment": a.sentiment, "negated": a.is_negated} for a in o.assessments]}
                for s in d.sentences for o in (s.mined_opinions or [])
            ],
            "characters": d.statistics.character_count,
        })
    return out


def text_elements(_):
    # string_index_type="TextElement_v8": the SDK sends it as is to Text
    # Analytics v3 and rewrites it to TextElements_v8 for the Language API.
    # A flag and a skin-toned emoji are one text element each.
    d = client.analyze_sentiment(["Paris \U0001F1EB\U0001F1F7 is lovely \U0001F44D\U0001F3FD. Really."],
                                 string_index_type="TextElement_v8")[0]
    return [{"text": s.text, "offset": s.offset, "length": s.length} for s in d.sentences]


steps = [("detect", detect), ("sentiment", sentiment), ("text-elements", text_elements)]
if mode == "key":
    steps.append(("wrong-key", lambda _: expect_error(
        lambda: list(TextAnalyticsClient(endpoint, AzureKeyCredential("0" * 64), **options).detect_language(["hello"])))))
    steps.append(("too-many-documents", lambda _: expect_error(
        lambda: list(client.analyze_sentiment(["good"] * 11)))))
    # A long-running analysis (analyze-text/jobs; v3.1's /analyze): not
    # performed by the built-in service, and answered so.
    steps.append(("analyze-actions", lambda _: expect_error(
        lambda: client.begin_analyze_actions(["good"], actions=[AnalyzeSentimentAction()]).result())))
    steps.append(("entities", lambda _: expect_error(lambda: client.recognize_entities(["Paris is in France."]))))
run(steps)
