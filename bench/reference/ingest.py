"""What a Python webhook receiver does per event, the same job as callhook's ingest.

Shared by the reference FastAPI receiver (app.py), the CPU kernel (bench/python/kernel.py) and the
Python Lambda handler (bench/python/coldstart/handler.py), so all three measure one code path:

    verify on the raw bytes -> json.loads -> map to canonical events (with dedupe keys)
    -> one events-table item per event (boto3 TypeSerializer) -> one conditional PutItem each

It mirrors callhook (shared/src/provider/*.rs, auth.rs, event.rs, store.rs) field by field:

- auth: ClawOps HMAC-SHA256 over the raw body, ``X-ClawOps-Signature: sha256=<hex>``; Vox and
  Synthflow a ``?token=``. ``CALLHOOK_<P>_AUTH`` may switch a provider to ``hmac-sha256``,
  ``token`` or ``none`` (Standard Webhooks is not implemented here).
- parse: the same field mapping and the same 400 / 422 answers (wrong types are refused).
- dedupe key: first 16 bytes (hex) of SHA-256 over u64-BE-length-prefixed provider, canonical
  type and call id, then ``b"body"`` and the raw body.
- item: pk ``<provider>#<call id>`` (``<provider>#msg#<id>`` for messages), sk ``ev#<key>``,
  type, provider, provider_event, call_id, dedupe_key, received_at, occurred_at, parts, and the
  body verbatim up to 16 KiB, gzip-compressed (``body_gz``, ``body_encoding: gzip``) above, split
  into ``part`` items past 350 KiB of compressed bytes, as callhook's store does.
- put: ``attribute_not_exists(pk)`` with ReturnValuesOnConditionCheckFailure=ALL_OLD; a condition
  failure is the duplicate answer. Authenticated but unusable bodies go to quarantine.

Environment (the same names as callhook, so one environment drives both):

    CALLHOOK_CLAWOPS_SECRETS     comma-separated HMAC secrets (ClawOps is off when unset)
    CALLHOOK_VOX_TOKENS          comma-separated ?token= values (Vox is off when unset)
    CALLHOOK_SYNTHFLOW_TOKENS    comma-separated ?token= values (Synthflow is off when unset)
    CALLHOOK_<P>_AUTH            hmac-sha256 | token | none (default: the provider's scheme)
    CALLHOOK_<P>_SECRETS         secrets for a provider switched to hmac-sha256
    CALLHOOK_<P>_SIGNATURE_HEADER / _SIGNATURE_PREFIX   for hmac-sha256
    CALLHOOK_EVENTS_TABLE        default callhook-events
    CALLHOOK_MAX_BODY_BYTES      default 6291456
    CALLHOOK_EVENT_RETENTION_DAYS  sets expires_at when given
    CALLHOOK_DYNAMODB_ENDPOINT   e.g. http://127.0.0.1:8000 (DynamoDB Local: region us-east-1,
                                 credentials local/local, as callhook does)
    AWS_REGION / AWS credentials the standard boto3 chain when no endpoint is set
"""

from __future__ import annotations

import gzip
import hashlib
import hmac
import json
import math
import os
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from boto3.dynamodb.types import TypeSerializer

# ---------------------------------------------------------------------------------------------
# Errors: one JSON body {"error": code, "message": sentence}, as callhook answers.


class WebhookError(Exception):
    status = 500
    code = "internal_error"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def body(self) -> dict:
        return {"error": self.code, "message": self.message}


class Malformed(WebhookError):
    status, code = 400, "malformed_request"


class Unauthorized(WebhookError):
    status, code = 401, "unauthorized"


class UnknownProvider(WebhookError):
    status, code = 404, "unknown_provider"


class MethodNotAllowed(WebhookError):
    status, code = 405, "method_not_allowed"

    def __init__(self):
        super().__init__("Only POST is accepted on this route.")


class PayloadTooLarge(WebhookError):
    status, code = 413, "payload_too_large"


class Unusable(WebhookError):
    status, code = 422, "unusable_payload"


class StorageUnavailable(WebhookError):
    status, code = 503, "storage_unavailable"

    def body(self) -> dict:
        # The detail stays in the log; the sender only learns that it should retry.
        return {"error": self.code, "message": "The event could not be stored; retry later."}


MISSING_CREDENTIAL = "The request carries no signature or token."
MALFORMED_CREDENTIAL = "The signature headers are not in the format the provider's scheme requires."
BAD_CREDENTIAL = "The signature or token does not match any configured secret."


def wrong(field_path: str) -> Unusable:
    return Unusable(f"The field `{field_path}` has the wrong type or value.")


class _Wrong(Exception):
    """A converter's refusal: the path below the field it was given (``.role``, ``[0].name``) and
    whether the value is missing rather than of the wrong type; the caller names the field."""

    def __init__(self, suffix: str = "", missing: bool = False):
        super().__init__(suffix)
        self.suffix = suffix
        self.missing = missing

    def error(self, path: str) -> Unusable:
        if self.missing:
            return Unusable(f"The required field `{path}{self.suffix}` is missing.")
        return wrong(f"{path}{self.suffix}")


