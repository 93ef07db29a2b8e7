//! The call record (the contract of docs/ARCHITECTURE.md) and the merge that folds canonical events into it.
//!
//! Merge is a join: every field is a register that keeps the value of the most authoritative event
//! that said something about it. Authority is a total order over events — lifecycle rank, then the
//! time the event describes, then its dedupe key — recorded per field in `merge_sources`. Because
//! each register is a max, and the other fields are sets, a min, a max or functions of these,
//! merging is idempotent, commutative and associative: the same events in any order, any number
//! of times, give the same record. Blank values are never merged, so they never erase anything.

use crate::event::{
    Agent, Analysis, CallPatch, CallStatus, CanonicalEvent, Cost, EventData, EventType, Turn,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CallRecord {
    pub provider: String,
    pub call_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<Agent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<CallStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transcript: Vec<Turn>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<Cost>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<Analysis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dynamic_variables: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lead: Option<Map<String, Value>>,
    #[serde(default)]
    pub missed: bool,
    /// Canonical event types seen, in lifecycle order (the order is a function of the set, so it
    /// does not depend on the order of delivery).
    #[serde(default)]
    pub events: Vec<EventType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_event_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_event_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sensitive_data_opt_out: Option<bool>,
    /// Under the redact policy: the number indexes' keys of the numbers as sent. Not part of the
    /// contract view.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_key: Option<String>,
    /// Merge bookkeeping: for each register field, the authority of the event that set it.
    /// Not part of the contract view.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub merge_sources: BTreeMap<String, String>,
}

/// The contract fields, in docs/ARCHITECTURE.md order; absent ones are shown as `null` in the JSON view.
pub const CONTRACT_FIELDS: [&str; 25] = [
    "provider",
    "call_id",
    "agent",
    "direction",
    "from_number",
    "to_number",
    "status",
    "outcome",
    "started_at",
    "ended_at",
    "duration_ms",
    "end_reason",
    "transcript",
    "recording_url",
    "cost",
    "analysis",
    "dynamic_variables",
    "metadata",
    "lead",
    "missed",
    "events",
    "first_event_at",
    "last_event_at",
    "sensitive_data_opt_out",
    "provider_status",
];

const SOURCE_TRANSCRIPT: &str = "transcript";
const SOURCE_DURATION: &str = "duration_ms";

impl CallRecord {
    pub fn new(provider: &str, call_id: &str) -> Self {
        Self {
            provider: provider.to_owned(),
            call_id: call_id.to_owned(),
            ..Self::default()
        }
    }

    /// A record built from scratch out of a set of events.
    pub fn from_events<'a>(events: impl IntoIterator<Item = &'a CanonicalEvent>) -> Option<Self> {
        let mut events = events.into_iter().peekable();
        let first = events.peek()?;
        let mut record = Self::new(first.provider, &first.call_id);
        for event in events {
            record.merge(event);
        }
        Some(record)
    }

    /// The JSON form of the contract: every contract field present (null when unknown), the
    /// merge bookkeeping left out.
    pub fn to_contract_json(&self) -> Value {
        let mut value = serde_json::to_value(self).unwrap_or(Value::Null);
        let Value::Object(map) = &mut value else {
            return value;
        };
        map.remove("merge_sources");
        map.remove("from_key");
        map.remove("to_key");
        for field in CONTRACT_FIELDS {
            map.entry(field).or_insert(Value::Null);
        }
        if !map.contains_key("transcript") || map["transcript"].is_null() {
            map.insert("transcript".into(), Value::Array(vec![]));
        }
        value
    }

    /// Folds one canonical event into the record. Events of another call are ignored.
    pub fn merge(&mut self, event: &CanonicalEvent) {
        if event.provider != self.provider || event.call_id != self.call_id {
            return;
        }
        if !self.events.contains(&event.event_type) {
            self.events.push(event.event_type);
            self.events.sort();
        }
        self.first_event_at = Some(
            self.first_event_at
                .map_or(event.received_at, |t| t.min(event.received_at)),
        );
        self.last_event_at = Some(
            self.last_event_at
                .map_or(event.received_at, |t| t.max(event.received_at)),
        );

        if let EventData::Call(patch) = &event.data {
            let source = Authority::of(event).encode();
            self.apply(patch, &source);
        }
        self.derive();
    }

    fn apply(&mut self, patch: &CallPatch, source: &str) {
        let CallPatch {
            agent,
            direction,
            from_number,
            to_number,
            status,
            provider_status,
            outcome,
            started_at,
            ended_at,
            duration_ms,
            end_reason,
            transcript,
            live_turn,
            recording_url,
            cost,
            analysis,
            dynamic_variables,
            metadata,
            lead,
            sensitive_data_opt_out,
            from_key,
            to_key,
        } = patch;
        let sources = &mut self.merge_sources;
        let agent = agent
            .clone()
            .filter(|a| a.id.is_some() || a.version.is_some());
        register(sources, "agent", &mut self.agent, agent, source);
        register(
            sources,
            "direction",
            &mut self.direction,
            text(direction),
            source,
        );
        register(
            sources,
            "from_number",
            &mut self.from_number,
            text(from_number),
            source,
        );
        register(
            sources,
            "to_number",
            &mut self.to_number,
            text(to_number),
            source,
        );
        register(
            sources,
            "provider_status",
            &mut self.provider_status,
            text(provider_status),
            source,
        );
        register(sources, "outcome", &mut self.outcome, text(outcome), source);
        register(
            sources,
            "started_at",
            &mut self.started_at,
            *started_at,
            source,
        );
        register(sources, "ended_at", &mut self.ended_at, *ended_at, source);
        register(
            sources,
            "end_reason",
            &mut self.end_reason,
            text(end_reason),
            source,
        );
        register(
            sources,
            "recording_url",
            &mut self.recording_url,
            text(recording_url),
            source,
        );
        register(sources, "cost", &mut self.cost, cost.clone(), source);
        let analysis = analysis.clone().filter(|a| !a.is_empty());
        register(sources, "analysis", &mut self.analysis, analysis, source);
        register(
            sources,
            "dynamic_variables",
            &mut self.dynamic_variables,
            object(dynamic_variables),
            source,
        );
        register(
            sources,
            "metadata",
            &mut self.metadata,
            object(metadata),
            source,
        );
        register(sources, "lead", &mut self.lead, object(lead), source);
        register(
            sources,
            "from_key",
            &mut self.from_key,
            text(from_key),
            source,
        );
        register(sources, "to_key", &mut self.to_key, text(to_key), source);
        register(
            sources,
            "sensitive_data_opt_out",
            &mut self.sensitive_data_opt_out,
            *sensitive_data_opt_out,
            source,
        );

        // A provider-stated duration is a register; a computed one is derived (see `derive`).
        let mut provided = self
            .merge_sources
            .contains_key(SOURCE_DURATION)
            .then_some(self.duration_ms)
            .flatten();
        register(
            &mut self.merge_sources,
            SOURCE_DURATION,
            &mut provided,
            *duration_ms,
            source,
        );
        if self.merge_sources.contains_key(SOURCE_DURATION) {
            self.duration_ms = provided;
        }

        if let Some(status) = status {
            self.status = self.status.max(Some(*status));
        }

        // A full transcript replaces the live turns for good; live turns only accumulate while
        // no full transcript has been seen.
        let full = transcript
            .as_ref()
            .filter(|turns| turns.iter().any(|t| !t.content.trim().is_empty()));
        let had_full = self.merge_sources.contains_key(SOURCE_TRANSCRIPT);
        let mut current = had_full.then(|| std::mem::take(&mut self.transcript));
        register(
            &mut self.merge_sources,
            SOURCE_TRANSCRIPT,
            &mut current,
            full.cloned(),
            source,
        );
        match current {
            Some(turns) => self.transcript = turns,
            None => {
                if let Some(turn) = live_turn.as_ref().filter(|t| !t.content.trim().is_empty()) {
                    if let Err(at) = self.transcript.binary_search(turn) {
                        self.transcript.insert(at, turn.clone());
                    }
                }
            }
        }
    }

    /// Fields that are functions of the registers.
    fn derive(&mut self) {
        if !self.merge_sources.contains_key(SOURCE_DURATION) {
            self.duration_ms = match (self.started_at, self.ended_at) {
                (Some(start), Some(end)) if end >= start => Some(end - start),
                _ => None,
            };
        }
        let ended = self.status == Some(CallStatus::Ended);
        let inbound = self.direction.as_deref() == Some("inbound");
        let unanswered = matches!(
            self.outcome.as_deref(),
            Some("no_answer" | "busy" | "canceled" | "missed")
        ) || self.duration_ms == Some(0);
        self.missed = ended && inbound && unanswered;
    }
}

