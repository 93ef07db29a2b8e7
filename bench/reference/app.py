"""The reference receiver: the webhook server a user would write from the ClawOps guide
("웹훅으로 전화 자동화 구현하기: Python + FastAPI 실전 코드", shared/seeds/001_*), grown to do the same job
as callhook's ingest: FastAPI + uvicorn + boto3.

The guide's pattern, kept as it is written there:

    body = await request.body()
    signature = request.headers.get("X-ClawOps-Signature", "")
    if not verify_signature(body, signature): raise HTTPException(401, ...)
    data = await request.json()   # here: json.loads of the same bytes, inside ingest.parse

and its deployment checklist made real: signature verification, JSON errors, idempotency (one
conditional PutItem per event, a redelivery answers duplicate=true), 5xx on storage failure so
the sender retries. The verify/parse/map/item code is ingest.py (next to this file), which the
CPU kernel and the Lambda handler import too, so all three measure the same code.

Run (from the repository root, after bench/setup-python.sh):

    CALLHOOK_CLAWOPS_SECRETS=whsec_test CALLHOOK_VOX_TOKENS=tok \\
    CALLHOOK_DYNAMODB_ENDPOINT=http://127.0.0.1:8000 \\
    bench/.venv/bin/uvicorn app:app --app-dir bench/reference --host 127.0.0.1 --port 8080

    POST /webhooks/{provider}        provider: clawops | vox | synthflow
      clawops: header X-ClawOps-Signature: sha256=<hex HMAC-SHA256 of the raw body>
      vox, synthflow: ?token=<token>
    -> 200 {"received": true, "duplicate": false, "events": [{"type", "dedupe_key", "duplicate"}]}
    -> 400 / 401 / 404 / 405 / 413 / 422 / 503 {"error": <code>, "message": <sentence>}

Environment (read once at start-up; the same names as callhook's):

    CALLHOOK_CLAWOPS_SECRETS      HMAC secret(s), comma-separated (ClawOps answers 404 without)
    CALLHOOK_VOX_TOKENS           ?token= value(s) for Vox (404 without)
    CALLHOOK_SYNTHFLOW_TOKENS     ?token= value(s) for Synthflow (404 without)
    CALLHOOK_<P>_AUTH             hmac-sha256 | token | none, to change a provider's scheme
    CALLHOOK_EVENTS_TABLE         DynamoDB table (default callhook-events; key pk S + sk S)
    CALLHOOK_DYNAMODB_ENDPOINT    DynamoDB Local URL; unset = AWS with the standard boto3 chain
    AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY   for real DynamoDB (boto3's chain)
    CALLHOOK_MAX_BODY_BYTES       default 6 MiB; CALLHOOK_EVENT_RETENTION_DAYS sets expires_at
"""

from __future__ import annotations

import logging
import time

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

import ingest

logging.basicConfig(level=logging.INFO, format="%(message)s")
log = logging.getLogger("callhook.reference")

settings = ingest.Settings.from_env()
store = ingest.Store(ingest.dynamodb_client(settings), settings)

app = FastAPI(title="callhook reference receiver")


@app.exception_handler(ingest.WebhookError)
async def webhook_error(request: Request, exc: ingest.WebhookError):
    return JSONResponse(status_code=exc.status, content=exc.body())


@app.exception_handler(StarletteHTTPException)
async def http_error(request: Request, exc: StarletteHTTPException):
    # Unknown routes and methods answer in the same JSON shape as everything else.
    if exc.status_code == 405:
        error = ingest.MethodNotAllowed()
        return JSONResponse(status_code=405, content=error.body(), headers={"Allow": "POST"})
    return JSONResponse(
        status_code=exc.status_code,
        content={"error": "not_found" if exc.status_code == 404 else "http_error", "message": str(exc.detail)},
    )


@app.post("/webhooks/{provider}")
async def webhook(provider: str, request: Request):
    started = time.perf_counter()
    received_at = time.time_ns() // 1_000_000
    body = await request.body()
    status, call_id, types, outcome = 200, "", "", "stored"
    try:
        # Verify on the raw bytes, then parse: CPU only, on the event loop.
        taken = ingest.intake(
            settings, provider, request.headers, request.query_params.get("token"), body, received_at
        )
        call_id = taken.events[0].call_id if taken.events else ""
        types = ",".join(e.event_type for e in taken.events)
        # boto3 blocks: the writes run in FastAPI's thread pool, not on the event loop.
        status, answer = await run_in_threadpool(ingest.store_intake, store, taken, body, received_at)
        outcome = ingest.delivery_outcome(taken, answer)
    except ingest.WebhookError as error:
        status, answer, outcome = ingest.refusal(log, error)
    ingest.log_webhook(log, provider, call_id, types, outcome, status, started)
    if status != 200:
        return JSONResponse(status_code=status, content=answer)
    return answer
