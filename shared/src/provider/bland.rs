//! Bland's post-call webhook (the `webhook` of `POST /v1/calls`): the call object, posted twice.
//!
//! The immediate delivery, when the call ends, is `call_ended`, plus `call_analyzed` when it
//! carries a summary or an analysis; the delayed one, 30 to 60 s later, adds
//! `corrected_transcript` and `citations` and is a `call_analyzed` whose transcript is the
//! corrected one. Bland signs no timestamp and names no delivery, so each is deduplicated on the
//! call and its kind (`post_call`, `delayed`). Anything else posted to the URL (the streaming
//! `webhook_events`, whose shapes are not documented) is stored as `unknown`.
//!
//! Units: instants are ISO 8601, `call_length` is in minutes (turned into ms on its decimal text),
//! `price` is in US dollars, kept as sent.

use super::retell::{de_amount, item};
use super::synthflow::split_transcript;
use super::{AuthDefaults, Provider, Source, from_json, required_id};
use crate::error::{Error, Result};
use crate::event::{
    Agent, Analysis, CallPatch, CallStatus, CanonicalEvent, Cost, DeliveryContext, EventData,
    EventType, Turn, is_blank,
};
use crate::timefmt::de_flexible;
use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Number, Value};

#[derive(Debug, Clone, Copy, Default)]
pub struct Bland;

const NAME: &str = "bland";

/// The dedupe identities (and provider event names) of Bland's two deliveries.
const IMMEDIATE: &str = "post_call";
const DELAYED: &str = "delayed";

