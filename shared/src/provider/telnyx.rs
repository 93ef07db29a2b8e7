//! Telnyx Call Control (Voice API) webhooks: `{"data": {record_type, event_type, id,
//! occurred_at, payload}, "meta": {attempt, delivered_to}}`.
//!
//! `call.initiated`, `call.answered` and `call.hangup` follow the call; `call.conversation.ended`
//! (an AI assistant's conversation) ends it too and names the assistant; `call.recording.saved`
//! adds the recording's URL as a `mid_call` event (a recording can be saved while the call goes
//! on, so it must not end it). Every other event type is stored as `unknown`. The call id is the
//! payload's `call_leg_id` (callhook's rule); `call_session_id` and `call_control_id` go to the
//! metadata. Telnyx may deliver an event twice, even at once: `data.id` names the delivery and is
//! its dedupe identity. Instants are ISO 8601; only `call.conversation.ended` states a duration,
//! otherwise the record computes it from `start_time` and the hangup's `occurred_at`.
//!
//! TeXML applications post Twilio-style form callbacks under the same signature headers: a body
//! that does not begin like JSON and holds a `=` is read as one and mapped like Twilio's.

use super::twilio::{Form, form_fields, rfc2822_to_ms, status_callback};
use super::{AuthDefaults, Provider, Source, from_json, required_id};
use crate::error::{Error, Result};
use crate::event::{
    Agent, CallPatch, CallStatus, CanonicalEvent, DeliveryContext, EventData, EventType,
};
use crate::timefmt::{de_flexible, de_seconds_as_ms, iso8601_to_ms, value_to_ms};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, Default)]
pub struct Telnyx;

const NAME: &str = "telnyx";

#[derive(Debug, Deserialize)]
struct Envelope {
    data: Data,
}

/// The envelope common to every event; the payload is read by event type, so that an unknown
/// event's payload can never make the body unusable.
#[derive(Debug, Deserialize)]
struct Data {
    event_type: String,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    occurred_at: Value,
    #[serde(default)]
    payload: Value,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Payload {
    call_leg_id: Option<String>,
    call_control_id: Option<String>,
    call_session_id: Option<String>,
    connection_id: Option<String>,
    client_state: Option<String>,
    direction: Option<String>,
    from: Option<String>,
    to: Option<String>,
    state: Option<String>,
    #[serde(deserialize_with = "de_flexible")]
    start_time: Option<i64>,
    /// Not documented on `call.hangup`; read in case a payload carries it.
    #[serde(deserialize_with = "de_flexible")]
    end_time: Option<i64>,
    hangup_cause: Option<String>,
    hangup_source: Option<String>,
    sip_hangup_cause: Option<String>,
    recording_urls: Option<RecordingUrls>,
    public_recording_urls: Option<RecordingUrls>,
    assistant_id: Option<String>,
    conversation_id: Option<String>,
    llm_model: Option<String>,
    reason: Option<String>,
    #[serde(deserialize_with = "de_seconds_as_ms")]
    duration_sec: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RecordingUrls {
    mp3: Option<String>,
    wav: Option<String>,
}

impl Provider for Telnyx {
    fn name(&self) -> &'static str {
        NAME
    }

    fn auth_defaults(&self) -> AuthDefaults {
        AuthDefaults {
            scheme: "telnyx",
            header: "telnyx-signature-ed25519",
            prefix: "",
        }
    }

    fn parse_payload(&self, body: &[u8], ctx: &DeliveryContext) -> Result<Vec<CanonicalEvent>> {
        let src = Source {
            provider: NAME,
            ctx,
            body,
        };
        // A TeXML callback is a form: never JSON, always with a `=`.
        match body.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'{' | b'[') | None => {}
            Some(_) if !body.contains(&b'=') => {}
            Some(_) => {
                let form = form_fields(body).map_err(|_| {
                    Error::malformed(
                        "The request body must be a JSON object (Call Control) or a \
                         form-urlencoded TeXML callback.",
                    )
                })?;
                return status_callback(&src, &Form(form), texml_instant).map(|e| vec![e]);
            }
        }
        let Envelope { data } = from_json(body)?;
        let Data {
            event_type: name,
            id,
            occurred_at,
            payload: raw_payload,
        } = data;
        let mapping = match name.as_str() {
            "call.initiated" => Some((EventType::CallStarted, Some(CallStatus::Initiated))),
            "call.answered" => Some((EventType::CallStarted, Some(CallStatus::InProgress))),
            "call.hangup" | "call.conversation.ended" => {
                Some((EventType::CallEnded, Some(CallStatus::Ended)))
            }
            "call.recording.saved" => Some((EventType::MidCall, None)),
            _ => None,
        };
        let identity = id.as_deref().filter(|id| !id.trim().is_empty());
        let event = |event_type, call_id: &str, at, data| match identity {
            Some(id) => src.event_identified(id, event_type, &name, call_id, at, data),
            None => src.event(event_type, &name, call_id, at, data),
        };

