//! The stack's EventBridge bus, both ways:
//!
//! - the pipe, the one reader of the events table's stream, puts an [`EventRef`] on it for each
//!   new event (its keys and a few small attributes, never the body: an event on a bus is at most
//!   256 KB), and one rule per canonical type invokes that type's function;
//! - after a merge, the functions put call events for users on it (`call.ended`,
//!   `call.analyzed`, `call.missed`, source `callhook`): the record without its transcript.
//!
//! Both kinds are put at least once. Each carries a stable `id` in its detail (EventBridge's own
//! envelope id differs on every put), which is what a consumer dedupes on.

use crate::error::{Error, Result, StorageKind};
use crate::event::EventType;
use crate::record::CallRecord;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::sync::{Arc, Mutex};

/// The `source` of the events the pipe puts on the bus (what the functions' rules match).
pub const EVENTS_SOURCE: &str = "callhook.events";
/// The `source` of the call events callhook puts on the bus for users.
pub const CALLS_SOURCE: &str = "callhook";
/// EventBridge's limit on one entry of `PutEvents`, and on the whole request (source,
/// detail-type and detail counted).
pub const MAX_ENTRY_BYTES: usize = 256 * 1024;
/// What a call event's detail may take: the limit, less room for the envelope's strings.
const DETAIL_BUDGET: usize = MAX_ENTRY_BYTES - 4 * 1024;
/// `PutEvents` takes at most this many entries per request.
const PUT_BATCH: usize = 10;

/// The detail of an event the pipe puts on the bus: where the stored event is, and what a rule
/// or a consumer may want to match on without reading it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRef {
    /// The event's dedupe key: every delivery of the same stored event has the same one.
    pub id: String,
    pub pk: String,
    pub sk: String,
    /// The canonical type (also the bus event's `detail-type`).
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub provider: String,
    #[serde(default)]
    pub call_id: String,
    /// Unix ms, as the stream carries it (a DynamoDB number is a string there).
    #[serde(default)]
    pub received_at: String,
}

impl EventRef {
    pub fn event_type(&self) -> Option<EventType> {
        EventType::parse(&self.kind)
    }
}

/// What users are told about a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CallEventKind {
    Ended,
    Analyzed,
    Missed,
}

impl CallEventKind {
    pub const ALL: [Self; 3] = [Self::Ended, Self::Analyzed, Self::Missed];

    /// The bus event's `detail-type`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ended => "call.ended",
            Self::Analyzed => "call.analyzed",
            Self::Missed => "call.missed",
        }
    }

    fn holds(self, marks: Marks) -> bool {
        match self {
            Self::Ended => marks.ended,
            Self::Analyzed => marks.analyzed,
            Self::Missed => marks.missed,
        }
    }

    /// The event types whose every merge puts this call event again when it holds (so a put
    /// lost after its merge is made by the delivery that is retried).
    fn confirmed_by(self, event_type: EventType) -> bool {
        match self {
            Self::Ended | Self::Missed => {
                matches!(event_type, EventType::CallEnded | EventType::CallAnalyzed)
            }
            Self::Analyzed => event_type == EventType::CallAnalyzed,
        }
    }
}

/// The states of a call users act on, before or after a merge.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Marks {
    pub ended: bool,
    pub analyzed: bool,
    pub missed: bool,
}

impl Marks {
    /// The marks of a record; `analysis_elsewhere` when its analysis is stored outside the part
    /// of the record at hand (a large value in its own items).
    pub fn of(record: &CallRecord, analysis_elsewhere: bool) -> Self {
        Self {
            ended: record.status == Some(crate::event::CallStatus::Ended)
                || record.ended_at.is_some(),
            analyzed: record.analysis.is_some() || analysis_elsewhere,
            missed: record.missed,
        }
    }
}

/// The call events due after merging an event of `event_type` that took a record from `was` to
/// `now`: each one that just became true, and each one that holds and that this type of event
/// confirms. The second rule makes the puts at-least-once: if a function stops between its merge
/// and its put, the retried delivery finds nothing to change but puts again.
pub fn due(event_type: EventType, was: Marks, now: Marks) -> Vec<CallEventKind> {
    CallEventKind::ALL
        .into_iter()
        .filter(|k| k.holds(now) && (!k.holds(was) || k.confirmed_by(event_type)))
        .collect()
}

/// One entry for the bus.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BusEvent {
    pub source: String,
    #[serde(rename = "detail-type")]
    pub detail_type: String,
    pub detail: Value,
}