# ---------------------------------------------------------------------------------------------
# Configuration


@dataclass
class ProviderAuth:
    scheme: str  # hmac-sha256 | token | none
    header: str = ""  # lowercase header name, for hmac-sha256
    prefix: str = ""
    secrets: list[bytes] = field(default_factory=list)
    token_digests: list[bytes] = field(default_factory=list)


DEFAULT_AUTH = {
    "vox": ("token", "X-Vox-Signature", ""),
    "clawops": ("hmac-sha256", "X-ClawOps-Signature", "sha256="),
    "synthflow": ("token", "X-Synthflow-Signature", ""),
}
DEFAULT_EVENTS_TABLE = "callhook-events"
DEFAULT_MAX_BODY_BYTES = 6 * 1024 * 1024


def _split(value: str | None) -> list[str]:
    return [item.strip() for item in (value or "").split(",") if item.strip()]


@dataclass
class Settings:
    events_table: str = DEFAULT_EVENTS_TABLE
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    retention_days: int | None = None
    dynamodb_endpoint: str | None = None
    providers: dict[str, ProviderAuth] = field(default_factory=dict)

    @classmethod
    def from_env(cls, environ=os.environ) -> "Settings":
        def get(key):
            value = environ.get(key, "").strip()
            return value or None

        providers = {}
        for name, (default_scheme, default_header, default_prefix) in DEFAULT_AUTH.items():
            prefix = f"CALLHOOK_{name.upper()}"
            scheme = (get(f"{prefix}_AUTH") or default_scheme).lower()
            if scheme not in ("hmac-sha256", "token", "none"):
                raise ValueError(f"{prefix}_AUTH must be hmac-sha256, token or none")
            auth = ProviderAuth(
                scheme=scheme,
                header=(get(f"{prefix}_SIGNATURE_HEADER") or default_header).lower(),
                prefix=get(f"{prefix}_SIGNATURE_PREFIX") or default_prefix,
                secrets=[s.encode() for s in _split(get(f"{prefix}_SECRETS"))],
                token_digests=[
                    hashlib.sha256(t.encode()).digest() for t in _split(get(f"{prefix}_TOKENS"))
                ],
            )
            if scheme == "hmac-sha256" and not auth.secrets:
                continue  # nothing authenticates it: the provider is off (404)
            if scheme == "token" and not auth.token_digests:
                continue
            providers[name] = auth

        retention = get("CALLHOOK_EVENT_RETENTION_DAYS")
        return cls(
            events_table=get("CALLHOOK_EVENTS_TABLE") or DEFAULT_EVENTS_TABLE,
            max_body_bytes=int(get("CALLHOOK_MAX_BODY_BYTES") or DEFAULT_MAX_BODY_BYTES),
            retention_days=int(retention) if retention else None,
            dynamodb_endpoint=get("CALLHOOK_DYNAMODB_ENDPOINT"),
            providers=providers,
        )

    def provider(self, name: str) -> ProviderAuth:
        auth = self.providers.get(name)
        if auth is None:
            safe = "".join(c for c in name if c.isascii() and (c.isalnum() or c in "-_."))[:40]
            raise UnknownProvider(f"Provider `{safe}` is not configured on this endpoint.")
        return auth


def dynamodb_client(settings: Settings):
    """The boto3 client, as callhook configures its SDK: short timeouts, 3 standard attempts;
    DynamoDB Local (any region and credentials will do) when an endpoint is set."""
    import boto3
    from botocore.config import Config

    config = Config(
        connect_timeout=1,
        read_timeout=2,
        retries={"max_attempts": 3, "mode": "standard"},
    )
    if settings.dynamodb_endpoint:
        return boto3.client(
            "dynamodb",
            endpoint_url=settings.dynamodb_endpoint,
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
            config=config,
        )
    return boto3.client("dynamodb", config=config)


# ---------------------------------------------------------------------------------------------
# Authentication, on the exact raw bytes, before any parsing


def verify(auth: ProviderAuth, headers, token: str | None, body: bytes) -> None:
    """``headers``: a mapping answering lowercase names (Starlette's Headers, API Gateway v2's
    lowercase dict). Raises Unauthorized."""
    if auth.scheme == "hmac-sha256":
        value = headers.get(auth.header)
        if value is None or not value.strip():
            raise Unauthorized(MISSING_CREDENTIAL)
        if not value.isascii():
            raise Unauthorized(MALFORMED_CREDENTIAL)
        value = value.strip()
        if not value.startswith(auth.prefix):
            raise Unauthorized(BAD_CREDENTIAL)
        hex_digest = value[len(auth.prefix):]
        if len(hex_digest) != 64:
            raise Unauthorized(BAD_CREDENTIAL)
        try:
            candidate = bytes.fromhex(hex_digest)
        except ValueError:
            raise Unauthorized(BAD_CREDENTIAL) from None
        for secret in auth.secrets:
            expected = hmac.new(secret, body, hashlib.sha256).digest()
            if hmac.compare_digest(expected, candidate):
                return
        raise Unauthorized(BAD_CREDENTIAL)
    if auth.scheme == "token":
        if not token:
            raise Unauthorized(MISSING_CREDENTIAL)
        given = hashlib.sha256(token.encode()).digest()
        matched = False
        for digest in auth.token_digests:  # no early exit: timing shows no position
            matched |= hmac.compare_digest(digest, given)
        if not matched:
            raise Unauthorized(BAD_CREDENTIAL)


