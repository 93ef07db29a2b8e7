//! The DynamoDB adapter, one module per concern:
//!
//! - [`codec`]: how bytes too large or too many for one item are packed (gzip, chunks) — pure;
//! - [`events`]: the events table, the durable inbox (one item per canonical event, raw bodies
//!   stored once per content, the quarantine);
//! - [`calls`]: the calls table, one item collection per call, and the merge that keeps it;
//! - [`queries`]: what the CLI lists through the calls table's indexes;
//! - [`dynamo`]: the seam between all of that and the SDK: typed errors and the narrow
//!   [`dynamo::Table`] interface the calls path runs on (an in-memory one unit-tests it).
//!
//! The layout of both tables is described in docs/ARCHITECTURE.md.

pub mod calls;
pub mod codec;
pub mod dynamo;
pub mod events;
pub mod failures;
pub mod memory;
pub mod queries;

pub use calls::{CallSummary, MessageItem};
pub use dynamo::{Item, from_item, storage, to_attributes};
pub use events::{EventItem, EventItems, Stored, TYPE_PART, TYPE_QUARANTINE};
pub use failures::Failure;
pub use queries::ListIndex;

use aws_sdk_dynamodb::Client;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

/// Both tables of a stack, with the SDK client built once per cold start.
#[derive(Debug, Clone)]
pub struct Store {
    client: Client,
    pub events_table: String,
    pub calls_table: String,
    retention_days: Option<u32>,
    /// Under the redact policy: the key of the keyed hash the number indexes use.
    number_key: Option<Arc<[u8]>>,
    /// The day shards of the time index this process has already recorded (see
    /// [`queries`]): each is written once per process, not once per call.
    days_written: Arc<Mutex<HashSet<String>>>,
}

impl Store {
    pub fn new(client: Client, config: &crate::Config) -> Self {
        Self {
            retention_days: config.event_retention_days,
            number_key: config.number_index_key.clone().map(Arc::from),
            ..Self::with_tables(client, &config.events_table, &config.calls_table)
        }
    }

    /// A store on the given tables, without event expiry (what the CLI reads and replays with).
    pub fn with_tables(client: Client, events_table: &str, calls_table: &str) -> Self {
        Self {
            client,
            events_table: events_table.to_owned(),
            calls_table: calls_table.to_owned(),
            retention_days: None,
            number_key: None,
            days_written: Arc::default(),
        }
    }

    /// The same store, indexing numbers by their keyed hash under `key` (the redact policy).
    pub fn with_number_key(mut self, key: Option<&[u8]>) -> Self {
        self.number_key = key.map(Arc::from);
        self
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    fn calls(&self) -> dynamo::DynamoTable<'_> {
        dynamo::DynamoTable::new(&self.client, &self.calls_table)
    }

    fn events(&self) -> dynamo::DynamoTable<'_> {
        dynamo::DynamoTable::new(&self.client, &self.events_table)
    }

    fn expiry(&self, received_at_ms: i64) -> Option<i64> {
        self.retention_days
            .map(|days| received_at_ms / 1000 + i64::from(days) * 86_400)
    }

    pub fn number_key(&self) -> Option<&[u8]> {
        self.number_key.as_deref()
    }
}

/// The calls path of a [`Store`].
impl Store {
    fn call_records(&self) -> calls::Calls<'_, dynamo::DynamoTable<'_>> {
        calls::Calls {
            table: self.calls(),
            number_key: self.number_key(),
            days: &self.days_written,
        }
    }

    /// Folds an event into its call record (see [`calls`]).
    pub async fn merge_call(
        &self,
        event: &crate::CanonicalEvent,
        finish: Option<fn(&mut crate::CallRecord)>,
    ) -> crate::Result<calls::Merged> {
        self.call_records().merge(event, finish).await
    }

    /// A call's record, whole, with the version of its header.
    pub async fn get_call(
        &self,
        provider: &str,
        call_id: &str,
    ) -> crate::Result<Option<(crate::CallRecord, u64)>> {
        let pk = crate::event::record_key(provider, crate::EventType::CallStarted, call_id);
        self.call_records().load(&pk).await
    }

    /// A call's record, whole.
    pub async fn load_call(
        &self,
        provider: &str,
        call_id: &str,
    ) -> crate::Result<Option<crate::CallRecord>> {
        Ok(self
            .get_call(provider, call_id)
            .await?
            .map(|(record, _)| record))
    }

    /// The whole record of a call a listing returned.
    pub async fn complete(&self, summary: &CallSummary) -> crate::Result<crate::CallRecord> {
        self.call_records()
            .load(&summary.pk)
            .await?
            .map(|(record, _)| record)
            .ok_or_else(|| {
                crate::Error::storage(
                    crate::error::StorageKind::Transient,
                    format!("the record {} is gone", summary.pk),
                )
            })
    }

    /// Writes a rebuilt call record in place of the one read at `read_version` (`None`: there was
    /// none). `Ok(false)` when the record changed in between (a merge ran): read and rebuild again.
    pub async fn replace_call(
        &self,
        record: &crate::CallRecord,
        read_version: Option<u64>,
    ) -> crate::Result<bool> {
        self.call_records().replace(record, read_version).await
    }

    /// Stores a message record; a redelivery finds it there and changes nothing.
    pub async fn put_message(&self, message: &crate::event::Message) -> crate::Result<bool> {
        self.call_records().put_message(message).await
    }

    pub async fn get_message(
        &self,
        provider: &str,
        message_id: &str,
    ) -> crate::Result<Option<MessageItem>> {
        let pk = crate::event::record_key(provider, crate::EventType::MessageReceived, message_id);
        self.call_records().load_message(&pk).await
    }
}
