//! Canonical events: what every provider payload is turned into before it is stored or merged.
//!
//! One provider delivery yields one or more canonical events (a Vox v1 `call_ended` carries the
//! analysis too, so it yields `call_ended` + `call_analyzed`). Each event names its provider, the
//! call it belongs to, a dedupe key that is stable across redeliveries of the same body, the time
//! it describes, and the normalized fields it contributes to the call record.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::fmt;

/// The canonical event types. Closed on purpose: it is callhook's own vocabulary (and the stream
/// filter of each function); a provider's unknown event becomes `Unknown` and keeps its name in
/// [`CanonicalEvent::provider_event`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    CallStarted,
    MidCall,
    CallEnded,
    CallAnalyzed,
    MessageReceived,
    Unknown,
}

impl EventType {
    pub const ALL: [EventType; 6] = [
        Self::CallStarted,
        Self::MidCall,
        Self::CallEnded,
        Self::CallAnalyzed,
        Self::MessageReceived,
        Self::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::CallStarted => "call_started",
            Self::MidCall => "mid_call",
            Self::CallEnded => "call_ended",
            Self::CallAnalyzed => "call_analyzed",
            Self::MessageReceived => "message_received",
            Self::Unknown => "unknown",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// How authoritative an event's values are for the call record: later lifecycle stages carry
    /// the provider's final view of the call (Vox's call_started and call_ended even disagree on
    /// `start_at` in its own examples; the final one is right).
    pub fn rank(self) -> u8 {
        match self {
            Self::Unknown => 0,
            Self::CallStarted | Self::MessageReceived => 1,
            Self::MidCall => 2,
            Self::CallEnded => 3,
            Self::CallAnalyzed => 4,
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// callhook's call lifecycle. Ordered: the record's status only ever moves forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallStatus {
    Queued,
    Initiated,
    Ringing,
    InProgress,
    Ended,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Agent {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// One turn of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Turn {
    /// When the turn was spoken (unix ms), known for turns collected from `mid_call` events.
    /// First field so that live turns sort by time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<i64>,
    /// `agent`, `user`, `tool`, or the provider's own role verbatim (the three sides are
    /// static: a transcript of thousands of turns allocates none for them).
    pub role: Cow<'static, str>,
    #[serde(default)]
    pub content: String,
}

impl Turn {
    pub fn new(role: &str, content: impl Into<String>) -> Self {
        Self {
            at: None,
            role: normalize_role(role),
            content: content.into(),
        }
    }
}

/// Providers name the two sides differently (`bot`/`human`, `assistant`, `agent`/`user`).
pub fn normalize_role(role: &str) -> Cow<'static, str> {
    const SIDES: [(&str, &[&str]); 3] = [
        ("agent", &["agent", "bot", "assistant", "ai"]),
        ("user", &["user", "human", "customer", "caller"]),
        (
            "tool",
            &[
                "tool",
                "function",
                "tool_call_invocation",
                "tool_call_result",
                "tool_call",
            ],
        ),
    ];
    let role = role.trim();
    SIDES
        .iter()
        .find(|(_, names)| names.iter().any(|name| name.eq_ignore_ascii_case(role)))
        .map_or_else(
            || Cow::Owned(role.to_owned()),
            |&(side, _)| Cow::Borrowed(side),
        )
}

/// A provider's turn role, normalized as it is read ([`normalize_role`]), so that the usual
/// sides are never allocated; for `#[serde(deserialize_with)]` on an `Option`.
pub(crate) fn de_role<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Cow<'static, str>>, D::Error> {
    struct RoleVisitor;
    impl<'v> serde::de::Visitor<'v> for RoleVisitor {
        type Value = Option<Cow<'static, str>>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a string")
        }
        fn visit_str<E: serde::de::Error>(self, role: &str) -> Result<Self::Value, E> {
            Ok(Some(normalize_role(role)))
        }
        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: serde::Deserializer<'v>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_str(self)
        }
    }
    deserializer.deserialize_option(RoleVisitor)
}