def sign(secret: str, body: bytes, prefix: str = "sha256=") -> str:
    """What a sender puts in the signature header (the ClawOps guide's verify_signature, inverted)."""
    return prefix + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


# ---------------------------------------------------------------------------------------------
# Canonical events

MAX_MS = 253_402_300_799_999  # year 9999
SECONDS_MS_BOUNDARY = 100_000_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_ONE_MS = timedelta(milliseconds=1)


@dataclass(slots=True)
class Event:
    provider: str
    event_type: str  # call_started | mid_call | call_ended | call_analyzed | message_received | unknown
    provider_event: str
    call_id: str
    dedupe_key: str
    occurred_at: int | None
    received_at: int
    data: dict | None  # the call patch or message; None for opaque events

    def record_key(self) -> str:
        if self.event_type == "message_received":
            return f"{self.provider}#msg#{self.call_id}"
        return f"{self.provider}#{self.call_id}"


def dedupe_key(provider: str, event_type: str, call_id: str, body: bytes) -> str:
    h = hashlib.sha256()
    for part in (provider.encode(), event_type.encode(), call_id.encode()):
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    h.update(b"body")
    h.update(body)
    return h.hexdigest()[:32]


def _event(provider, event_type, provider_event, call_id, occurred_at, data, body, received_at):
    return Event(
        provider,
        event_type,
        provider_event,
        call_id,
        dedupe_key(provider, event_type, call_id, body),
        occurred_at,
        received_at,
        data,
    )


_ROLES = {
    "agent": "agent", "bot": "agent", "assistant": "agent", "ai": "agent",
    "user": "user", "human": "user", "customer": "user", "caller": "user",
    "tool": "tool", "function": "tool", "tool_call_invocation": "tool",
    "tool_call_result": "tool", "tool_call": "tool",
}  # fmt: skip


def normalize_role(role: str) -> str:
    stripped = role.strip()
    return _ROLES.get(stripped.lower(), stripped)


_OUTCOMES = {
    "no_answer": "no_answer", "dial_no_answer": "no_answer", "noanswer": "no_answer",
    "not_answered": "no_answer", "busy": "busy", "dial_busy": "busy", "failed": "failed",
    "dial_failed": "failed", "error": "failed", "voicemail": "voicemail",
    "voicemail_reached": "voicemail", "hangup_on_voicemail": "voicemail",
    "canceled": "canceled", "cancelled": "canceled",
    **{s: "completed" for s in (
        "completed", "ended", "user_hangup", "agent_hangup", "agent_goodbye", "human_goodbye",
        "call_transfer", "max_duration", "max_duration_reached", "inactivity")},
}  # fmt: skip


def outcome_of(status: str) -> str:
    stripped = status.strip()
    return _OUTCOMES.get(stripped.lower().replace("-", "_"), stripped)