        let Some((event_type, status)) = mapping else {
            // A new or uninterpreted event: kept, under the call leg it names if it names one.
            let call_id = raw_payload
                .get("call_leg_id")
                .and_then(Value::as_str)
                .filter(|id| !id.trim().is_empty())
                .unwrap_or("unknown");
            let at = value_to_ms(&occurred_at).ok().flatten();
            return Ok(vec![event(
                EventType::Unknown,
                call_id,
                at,
                EventData::Opaque,
            )]);
        };

        let occurred_at = value_to_ms(&occurred_at).map_err(|_| wrong("data.occurred_at"))?;
        let payload = payload(raw_payload)?;
        let call_id = required_id(payload.call_leg_id.clone(), "data.payload.call_leg_id")?;
        let patch = match name.as_str() {
            "call.recording.saved" => CallPatch {
                recording_url: recording_url(&payload),
                ..CallPatch::default()
            },
            "call.conversation.ended" => CallPatch {
                agent: payload.assistant_id.clone().map(|id| Agent {
                    id: Some(id),
                    version: None,
                }),
                from_number: payload.from.clone(),
                to_number: payload.to.clone(),
                status,
                duration_ms: payload.duration_sec,
                metadata: metadata(
                    &payload,
                    &[
                        ("conversation_id", &payload.conversation_id),
                        ("llm_model", &payload.llm_model),
                        ("reason", &payload.reason),
                    ],
                ),
                ..CallPatch::default()
            },
            "call.hangup" => {
                let cause = payload.hangup_cause.as_deref();
                CallPatch {
                    from_number: payload.from.clone(),
                    to_number: payload.to.clone(),
                    status,
                    provider_status: payload.state.clone(),
                    started_at: payload.start_time,
                    ended_at: occurred_at.or(payload.end_time),
                    // A call that was never answered talked for no time: it is what makes an
                    // unanswered inbound call `missed` in the record whatever the cause's
                    // outcome word. Otherwise the record computes ended − started.
                    duration_ms: cause.filter(|c| never_answered(c)).map(|_| 0),
                    end_reason: payload.hangup_cause.clone(),
                    outcome: cause.map(outcome),
                    metadata: metadata(
                        &payload,
                        &[
                            ("hangup_source", &payload.hangup_source),
                            ("sip_hangup_cause", &payload.sip_hangup_cause),
                        ],
                    ),
                    ..CallPatch::default()
                }
            }
            // call.initiated, call.answered
            _ => CallPatch {
                direction: payload.direction.as_deref().and_then(direction),
                from_number: payload.from.clone(),
                to_number: payload.to.clone(),
                status,
                provider_status: payload.state.clone(),
                started_at: payload.start_time,
                metadata: metadata(&payload, &[]),
                ..CallPatch::default()
            },
        };
        Ok(vec![event(
            event_type,
            &call_id,
            occurred_at,
            EventData::Call(Box::new(patch)),
        )])
    }
}

/// Reads the payload of an event callhook maps, naming the field that does not fit.
fn payload(value: Value) -> Result<Payload> {
    if value.is_null() {
        return Ok(Payload::default());
    }
    serde_path_to_error::deserialize(value).map_err(|error| {
        let path = error.path().to_string();
        if path == "." || path.is_empty() {
            wrong("data.payload")
        } else {
            wrong(&format!("data.payload.{path}"))
        }
    })
}

/// The ids every call event repeats, `client_state` decoded, and the event's own `extra` fields.
fn metadata(payload: &Payload, extra: &[(&str, &Option<String>)]) -> Option<Map<String, Value>> {
    let mut map = Map::new();
    let mut put = |name: &str, value: Option<String>| {
        if let Some(value) = value.filter(|v| !v.trim().is_empty()) {
            map.insert(name.to_owned(), Value::String(value));
        }
    };
    put("call_session_id", payload.call_session_id.clone());
    put("call_control_id", payload.call_control_id.clone());
    put("connection_id", payload.connection_id.clone());
    put(
        "client_state",
        payload.client_state.as_deref().map(client_state),
    );
    for (name, value) in extra {
        put(name, (*value).clone());
    }
    (!map.is_empty()).then_some(map)
}

