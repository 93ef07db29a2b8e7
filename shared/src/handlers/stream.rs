//! The stream functions (`call-started`, `mid-call`, `call-ended`, `call-analyzed`,
//! `message-received`): each receives the events table's stream records of its canonical type
//! (the event source mapping's filter), rebuilds the event from the stored raw body with the same
//! parser ingest used, and merges it into the calls table. Failed records are reported one by one
//! (`ReportBatchItemFailures`); the mapping retries them, bisecting, then sends them to the queue.

use crate::config::{Config, OptOutPolicy};
use crate::error::{Error, Result};
use crate::event::{CanonicalEvent, DeliveryContext, EventData, EventType};
use crate::privacy;
use crate::provider;
use crate::record::CallRecord;
use crate::store::{EventItem, Store};
use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use std::time::Instant;

/// Processes one batch; every record either commits or is listed as a failure.
pub async fn handle(
    config: &Config,
    store: &Store,
    expected: EventType,
    event: Event,
) -> DynamoDbEventResponse {
    let mut response = DynamoDbEventResponse::default();
    for record in event.records {
        let sequence = record.change.sequence_number.clone();
        let started = Instant::now();
        let result = process(config, store, expected, record).await;
        let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
        match result {
            Ok(Some(event)) => tracing::info!(
                provider = event.provider,
                call_id = %event.call_id,
                r#type = event.event_type.as_str(),
                outcome = "merged",
                latency_ms,
                "event"
            ),
            Ok(None) => tracing::info!(
                r#type = expected.as_str(),
                outcome = "skipped",
                latency_ms,
                "event"
            ),
            Err(error) => {
                tracing::error!(
                    r#type = expected.as_str(),
                    outcome = "failed",
                    retryable = error.is_retryable(),
                    error = %error,
                    latency_ms,
                    "event"
                );
                let mut failure = DynamoDbBatchItemFailure::default();
                failure.item_identifier = sequence;
                response.batch_item_failures.push(failure);
            }
        }
    }
    response
}

/// One stream record. `Ok(None)` when it is not an event of this function's type (the filter
/// should have kept it away; such a record is not a failure).
async fn process(
    config: &Config,
    store: &Store,
    expected: EventType,
    record: EventRecord,
) -> Result<Option<CanonicalEvent>> {
    let item: EventItem = serde_dynamo::from_item(record.change.new_image)
        .map_err(|e| Error::Unusable(format!("The stream record is not an event item: {e}.")))?;
    if item.event_type() != Some(expected) {
        return Ok(None);
    }
    let event = rebuild(store, &item).await?;
    apply(config.opt_out_policy, store, &event).await?;
    Ok(Some(event))
}

/// Merges one event into the calls table (or stores its message).
pub async fn apply(policy: OptOutPolicy, store: &Store, event: &CanonicalEvent) -> Result<()> {
    match &event.data {
        EventData::Message(message) => store.put_message(message).await.map(drop),
        EventData::Call(_) | EventData::Opaque => {
            let redact = policy == OptOutPolicy::Redact;
            store
                .merge_call(
                    event,
                    redact.then_some(privacy::redact_opted_out as fn(&mut _)),
                )
                .await
                .map(drop)
        }
    }
}

/// The canonical event a stored item holds, parsed again from its raw body.
pub async fn rebuild(store: &Store, item: &EventItem) -> Result<CanonicalEvent> {
    let body = store.load_body(item).await?;
    rebuild_from_body(item, &body)
}

pub fn rebuild_from_body(item: &EventItem, body: &[u8]) -> Result<CanonicalEvent> {
    let provider = provider::lookup(&item.provider).ok_or_else(|| {
        Error::Unusable(format!(
            "The stored event names provider `{}`, which this build does not know.",
            item.provider
        ))
    })?;
    let ctx = DeliveryContext {
        received_at: item.received_at,
        delivery_id: None,
    };
    let expected = item.event_type();
    let mut event = provider
        .parse(body, &ctx)?
        .into_iter()
        .find(|e| Some(e.event_type) == expected)
        .ok_or_else(|| {
            Error::Unusable(format!(
                "The stored body no longer yields a `{}` event.",
                item.kind
            ))
        })?;
    // The key it was stored under (a Standard Webhooks delivery id, if any, is not in the body).
    event.dedupe_key.clone_from(&item.dedupe_key);
    Ok(event)
}

/// A call record rebuilt from its stored events.
#[derive(Debug)]
pub struct Rebuilt {
    /// `None` when none of the call's events could be read.
    pub record: Option<CallRecord>,
    /// Events folded into the record.
    pub events: usize,
    /// Events today's parser rejects: their sort key and why.
    pub unreadable: Vec<(String, Error)>,
}

/// Rebuilds a call record (`<provider>#<call id>`) from its stored raw events with today's
/// parsers and merge, as if each were delivered again: the record the stream functions would
/// build. `callhook replay` writes it after a parser fix.
pub async fn rebuild_call(
    policy: OptOutPolicy,
    store: &Store,
    record_key: &str,
) -> Result<Rebuilt> {
    let mut events = Vec::new();
    let mut unreadable = Vec::new();
    for item in store.events_of(record_key).await? {
        if item
            .event_type()
            .is_none_or(|t| t == EventType::MessageReceived)
        {
            continue;
        }
        match rebuild(store, &item).await {
            Ok(event) if event.record_key() == record_key => events.push(event),
            Ok(event) => unreadable.push((
                item.sk,
                Error::Unusable(format!(
                    "The stored body now names another call ({}).",
                    event.record_key()
                )),
            )),
            // A storage failure is not the event's fault: the whole rebuild fails.
            Err(error @ Error::Storage(_)) => return Err(error),
            Err(error) => unreadable.push((item.sk, error)),
        }
    }
    let mut record = CallRecord::from_events(&events);
    if let (Some(record), OptOutPolicy::Redact) = (&mut record, policy) {
        privacy::redact_opted_out(record);
    }
    Ok(Rebuilt {
        record,
        events: events.len(),
        unreadable,
    })
}