def json_type(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _compact(value) -> str:
    """serde_json's Display of a Value: compact, keys sorted (its maps are ordered), UTF-8."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True)


# --- timestamps (timefmt.rs)


def epoch_to_ms(value: float) -> int | None:
    if not math.isfinite(value) or value < 0:
        return None
    ms = value * 1000.0 if value < SECONDS_MS_BOUNDARY else value
    ms = math.floor(ms + 0.5)
    return ms if ms <= MAX_MS else None


def iso8601_to_ms(text: str) -> int | None:
    text = text.strip()
    if len(text) <= 10 or text[10] not in "Tt":
        return None  # a date and a time, separated by T, as RFC 3339 / ISO 8601 want them
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    ms = (parsed - _EPOCH) // _ONE_MS
    return ms if 0 <= ms <= MAX_MS else None


def value_to_ms(value) -> int | None:
    """Epoch seconds or ms (number or numeric text) or ISO 8601 text; raises _Wrong otherwise."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise _Wrong
    if isinstance(value, (int, float)):
        try:
            ms = epoch_to_ms(float(value))
        except OverflowError:
            ms = None
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            ms = epoch_to_ms(float(text))
        except ValueError:
            ms = iso8601_to_ms(text)
    else:
        raise _Wrong
    if ms is None:
        raise _Wrong
    return ms


def seconds_to_ms(seconds: float) -> int | None:
    if math.isfinite(seconds) and 0.0 <= seconds <= 1e12:
        return math.floor(seconds * 1000.0 + 0.5)
    return None


# --- converters: serde's typed deserialization (null = absent; a wrong type raises _Wrong)


def _str(v):
    if isinstance(v, str):
        return v
    raise _Wrong


def _any(v):
    return v


def _obj(v):
    if isinstance(v, dict):
        return v
    raise _Wrong


def _bool(v):
    if isinstance(v, bool):
        return v
    raise _Wrong


def _number(v):
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return v
    raise _Wrong


def _millis(v):
    """Integer milliseconds (Vox): an integer or integral float in [0, MAX_MS]."""
    if isinstance(v, int) and not isinstance(v, bool):
        if 0 <= v <= MAX_MS:
            return v
    elif isinstance(v, float) and v.is_integer() and 0 <= v <= MAX_MS:
        return int(v)
    raise _Wrong


def _struct(spec):
    """A converter for an object with the given optional fields; unknown fields are ignored."""

    def convert(v):
        if not isinstance(v, dict):
            raise _Wrong
        out = {}
        for key, value in v.items():
            conv = spec.get(key)
            if conv is not None and value is not None:
                try:
                    out[key] = conv(value)
                except _Wrong as e:
                    raise _Wrong(f".{key}{e.suffix}", e.missing) from None
        return out

    return convert


def _list_of(conv):
    def convert(v):
        if not isinstance(v, list):
            raise _Wrong
        try:
            return [conv(item) for item in v]
        except _Wrong as e:
            index = next(i for i, item in enumerate(v) if _refuses(conv, item))
            raise _Wrong(f"[{index}]{e.suffix}", e.missing) from None

    return convert


def _refuses(conv, item) -> bool:
    try:
        conv(item)
    except _Wrong:
        return True
    return False


def _analysis_item(v):
    if not isinstance(v, dict):
        raise _Wrong
    if "name" not in v:
        raise _Wrong(".name", missing=True)
    name = v["name"]
    if not isinstance(name, str):
        raise _Wrong(".name")
    kind = v.get("type")
    if kind is not None and not isinstance(kind, str):
        raise _Wrong(".type")
    return {"name": name, "type": kind, "value": v.get("value")}


_turn_in = _struct({"role": _str, "content": _str, "name": _str, "arguments": _any})

_VOX_CALL = {
    "call_id": _str,
    "agent": _struct({"agent_id": _str, "agent_version": _any}),
    "agent_id": _str,
    "agent_version": _any,
    "call_type": _str,
    "from_number": _str,
    "to_number": _str,
    "call_from": _str,
    "call_to": _str,
    "dynamic_variables": _obj,
    "metadata": _obj,
    "start_at": _millis,
    "start_timestamp": _millis,
    "end_at": _millis,
    "end_timestamp": _millis,
    "occurred_at": _millis,
    "timestamp": _millis,
    "duration_ms": _millis,
    "call_status": _str,
    "disconnection_reason": _str,
    "transcript": _list_of(_turn_in),
    "transcript_with_tool_calls": _list_of(_turn_in),
    "recording_url": _str,
    "call_cost": _struct({"total_cost": _number, "total_credits_used": _number}),
    "call_analysis": _struct(
        {"summary": _str, "user_sentiment": _str, "custom_analysis_data": _list_of(_analysis_item)}
    ),
    "event_type": _str,
    "event_data": _turn_in,
    "opt_out_sensitive_data_storage": _bool,
}


def _convert_fields(obj: dict, spec: dict, path: str) -> dict:
    """Converts the known fields of ``obj`` (a payload object), naming the wrong one."""
    out = {}
    for key, value in obj.items():
        conv = spec.get(key)
        if conv is not None and value is not None:
            try:
                out[key] = conv(value)
            except _Wrong as e:
                raise e.error(f"{path}{key}") from None
    return out


def _object_at(payload: dict, key: str, spec: dict) -> dict | None:
    value = payload.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise wrong(key)
    return _convert_fields(value, spec, f"{key}.")


def required_id(value, field_name: str) -> str:
    if value is None or not value.strip():
        raise Unusable(f"The required field `{field_name}` is missing or empty.")
    return value


# --- JSON


_LEADING_WS = re.compile(rb"[ \t\n\r\x0c]*")


def load_object(body: bytes) -> dict:
    """The body as a JSON object; 400 when it is not one."""
    start = _LEADING_WS.match(body).end()
    if start == len(body):
        raise Malformed("The request body is empty; a JSON object is expected.")
    if body[start] != 0x7B:  # "{"
        raise Malformed("The request body must be a JSON object.")
    try:
        return json.loads(body)
    except json.JSONDecodeError as e:
        raise Malformed(
            f"The request body is not valid JSON (line {e.lineno}, column {e.colno})."
        ) from None
    except UnicodeDecodeError:
        raise Malformed("The request body is not valid JSON (it is not UTF-8).") from None
    except RecursionError:
        raise Malformed("The JSON body is nested too deeply.") from None


# --- Vox (vox.rs)

_VOX_TYPES = ("call_started", "mid_call", "call_ended", "call_analyzed")


def _turn(t: dict):
    role = t.get("role")
    if role is None:
        return None
    content = t.get("content")
    if content is None:
        name = t.get("name")
        if name is None:
            return None
        args = t.get("arguments")
        content = f"{name}({_compact(args)})" if args is not None else name
    return {"role": normalize_role(role), "content": content}


def _first(obj: dict, key: str, fallback: str):
    value = obj.get(key)
    return obj.get(fallback) if value is None else value


def _version_text(value):
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return None


def _vox_analysis_patch(call: dict):
    cost = None
    call_cost = call.get("call_cost")
    if call_cost is not None:
        amount = call_cost.get("total_cost")
        if amount is None:
            amount = call_cost.get("total_credits_used")
        if amount is not None:
            cost = {"amount": amount, "unit": "credits"}
    analysis = None
    a = call.get("call_analysis")
    if a is not None:
        data = [
            {
                "name": item["name"],
                "type": item["type"] if item["type"] is not None else json_type(item["value"]),
                "value": item["value"],
            }
            for item in a.get("custom_analysis_data") or ()
        ]
        summary, sentiment = a.get("summary"), a.get("user_sentiment")
        if summary or sentiment or data:
            analysis = {"summary": summary, "sentiment": sentiment, "data": data}
    if cost is None and analysis is None:
        return None
    return {"cost": cost, "analysis": analysis}


def parse_vox(body: bytes, payload: dict, received_at: int) -> list[Event]:
    if "event" not in payload:
        raise Unusable("The required field `event` is missing.")
    name = payload["event"]
    if not isinstance(name, str):
        raise wrong("event")
    version = payload.get("webhook_version")
    if version is not None and not isinstance(version, str):
        raise wrong("webhook_version")
    legacy = version is None
    call = _object_at(payload, "call", _VOX_CALL)
    mid = _object_at(payload, "mid_call", _VOX_CALL)
    event_type = name if name in _VOX_TYPES else None

    if event_type == "mid_call" and mid is not None and (legacy or call is None):
        call, call_field = mid, "mid_call"
    elif call is not None:
        call_field = "call"
    elif event_type is None and mid is not None:
        call, call_field = mid, "mid_call"
    elif event_type is not None:
        raise Unusable("The required field `call` is missing.")
    else:
        call, call_field = {}, "call"

    if event_type is None:
        # A new Vox event: stored as `unknown` with whatever call id it names.
        call_id = call.get("call_id")
        if call_id is None or not call_id.strip():
            call_id = "unknown"
        at = call.get("occurred_at")
        if at is None:
            at = call.get("timestamp")
        return [_event("vox", "unknown", name, call_id, at, None, body, received_at)]

    call_id = required_id(call.get("call_id"), f"{call_field}.call_id")

    agent_in = call.get("agent")
    if agent_in is not None:
        agent = {"id": agent_in.get("agent_id"), "version": _version_text(agent_in.get("agent_version"))}
    else:
        agent = {"id": call.get("agent_id"), "version": _version_text(call.get("agent_version"))}
    started_at = call.get("start_at")
    if started_at is None:
        started_at = call.get("start_timestamp")
    patch = {
        "agent": agent,
        "direction": call.get("call_type"),
        "from_number": _first(call, "from_number", "call_from"),
        "to_number": _first(call, "to_number", "call_to"),
        "started_at": started_at,
        "dynamic_variables": call.get("dynamic_variables"),
        "metadata": call.get("metadata"),
        "sensitive_data_opt_out": call.get("opt_out_sensitive_data_storage"),
    }
    if event_type == "call_started":
        patch["status"] = "in_progress"
        occurred_at = started_at
    elif event_type == "mid_call":
        patch["status"] = "in_progress"
        occurred_at = call.get("occurred_at")
        if occurred_at is None:
            occurred_at = call.get("timestamp")
        if call.get("event_type") == "call_message" and call.get("event_data") is not None:
            live = _turn(call["event_data"])
            if live is not None:
                live["at"] = occurred_at
            patch["live_turn"] = live
    else:
        ended_at = call.get("end_at")
        if ended_at is None:
            ended_at = call.get("end_timestamp")
        reason = call.get("disconnection_reason")
        turns = call.get("transcript_with_tool_calls") or call.get("transcript")
        patch.update(
            status="ended",
            provider_status=call.get("call_status"),
            ended_at=ended_at,
            duration_ms=call.get("duration_ms"),
            end_reason=reason,
            outcome=outcome_of(reason) if reason is not None else None,
            recording_url=call.get("recording_url"),
            transcript=None if turns is None else [t for t in map(_turn, turns) if t is not None],
        )
        occurred_at = ended_at

    analyzed = _vox_analysis_patch(call)
    events = [_event("vox", event_type, name, call_id, occurred_at, patch, body, received_at)]
    if event_type == "call_ended" and legacy:
        # v1: cost and analysis ride on call_ended; they become their own call_analyzed.
        if analyzed is not None:
            analyzed["status"] = "ended"
            events.append(
                _event("vox", "call_analyzed", name, call_id, occurred_at, analyzed, body, received_at)
            )
    elif analyzed is not None:
        patch.update(analyzed)
    return events


# --- ClawOps (clawops.rs)

_CLAWOPS_EVENTS = {
    "call.initiated": ("call_started", "initiated"),
    "call.ringing": ("call_started", "ringing"),
    "call.answered": ("call_started", "in_progress"),
    "call.completed": ("call_ended", "ended"),
}
_CLAWOPS_INFER = {
    "initiated": "call.initiated", "queued": "call.initiated", "ringing": "call.ringing",
    "answered": "call.answered", "in_progress": "call.answered", "completed": "call.completed",
    "no_answer": "call.completed", "busy": "call.completed", "failed": "call.completed",
    "canceled": "call.completed", "cancelled": "call.completed", "received": "message.received",
}  # fmt: skip
_MESSAGE_KNOWN = ("message_id", "id", "from", "to", "body", "text", "created_at", "event", "type")


def _text(payload: dict, key: str):
    """A string field; integers are accepted as their decimal text."""
    v = payload.get(key)
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, int) and not isinstance(v, bool) and -(2**63) <= v < 2**64:
        return str(v)
    raise wrong(key)