/// What a body is first read for: which delivery it is. Read leniently, so that a body of
/// another kind is kept whatever its fields hold.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Envelope {
    call_id: Option<Value>,
    c_id: Option<Value>,
    /// Present (not null) is what counts for these three.
    completed: Option<IgnoredAny>,
    end_at: Option<IgnoredAny>,
    corrected_transcript: Option<IgnoredAny>,
    status: Option<Value>,
    event: Option<Value>,
    #[serde(rename = "type")]
    kind: Option<Value>,
    category: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Payload {
    #[serde(deserialize_with = "de_text")]
    call_id: Option<String>,
    #[serde(deserialize_with = "de_text")]
    c_id: Option<String>,
    pathway_id: Option<String>,
    inbound: Option<bool>,
    #[serde(deserialize_with = "de_text")]
    from: Option<String>,
    #[serde(deserialize_with = "de_text")]
    to: Option<String>,
    status: Option<String>,
    completed: Option<bool>,
    answered_by: Option<String>,
    #[serde(deserialize_with = "de_flexible")]
    created_at: Option<i64>,
    #[serde(deserialize_with = "de_flexible")]
    started_at: Option<i64>,
    #[serde(deserialize_with = "de_flexible")]
    end_at: Option<i64>,
    #[serde(deserialize_with = "de_minutes_as_ms")]
    call_length: Option<i64>,
    call_ended_by: Option<String>,
    transcripts: Option<Vec<TranscriptIn>>,
    concatenated_transcript: Option<String>,
    corrected_transcript: Option<Value>,
    recording_url: Option<String>,
    #[serde(deserialize_with = "de_amount")]
    price: Option<Number>,
    summary: Option<String>,
    analysis: Option<Value>,
    variables: Option<Map<String, Value>>,
    disposition_tag: Option<String>,
    citations: Option<Value>,
    request_data: Option<Map<String, Value>>,
    metadata: Option<Map<String, Value>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct TranscriptIn {
    text: Option<String>,
    /// `user`, `assistant`, `robot` or `agent-action`.
    user: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivery {
    Immediate,
    Delayed,
    Other,
}

impl Provider for Bland {
    fn name(&self) -> &'static str {
        NAME
    }

    fn auth_defaults(&self) -> AuthDefaults {
        // `X-Webhook-Signature`: the hex HMAC-SHA256 of the body, no timestamp, no prefix.
        AuthDefaults {
            scheme: "hmac-sha256",
            header: "X-Webhook-Signature",
            prefix: "",
        }
    }

    fn parse_payload(&self, body: &[u8], ctx: &DeliveryContext) -> Result<Vec<CanonicalEvent>> {
        let src = Source {
            provider: NAME,
            ctx,
            body,
        };
        let envelope: Envelope = from_json(body)?;
        let delivery = delivery(&envelope);
        if delivery == Delivery::Other {
            return Ok(vec![unknown(&src, &envelope)]);
        }
        let call: Payload = from_json(body)?;
        let call_id = required_id(
            call.call_id.clone().or_else(|| call.c_id.clone()),
            "call_id",
        )?;
        let mut patch = common_patch(&call);

        if delivery == Delivery::Delayed {
            // Bland states no time for its post-processing. It comes after the call's end, and
            // its values (the same call object, plus the corrections) supersede the immediate
            // delivery's: one millisecond after `end_at` orders it after the immediate
            // `call_analyzed` in the merge. Without `end_at` (a delivery of the corrections
            // alone) it orders first, so its partial analysis never replaces a full one; its
            // transcript still wins, being a `call_analyzed` one over `call_ended`'s.
            let corrected = match &call.corrected_transcript {
                Some(value) => corrected_turns(value)?,
                None => Vec::new(),
            };
            patch.transcript = Some(corrected)
                .filter(|turns| !turns.is_empty())
                .or_else(|| transcript(&call));
            patch.analysis = Some(analysis_of(&call, true)).filter(|a| !a.is_empty());
            let at = call.end_at.and_then(|end| end.checked_add(1));
            let data = EventData::Call(Box::new(patch));
            return Ok(vec![src.event_identified(
                DELAYED,
                EventType::CallAnalyzed,
                DELAYED,
                &call_id,
                at,
                data,
            )]);
        }

        patch.transcript = transcript(&call);
        let mut events = vec![src.event_identified(
            IMMEDIATE,
            EventType::CallEnded,
            IMMEDIATE,
            &call_id,
            call.end_at,
            EventData::Call(Box::new(patch)),
        )];
        let analyzed = call
            .summary
            .as_deref()
            .is_some_and(|s| !s.trim().is_empty())
            || call.analysis.as_ref().is_some_and(|a| !is_blank(a));
        if analyzed {
            // The analysis alone: the transcript stays `call_ended`'s, so that the delayed
            // delivery's corrected one (a `call_analyzed` too) is never tied with it.
            let analyzed = CallPatch {
                status: Some(CallStatus::Ended),
                analysis: Some(analysis_of(&call, false)),
                ..CallPatch::default()
            };
            events.push(src.event_identified(
                IMMEDIATE,
                EventType::CallAnalyzed,
                IMMEDIATE,
                &call_id,
                call.end_at,
                EventData::Call(Box::new(analyzed)),
            ));
        }
        Ok(events)
    }
}

/// Which of Bland's deliveries a body is: the delayed one carries `corrected_transcript`; the
/// immediate one names its call and that it ended (`completed`, `end_at` or a final `status`).
fn delivery(envelope: &Envelope) -> Delivery {
    if envelope.corrected_transcript.is_some() {
        return Delivery::Delayed;
    }
    // A blank or fractional id still names the call (and is refused below); a list does not.
    let names = |id: &Option<Value>| matches!(id, Some(Value::String(_) | Value::Number(_)));
    let named = names(&envelope.call_id) || names(&envelope.c_id);
    let final_status = envelope
        .status
        .as_ref()
        .and_then(Value::as_str)
        .is_some_and(|s| {
            matches!(
                s.trim().to_ascii_lowercase().replace('_', "-").as_str(),
                "completed" | "failed" | "no-answer" | "busy" | "canceled" | "cancelled"
            )
        });
    let ended = envelope.completed.is_some() || envelope.end_at.is_some() || final_status;
    if named && ended {
        Delivery::Immediate
    } else {
        Delivery::Other
    }
}

/// Another kind of body: kept under the call it names, else under `unknown`.
fn unknown(src: &Source<'_>, envelope: &Envelope) -> CanonicalEvent {
    let text = |value: &Option<Value>| match value {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Some(n.to_string()),
        _ => None,
    };
    let call_id = text(&envelope.call_id)
        .or_else(|| text(&envelope.c_id))
        .unwrap_or_else(|| "unknown".into());
    let name = text(&envelope.event)
        .or_else(|| text(&envelope.kind))
        .or_else(|| text(&envelope.category))
        .unwrap_or_else(|| "unknown".into());
    src.event(EventType::Unknown, &name, &call_id, None, EventData::Opaque)
}

/// Fields of the call object, in either delivery.
fn common_patch(call: &Payload) -> CallPatch {
    CallPatch {
        agent: call.pathway_id.clone().map(|id| Agent {
            id: Some(id),
            version: None,
        }),
        direction: call
            .inbound
            .map(|inbound| if inbound { "inbound" } else { "outbound" }.to_owned()),
        from_number: call.from.clone(),
        to_number: call.to.clone(),
        status: Some(CallStatus::Ended),
        provider_status: call.status.clone(),
        outcome: outcome(call),
        started_at: call.started_at.or(call.created_at),
        ended_at: call.end_at,
        duration_ms: call.call_length,
        end_reason: call.call_ended_by.clone(),
        recording_url: call.recording_url.clone(),
        cost: call.price.clone().map(|amount| Cost {
            amount,
            unit: "usd".to_owned(),
        }),
        dynamic_variables: call.request_data.clone(),
        metadata: call.metadata.clone(),
        ..CallPatch::default()
    }
}

/// callhook's outcome (docs/PROVIDERS.md's rule): voicemail when `answered_by` says so, else the
/// status (`no-answer` → `no_answer`, `failed`, `completed`), any other kept verbatim.
fn outcome(call: &Payload) -> Option<String> {
    let answered_by = call.answered_by.as_deref().map(normalized);
    match answered_by.as_deref() {
        Some("voicemail") => return Some("voicemail".to_owned()),
        Some("no_answer") => return Some("no_answer".to_owned()),
        _ => {}
    }
    match call.status.as_deref().filter(|s| !s.trim().is_empty()) {
        Some(status) => Some(match normalized(status).as_str() {
            "no_answer" => "no_answer".to_owned(),
            "failed" => "failed".to_owned(),
            "completed" => "completed".to_owned(),
            _ => status.trim().to_owned(),
        }),
        None => (call.completed == Some(true)).then(|| "completed".to_owned()),
    }
}

fn normalized(word: &str) -> String {
    word.trim().to_ascii_lowercase().replace('-', "_")
}

/// `transcripts[]`, else `concatenated_transcript` split on its speaker labels.
fn transcript(call: &Payload) -> Option<Vec<Turn>> {
    if let Some(items) = call.transcripts.as_ref().filter(|t| !t.is_empty()) {
        let turns = items.iter().filter_map(|t| {
            let text = t.text.as_deref().filter(|text| !text.trim().is_empty())?;
            Some(Turn::new(
                &role(t.user.as_deref().unwrap_or("unknown")),
                text,
            ))
        });
        return Some(turns.collect());
    }
    call.concatenated_transcript
        .as_deref()
        .filter(|text| !text.trim().is_empty())
        .map(split_transcript)
}

/// Bland's speakers: `assistant` and `robot` are the agent, `agent-action` (what the agent did,
/// not said) is `system`.
fn role(speaker: &str) -> String {
    match speaker.trim().to_ascii_lowercase().as_str() {
        "assistant" | "robot" => "agent".to_owned(),
        "agent-action" => "system".to_owned(),
        _ => speaker.to_owned(),
    }
}

/// The corrected transcript, whose shape Bland documents only loosely: an object of `segments`
/// (`speaker`, `text`), a list of such entries, or plain `speaker: text` lines. An object of
/// another shape yields no turns (the delivery's `transcripts` are used); a number or a boolean
/// is a wrong type.
fn corrected_turns(value: &Value) -> Result<Vec<Turn>> {
    let items = match value {
        Value::Array(items) => items,
        Value::Object(map) => {
            match ["segments", "transcripts", "utterances"]
                .iter()
                .find_map(|key| map.get(*key).and_then(Value::as_array))
            {
                Some(items) => items,
                None => return Ok(Vec::new()),
            }
        }
        Value::String(text) => return Ok(split_transcript(text)),
        Value::Null => return Ok(Vec::new()),
        Value::Bool(_) | Value::Number(_) => {
            return Err(Error::unusable(
                "The field `corrected_transcript` has the wrong type or value.",
            ));
        }
    };
    let field = |item: &Value, keys: &[&str]| {
        keys.iter()
            .find_map(|key| item.get(*key).and_then(Value::as_str).map(str::to_owned))
    };
    Ok(items
        .iter()
        .filter_map(|item| {
            let text = field(item, &["text", "content"]).filter(|t| !t.trim().is_empty())?;
            let speaker =
                field(item, &["speaker", "user", "role"]).unwrap_or_else(|| "unknown".into());
            Some(Turn::new(&role(&speaker), text))
        })
        .collect())
}

/// `summary`; as data, the `analysis` fields (per the call's `analysis_schema`), the `variables`,
/// the `disposition_tag`, and the delayed delivery's `citations`. Bland gives no sentiment.
fn analysis_of(call: &Payload, delayed: bool) -> Analysis {
    let mut data = Vec::new();
    match &call.analysis {
        None | Some(Value::Null) => {}
        Some(Value::Object(fields)) => {
            data.extend(fields.iter().map(|(name, value)| item(name, value.clone())));
        }
        Some(other) => data.push(item("analysis", other.clone())),
    }
    if let Some(variables) = call.variables.as_ref().filter(|v| !v.is_empty()) {
        data.push(item("variables", Value::Object(variables.clone())));
    }
    if let Some(tag) = call
        .disposition_tag
        .as_ref()
        .filter(|t| !t.trim().is_empty())
    {
        data.push(item("disposition_tag", Value::String(tag.clone())));
    }
    if delayed {
        if let Some(citations) = call.citations.as_ref().filter(|c| !is_blank(c)) {
            data.push(item("citations", citations.clone()));
        }
    }
    Analysis {
        summary: call.summary.clone().filter(|s| !s.trim().is_empty()),
        sentiment: None,
        data,
    }
}

/// An id or a phone number: text, or an integer sent as a number (Bland's API page types the call
/// id as a number).
fn de_text<'de, D: Deserializer<'de>>(de: D) -> std::result::Result<Option<String>, D::Error> {
    match Value::deserialize(de)? {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s)),
        Value::Number(n) if n.is_i64() || n.is_u64() => Ok(Some(n.to_string())),
        _ => Err(serde::de::Error::custom("not text")),
    }
}