/// A cost as the provider states it. The amount is kept as the provider's JSON number, never
/// converted to a float: callhook does no arithmetic on money.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cost {
    pub amount: serde_json::Number,
    pub unit: String,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Analysis {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sentiment: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data: Vec<AnalysisItem>,
}

impl Analysis {
    pub fn is_empty(&self) -> bool {
        self.summary.as_deref().is_none_or(str::is_empty)
            && self.sentiment.as_deref().is_none_or(str::is_empty)
            && self.data.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalysisItem {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub value: Value,
}

/// The fields one event contributes to its call record. `None` (or an empty value) means "this
/// event says nothing about it", never "erase it".
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CallPatch {
    pub agent: Option<Agent>,
    pub direction: Option<String>,
    pub from_number: Option<String>,
    pub to_number: Option<String>,
    pub status: Option<CallStatus>,
    /// The provider's own status word, verbatim.
    pub provider_status: Option<String>,
    pub outcome: Option<String>,
    pub started_at: Option<i64>,
    pub ended_at: Option<i64>,
    pub duration_ms: Option<i64>,
    pub end_reason: Option<String>,
    /// A full transcript: authoritative over live turns.
    pub transcript: Option<Vec<Turn>>,
    /// One turn spoken during the call (`mid_call`), kept until a full transcript arrives.
    pub live_turn: Option<Turn>,
    pub recording_url: Option<String>,
    pub cost: Option<Cost>,
    pub analysis: Option<Analysis>,
    pub dynamic_variables: Option<Map<String, Value>>,
    pub metadata: Option<Map<String, Value>>,
    pub lead: Option<Map<String, Value>>,
    pub sensitive_data_opt_out: Option<bool>,
    /// Under the redact policy: the number indexes' keys of the numbers as sent, before they
    /// were masked (set at ingest, kept on the stored event; see `privacy::number_index_key`).
    pub from_key: Option<String>,
    pub to_key: Option<String>,
}

/// A text message (ClawOps `message.received`). Its fields beyond the documented ones are kept as
/// sent in `extra`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Message {
    pub provider: String,
    pub message_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum EventData {
    Call(Box<CallPatch>),
    Message(Box<Message>),
    /// An event callhook does not interpret (unknown type, or a mid-call flow transition).
    Opaque,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CanonicalEvent {
    pub provider: &'static str,
    pub event_type: EventType,
    /// The provider's own event name (`call.answered`, `call_ended`, …), verbatim.
    pub provider_event: String,
    /// The call this event belongs to; for a message, the message id.
    pub call_id: String,
    /// Deterministic: the same body (or the same Standard Webhooks delivery id) always gives the
    /// same key, so a redelivery is recognised by the conditional write that stores it.
    pub dedupe_key: String,
    /// The time the event describes (unix ms), when the payload says.
    pub occurred_at: Option<i64>,
    /// When callhook received it (unix ms).
    pub received_at: i64,
    pub data: EventData,
}

impl CanonicalEvent {
    /// The key of the record this event merges into: `call#<provider>#<call id>`, or
    /// `msg#<provider>#<message id>` for messages.
    pub fn record_key(&self) -> String {
        record_key(self.provider, self.event_type, &self.call_id)
    }
}

/// The partition key of a record (and of its events). The kind comes first and provider names
/// never contain `#`, so no id — whatever `#`s or prefixes it holds — can make two records' keys
/// equal: the key splits back into kind, provider and id unambiguously.
pub fn record_key(provider: &str, event_type: EventType, id: &str) -> String {
    if event_type == EventType::MessageReceived {
        format!("msg#{provider}#{id}")
    } else {
        format!("call#{provider}#{id}")
    }
}

/// `(provider, call id)` of a call's record key; `None` for a message's or another key.
pub fn parse_call_key(key: &str) -> Option<(&str, &str)> {
    key.strip_prefix("call#")?.split_once('#')
}

/// What the caller knows about a delivery beyond its body.
#[derive(Debug, Clone, Default)]
pub struct DeliveryContext {
    pub received_at: i64,
    /// A sender-assigned delivery id (Standard Webhooks `webhook-id`), stable across retries.
    pub delivery_id: Option<String>,
}

/// The dedupe key of one canonical event of a delivery. 128 bits of SHA-256 over the provider,
/// the canonical type, the call id and either the sender's delivery id or the raw body.
pub fn dedupe_key(
    provider: &str,
    event_type: EventType,
    call_id: &str,
    ctx: &DeliveryContext,
    raw_body: &[u8],
) -> String {
    let mut hasher = Sha256::new();
    for part in [
        provider.as_bytes(),
        event_type.as_str().as_bytes(),
        call_id.as_bytes(),
    ] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    match &ctx.delivery_id {
        Some(id) => {
            hasher.update(b"id");
            hasher.update(id.as_bytes());
        }
        None => {
            hasher.update(b"body");
            hasher.update(raw_body);
        }
    }
    hex::encode(&hasher.finalize()[..16])
}

/// True for values that carry nothing: merges never let them erase a stored value.
pub fn is_blank(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::Bool(_) | Value::Number(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_type_names_round_trip() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
            assert_eq!(
                serde_json::to_value(t).unwrap(),
                Value::String(t.as_str().into())
            );
        }
        assert_eq!(EventType::parse("call.completed"), None);
    }

    #[test]
    fn dedupe_key_is_stable_and_discriminating() {
        let ctx = DeliveryContext {
            received_at: 1,
            delivery_id: None,
        };
        let later = DeliveryContext {
            received_at: 99,
            delivery_id: None,
        };
        let a = dedupe_key("vox", EventType::CallEnded, "c1", &ctx, b"{}");
        assert_eq!(
            a,
            dedupe_key("vox", EventType::CallEnded, "c1", &later, b"{}")
        );
        assert_eq!(a.len(), 32);
        assert_ne!(
            a,
            dedupe_key("vox", EventType::CallAnalyzed, "c1", &ctx, b"{}")
        );
        assert_ne!(
            a,
            dedupe_key("vox", EventType::CallEnded, "c2", &ctx, b"{}")
        );
        assert_ne!(
            a,
            dedupe_key("clawops", EventType::CallEnded, "c1", &ctx, b"{}")
        );
        assert_ne!(
            a,
            dedupe_key("vox", EventType::CallEnded, "c1", &ctx, b"{ }")
        );
        // Length-prefixed parts: moving a byte between fields changes the key.
        assert_ne!(
            dedupe_key("vox", EventType::CallEnded, "c1x", &ctx, b""),
            dedupe_key("vox", EventType::CallEnded, "c1", &ctx, b"x"),
        );
        let with_id = DeliveryContext {
            received_at: 1,
            delivery_id: Some("msg_1".into()),
        };
        assert_eq!(
            dedupe_key("vox", EventType::CallEnded, "c1", &with_id, b"{}"),
            dedupe_key("vox", EventType::CallEnded, "c1", &with_id, b"{\"re\":1}"),
        );
    }

    #[test]
    fn record_keys_cannot_collide_whatever_the_id_holds() {
        let call = record_key("vox", EventType::CallEnded, "msg#vox#1");
        let message = record_key("vox", EventType::MessageReceived, "1");
        assert_ne!(call, message);
        assert_eq!(parse_call_key(&call), Some(("vox", "msg#vox#1")));
        assert_eq!(parse_call_key(&message), None);
        assert_eq!(
            parse_call_key(&record_key("clawops", EventType::CallStarted, "a#b")),
            Some(("clawops", "a#b"))
        );
    }

    #[test]
    fn roles_are_normalized_and_unknown_roles_kept() {
        assert_eq!(normalize_role("bot"), "agent");
        assert_eq!(normalize_role("Human"), "user");
        assert_eq!(normalize_role("tool_call_invocation"), "tool");
        assert_eq!(normalize_role("supervisor"), "supervisor");
    }

    #[test]
    fn statuses_are_ordered_along_the_lifecycle() {
        assert!(CallStatus::Queued < CallStatus::Initiated);
        assert!(CallStatus::Ringing < CallStatus::InProgress);
        assert!(CallStatus::InProgress < CallStatus::Ended);
    }
}