def parse_clawops(body: bytes, payload: dict, received_at: int) -> list[Event]:
    status = _text(payload, "status")
    event_name, type_name = _text(payload, "event"), _text(payload, "type")
    name = event_name if event_name is not None else type_name
    if name is None:
        inferred = None
        if status is not None:
            inferred = _CLAWOPS_INFER.get(status.strip().lower().replace("-", "_"))
        if inferred is None and ("message_id" in payload or "body" in payload or "text" in payload):
            inferred = "message.received"
        if inferred is None:
            raise Unusable("The payload names no event (`event`, `type` or `status`).")
        name = inferred
    try:
        created_at = value_to_ms(payload.get("created_at"))
    except _Wrong:
        raise wrong("created_at") from None

    mapped = _CLAWOPS_EVENTS.get(name)
    if mapped is None:
        if name == "message.received":
            return [_clawops_message(body, payload, name, created_at, received_at)]
        call_id = _text(payload, "call_id")
        if call_id is None:
            call_id = "unknown"
        return [_event("clawops", "unknown", name, call_id, created_at, None, body, received_at)]
    event_type, status_now = mapped

    call_id = required_id(_text(payload, "call_id"), "call_id")
    duration = payload.get("duration")
    duration_ms = None
    if duration is not None:
        if isinstance(duration, bool) or not isinstance(duration, (int, float, str)):
            raise wrong("duration")
        try:
            duration_ms = seconds_to_ms(float(duration.strip() if isinstance(duration, str) else duration))
        except (ValueError, OverflowError):
            duration_ms = None
        if duration_ms is None:
            raise wrong("duration")
    patch = {
        "direction": _text(payload, "direction"),
        "from_number": _text(payload, "from"),
        "to_number": _text(payload, "to"),
        "status": status_now,
        "provider_status": status,
    }
    if status_now == "in_progress":
        patch["started_at"] = created_at
    elif status_now == "ended":
        patch["ended_at"] = created_at
        patch["duration_ms"] = duration_ms
        patch["outcome"] = outcome_of(status if status is not None else "completed")
    return [_event("clawops", event_type, name, call_id, created_at, patch, body, received_at)]