/// `call_length`, in minutes (a number or a numeric string), as milliseconds.
fn de_minutes_as_ms<'de, D: Deserializer<'de>>(
    de: D,
) -> std::result::Result<Option<i64>, D::Error> {
    let ms = match Value::deserialize(de)? {
        Value::Null => return Ok(None),
        Value::String(s) if s.trim().is_empty() => return Ok(None),
        Value::String(s) => minutes_to_ms(s.trim()),
        Value::Number(n) => minutes_to_ms(&n.to_string()),
        _ => None,
    };
    ms.map(Some)
        .ok_or_else(|| serde::de::Error::custom("not a duration in minutes"))
}

/// The longest duration accepted, in ms (as for durations in seconds: 10^12 s).
const MAX_DURATION_MS: u128 = 1_000_000_000_000_000;

/// `round(minutes × 60000)`, half up, computed exactly on the decimal text (`1.7851666666666666`,
/// `0.5`, `2`, `1.5e-3`): an `f64` product can land just below a half and round down (0.004075
/// minutes is 244.5 ms, which `0.004075 * 60000.0` makes 244.49999999999997). `None` for text
/// that is not a non-negative decimal, or a duration past [`MAX_DURATION_MS`].
fn minutes_to_ms(text: &str) -> Option<i64> {
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(at) => (&text[..at], text[at + 1..].parse::<i64>().ok()?),
        None => (text, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if (int.is_empty() && frac.is_empty())
        || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let digits = format!("{int}{frac}");
    let digits = digits.trim_start_matches('0');
    // value = digits × 10^power. 30 significant digits are far more than a duration has, and
    // keep the products below within u128.
    let kept = &digits[..digits.len().min(30)];
    let power = exponent
        .checked_sub(i64::try_from(frac.len()).ok()?)?
        .checked_add(i64::try_from(digits.len() - kept.len()).ok()?)?;
    let scaled = if kept.is_empty() {
        0
    } else {
        kept.parse::<u128>().ok()?.checked_mul(60_000)?
    };
    let ms = if scaled == 0 {
        0
    } else if power >= 0 {
        scaled.checked_mul(10u128.checked_pow(u32::try_from(power).ok()?)?)?
    } else {
        match u32::try_from(power.unsigned_abs())
            .ok()
            .and_then(|p| 10u128.checked_pow(p))
        {
            Some(divisor) => (scaled + divisor / 2) / divisor,
            // Past 10^38 the divisor exceeds twice any `scaled`: well under half a millisecond.
            None => 0,
        }
    };
    (ms <= MAX_DURATION_MS).then(|| i64::try_from(ms).ok())?
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::provider::testing::patch;
    use crate::record::CallRecord;
    use serde_json::json;

    const IMMEDIATE_BODY: &[u8] = include_bytes!("../../../tests/fixtures/bland/post_call.json");
    const DELAYED_BODY: &[u8] =
        include_bytes!("../../../tests/fixtures/bland/post_call_delayed.json");
    const MISSED_BODY: &[u8] = include_bytes!("../../../tests/fixtures/bland/missed_inbound.json");

    const CALL: &str = "7f3c9a2e-5b1d-4e8f-a6c0-2d9b8e1f4a37";
    const PATHWAY: &str = "b6e21f0d-93c4-4a7e-8d15-0c2f9a4e7b61";
    const STARTED: i64 = 1_780_334_463_402;
    const ENDED: i64 = 1_780_334_570_512;

    fn ctx(received_at: i64) -> DeliveryContext {
        DeliveryContext {
            received_at,
            delivery_id: None,
        }
    }

    fn parse_at(body: &[u8], received_at: i64) -> Vec<CanonicalEvent> {
        let provider: &dyn Provider = &Bland;
        provider.parse(body, &ctx(received_at)).unwrap()
    }

    fn parse(body: &[u8]) -> Vec<CanonicalEvent> {
        parse_at(body, 1_780_400_000_000)
    }

    fn error(body: &[u8]) -> Error {
        let provider: &dyn Provider = &Bland;
        provider.parse(body, &ctx(1)).unwrap_err()
    }

    fn pairs(turns: &[Turn]) -> Vec<(&str, &str)> {
        turns
            .iter()
            .map(|t| (t.role.as_ref(), t.content.as_str()))
            .collect()
    }

    fn types(events: &[CanonicalEvent]) -> Vec<EventType> {
        events.iter().map(|e| e.event_type).collect()
    }

    #[test]
    fn the_immediate_delivery_is_call_ended_and_call_analyzed() {
        let events = parse(IMMEDIATE_BODY);
        assert_eq!(
            types(&events),
            [EventType::CallEnded, EventType::CallAnalyzed]
        );
        assert!(
            events
                .iter()
                .all(|e| e.call_id == CALL && e.provider_event == "post_call")
        );
        assert_ne!(events[0].dedupe_key, events[1].dedupe_key);
        assert_eq!(events[0].occurred_at, Some(ENDED));

        let p = patch(&events[0]);
        assert_eq!(
            p.agent.as_ref().unwrap().id.as_deref(),
            Some(PATHWAY),
            "the pathway"
        );
        assert_eq!(p.direction.as_deref(), Some("outbound"));
        assert_eq!(p.from_number.as_deref(), Some("+14155550142"));
        assert_eq!(p.to_number.as_deref(), Some("+14155550177"));
        assert_eq!(p.status, Some(CallStatus::Ended));
        assert_eq!(p.provider_status.as_deref(), Some("completed"));
        assert_eq!(p.outcome.as_deref(), Some("completed"));
        assert_eq!((p.started_at, p.ended_at), (Some(STARTED), Some(ENDED)));
        assert_eq!(
            p.duration_ms,
            Some(107_110),
            "1.7851666666666666 minutes, rounded to the ms"
        );
        assert_eq!(p.end_reason.as_deref(), Some("USER"));
        assert_eq!(
            pairs(p.transcript.as_ref().unwrap()),
            [
                (
                    "agent",
                    "Hi, this is Maya calling from Brightline Solar. Is this Jordan?"
                ),
                ("user", "Yeah, this is Jordan."),
                (
                    "agent",
                    "Thanks! You asked about a roof assessment last week. Can we call you back with a quote?"
                ),
                ("user", "Sure, Thursday at tree works best."),
                ("system", "Scheduled callback: Thursday 3 PM"),
                (
                    "agent",
                    "Great, we'll call you Thursday at 3 PM. Have a good day!"
                ),
            ]
        );
        assert_eq!(
            p.recording_url.as_deref(),
            Some("https://recordings.bland.ai/7f3c9a2e-5b1d-4e8f-a6c0-2d9b8e1f4a37.mp3")
        );
        let cost = p.cost.as_ref().unwrap();
        assert_eq!(
            (cost.amount.to_string().as_str(), cost.unit.as_str()),
            ("0.16", "usd")
        );
        assert_eq!(
            Value::Object(p.dynamic_variables.clone().unwrap()),
            json!({"customer_name": "Jordan", "lead_id": "L-88213"})
        );
        assert_eq!(
            Value::Object(p.metadata.clone().unwrap()),
            json!({"campaign": "spring-solar"})
        );
        assert_eq!(p.analysis, None);

        let analyzed = patch(&events[1]);
        assert_eq!(
            analyzed.transcript, None,
            "the transcript stays call_ended's"
        );
        assert_eq!(analyzed.status, Some(CallStatus::Ended));
        let analysis = analyzed.analysis.as_ref().unwrap();
        assert_eq!(
            analysis.summary.as_deref(),
            Some(
                "Maya reached Jordan about a roof assessment. Jordan agreed to a callback with a quote on Thursday at 3 PM."
            )
        );
        assert_eq!(analysis.sentiment, None);
        assert_eq!(
            serde_json::to_value(&analysis.data).unwrap(),
            json!([
                {"name": "preferred_follow_up_time", "type": "string", "value": "Thursday at 3 PM"},
                {"name": "wants_follow_up", "type": "boolean", "value": true},
                {"name": "variables", "type": "object",
                 "value": {"customer_name": "Jordan", "lead_source": "web_form"}},
                {"name": "disposition_tag", "type": "string", "value": "Callback Requested"}
            ])
        );
    }

    #[test]
    fn the_delayed_delivery_is_call_analyzed_with_the_corrected_transcript() {
        let events = parse(DELAYED_BODY);
        assert_eq!(types(&events), [EventType::CallAnalyzed]);
        let e = &events[0];
        assert_eq!(
            (e.call_id.as_str(), e.provider_event.as_str()),
            (CALL, "delayed")
        );
        assert_eq!(
            e.occurred_at,
            Some(ENDED + 1),
            "ordered after the immediate one"
        );
        let p = patch(e);
        let turns = p.transcript.as_ref().unwrap();
        assert_eq!(turns.len(), 5);
        assert_eq!(
            (turns[3].role.as_ref(), turns[3].content.as_str()),
            ("user", "Sure, Thursday at three works best.")
        );
        let analysis = p.analysis.as_ref().unwrap();
        let citations = analysis
            .data
            .iter()
            .find(|i| i.name == "citations")
            .unwrap();
        assert_eq!(citations.kind, "array");
        assert_eq!(citations.value.as_array().unwrap().len(), 2);
        assert_eq!(p.duration_ms, Some(107_110));
        assert_eq!(p.cost.as_ref().unwrap().amount.to_string(), "0.16");
    }

    #[test]
    fn each_delivery_has_its_own_key_and_keeps_it_when_redelivered() {
        let immediate = parse(IMMEDIATE_BODY);
        let delayed = parse(DELAYED_BODY);
        assert_ne!(immediate[1].dedupe_key, delayed[0].dedupe_key);
        assert_ne!(immediate[0].dedupe_key, delayed[0].dedupe_key);
        // Redelivered later, even re-serialized: the same keys (Bland names no delivery).
        for body in [IMMEDIATE_BODY, DELAYED_BODY, MISSED_BODY] {
            let value: Value = serde_json::from_slice(body).unwrap();
            let again = serde_json::to_vec(&value).unwrap();
            assert_ne!(again, body);
            let first: Vec<_> = parse_at(body, 1)
                .into_iter()
                .map(|e| e.dedupe_key)
                .collect();
            let second: Vec<_> = parse_at(&again, 2)
                .into_iter()
                .map(|e| e.dedupe_key)
                .collect();
            assert_eq!(first, second);
        }
    }

    fn merged(bodies: &[&[u8]]) -> CallRecord {
        let events: Vec<_> = bodies
            .iter()
            .enumerate()
            .flat_map(|(i, body)| parse_at(body, 1_780_400_000_000 + i as i64))
            .collect();
        CallRecord::from_events(&events).unwrap()
    }

    #[test]
    fn the_corrected_transcript_wins_whichever_delivery_comes_first() {
        let forward = merged(&[IMMEDIATE_BODY, DELAYED_BODY]);
        let mut backward = merged(&[DELAYED_BODY, IMMEDIATE_BODY]);
        backward.first_event_at = forward.first_event_at;
        backward.last_event_at = forward.last_event_at;
        assert_eq!(forward, backward);
        assert_eq!(
            forward.transcript[3].content,
            "Sure, Thursday at three works best."
        );
        assert_eq!(forward.transcript.len(), 5);
        let analysis = forward.analysis.as_ref().unwrap();
        assert!(analysis.summary.is_some());
        assert!(
            analysis.data.iter().any(|i| i.name == "citations"),
            "the delayed analysis, a superset, won"
        );
        assert_eq!(forward.duration_ms, Some(107_110));
        assert_eq!(forward.started_at, Some(STARTED));
        assert!(!forward.missed);
        assert_eq!(
            forward.events,
            [EventType::CallEnded, EventType::CallAnalyzed]
        );
    }

    #[test]
    fn corrections_delivered_alone_replace_the_transcript_but_not_the_analysis() {
        let corrections = json!({
            "call_id": CALL,
            "corrected_transcript": {"segments": [
                {"speaker": "assistant", "text": "Hello from Brightline Solar."},
                {"speaker": "user", "text": "Thursday at three."}
            ]},
            "citations": [{"field": "wants_follow_up", "value": true}]
        })
        .to_string();
        for order in [
            [IMMEDIATE_BODY, corrections.as_bytes()],
            [corrections.as_bytes(), IMMEDIATE_BODY],
        ] {
            let record = merged(&order);
            assert_eq!(
                pairs(&record.transcript),
                [
                    ("agent", "Hello from Brightline Solar."),
                    ("user", "Thursday at three.")
                ]
            );
            let analysis = record.analysis.as_ref().unwrap();
            assert!(analysis.summary.is_some(), "the immediate analysis stays");
            assert_eq!(record.duration_ms, Some(107_110));
            assert_eq!(record.direction.as_deref(), Some("outbound"));
        }
    }

    #[test]
    fn the_missed_inbound_call() {
        let events = parse(MISSED_BODY);
        assert_eq!(
            types(&events),
            [EventType::CallEnded],
            "no summary, no analysis"
        );
        let p = patch(&events[0]);
        assert_eq!(p.direction.as_deref(), Some("inbound"));
        assert_eq!(p.outcome.as_deref(), Some("no_answer"));
        assert_eq!(p.provider_status.as_deref(), Some("no-answer"));
        assert_eq!(p.duration_ms, Some(0));
        assert_eq!(
            p.started_at,
            Some(1_780_391_647_880),
            "created_at, as started_at is null"
        );
        assert_eq!(p.transcript, None);
        assert_eq!(p.cost.as_ref().unwrap().amount.to_string(), "0");
        let record = merged(&[MISSED_BODY]);
        assert!(record.missed);
        assert_eq!(record.status, Some(CallStatus::Ended));
    }

    fn immediate(fields: &str) -> CallPatch {
        let body = format!(r#"{{"call_id":"c","completed":true,{fields}}}"#);
        patch(&parse(body.as_bytes())[0]).clone()
    }

    #[test]
    fn a_zero_length_inbound_call_is_missed_and_an_outbound_one_not() {
        let record = |fields: &str| {
            let body = format!(r#"{{"call_id":"c","completed":true,{fields}}}"#);
            CallRecord::from_events(&parse(body.as_bytes())).unwrap()
        };
        assert!(record(r#""inbound":true,"status":"completed","call_length":0"#).missed);
        assert!(record(r#""inbound":true,"status":"no-answer""#).missed);
        assert!(!record(r#""inbound":false,"status":"no-answer","call_length":0"#).missed);
        assert!(!record(r#""inbound":true,"status":"completed","call_length":0.5"#).missed);
    }

    #[test]
    fn outcomes() {
        for (fields, expected) in [
            (
                r#""answered_by":"voicemail","status":"completed""#,
                Some("voicemail"),
            ),
            (
                r#""answered_by":"human","status":"completed""#,
                Some("completed"),
            ),
            (r#""status":"no-answer""#, Some("no_answer")),
            (r#""answered_by":"no-answer""#, Some("no_answer")),
            (r#""status":"failed""#, Some("failed")),
            (r#""status":"busy""#, Some("busy")),
            (r#""status":"timed-out""#, Some("timed-out")),
            (r#""inbound":true"#, Some("completed")),
        ] {
            assert_eq!(immediate(fields).outcome.as_deref(), expected, "{fields}");
        }
        let body = br#"{"call_id":"c","end_at":"2026-06-01T17:22:50Z","completed":false}"#;
        assert_eq!(patch(&parse(body)[0]).outcome, None);
    }

    #[test]
    fn call_length_minutes_become_exact_milliseconds() {
        for (text, ms) in [
            ("0", Some(0)),
            ("2", Some(120_000)),
            ("0.5", Some(30_000)),
            ("1.7851666666666666", Some(107_110)),
            ("0.004075", Some(245)),
            ("0.0000083", Some(0)),
            ("0.0000084", Some(1)),
            ("1.5e-3", Some(90)),
            ("15E1", Some(9_000_000)),
            ("000.25", Some(15_000)),
            (".25", Some(15_000)),
            ("3.", Some(180_000)),
            ("1e-100000", Some(0)),
            ("1e400", None),
            ("-1", None),
            ("+1", None),
            ("1.2.3", None),
            ("", None),
            (".", None),
            ("1e", None),
            ("one", None),
            ("0x10", None),
        ] {
            assert_eq!(minutes_to_ms(text), ms, "{text}");
        }
        assert_eq!(
            minutes_to_ms("0.12345678901234567890123456789012345678"),
            Some(7_407)
        );
        assert_eq!(
            (0.004_075_f64 * 60_000.0).round(),
            244.0,
            "what float arithmetic would say"
        );
        // In a body: a number, or a numeric string.
        assert_eq!(
            immediate(r#""call_length":0.004075"#).duration_ms,
            Some(245)
        );
        assert_eq!(
            immediate(r#""call_length":"1.25""#).duration_ms,
            Some(75_000)
        );
        assert_eq!(immediate(r#""call_length":3"#).duration_ms, Some(180_000));
        assert_eq!(immediate(r#""call_length":null"#).duration_ms, None);
    }

    #[test]
    fn corrected_transcript_shapes() {
        let turns = |value: Value| pairs(&corrected_turns(&value).unwrap()).len();
        assert_eq!(
            turns(json!([{"user": "robot", "text": "Hi"}, {"speaker": "user", "content": "Yo"}])),
            2
        );
        assert_eq!(turns(json!("assistant: Hi\nuser: Yo")), 2);
        assert_eq!(
            turns(json!({"utterances": [{"role": "agent", "text": "Hi"}]})),
            1
        );
        assert_eq!(turns(json!({"text": "an unknown shape"})), 0);
        assert_eq!(
            turns(json!({"segments": [{"text": "  "}, {"speaker": 0, "text": "Hi"}]})),
            1
        );
        let unnamed = corrected_turns(&json!([{"speaker": 0, "text": "Hi"}])).unwrap();
        assert_eq!(unnamed[0].role, "unknown");
        // An unusable corrected transcript falls back on the delivery's own transcript.
        let body = br#"{"call_id":"c","corrected_transcript":{"text":"?"},
            "transcripts":[{"user":"assistant","text":"Hello"}]}"#;
        let p = patch(&parse(body)[0]).clone();
        assert_eq!(pairs(p.transcript.as_ref().unwrap()), [("agent", "Hello")]);
    }

    #[test]
    fn other_bodies_are_unknown_never_an_error() {
        for (body, call_id, name) in [
            (
                r#"{"call_id":"c9","status":"in-progress","category":"call","message":"connected"}"#,
                "c9",
                "call",
            ),
            (r#"{"event":"queue","c_id":42}"#, "42", "queue"),
            (
                r#"{"completed":true,"status":"completed"}"#,
                "unknown",
                "unknown",
            ),
            (
                r#"{"call_id":["x"],"end_at":7,"type":{}}"#,
                "unknown",
                "unknown",
            ),
            (r#"{}"#, "unknown", "unknown"),
        ] {
            let events = parse(body.as_bytes());
            assert_eq!(events.len(), 1, "{body}");
            let e = &events[0];
            assert_eq!(
                (e.event_type, e.call_id.as_str(), e.provider_event.as_str()),
                (EventType::Unknown, call_id, name),
                "{body}"
            );
            assert_eq!(e.data, EventData::Opaque);
        }
        let a = parse(br#"{"event":"queue","call_id":"c"}"#);
        let b = parse(br#"{"event":"queue","call_id":"c" }"#);
        assert_ne!(a[0].dedupe_key, b[0].dedupe_key, "keyed on the body");
    }

    #[test]
    fn ids_and_numbers_sent_as_numbers_are_text() {
        let body = br#"{"call_id":12345,"completed":true,"from":14155550142,"to":"+14155550177"}"#;
        let events = parse(body);
        assert_eq!(events[0].call_id, "12345");
        assert_eq!(
            patch(&events[0]).from_number.as_deref(),
            Some("14155550142")
        );
    }

    #[test]
    fn bad_bodies_are_refused_with_the_right_class() {
        for body in [b"".as_slice(), b"call_id=c", b"[]", br#"{"call_id":"c","#] {
            assert_eq!(
                error(body).status(),
                400,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        for (body, field) in [
            (r#"{"call_id":"  ","completed":true}"#, "call_id"),
            (r#"{"corrected_transcript":[]}"#, "call_id"),
            (r#"{"call_id":"c","completed":"yes"}"#, "completed"),
            (
                r#"{"call_id":"c","completed":true,"inbound":"true"}"#,
                "inbound",
            ),
            (
                r#"{"call_id":"c","completed":true,"call_length":-1}"#,
                "call_length",
            ),
            (
                r#"{"call_id":"c","completed":true,"call_length":"long"}"#,
                "call_length",
            ),
            (
                r#"{"call_id":"c","completed":true,"call_length":true}"#,
                "call_length",
            ),
            (r#"{"call_id":"c","completed":true,"price":false}"#, "price"),
            (
                r#"{"call_id":"c","completed":true,"price":"cheap"}"#,
                "price",
            ),
            (r#"{"call_id":"c","end_at":"late"}"#, "end_at"),
            (r#"{"call_id":1.5,"completed":true}"#, "call_id"),
            (r#"{"call_id":"c","completed":true,"from":true}"#, "from"),
            (
                r#"{"call_id":"c","completed":true,"transcripts":{}}"#,
                "transcripts",
            ),
            (
                r#"{"call_id":"c","completed":true,"transcripts":[{"text":7}]}"#,
                "transcripts[0].text",
            ),
            (
                r#"{"call_id":"c","completed":true,"variables":[]}"#,
                "variables",
            ),
            (
                r#"{"call_id":"c","corrected_transcript":5}"#,
                "corrected_transcript",
            ),
        ] {
            let error = error(body.as_bytes());
            assert_eq!(error.status(), 422, "{body}");
            assert!(
                error.to_string().contains(&format!("`{field}`")),
                "{body}: {error}"
            );
        }
    }
}