/// The call event of `kind` for `record` (whole, as read after the merge): the record without its
/// transcript, its key, and a stable `id` per call and kind. A detail over the bus's limit loses
/// its largest free-form maps, then everything but the summary; `trimmed` names what went, and
/// the record, read by its `key`, has it all.
pub fn call_event(kind: CallEventKind, record: &CallRecord) -> BusEvent {
    let key = crate::event::record_key(&record.provider, EventType::CallStarted, &record.call_id);
    let mut detail = match record.to_contract_json() {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    detail.remove("transcript");
    detail.insert("id".into(), json!(format!("{key}#{}", kind.as_str())));
    detail.insert("key".into(), json!(key));
    let size = |d: &Map<String, Value>| serde_json::to_vec(d).map_or(usize::MAX, |b| b.len());
    let mut trimmed = Vec::new();
    for field in ["metadata", "dynamic_variables", "lead", "analysis"] {
        if size(&detail) <= DETAIL_BUDGET {
            break;
        }
        if detail.get(field).is_some_and(|v| !v.is_null()) {
            detail.insert(field.into(), Value::Null);
            trimmed.push(Value::from(field));
        }
    }
    if size(&detail) > DETAIL_BUDGET {
        // Long free text elsewhere (an end reason, a recording URL): keep the summary only.
        const SUMMARY: [&str; 14] = [
            "id",
            "key",
            "provider",
            "call_id",
            "direction",
            "status",
            "outcome",
            "missed",
            "started_at",
            "ended_at",
            "duration_ms",
            "first_event_at",
            "last_event_at",
            "events",
        ];
        detail.retain(|k, v| SUMMARY.contains(&k.as_str()) && v.to_string().len() <= 1024);
        trimmed = vec![Value::from("*")];
    }
    if !trimmed.is_empty() {
        detail.insert("trimmed".into(), Value::Array(trimmed));
    }
    BusEvent {
        source: CALLS_SOURCE.to_owned(),
        detail_type: kind.as_str().to_owned(),
        detail: Value::Object(detail),
    }
}

/// The EventBridge client (re-exported: the CLI puts call events when it replays).
pub use aws_sdk_eventbridge::Client as EventBridgeClient;

/// Where bus events go: the stack's EventBridge bus, or, on the local stack, a list the local
/// event router takes them from.
#[derive(Debug, Clone)]
pub enum Bus {
    EventBridge {
        client: aws_sdk_eventbridge::Client,
        name: String,
    },
    Memory(Arc<Mutex<Vec<BusEvent>>>),
    /// No bus (the CLI without one configured): nothing is put.
    Off,
}

impl Bus {
    /// The bus named by `CALLHOOK_EVENT_BUS` (the functions' environment), else none.
    pub fn from_env(sdk: &aws_config::SdkConfig) -> Self {
        match std::env::var("CALLHOOK_EVENT_BUS") {
            Ok(name) if !name.trim().is_empty() => {
                let mut config = aws_sdk_eventbridge::config::Builder::from(sdk);
                if let Some(endpoint) = crate::handlers::service_endpoint("EVENTBRIDGE") {
                    config = config.endpoint_url(endpoint);
                }
                Self::EventBridge {
                    client: aws_sdk_eventbridge::Client::from_conf(config.build()),
                    name: name.trim().to_owned(),
                }
            }
            _ => Self::Off,
        }
    }

    pub fn memory() -> Self {
        Self::Memory(Arc::default())
    }

    /// What was put on an in-memory bus since the last take.
    pub fn take(&self) -> Vec<BusEvent> {
        match self {
            Self::Memory(events) => events
                .lock()
                .map(|mut e| std::mem::take(&mut *e))
                .unwrap_or_default(),
            _ => Vec::new(),
        }
    }

    /// Puts every event, or fails (then some may have been put: a retry puts them again, and
    /// their stable ids let consumers drop the duplicates).
    pub async fn put(&self, events: &[BusEvent]) -> Result<()> {
        match self {
            Self::Off => Ok(()),
            Self::Memory(list) => {
                list.lock()
                    .map_err(|_| Error::Internal("the local bus lock is poisoned".into()))?
                    .extend(events.iter().cloned());
                Ok(())
            }
            Self::EventBridge { client, name } => {
                for batch in batches(events) {
                    put_batch(client, name, batch).await?;
                }
                Ok(())
            }
        }
    }
}

/// The size EventBridge counts for an entry: its source, detail-type and detail.
fn entry_size(event: &BusEvent) -> usize {
    event.source.len() + event.detail_type.len() + event.detail.to_string().len()
}

/// `events` in runs for one `PutEvents` each: at most 10 entries, and at most 256 KB in all
/// (the limit is on the whole request, not only on each entry: three call events of a large
/// record would not fit one request).
fn batches(events: &[BusEvent]) -> Vec<&[BusEvent]> {
    let mut out = Vec::new();
    let (mut start, mut size) = (0, 0);
    for (i, event) in events.iter().enumerate() {
        let entry = entry_size(event);
        if i > start && (i - start == PUT_BATCH || size + entry > MAX_ENTRY_BYTES) {
            out.push(&events[start..i]);
            (start, size) = (i, 0);
        }
        size += entry;
    }
    if start < events.len() {
        out.push(&events[start..]);
    }
    out
}

async fn put_batch(
    client: &aws_sdk_eventbridge::Client,
    bus: &str,
    batch: &[BusEvent],
) -> Result<()> {
    use aws_sdk_eventbridge::types::PutEventsRequestEntry;
    let entries = batch
        .iter()
        .map(|e| {
            PutEventsRequestEntry::builder()
                .event_bus_name(bus)
                .source(&e.source)
                .detail_type(&e.detail_type)
                .detail(e.detail.to_string())
                .build()
        })
        .collect();
    let out = client
        .put_events()
        .set_entries(Some(entries))
        .send()
        .await
        .map_err(|e| {
            use aws_sdk_eventbridge::error::ProvideErrorMetadata;
            let code = e.code().unwrap_or("unknown").to_owned();
            let kind = if code.contains("Throttl") {
                StorageKind::Throttled
            } else {
                StorageKind::Transient
            };
            Error::storage(kind, format!("EventBridge PutEvents failed ({code})"))
        })?;
    if out.failed_entry_count > 0 {
        let codes: Vec<String> = out
            .entries
            .unwrap_or_default()
            .into_iter()
            .filter_map(|e| e.error_code)
            .collect();
        return Err(Error::storage(
            StorageKind::Transient,
            format!(
                "EventBridge refused {} of {} entries ({})",
                out.failed_entry_count,
                batch.len(),
                codes.join(", ")
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marks(ended: bool, analyzed: bool, missed: bool) -> Marks {
        Marks {
            ended,
            analyzed,
            missed,
        }
    }

    #[test]
    fn a_call_event_is_due_when_it_becomes_true_or_is_confirmed_again() {
        let none = Marks::default();
        assert_eq!(
            due(EventType::CallEnded, none, marks(true, false, false)),
            [CallEventKind::Ended]
        );
        // A redelivered call_ended changes nothing but puts call.ended again.
        let ended = marks(true, false, false);
        assert_eq!(
            due(EventType::CallEnded, ended, ended),
            [CallEventKind::Ended]
        );
        // A late turn after the end puts nothing.
        assert!(due(EventType::MidCall, ended, ended).is_empty());
        // The analysis confirms the end and announces itself.
        let analyzed = marks(true, true, false);
        assert_eq!(
            due(EventType::CallAnalyzed, ended, analyzed),
            [CallEventKind::Ended, CallEventKind::Analyzed]
        );
        // A missed call.
        assert_eq!(
            due(EventType::CallEnded, none, marks(true, false, true)),
            [CallEventKind::Ended, CallEventKind::Missed]
        );
        // A call_started after everything puts nothing new.
        assert!(due(EventType::CallStarted, analyzed, analyzed).is_empty());
    }

    #[test]
    fn puts_are_split_to_fit_one_request() {
        let small = call_event(CallEventKind::Ended, &CallRecord::new("vox", "c1"));
        let twelve = vec![small.clone(); 12];
        let sizes: Vec<usize> = batches(&twelve).iter().map(|b| b.len()).collect();
        assert_eq!(sizes, [10, 2]);
        let mut record = CallRecord::new("vox", "c2");
        record.end_reason = Some("y".repeat(150_000));
        let large = call_event(CallEventKind::Ended, &record);
        let three = vec![large.clone(), large.clone(), small];
        let runs = batches(&three);
        assert_eq!(runs.iter().map(|b| b.len()).collect::<Vec<_>>(), [1, 2]);
        for run in runs {
            assert!(run.iter().map(entry_size).sum::<usize>() <= MAX_ENTRY_BYTES);
        }
        assert!(batches(&[]).is_empty());
    }

    #[test]
    fn a_call_event_detail_fits_the_bus_whatever_the_record_holds() {
        let mut record = CallRecord::new("vox", "c1");
        record.ended_at = Some(1);
        record.transcript = vec![crate::event::Turn {
            role: "agent".into(),
            content: "hello".into(),
            at: None,
        }];
        let event = call_event(CallEventKind::Ended, &record);
        assert_eq!(event.detail["id"], "call#vox#c1#call.ended");
        assert_eq!(event.detail["key"], "call#vox#c1");
        assert!(event.detail.get("transcript").is_none());
        assert!(event.detail.get("trimmed").is_none());

        let big: Map<String, Value> = (0..400)
            .map(|i| (format!("k{i}"), Value::from("x".repeat(1000))))
            .collect();
        record.metadata = Some(big);
        let event = call_event(CallEventKind::Ended, &record);
        assert!(event.detail.to_string().len() <= DETAIL_BUDGET);
        assert_eq!(event.detail["trimmed"], json!(["metadata"]));
        assert!(event.detail["metadata"].is_null());

        record.end_reason = Some("y".repeat(300_000));
        let event = call_event(CallEventKind::Ended, &record);
        assert!(event.detail.to_string().len() <= DETAIL_BUDGET);
        assert_eq!(event.detail["trimmed"], json!(["*"]));
        assert_eq!(event.detail["id"], "call#vox#c1#call.ended");
    }
}