def _clawops_message(body, payload, name, created_at, received_at) -> Event:
    message_id = _text(payload, "message_id")
    if message_id is None:
        message_id = _text(payload, "id")
    message_id = required_id(message_id, "message_id")
    text = _text(payload, "body")
    if text is None:
        text = _text(payload, "text")
    message = {
        "provider": "clawops",
        "message_id": message_id,
        "from_number": _text(payload, "from"),
        "to_number": _text(payload, "to"),
        "body": text,
        "created_at": created_at,
        "received_at": received_at,
        "extra": {k: v for k, v in payload.items() if k not in _MESSAGE_KNOWN},
    }
    return _event("clawops", "message_received", name, message_id, created_at, message, body, received_at)


# --- Synthflow (synthflow.rs)

_SPEAKERS = ("bot", "human", "agent", "user", "assistant", "customer")


def _seconds_as_ms(v):
    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        raise _Wrong
    try:
        ms = seconds_to_ms(float(v.strip() if isinstance(v, str) else v))
    except (ValueError, OverflowError):
        ms = None
    if ms is None:
        raise _Wrong
    return ms


_SYNTHFLOW_CALL = {
    "status": _str,
    "end_call_reason": _str,
    "model_id": _str,
    "call_id": _str,
    "duration": _seconds_as_ms,
    "start_time": value_to_ms,
    "transcript": _any,
    "recording_url": _str,
}


def split_transcript(text: str) -> list[dict]:
    """``bot: …`` / ``human: …`` lines into turns; a line without a speaker continues the turn
    before it; text before the first speaker is kept with role ``unknown``."""
    turns: list[dict] = []
    for line in text.split("\n"):
        line = line.removesuffix("\r").strip()
        if not line:
            continue
        head, sep, rest = line.partition(":")
        role = head.strip().lower() if sep else None
        if role in _SPEAKERS:
            turns.append({"role": normalize_role(role), "content": rest.strip()})
        elif turns:
            last = turns[-1]
            last["content"] = f"{last['content']} {line}" if last["content"] else line
        else:
            turns.append({"role": "unknown", "content": line})
    return turns


def _synthflow_transcript(value) -> list[dict]:
    if isinstance(value, str):
        return split_transcript(value)
    if isinstance(value, list):
        turns = []
        for item in value:
            if not isinstance(item, dict):
                continue
            role = item.get("role")
            content = item.get("content")
            if content is None:
                content = item.get("text")
            if isinstance(role, str) and isinstance(content, str):
                turns.append({"role": normalize_role(role), "content": content})
        return turns
    return []


