//! The stream functions (`call-started`, `mid-call`, `call-ended`, `call-analyzed`,
//! `message-received`): each receives the events table's stream records of its canonical type
//! (the event source mapping's filter), rebuilds the event from the stored raw body with the same
//! parser ingest used, and merges it into the calls table. Failed records are reported one by one
//! (`ReportBatchItemFailures`); the mapping retries them, bisecting, then sends them to the queue.

use crate::config::{Config, OptOutPolicy};
use crate::error::{Error, Result};
use crate::event::{CanonicalEvent, EventData, EventType};
use crate::privacy;
pub use crate::rebuild::{Rebuilt, rebuild, rebuild_call, rebuild_from_body};
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
            Err((key, error)) => {
                let retryable = error.is_retryable();
                tracing::error!(
                    r#type = expected.as_str(),
                    pk = %key.0,
                    sk = %key.1,
                    outcome = if retryable { "failed" } else { "rejected" },
                    retryable,
                    error = %error,
                    latency_ms,
                    "event"
                );
                // Every failure goes back to the mapping, a permanent one too: its bounded
                // retries end in the failure queue, which is where a failure is kept for now.
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
) -> Result<Option<CanonicalEvent>, ((String, String), Error)> {
    let key = |image: &serde_dynamo::Item| {
        let text = |name: &str| match image.get(name) {
            Some(serde_dynamo::AttributeValue::S(s)) => s.clone(),
            _ => String::new(),
        };
        (text("pk"), text("sk"))
    };
    let image = record.change.new_image;
    let keys = key(&image);
    let item: EventItem = serde_dynamo::from_item(image).map_err(|e| {
        (
            keys.clone(),
            Error::Unusable(format!("The stream record is not an event item: {e}.")),
        )
    })?;
    if item.event_type() != Some(expected) {
        return Ok(None);
    }
    let event = rebuild(store, &item).await.map_err(|e| (keys.clone(), e))?;
    apply(config.opt_out_policy, store, &event)
        .await
        .map_err(|e| (keys, e))?;
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