/// `client_state` is base64 of whatever the commands set: its text when that is UTF-8, else the
/// value as sent.
fn client_state(raw: &str) -> String {
    STANDARD
        .decode(raw.trim())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .unwrap_or_else(|| raw.to_owned())
}

/// The recording's URL: the permanent public one when the account has them, else the one valid
/// for ten minutes; MP3 before WAV.
fn recording_url(payload: &Payload) -> Option<String> {
    [&payload.public_recording_urls, &payload.recording_urls]
        .into_iter()
        .flatten()
        .flat_map(|urls| [&urls.mp3, &urls.wav])
        .flatten()
        .find(|url| !url.trim().is_empty())
        .cloned()
}

/// callhook's outcome rule for Telnyx hangup causes: the provider's word for the others.
fn outcome(cause: &str) -> String {
    match cause.trim().to_ascii_lowercase().as_str() {
        "normal_clearing" => "completed".to_owned(),
        "user_busy" => "busy".to_owned(),
        "no_answer" => "no_answer".to_owned(),
        _ => cause.trim().to_owned(),
    }
}

/// Causes only a call that was never answered can end with (a SIP CANCEL, a ring timeout, a
/// busy or unanswered callee).
fn never_answered(cause: &str) -> bool {
    matches!(
        cause.trim().to_ascii_lowercase().as_str(),
        "user_busy" | "no_answer" | "originator_cancel" | "timeout"
    )
}

fn direction(raw: &str) -> Option<String> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "incoming" | "inbound" => Some("inbound".to_owned()),
        "outgoing" | "outbound" => Some("outbound".to_owned()),
        _ => None,
    }
}

/// TeXML's `Timestamp`: documented as RFC 2822, shown in Telnyx's examples as ISO 8601 (with a
/// `T` or a space).
fn texml_instant(text: &str) -> Option<i64> {
    rfc2822_to_ms(text)
        .or_else(|| iso8601_to_ms(text))
        .or_else(|| iso8601_to_ms(&text.trim().replacen(' ', "T", 1)))
}

