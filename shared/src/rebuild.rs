//! Rebuilding from the events table: the canonical event a stored item holds, parsed again from
//! its raw body with today's parsers, and a call record rebuilt from all of its events. The stream
//! functions, the CLI and the tests share it; it sits below them all (it needs only the store).

use crate::config::OptOutPolicy;
use crate::error::{Error, Result};
use crate::event::{CanonicalEvent, DeliveryContext, EventType};
use crate::privacy;
use crate::provider;
use crate::record::CallRecord;
use crate::store::{EventItem, Store};

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
    // What ingest knew of the numbers before it redacted the body.
    if let crate::event::EventData::Call(patch) = &mut event.data {
        if item.from_key.is_some() || item.to_key.is_some() {
            patch.from_key.clone_from(&item.from_key);
            patch.to_key.clone_from(&item.to_key);
        }
    }
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
/// parsers and merge, as if each were delivered again: the record the merge functions would
/// build. `callhook replay` writes it after a parser fix.
pub async fn rebuild_call(
    policy: OptOutPolicy,
    store: &Store,
    record_key: &str,
) -> Result<Rebuilt> {
    let mut events = Vec::new();
    let mut unreadable = Vec::new();
    for item in store.events_of(record_key).await? {
        // What the pipe never gives the merge functions (messages, events of no known type)
        // is not merged here either: a call with only those has no record.
        if item
            .event_type()
            .is_none_or(|t| matches!(t, EventType::MessageReceived | EventType::Unknown))
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
            Err(error) if error.storage_kind().is_some() => return Err(error),
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
