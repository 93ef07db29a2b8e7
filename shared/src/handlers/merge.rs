//! The per-event-type functions (`call-started`, `mid-call`, `call-ended`, `call-analyzed`,
//! `message-received`). Each is invoked asynchronously by its rule on the stack's bus with one
//! [`EventRef`] the pipe put there; it reads the stored event by key, rebuilds it from the raw
//! body with the same parser ingest used, merges it into the calls table, and puts the call
//! events the merge makes due on the bus.
//!
//! A failure that retrying can fix (throttling, timeouts, storage down) is returned as the
//! invocation's error: Lambda counts it (the `Errors` alarm), retries the invocation with
//! backoff, then sends it to the failure queue with the event's keys. A failure that can never
//! succeed (the body no longer parses, DynamoDB refuses the record) is recorded in the
//! `failures` partition and the invocation succeeds; if recording it fails, that failure is
//! returned instead, so the event is retried and in the end queued, never dropped.

use crate::bus::{self, Bus, EventRef};
use crate::config::OptOutPolicy;
use crate::error::{Error, Result};
use crate::event::{CanonicalEvent, EventData, EventType};
use crate::privacy;
pub use crate::rebuild::{Rebuilt, rebuild, rebuild_call, rebuild_from_body};
use crate::store::Store;
use crate::store::calls::Merged;
use crate::store::failures::Failure;
use std::time::Instant;

/// What became of one bus event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Merged (or found already merged) after `attempts` of the optimistic concurrency (1
    /// without a concurrent writer); `published` call events were put on the bus.
    Merged { attempts: u32, published: usize },
    /// Not an event of this function's type (its rule should have kept it away).
    Skipped,
    /// It can never succeed: recorded, not retried.
    Failed(Box<Failure>),
}

/// The function that serves `event_type`: its `Handler` in the template, and how failures name it.
pub fn function_name(event_type: EventType) -> String {
    event_type.as_str().replace('_', "-")
}

/// Handles one event put on the bus by the pipe. `Err` only for a failure worth retrying.
pub async fn handle(
    policy: OptOutPolicy,
    store: &Store,
    bus: &Bus,
    expected: EventType,
    event: &EventRef,
) -> Result<Outcome> {
    let started = Instant::now();
    let latency_ms = || started.elapsed().as_secs_f64() * 1000.0;
    if event.event_type() != Some(expected) {
        tracing::info!(
            r#type = %event.kind,
            pk = %event.pk,
            sk = %event.sk,
            outcome = "skipped",
            "event"
        );
        return Ok(Outcome::Skipped);
    }
    match process(policy, store, bus, event).await {
        Ok((merged, attempts, published)) => {
            tracing::info!(
                provider = %merged.provider,
                call_id = %merged.call_id,
                r#type = expected.as_str(),
                outcome = "merged",
                attempts,
                published,
                latency_ms = latency_ms(),
                "event"
            );
            Ok(Outcome::Merged {
                attempts,
                published,
            })
        }
        Err(error) if error.is_retryable() => {
            tracing::warn!(
                r#type = expected.as_str(),
                pk = %event.pk,
                sk = %event.sk,
                outcome = "retry",
                code = error.code(),
                error = %error,
                latency_ms = latency_ms(),
                "event"
            );
            Err(error)
        }
        Err(error) => {
            let failure = Failure::new(
                &function_name(expected),
                &event.pk,
                &event.sk,
                expected.as_str(),
                &error,
                super::now_ms(),
            );
            if let Err(record_error) = store.record_failure(&failure).await {
                tracing::error!(
                    r#type = expected.as_str(),
                    pk = %event.pk,
                    sk = %event.sk,
                    outcome = "retry",
                    code = error.code(),
                    error = %error,
                    record_error = %record_error,
                    "event: the failure could not be recorded; retrying the event instead"
                );
                return Err(record_error);
            }
            // `outcome = "failed"` is what the PermanentFailures metric filter counts.
            tracing::error!(
                r#type = expected.as_str(),
                pk = %event.pk,
                sk = %event.sk,
                outcome = "failed",
                code = error.code(),
                error = %error,
                failure = %failure.sk,
                latency_ms = latency_ms(),
                "event"
            );
            Ok(Outcome::Failed(Box::new(failure)))
        }
    }
}

/// Reads the stored event `event` points at, merges it, and puts the call events due: the
/// event, the merge's attempts, and how many call events were put. What the functions and
/// `callhook failures replay` both run.
pub async fn process(
    policy: OptOutPolicy,
    store: &Store,
    bus: &Bus,
    event: &EventRef,
) -> Result<(CanonicalEvent, u32, usize)> {
    let item = store
        .get_event(&event.pk, &event.sk)
        .await?
        .ok_or_else(|| {
            Error::Unusable(format!(
                "The event item {} / {} is gone (expired or deleted).",
                event.pk, event.sk
            ))
        })?;
    tracing::trace!(pk = %event.pk, sk = %event.sk, parts = item.parts, "event item read");
    let canonical = rebuild(store, &item).await?;
    let merged = apply(policy, store, &canonical).await?;
    let attempts = merged.map_or(1, |m| m.attempts);
    let due = merged.map_or_else(Vec::new, |m| bus::due(canonical.event_type, m.was, m.now));
    if due.is_empty() {
        return Ok((canonical, attempts, 0));
    }
    let record = store
        .load_call(canonical.provider, &canonical.call_id)
        .await?
        .ok_or_else(|| {
            Error::storage(
                crate::error::StorageKind::Transient,
                format!("the record {} is not readable yet", canonical.record_key()),
            )
        })?;
    let events: Vec<bus::BusEvent> = due.iter().map(|k| bus::call_event(*k, &record)).collect();
    bus.put(&events).await?;
    Ok((canonical, attempts, events.len()))
}

/// Merges one event into the calls table (or stores its message). What the merge did, for a
/// call.
pub async fn apply(
    policy: OptOutPolicy,
    store: &Store,
    event: &CanonicalEvent,
) -> Result<Option<Merged>> {
    match &event.data {
        EventData::Message(message) => store.put_message(message).await.map(|_| None),
        EventData::Call(_) | EventData::Opaque => {
            let redact = policy == OptOutPolicy::Redact;
            store
                .merge_call(
                    event,
                    redact.then_some(privacy::redact_opted_out as fn(&mut _)),
                )
                .await
                .map(Some)
        }
    }
}