fn wrong(field: &str) -> Error {
    Error::unusable(format_args!(
        "The field `{field}` has the wrong type or value."
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::testing::patch;
    use crate::record::CallRecord;
    use proptest::prelude::*;
    use serde_json::json;

    const LEG: &str = "251c5957-9636-463b-80dc-54e05eaee732";
    const SESSION: &str = "5c8668a5-d5eb-4b72-8d66-d43c7dd9d9f4";
    const CONTROL: &str = "v3:u5Qs3mGvZ0bT7xR2kLwN9pYdE4cHjA8fUoIiK1zMnB6tX_PqWeVlRg";
    const CALLER: &str = "+14155550134";
    const AGENT_NUMBER: &str = "+14155550188";
    const START: i64 = 1_785_856_831_204;
    const HANGUP_AT: i64 = 1_785_856_985_881;
    const FIXTURES: [&str; 5] = [
        "call_initiated",
        "call_answered",
        "call_hangup",
        "call_conversation_ended",
        "call_recording_saved",
    ];

    fn fixture(name: &str) -> &'static [u8] {
        match name {
            "call_initiated" => {
                include_bytes!("../../../tests/fixtures/telnyx/call_initiated.json")
            }
            "call_answered" => include_bytes!("../../../tests/fixtures/telnyx/call_answered.json"),
            "call_hangup" => include_bytes!("../../../tests/fixtures/telnyx/call_hangup.json"),
            "call_conversation_ended" => {
                include_bytes!("../../../tests/fixtures/telnyx/call_conversation_ended.json")
            }
            "call_recording_saved" => {
                include_bytes!("../../../tests/fixtures/telnyx/call_recording_saved.json")
            }
            other => panic!("no fixture {other}"),
        }
    }

    fn ctx() -> DeliveryContext {
        DeliveryContext {
            received_at: 1_785_857_000_000,
            delivery_id: None,
        }
    }

    /// Parses through `dyn Provider`, as ingest and the merge functions do.
    fn parse(body: &[u8]) -> Result<Vec<CanonicalEvent>> {
        (&Telnyx as &dyn Provider).parse(body, &ctx())
    }

    fn one(body: &[u8]) -> CanonicalEvent {
        let mut events = parse(body).unwrap();
        assert_eq!(events.len(), 1);
        events.remove(0)
    }

    fn body(value: &Value) -> Vec<u8> {
        serde_json::to_vec(value).unwrap()
    }

    /// An event of the fixtures' call leg.
    fn event(event_type: &str, id: &str, payload: Value) -> Vec<u8> {
        let mut payload = payload;
        payload["call_leg_id"] = json!(LEG);
        body(&json!({
            "data": {
                "record_type": "event",
                "event_type": event_type,
                "id": id,
                "occurred_at": "2026-08-04T15:23:05.881402Z",
                "payload": payload,
            },
            "meta": {"attempt": 1}
        }))
    }

    fn error_of(body: &[u8]) -> Error {
        parse(body).unwrap_err()
    }

    #[test]
    fn call_initiated_starts_the_call_on_its_leg() {
        let event = one(fixture("call_initiated"));
        assert_eq!(event.provider, "telnyx");
        assert_eq!(event.event_type, EventType::CallStarted);
        assert_eq!(event.provider_event, "call.initiated");
        assert_eq!(event.call_id, LEG);
        assert_eq!(event.occurred_at, Some(START));
        let p = patch(&event);
        assert_eq!(p.status, Some(CallStatus::Initiated));
        assert_eq!(p.provider_status.as_deref(), Some("parked"));
        assert_eq!(p.direction.as_deref(), Some("inbound"));
        assert_eq!(p.from_number.as_deref(), Some(CALLER));
        assert_eq!(p.to_number.as_deref(), Some(AGENT_NUMBER));
        assert_eq!(p.started_at, Some(START));
        let metadata = p.metadata.as_ref().unwrap();
        assert_eq!(metadata["call_session_id"], SESSION);
        assert_eq!(metadata["call_control_id"], CONTROL);
        assert_eq!(metadata["connection_id"], "2318860470927083281");
        assert!(!metadata.contains_key("client_state"), "null says nothing");
    }

    #[test]
    fn call_answered_puts_the_call_in_progress() {
        let event = one(fixture("call_answered"));
        assert_eq!(event.event_type, EventType::CallStarted);
        assert_eq!(event.call_id, LEG);
        assert_eq!(event.occurred_at, Some(1_785_856_833_519));
        let p = patch(&event);
        assert_eq!(p.status, Some(CallStatus::InProgress));
        assert_eq!(p.started_at, Some(START));
        assert_eq!(p.direction, None, "only call.initiated names it");
        // client_state is base64 of what the answer command set.
        assert_eq!(
            p.metadata.as_ref().unwrap()["client_state"],
            r#"{"crm_contact":"c_2231"}"#
        );
    }

    #[test]
    fn call_hangup_ends_the_call() {
        let event = one(fixture("call_hangup"));
        assert_eq!(event.event_type, EventType::CallEnded);
        assert_eq!(event.provider_event, "call.hangup");
        assert_eq!(event.call_id, LEG);
        assert_eq!(event.occurred_at, Some(HANGUP_AT));
        let p = patch(&event);
        assert_eq!(p.status, Some(CallStatus::Ended));
        assert_eq!(p.provider_status.as_deref(), Some("hangup"));
        assert_eq!(p.started_at, Some(START));
        assert_eq!(p.ended_at, Some(HANGUP_AT));
        assert_eq!(p.duration_ms, None, "the record computes ended − started");
        assert_eq!(p.end_reason.as_deref(), Some("normal_clearing"));
        assert_eq!(p.outcome.as_deref(), Some("completed"));
        let metadata = p.metadata.as_ref().unwrap();
        assert_eq!(metadata["hangup_source"], "caller");
        assert_eq!(metadata["sip_hangup_cause"], "unspecified");
        assert_eq!(metadata["call_session_id"], SESSION);
    }

    #[test]
    fn call_conversation_ended_names_the_assistant_and_the_duration() {
        let event = one(fixture("call_conversation_ended"));
        assert_eq!(event.event_type, EventType::CallEnded);
        assert_eq!(event.provider_event, "call.conversation.ended");
        assert_eq!(event.call_id, LEG);
        assert_eq!(event.occurred_at, Some(1_785_856_985_962));
        let p = patch(&event);
        assert_eq!(p.status, Some(CallStatus::Ended));
        assert_eq!(
            p.agent.as_ref().and_then(|a| a.id.as_deref()),
            Some("assistant-6f1d2c3b-8a4e-4f5d-9b7c-0e2a1d3c4b5f")
        );
        assert_eq!(p.duration_ms, Some(152_000));
        assert_eq!(p.from_number.as_deref(), Some(CALLER));
        assert_eq!(p.ended_at, None, "call.hangup says when the call ended");
        let metadata = p.metadata.as_ref().unwrap();
        assert_eq!(
            metadata["conversation_id"],
            "02cf8f93-d16a-42ef-bc10-fe9a7064b99c"
        );
        assert_eq!(metadata["llm_model"], "openai/gpt-4o");
    }

    #[test]
    fn call_recording_saved_adds_the_recording_without_ending_the_call() {
        let event = one(fixture("call_recording_saved"));
        assert_eq!(event.event_type, EventType::MidCall);
        assert_eq!(event.call_id, LEG);
        let p = patch(&event);
        assert_eq!(p.status, None);
        assert!(
            p.recording_url
                .as_deref()
                .unwrap()
                .starts_with("https://s3.amazonaws.com/telephony-recorder-prod/")
        );
        assert!(p.recording_url.as_deref().unwrap().contains(".mp3?"));
        assert_eq!(p.live_turn, None);

        // The permanent public URL is preferred; WAV when there is no MP3.
        let urls = |payload: Value| {
            patch(&one(&event_json("call.recording.saved", payload)))
                .recording_url
                .clone()
        };
        assert_eq!(
            urls(json!({
                "recording_urls": {"mp3": "https://tmp/a.mp3"},
                "public_recording_urls": {"mp3": "https://pub/a.mp3", "wav": "https://pub/a.wav"}
            }))
            .as_deref(),
            Some("https://pub/a.mp3")
        );
        assert_eq!(
            urls(json!({"recording_urls": {"mp3": null, "wav": "https://tmp/a.wav"}})).as_deref(),
            Some("https://tmp/a.wav")
        );
        assert_eq!(urls(json!({"recording_urls": {}})), None);
    }

    fn event_json(event_type: &str, payload: Value) -> Vec<u8> {
        event(event_type, "0ccc7b54-4df3-4bca-a65a-3da1ecc777f0", payload)
    }

    #[test]
    fn the_fixtures_merge_into_one_record_in_any_order() {
        let merged = |order: &[&str]| {
            let mut record = CallRecord::new("telnyx", LEG);
            for name in order {
                record.merge(&one(fixture(name)));
            }
            record
        };
        let record = merged(&FIXTURES);
        let mut reversed = FIXTURES;
        reversed.reverse();
        assert_eq!(merged(&reversed), record);

        assert_eq!(record.status, Some(CallStatus::Ended));
        assert_eq!(record.direction.as_deref(), Some("inbound"));
        assert_eq!(record.started_at, Some(START));
        assert_eq!(record.ended_at, Some(HANGUP_AT));
        assert_eq!(record.duration_ms, Some(152_000));
        assert_eq!(record.outcome.as_deref(), Some("completed"));
        assert!(record.recording_url.is_some());
        assert!(record.agent.is_some());
        assert!(!record.missed);
    }

    #[test]
    fn the_event_id_names_the_delivery() {
        // GIVEN the hangup, re-serialized compactly with another attempt number
        let original = fixture("call_hangup");
        let mut value: Value = serde_json::from_slice(original).unwrap();
        value["meta"]["attempt"] = json!(2);
        let retried = body(&value);
        assert_ne!(retried.as_slice(), original);
        // THEN it is the same delivery
        assert_eq!(one(original).dedupe_key, one(&retried).dedupe_key);
        // AND another event id is another delivery, even with the same body otherwise
        value["data"]["id"] = json!("b2a1a8d0-0000-4000-8000-000000000000");
        assert_ne!(one(original).dedupe_key, one(&body(&value)).dedupe_key);
        // AND every fixture is its own delivery
        let mut keys: Vec<String> = FIXTURES
            .iter()
            .map(|f| one(fixture(f)).dedupe_key)
            .collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), FIXTURES.len());
    }

    #[test]
    fn without_an_event_id_the_body_names_the_delivery() {
        let mut value: Value = serde_json::from_slice(fixture("call_hangup")).unwrap();
        value["data"].as_object_mut().unwrap().remove("id");
        let first = body(&value);
        value["meta"]["attempt"] = json!(2);
        let second = body(&value);
        assert_eq!(one(&first).dedupe_key, one(&first).dedupe_key);
        assert_ne!(one(&first).dedupe_key, one(&second).dedupe_key);
    }

    #[test]
    fn hangup_causes_give_the_outcome_and_the_missed_rule() {
        // GIVEN an inbound call, WHEN it hangs up with each cause
        let record = |cause: &str, direction: &str| {
            let initiated = event_json("call.initiated", json!({"direction": direction}));
            let hangup = event(
                "call.hangup",
                "538445bf-a443-45bb-ad0f-55cbe8c3b07b",
                json!({"hangup_cause": cause, "start_time": "2026-08-04T15:20:31Z"}),
            );
            let mut record = CallRecord::new("telnyx", LEG);
            record.merge(&one(&initiated));
            record.merge(&one(&hangup));
            (record.outcome.clone().unwrap(), record.missed)
        };
        // THEN unanswered inbound calls are missed
        assert_eq!(record("user_busy", "incoming"), ("busy".into(), true));
        assert_eq!(record("no_answer", "incoming"), ("no_answer".into(), true));
        assert_eq!(
            record("originator_cancel", "incoming"),
            ("originator_cancel".into(), true)
        );
        assert_eq!(record("timeout", "incoming"), ("timeout".into(), true));
        // AND answered or outbound ones are not
        assert_eq!(
            record("normal_clearing", "incoming"),
            ("completed".into(), false)
        );
        assert_eq!(
            record("time_limit", "incoming"),
            ("time_limit".into(), false)
        );
        assert_eq!(record("no_answer", "outgoing"), ("no_answer".into(), false));
        assert_eq!(record("user_busy", "outgoing"), ("busy".into(), false));
        // AND other causes are kept verbatim
        assert_eq!(
            record("call_rejected", "incoming"),
            ("call_rejected".into(), false)
        );
    }

    #[test]
    fn never_answered_hangups_state_no_talk_time() {
        let hangup = |cause: &str| {
            patch(&one(&event_json(
                "call.hangup",
                json!({"hangup_cause": cause, "start_time": "2026-08-04T15:20:31Z"}),
            )))
            .duration_ms
        };
        assert_eq!(hangup("originator_cancel"), Some(0));
        assert_eq!(hangup("no_answer"), Some(0));
        assert_eq!(hangup("normal_clearing"), None);
        assert_eq!(hangup("unspecified"), None);
    }

    #[test]
    fn other_events_are_kept_as_unknown() {
        // A known Telnyx event callhook does not interpret, with its leg.
        let event = one(&event_json(
            "call.speak.ended",
            json!({"status": "completed"}),
        ));
        assert_eq!(event.event_type, EventType::Unknown);
        assert_eq!(event.provider_event, "call.speak.ended");
        assert_eq!(event.call_id, LEG);
        assert_eq!(event.data, EventData::Opaque);
        assert_eq!(event.occurred_at, Some(HANGUP_AT));
        // Fields callhook would refuse on a mapped event never refuse an unknown one.
        for payload in [
            json!("text"),
            json!({"call_leg_id": 7}),
            json!({"from": {}}),
        ] {
            let event = one(&body(&json!({"data": {
                "event_type": "call.conversation.start_failed",
                "id": "e1",
                "occurred_at": "never",
                "payload": payload,
            }})));
            assert_eq!(event.event_type, EventType::Unknown);
            assert_eq!(event.call_id, "unknown");
            assert_eq!(event.occurred_at, None);
        }
        // A recording transcription is not interpreted either.
        let event = one(&event_json("call.recording.transcription.saved", json!({})));
        assert_eq!(event.event_type, EventType::Unknown);
    }

    #[test]
    fn bodies_that_are_neither_json_nor_a_form_are_malformed() {
        for body in [
            &b""[..],
            b"   ",
            b"not json",
            b"null",
            b"{\"data\":",
            b"[{\"data\":{}}]",
            b"{\"data\":{\"event_type\":\"call.hangup\"}} trailing",
            b"data=%FF",
        ] {
            let error = error_of(body);
            assert_eq!(error.status(), 400, "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn unusable_fields_are_refused_naming_the_field() {
        let cases: [(Vec<u8>, &str); 9] = [
            (body(&json!({"meta": {}})), "data"),
            (body(&json!({"data": {"id": "e1"}})), "data.event_type"),
            (body(&json!({"data": {"event_type": 3}})), "data.event_type"),
            (
                body(&json!({"data": {"event_type": "call.hangup", "id": 1}})),
                "data.id",
            ),
            (
                body(&json!({"data": {"event_type": "call.hangup", "payload": {}}})),
                "data.payload.call_leg_id",
            ),
            (
                body(&json!({"data": {"event_type": "call.hangup", "payload": "x"}})),
                "data.payload",
            ),
            (
                event_json("call.hangup", json!({"hangup_cause": ["busy"]})),
                "data.payload.hangup_cause",
            ),
            (
                event_json("call.conversation.ended", json!({"duration_sec": "long"})),
                "data.payload.duration_sec",
            ),
            (
                body(&json!({"data": {
                    "event_type": "call.answered",
                    "occurred_at": "yesterday",
                    "payload": {"call_leg_id": LEG}
                }})),
                "data.occurred_at",
            ),
        ];
        for (body, field) in cases {
            let error = error_of(&body);
            assert_eq!(error.status(), 422, "{field}: {error}");
            assert!(
                error.to_string().contains(&format!("`{field}`")),
                "{field}: {error}"
            );
        }
        let error = error_of(&event_json("call.answered", json!({"start_time": "dawn"})));
        assert!(
            error.to_string().contains("data.payload.start_time"),
            "{error}"
        );
    }

    #[test]
    fn texml_callbacks_are_mapped_like_twilio() {
        // GIVEN the completed callback of Telnyx's TeXML <Hangup> documentation, form-encoded
        let texml = form_urlencoded::Serializer::new(String::new())
            .extend_pairs([
                ("AccountSid", "cb6cfbbc-eb00-41af-a3f3-0d7b32009e4b"),
                ("CallDuration", "2"),
                (
                    "CallSid",
                    "v2:7V3r4VFCGLTzKLOveE0-7vM9dX17-NRQgU1byo-uuOIX9JcDadLLKw",
                ),
                ("CallStatus", "completed"),
                ("CallbackSource", "call-progress-events"),
                ("From", "+18445931290"),
                ("HangupSource", "callee"),
                ("SequenceNumber", "0"),
                ("Timestamp", "2021-04-28 21:51:18.731479Z"),
                ("To", "+13122010055"),
            ])
            .finish();
        // WHEN it is parsed THEN it ends the TeXML call, under Telnyx
        let event = one(texml.as_bytes());
        assert_eq!(event.provider, "telnyx");
        assert_eq!(event.event_type, EventType::CallEnded);
        assert_eq!(
            event.call_id,
            "v2:7V3r4VFCGLTzKLOveE0-7vM9dX17-NRQgU1byo-uuOIX9JcDadLLKw"
        );
        assert_eq!(event.occurred_at, Some(1_619_646_678_731));
        let p = patch(&event);
        assert_eq!(p.duration_ms, Some(2_000));
        assert_eq!(p.outcome.as_deref(), Some("completed"));
        // AND RFC 2822 and ISO 8601 timestamps are both read
        assert_eq!(
            texml_instant("Wed, 28 Apr 2021 21:51:18 +0000"),
            Some(1_619_646_678_000)
        );
        assert_eq!(
            texml_instant("2021-04-28T21:51:18Z"),
            Some(1_619_646_678_000)
        );
        assert_eq!(texml_instant("soon"), None);
    }

    proptest! {
        #[test]
        fn any_body_parses_or_is_refused_never_panics(body in proptest::collection::vec(any::<u8>(), 0..256)) {
            if let Err(error) = parse(&body) {
                prop_assert!(matches!(error.status(), 400 | 422), "{error}");
            }
        }

        #[test]
        fn any_mangled_fixture_parses_or_is_refused(
            which in 0usize..5,
            cut in 0usize..2000,
            byte in any::<u8>(),
        ) {
            let mut body = fixture(FIXTURES[which]).to_vec();
            let at = cut % body.len();
            body[at] = byte;
            if let Err(error) = parse(&body) {
                prop_assert!(matches!(error.status(), 400 | 422), "{error}");
            }
        }
    }
}