def _action_results(actions: dict | None) -> list[dict]:
    items = []
    for key in sorted(actions or ()):
        action = actions[key]
        name = action.get("name") if isinstance(action, dict) else None
        if not isinstance(name, str):
            name = key
        value = action.get("return_value") if isinstance(action, dict) else None
        if value is None:
            continue
        if isinstance(value, dict):
            items.extend(
                {"name": k, "type": json_type(v), "value": v} for k, v in sorted(value.items())
            )
        else:
            items.append({"name": name, "type": json_type(value), "value": value})
    return items


def parse_synthflow(body: bytes, payload: dict, received_at: int) -> list[Event]:
    for key in ("status", "error_message"):
        if payload.get(key) is not None and not isinstance(payload[key], str):
            raise wrong(key)
    for key in ("lead", "executed_actions"):
        if payload.get(key) is not None and not isinstance(payload[key], dict):
            raise wrong(key)
    if "call" not in payload:
        raise Unusable("The required field `call` is missing.")
    if not isinstance(payload["call"], dict):
        raise wrong("call")
    call = _convert_fields(payload["call"], _SYNTHFLOW_CALL, "call.")
    call_id = required_id(call.get("call_id"), "call.call_id")
    started_at, duration = call.get("start_time"), call.get("duration")
    ended_at = started_at + duration if started_at is not None and duration is not None else None
    status = call.get("status")
    if status is None:
        status = payload.get("status")
    lead = payload.get("lead")
    lead_phone = None
    if lead is not None:
        phone = lead["phone_number"] if "phone_number" in lead else lead.get("phone")
        lead_phone = phone if isinstance(phone, str) else None
    end_reason = call.get("end_call_reason")
    if end_reason is None:
        end_reason = payload.get("error_message")
    model_id = call.get("model_id")
    patch = {
        "agent": {"id": model_id, "version": None} if model_id is not None else None,
        "direction": "outbound",
        "to_number": lead_phone,
        "status": "ended",
        "outcome": outcome_of(status) if status is not None else None,
        "provider_status": status,
        "started_at": started_at,
        "ended_at": ended_at,
        "duration_ms": duration,
        "end_reason": end_reason,
        "transcript": _synthflow_transcript(call["transcript"]) if "transcript" in call else None,
        "recording_url": call.get("recording_url"),
        "lead": lead,
    }
    events = [_event("synthflow", "call_ended", "call_completed", call_id, ended_at, patch, body, received_at)]
    data = _action_results(payload.get("executed_actions"))
    if data:
        analyzed = {"status": "ended", "analysis": {"summary": None, "sentiment": None, "data": data}}
        events.append(
            _event("synthflow", "call_analyzed", "call_completed", call_id, ended_at, analyzed, body, received_at)
        )
    return events


PARSERS = {"vox": parse_vox, "clawops": parse_clawops, "synthflow": parse_synthflow}


def parse(provider: str, body: bytes, received_at: int) -> list[Event]:
    """One verified raw body into its canonical events (400 Malformed / 422 Unusable)."""
    return PARSERS[provider](body, load_object(body), received_at)


# ---------------------------------------------------------------------------------------------
# Intake: size -> authenticate -> parse (intake.rs)


@dataclass(slots=True)
class Intake:
    provider: str
    events: list[Event]
    error: WebhookError | None = None  # set: authenticated but unusable -> quarantine


def intake(settings: Settings, provider: str, headers, token, body: bytes, received_at: int) -> Intake:
    """Raises WebhookError for a refusal (nothing is stored)."""
    auth = settings.provider(provider)
    if len(body) > settings.max_body_bytes:
        raise PayloadTooLarge(
            f"The request body is {len(body)} bytes, more than the {settings.max_body_bytes}-byte limit."
        )
    verify(auth, headers, token, body)
    try:
        return Intake(provider, parse(provider, body, received_at))
    except (Malformed, Unusable) as error:
        return Intake(provider, [], error)


# ---------------------------------------------------------------------------------------------
# The events-table items (store.rs)

COMPRESS_ABOVE = 16 * 1024
PART_BYTES = 350 * 1024
_serialize = TypeSerializer().serialize


def _encode_body(body: bytes, item: dict) -> list[bytes]:
    """Puts the body on the item, gzip-compressed when large, and returns the chunks that must go
    into part items because one item cannot hold them."""
    if len(body) <= COMPRESS_ABOVE:
        try:
            item["body"] = body.decode("utf-8")
        except UnicodeDecodeError:
            item["body_gz"] = body
            item["body_encoding"] = "raw"
        return []
    compressed = gzip.compress(body, compresslevel=1, mtime=0)
    item["body_encoding"] = "gzip"
    item["body_gz"] = compressed[:PART_BYTES]
    return [compressed[i:i + PART_BYTES] for i in range(PART_BYTES, len(compressed), PART_BYTES)]


def _expiry(received_at: int, retention_days: int | None):
    return None if retention_days is None else received_at // 1000 + retention_days * 86_400