/// Sets `slot` to `value` when `value` is present and this event is more authoritative than the
/// one that set the slot last. Equal authority means the same event: nothing changes.
fn register<T>(
    sources: &mut BTreeMap<String, String>,
    field: &str,
    slot: &mut Option<T>,
    value: Option<T>,
    source: &str,
) {
    let Some(value) = value else { return };
    let newer = match sources.get(field) {
        Some(current) => source > current.as_str(),
        None => true,
    };
    if newer {
        *slot = Some(value);
        sources.insert(field.to_owned(), source.to_owned());
    }
}

fn text(value: &Option<String>) -> Option<String> {
    value.as_ref().filter(|s| !s.trim().is_empty()).cloned()
}

fn object(value: &Option<Map<String, Value>>) -> Option<Map<String, Value>> {
    value.as_ref().filter(|m| !m.is_empty()).cloned()
}

/// The total order of events used by the registers, encoded so that string order is the order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Authority {
    rank: u8,
    at: i64,
    key: String,
}

impl Authority {
    fn of(event: &CanonicalEvent) -> Self {
        // A live turn's time orders the turn (it is in the turn), not the call-level values its
        // event restates (the agent, the status): among `mid_call` events those are equally
        // authoritative, ordered by key alone. Otherwise every turn would take over the
        // bookkeeping of the values it repeats, and each one would rewrite the stored header.
        let at = match event.event_type {
            EventType::MidCall => 0,
            _ => event.occurred_at.unwrap_or(0).clamp(0, 9_999_999_999_999),
        };
        Self {
            rank: event.event_type.rank(),
            at,
            key: event.dedupe_key.clone(),
        }
    }

    fn encode(&self) -> String {
        format!("{}|{:013}|{}", self.rank, self.at, self.key)
    }
}
