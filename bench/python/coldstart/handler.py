"""The Python equivalent of callhook's ingest Lambda (functions/ingest): API Gateway HTTP API
(payload v2) -> verify on the raw bytes -> parse -> map -> one conditional PutItem per event.

    cd bench/python/coldstart && ../../.venv/bin/python -m awslambdaric handler.handler

At import (the cold start), as a real handler does and as callhook's init does: read the
configuration from the environment and create the boto3 DynamoDB client. The logic is
bench/reference/ingest.py, the same module the reference FastAPI receiver runs (in a deployment
package it would sit next to this file; here it is found through sys.path).

Environment: see bench/reference/ingest.py (CALLHOOK_CLAWOPS_SECRETS, CALLHOOK_VOX_TOKENS,
CALLHOOK_EVENTS_TABLE, CALLHOOK_DYNAMODB_ENDPOINT, ...), plus what Lambda sets (AWS_REGION, ...).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "reference"))

import ingest  # noqa: E402

log = logging.getLogger("callhook")
log.setLevel(logging.INFO)

settings = ingest.Settings.from_env()
store = ingest.Store(ingest.dynamodb_client(settings), settings)
log.info(json.dumps({
    "message": "callhook started",
    "function": "ingest",
    "events_table": settings.events_table,
    "providers": sorted(settings.providers),
}))


def _response(status: int, payload: dict) -> dict:
    response = {
        "statusCode": status,
        "headers": {"content-type": "application/json"},
        "body": json.dumps(payload, separators=(",", ":")),
    }
    if status == 405:
        response["headers"]["allow"] = "POST"
    return response


def handler(event, context):
    started = time.perf_counter()
    received_at = time.time_ns() // 1_000_000
    http = (event.get("requestContext") or {}).get("http") or {}
    provider = (event.get("pathParameters") or {}).get("provider")
    if provider is None:
        path = event.get("rawPath") or ""
        provider = path.removeprefix("/webhooks/").rstrip("/") if path.startswith("/webhooks/") else ""
    body = event.get("body") or ""
    body = base64.b64decode(body) if event.get("isBase64Encoded") else body.encode()
    headers = event.get("headers") or {}  # API Gateway v2 lowercases header names
    token = (event.get("queryStringParameters") or {}).get("token")

    call_id, types, outcome = "", "", "stored"
    try:
        if http.get("method", "").upper() != "POST":
            raise ingest.MethodNotAllowed()
        taken = ingest.intake(settings, provider, headers, token, body, received_at)
        call_id = taken.events[0].call_id if taken.events else ""
        types = ",".join(e.event_type for e in taken.events)
        status, answer = ingest.store_intake(store, taken, body, received_at)
        outcome = ingest.delivery_outcome(taken, answer)
    except ingest.WebhookError as error:
        status, answer, outcome = ingest.refusal(log, error)
    ingest.log_webhook(log, provider, call_id, types, outcome, status, started)
    return _response(status, answer)