def _items(item: dict, chunks: list[bytes], expires_at) -> tuple[dict, list[dict]]:
    item["parts"] = len(chunks)
    if expires_at is not None:
        item["expires_at"] = expires_at
    parts = []
    for index, chunk in enumerate(chunks, 1):
        part = dict(item, sk=f"{item['sk']}#part#{index:04d}", type="part", body_gz=chunk, parts=0)
        part.pop("body", None)
        parts.append({k: _serialize(v) for k, v in part.items()})
    return {k: _serialize(v) for k, v in item.items()}, parts


def event_items(event: Event, body: bytes, retention_days: int | None = None) -> tuple[dict, list[dict]]:
    """The event's item (DynamoDB attribute values) and its part items (written first)."""
    item = {
        "pk": event.record_key(),
        "sk": f"ev#{event.dedupe_key}",
        "type": event.event_type,
        "provider": event.provider,
        "provider_event": event.provider_event,
        "call_id": event.call_id,
        "dedupe_key": event.dedupe_key,
        "received_at": event.received_at,
    }
    if event.occurred_at is not None:
        item["occurred_at"] = event.occurred_at
    chunks = _encode_body(body, item)
    return _items(item, chunks, _expiry(event.received_at, retention_days))


def quarantine_items(provider: str, error: WebhookError, body: bytes, received_at: int, retention_days=None):
    digest = hashlib.sha256(body).hexdigest()[:32]
    item = {
        "pk": f"quarantine#{provider}",
        "sk": f"q#{digest}",
        "type": "quarantine",
        "provider": provider,
        "dedupe_key": digest,
        "received_at": received_at,
        "error": error.message,
    }
    chunks = _encode_body(body, item)
    item, parts = _items(item, chunks, _expiry(received_at, retention_days))
    item["parts"] = _serialize(0)  # as callhook: the quarantine item does not count its parts
    return item, parts


# ---------------------------------------------------------------------------------------------
# Storage: one conditional put per event


class Store:
    def __init__(self, client, settings: Settings):
        self.client = client
        self.table = settings.events_table
        self.retention_days = settings.retention_days

    def _put(self, item: dict, conditional: bool):
        """None when written; the old item when the condition failed (the duplicate answer)."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            if conditional:
                self.client.put_item(
                    TableName=self.table,
                    Item=item,
                    ConditionExpression="attribute_not_exists(pk)",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
            else:
                self.client.put_item(TableName=self.table, Item=item)
            return None
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return e.response.get("Item") or {}
            raise StorageUnavailable(f"{e.response.get('Error', {}).get('Code')}: {e}") from None
        except BotoCoreError as e:
            raise StorageUnavailable(str(e)) from None

    def put_event(self, event: Event, body: bytes) -> dict:
        item, parts = event_items(event, body, self.retention_days)
        for part in parts:
            self._put(part, conditional=False)
        old = self._put(item, conditional=True)
        duplicate = old is not None
        first = event.received_at
        if duplicate:
            try:
                first = int(old["received_at"]["N"])
            except (KeyError, TypeError, ValueError):
                pass
        return {
            "type": event.event_type,
            "dedupe_key": event.dedupe_key,
            "duplicate": duplicate,
            "first_received_at": first,
        }

    def put_quarantine(self, provider: str, error: WebhookError, body: bytes, received_at: int) -> bool:
        item, parts = quarantine_items(provider, error, body, received_at, self.retention_days)
        for part in parts:
            self._put(part, conditional=False)
        return self._put(item, conditional=True) is None


def store_intake(store: Store, taken: Intake, body: bytes, received_at: int) -> tuple[int, dict]:
    """Writes what intake decided; the HTTP status and JSON answer (2xx only after every write)."""
    if taken.error is not None:
        store.put_quarantine(taken.provider, taken.error, body, received_at)
        return taken.error.status, taken.error.body()
    stored = [store.put_event(event, body) for event in taken.events]
    return 200, {
        "received": True,
        "duplicate": all(s["duplicate"] for s in stored),
        "events": [
            {"type": s["type"], "dedupe_key": s["dedupe_key"], "duplicate": s["duplicate"]}
            for s in stored
        ],
    }


def refusal(log, error: "WebhookError") -> tuple[int, dict, str]:
    """(status, answer, outcome) for a refused or failed delivery; a storage failure is logged."""
    if isinstance(error, StorageUnavailable):
        log.error(json.dumps({"message": "event write failed", "error": str(error)}))
    return error.status, error.body(), error.code


def log_webhook(log, provider, call_id, types, outcome, status, started) -> None:
    """One structured line per request, as callhook's ingest logs it (never a secret)."""
    log.info(json.dumps({
        "message": "webhook",
        "provider": provider,
        "call_id": call_id,
        "types": types,
        "outcome": outcome,
        "status": status,
        "latency_ms": round((time.perf_counter() - started) * 1000, 3),
    }))


def delivery_outcome(taken, answer) -> str:
    """`quarantined`, `duplicate` or `stored`, for the log line."""
    if taken.error is not None:
        return "quarantined"
    return "duplicate" if answer.get("duplicate") else "stored"
