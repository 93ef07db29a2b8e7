//! The DynamoDB adapter: the events table (the durable inbox) and the calls table.
//!
//! Events table, key `pk` (`<provider>#<call id>`) + `sk` (`ev#<dedupe key>`): one item per
//! canonical event, written by ONE conditional put whose condition failure *is* the duplicate
//! answer (the old item comes back with it, so no read is needed). Raw bodies are kept verbatim
//! (`body`), gzip-compressed past 16 KiB (`body_gz`), and split into `part` items past what one
//! item holds; parts are written first, so the event item — the only one the stream functions
//! react to — never points at a part that is not there yet.
//!
//! Calls table, key `pk`: one item per call (the record, plus `list_pk`/`sort_at`/`agent_id` for
//! the indexes), merged under optimistic concurrency on `version`.

use crate::error::{Error, Result};
use crate::event::{CanonicalEvent, EventType, Message};
use crate::record::CallRecord;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::{Read, Write};

/// Bodies above this are compressed (a DynamoDB write unit is 1 KB; small bodies stay readable).
pub const COMPRESS_ABOVE: usize = 16 * 1024;
/// Bytes of body per item, well under DynamoDB's 400 KB item limit with the other attributes.
pub const PART_BYTES: usize = 350 * 1024;
/// A record whose JSON is larger than this keeps its transcript in the event that carried it.
pub const RECORD_INLINE_BYTES: usize = 300 * 1024;
/// Optimistic-concurrency attempts before a merge gives up (the stream retries the record).
const MERGE_ATTEMPTS: usize = 20;

pub const TYPE_PART: &str = "part";
pub const TYPE_QUARANTINE: &str = "quarantine";

/// One item of the events table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventItem {
    pub pk: String,
    pub sk: String,
    /// The canonical event type, or `part` / `quarantine`. The stream filters read it.
    #[serde(rename = "type")]
    pub kind: String,
    pub provider: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub provider_event: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub call_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub dedupe_key: String,
    pub received_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occurred_at: Option<i64>,
    /// The raw body, when it is UTF-8 and small.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// The raw body (or this part of it) gzip-compressed, or verbatim bytes when not UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_gz: Option<ByteBuf>,
    /// `gzip` or `raw` for `body_gz`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_encoding: Option<String>,
    /// How many `part` items follow this one.
    #[serde(default)]
    pub parts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Unix seconds; DynamoDB's TTL deletes the item some time after.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
}

impl EventItem {
    pub fn event_type(&self) -> Option<EventType> {
        EventType::parse(&self.kind)
    }
}

/// The calls-table item: the record plus index and concurrency attributes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CallItem {
    pub pk: String,
    pub list_pk: String,
    pub sort_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    #[serde(default)]
    pub version: u64,
    /// The transcript is too large for the item: it is the one of the event that
    /// `merge_sources.transcript` names (see [`Store::load_call`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub transcript_external: bool,
    #[serde(flatten)]
    pub record: CallRecord,
}

impl CallItem {
    pub fn new(mut record: CallRecord, version: u64, was_external: bool) -> Self {
        let transcript_external = if record.transcript.is_empty() {
            was_external && record.merge_sources.contains_key("transcript")
        } else if serde_json::to_vec(&record).map_or(0, |v| v.len()) > RECORD_INLINE_BYTES {
            record.transcript.clear();
            true
        } else {
            false
        };
        Self {
            transcript_external,
            pk: crate::event::record_key(&record.provider, EventType::CallStarted, &record.call_id),
            list_pk: format!("call#{}", record.provider),
            sort_at: record
                .started_at
                .or(record.ended_at)
                .or(record.first_event_at)
                .unwrap_or(0),
            agent_id: record
                .agent
                .as_ref()
                .and_then(|a| a.id.clone())
                .filter(|id| !id.trim().is_empty()),
            version,
            record,
        }
    }
}

/// A message record in the calls table.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MessageItem {
    pub pk: String,
    pub list_pk: String,
    pub sort_at: i64,
    pub kind: String,
    #[serde(flatten)]
    pub message: Message,
}

/// The calls table's indexes, as `template.yaml` declares them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListIndex {
    /// Key `list_pk`: `call#<provider>` or `msg#<provider>`.
    Time,
    Agent,
    From,
    To,
}

impl ListIndex {
    pub fn name(self) -> &'static str {
        match self {
            Self::Time => "by_time",
            Self::Agent => "by_agent",
            Self::From => "by_from",
            Self::To => "by_to",
        }
    }

    pub fn key(self) -> &'static str {
        match self {
            Self::Time => "list_pk",
            Self::Agent => "agent_id",
            Self::From => "from_number",
            Self::To => "to_number",
        }
    }
}

/// What storing one event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub event_type: EventType,
    pub dedupe_key: String,
    /// Already stored by an earlier delivery.
    pub duplicate: bool,
    /// When callhook first received it.
    pub first_received_at: i64,
}

#[derive(Debug, Clone)]
pub struct Store {
    client: Client,
    pub events_table: String,
    pub calls_table: String,
    retention_days: Option<u32>,
}

impl Store {
    pub fn new(client: Client, config: &crate::Config) -> Self {
        Self {
            client,
            events_table: config.events_table.clone(),
            calls_table: config.calls_table.clone(),
            retention_days: config.event_retention_days,
        }
    }

    /// A store on the given tables, without event expiry (what the CLI reads and replays with).
    pub fn with_tables(client: Client, events_table: &str, calls_table: &str) -> Self {
        Self {
            client,
            events_table: events_table.to_owned(),
            calls_table: calls_table.to_owned(),
            retention_days: None,
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Stores one canonical event with the body it came from.
    pub async fn put_event(&self, event: &CanonicalEvent, body: &[u8]) -> Result<Stored> {
        let items = EventItems::for_event(event, body, self.expiry(event.received_at))?;
        match self.put_items(items).await? {
            None => Ok(Stored {
                event_type: event.event_type,
                dedupe_key: event.dedupe_key.clone(),
                duplicate: false,
                first_received_at: event.received_at,
            }),
            Some(old) => {
                let first = old
                    .get("received_at")
                    .and_then(|v| v.as_n().ok())
                    .and_then(|n| n.parse().ok());
                Ok(Stored {
                    event_type: event.event_type,
                    dedupe_key: event.dedupe_key.clone(),
                    duplicate: true,
                    first_received_at: first.unwrap_or(event.received_at),
                })
            }
        }
    }

    /// Keeps an authenticated but unusable body for inspection (`callhook quarantine`).
    pub async fn put_quarantine(
        &self,
        provider: &str,
        error: &Error,
        body: &[u8],
        received_at: i64,
    ) -> Result<bool> {
        let items = EventItems::for_quarantine(
            provider,
            error,
            body,
            received_at,
            self.expiry(received_at),
        )?;
        Ok(self.put_items(items).await?.is_none())
    }

    /// Writes the parts first, then the item itself under `attribute_not_exists(pk)`;
    /// `Ok(Some(old item))` when it was already there.
    async fn put_items(
        &self,
        items: EventItems,
    ) -> Result<Option<HashMap<String, AttributeValue>>> {
        for part in &items.parts {
            self.put(&self.events_table, part, None).await?;
        }
        self.put(
            &self.events_table,
            &items.item,
            Some("attribute_not_exists(pk)"),
        )
        .await
    }

    /// The raw body of a stored event, reassembled from its parts when it has any.
    pub async fn load_body(&self, item: &EventItem) -> Result<Vec<u8>> {
        if let Some(body) = &item.body {
            return Ok(body.clone().into_bytes());
        }
        let mut bytes = item
            .body_gz
            .as_ref()
            .map(|b| b.to_vec())
            .unwrap_or_default();
        if item.parts > 0 {
            let prefix = format!("{}#part#", item.sk);
            let parts = self
                .query_prefix(&self.events_table, &item.pk, &prefix)
                .await?;
            if parts.len() != item.parts as usize {
                return Err(Error::Storage(format!(
                    "{} of {} body parts found",
                    parts.len(),
                    item.parts
                )));
            }
            for part in parts {
                let part: EventItem = from_item(part)?;
                if let Some(chunk) = &part.body_gz {
                    bytes.extend_from_slice(chunk);
                }
            }
        }
        match item.body_encoding.as_deref() {
            Some("gzip") => {
                let mut out = Vec::with_capacity(bytes.len() * 4);
                GzDecoder::new(bytes.as_slice())
                    .read_to_end(&mut out)
                    .map_err(|e| {
                        Error::Internal(format!("stored body does not decompress: {e}"))
                    })?;
                Ok(out)
            }
            _ => Ok(bytes),
        }
    }

    /// Every stored item of a record's events, oldest first (parts excluded).
    pub async fn events_of(&self, record_key: &str) -> Result<Vec<EventItem>> {
        let items = self
            .query_prefix(&self.events_table, record_key, "ev#")
            .await?;
        let mut events: Vec<EventItem> = items
            .into_iter()
            .map(from_item)
            .collect::<Result<Vec<EventItem>>>()?
            .into_iter()
            .filter(|e| e.kind != TYPE_PART)
            .collect();
        events.sort_by(|a, b| {
            (a.received_at, a.event_type(), &a.sk).cmp(&(b.received_at, b.event_type(), &b.sk))
        });
        Ok(events)
    }

    pub async fn get_call(&self, provider: &str, call_id: &str) -> Result<Option<CallItem>> {
        let key = crate::event::record_key(provider, EventType::CallStarted, call_id);
        self.get(&self.calls_table, &key)
            .await?
            .map(from_item)
            .transpose()
    }

    /// The call record with its transcript, wherever it is kept.
    pub async fn load_call(&self, provider: &str, call_id: &str) -> Result<Option<CallRecord>> {
        match self.get_call(provider, call_id).await? {
            Some(item) => self.complete(item).await.map(Some),
            None => Ok(None),
        }
    }

    /// The record of a calls-table item, its transcript fetched back from the event that carried
    /// it when it was too large for the item.
    pub async fn complete(&self, item: CallItem) -> Result<CallRecord> {
        let mut record = item.record;
        if !item.transcript_external {
            return Ok(record);
        }
        let source = record
            .merge_sources
            .get("transcript")
            .cloned()
            .unwrap_or_default();
        let dedupe_key = source.rsplit('|').next().unwrap_or_default();
        let event_item = self
            .get_event(&item.pk, &format!("ev#{dedupe_key}"))
            .await?
            .ok_or_else(|| {
                Error::Storage(format!(
                    "the event holding the transcript of {} is missing",
                    item.pk
                ))
            })?;
        let event = crate::handlers::stream::rebuild(self, &event_item).await?;
        if let crate::event::EventData::Call(patch) = event.data {
            record.transcript = patch.transcript.unwrap_or_default();
        }
        Ok(record)
    }

    /// One item of the events table.
    pub async fn get_event(&self, pk: &str, sk: &str) -> Result<Option<EventItem>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.events_table)
            .key("pk", AttributeValue::S(pk.to_owned()))
            .key("sk", AttributeValue::S(sk.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(storage)?;
        out.item.map(from_item).transpose()
    }

    /// The quarantined payloads of a provider (one partition; a Query, not a scan).
    pub async fn quarantined(&self, provider: &str) -> Result<Vec<EventItem>> {
        let pk = format!("{TYPE_QUARANTINE}#{provider}");
        self.query_prefix(&self.events_table, &pk, "q#")
            .await?
            .into_iter()
            .map(from_item)
            .filter(|item: &Result<EventItem>| {
                item.as_ref().map_or(true, |item| item.kind != TYPE_PART)
            })
            .collect()
    }

    /// The record keys (`<provider>#<call id>`) of every call that has events, read with a Scan
    /// of the events table: only `callhook replay --from-events` walks the whole table, to find
    /// calls whose record is missing altogether.
    pub async fn call_keys_from_events(&self) -> Result<Vec<String>> {
        let mut keys = std::collections::BTreeSet::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .scan()
                .table_name(&self.events_table)
                .projection_expression("pk, #t")
                .expression_attribute_names("#t", "type")
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(storage)?;
            for item in out.items.unwrap_or_default() {
                let kind = item.get("type").and_then(|t| t.as_s().ok());
                let is_call_event = kind
                    .and_then(|k| EventType::parse(k))
                    .is_some_and(|t| t != EventType::MessageReceived);
                if let (true, Some(AttributeValue::S(pk))) = (is_call_event, item.get("pk")) {
                    keys.insert(pk.clone());
                }
            }
            start = out.last_evaluated_key;
            if start.is_none() {
                return Ok(keys.into_iter().collect());
            }
        }
    }

    pub async fn get_message(
        &self,
        provider: &str,
        message_id: &str,
    ) -> Result<Option<MessageItem>> {
        let key = crate::event::record_key(provider, EventType::MessageReceived, message_id);
        self.get(&self.calls_table, &key)
            .await?
            .map(from_item)
            .transpose()
    }

    /// Folds an event into its call record: read, merge, conditional write on the version read;
    /// on a concurrent update, again. A merge that changes nothing writes nothing.
    pub async fn merge_call(
        &self,
        event: &CanonicalEvent,
        finish: Option<fn(&mut CallRecord)>,
    ) -> Result<CallRecord> {
        for _ in 0..MERGE_ATTEMPTS {
            let current = self.get_call(event.provider, &event.call_id).await?;
            let (mut record, version, external) = match current {
                Some(item) => (item.record, Some(item.version), item.transcript_external),
                None => (CallRecord::new(event.provider, &event.call_id), None, false),
            };
            let before = record.clone();
            record.merge(event);
            if let Some(finish) = finish {
                finish(&mut record);
            }
            if version.is_some() && record == before {
                return Ok(record);
            }
            let next = CallItem::new(record, version.map_or(1, |v| v + 1), external);
            let condition = match version {
                None => "attribute_not_exists(pk)".to_owned(),
                Some(v) => format!("version = :v{v}"),
            };
            let values = version.map(|v| (format!(":v{v}"), AttributeValue::N(v.to_string())));
            match self
                .put_with(&self.calls_table, &next, Some(&condition), values)
                .await?
            {
                None => return Ok(next.record),
                Some(_) => continue,
            }
        }
        Err(Error::Storage(format!(
            "call record {} kept changing under concurrent merges",
            event.record_key()
        )))
    }

    /// The Query of the calls table's `index` for `key` and `sort_at` in `[since, until]`, newest
    /// first.
    fn index_query(
        &self,
        index: ListIndex,
        key: &str,
        since: i64,
        until: i64,
    ) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder {
        self.client
            .query()
            .table_name(&self.calls_table)
            .index_name(index.name())
            .key_condition_expression("#k = :k AND sort_at BETWEEN :since AND :until")
            .expression_attribute_names("#k", index.key())
            .expression_attribute_values(":k", AttributeValue::S(key.to_owned()))
            .expression_attribute_values(":since", AttributeValue::N(since.to_string()))
            .expression_attribute_values(":until", AttributeValue::N(until.to_string()))
            .scan_index_forward(false)
    }

    /// Items of the calls table whose `index` key equals `key`, with `sort_at` in `[since, until]`,
    /// newest first: a Query on a global secondary index, never a scan.
    pub async fn list(
        &self,
        index: ListIndex,
        key: &str,
        since: i64,
        until: i64,
        limit: Option<i32>,
    ) -> Result<Vec<HashMap<String, AttributeValue>>> {
        let request = self.index_query(index, key, since, until).set_limit(limit);
        let limit = limit.map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(0));
        let mut pages = request.into_paginator().items().send();
        let mut items = Vec::new();
        while items.len() < limit {
            match pages.next().await {
                Some(item) => items.push(item.map_err(storage)?),
                None => break,
            }
        }
        Ok(items)
    }

    /// One page of the calls (not messages) whose `index` key equals `key`, with `sort_at` in
    /// `[since, until]`, newest first: a Query on a global secondary index, never a scan. Pass
    /// the returned key back as `start` for the next page; `None` means there is no next page.
    pub async fn calls_page(
        &self,
        index: ListIndex,
        key: &str,
        (since, until): (i64, i64),
        start: Option<HashMap<String, AttributeValue>>,
    ) -> Result<(Vec<CallItem>, Option<HashMap<String, AttributeValue>>)> {
        let out = self
            .index_query(index, key, since, until)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(storage)?;
        let calls = out
            .items
            .unwrap_or_default()
            .into_iter()
            .filter(|item| {
                !item
                    .get("list_pk")
                    .and_then(|v| v.as_s().ok())
                    .is_some_and(|l| l.starts_with("msg#"))
            })
            .map(from_item)
            .collect::<Result<Vec<CallItem>>>()?;
        Ok((calls, out.last_evaluated_key))
    }

    /// Writes a rebuilt call record in place of the one read at `read_version` (`None`: there was
    /// none). `Ok(false)` when the record changed in between (a merge ran): read and rebuild again.
    pub async fn replace_call(
        &self,
        record: CallRecord,
        read_version: Option<u64>,
    ) -> Result<bool> {
        let next = CallItem::new(record, read_version.map_or(1, |v| v + 1), false);
        let condition = match read_version {
            None => "attribute_not_exists(pk)".to_owned(),
            Some(v) => format!("version = :v{v}"),
        };
        let values = read_version.map(|v| (format!(":v{v}"), AttributeValue::N(v.to_string())));
        Ok(self
            .put_with(&self.calls_table, &next, Some(&condition), values)
            .await?
            .is_none())
    }

    /// Stores a message record; a redelivery finds it there and changes nothing.
    pub async fn put_message(&self, message: &Message) -> Result<bool> {
        let item = MessageItem {
            pk: crate::event::record_key(
                &message.provider,
                EventType::MessageReceived,
                &message.message_id,
            ),
            list_pk: format!("msg#{}", message.provider),
            sort_at: message.created_at.or(message.received_at).unwrap_or(0),
            kind: "message".to_owned(),
            message: message.clone(),
        };
        Ok(self
            .put(&self.calls_table, &item, Some("attribute_not_exists(pk)"))
            .await?
            .is_none())
    }

    fn expiry(&self, received_at_ms: i64) -> Option<i64> {
        self.retention_days
            .map(|days| received_at_ms / 1000 + i64::from(days) * 86_400)
    }

    async fn get(&self, table: &str, pk: &str) -> Result<Option<HashMap<String, AttributeValue>>> {
        let out = self
            .client
            .get_item()
            .table_name(table)
            .key("pk", AttributeValue::S(pk.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(storage)?;
        Ok(out.item)
    }

    async fn put<T: Serialize>(
        &self,
        table: &str,
        item: &T,
        condition: Option<&str>,
    ) -> Result<Option<HashMap<String, AttributeValue>>> {
        self.put_with(table, item, condition, None).await
    }

    /// Puts an item; `Ok(Some(old item))` when the condition failed.
    async fn put_with<T: Serialize>(
        &self,
        table: &str,
        item: &T,
        condition: Option<&str>,
        value: Option<(String, AttributeValue)>,
    ) -> Result<Option<HashMap<String, AttributeValue>>> {
        let item = to_attributes(item)?;
        let mut request = self
            .client
            .put_item()
            .table_name(table)
            .set_item(Some(item));
        if let Some(condition) = condition {
            request = request
                .condition_expression(condition)
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                );
        }
        if let Some((name, value)) = value {
            request = request.expression_attribute_values(name, value);
        }
        match request.send().await {
            Ok(_) => Ok(None),
            Err(SdkError::ServiceError(e)) => match e.into_err() {
                PutItemError::ConditionalCheckFailedException(failed) => {
                    Ok(Some(failed.item().cloned().unwrap_or_default()))
                }
                other => Err(storage(SdkError::<_, ()>::service_error(other, ()))),
            },
            Err(e) => Err(storage(e)),
        }
    }

    async fn query_prefix(
        &self,
        table: &str,
        pk: &str,
        prefix: &str,
    ) -> Result<Vec<HashMap<String, AttributeValue>>> {
        // A plain loop rather than the SDK's paginator: the paginator's stream types make the
        // stream functions' futures too deep for the compiler's default query limit.
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":pk", AttributeValue::S(pk.to_owned()))
                .expression_attribute_values(":prefix", AttributeValue::S(prefix.to_owned()))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(storage)?;
            items.extend(out.items.unwrap_or_default());
            start = out.last_evaluated_key;
            if start.is_none() {
                return Ok(items);
            }
        }
    }
}

/// What one event (or one quarantined body) is stored as: the item the stream functions react to,
/// and the `part` items holding what of its body does not fit in it. Pure: the benchmarks time
/// exactly what ingest builds.
#[derive(Debug, Clone, PartialEq)]
pub struct EventItems {
    pub item: EventItem,
    pub parts: Vec<EventItem>,
}

impl EventItems {
    pub fn for_event(event: &CanonicalEvent, body: &[u8], expires_at: Option<i64>) -> Result<Self> {
        Self::with_body(
            EventItem {
                pk: event.record_key(),
                sk: format!("ev#{}", event.dedupe_key),
                kind: event.event_type.as_str().to_owned(),
                provider: event.provider.to_owned(),
                provider_event: event.provider_event.clone(),
                call_id: event.call_id.clone(),
                dedupe_key: event.dedupe_key.clone(),
                received_at: event.received_at,
                occurred_at: event.occurred_at,
                body: None,
                body_gz: None,
                body_encoding: None,
                parts: 0,
                error: None,
                expires_at,
            },
            body,
        )
    }

    pub fn for_quarantine(
        provider: &str,
        error: &Error,
        body: &[u8],
        received_at: i64,
        expires_at: Option<i64>,
    ) -> Result<Self> {
        let digest = hex::encode(&Sha256::digest(body)[..16]);
        Self::with_body(
            EventItem {
                pk: format!("{TYPE_QUARANTINE}#{provider}"),
                sk: format!("q#{digest}"),
                kind: TYPE_QUARANTINE.to_owned(),
                provider: provider.to_owned(),
                provider_event: String::new(),
                call_id: String::new(),
                dedupe_key: digest,
                received_at,
                occurred_at: None,
                body: None,
                body_gz: None,
                body_encoding: None,
                parts: 0,
                error: Some(error.to_string()),
                expires_at,
            },
            body,
        )
    }

    fn with_body(mut item: EventItem, body: &[u8]) -> Result<Self> {
        let chunks = encode_body(body, &mut item);
        item.parts =
            u32::try_from(chunks.len()).map_err(|_| Error::Internal("body too large".into()))?;
        let parts = chunks
            .into_iter()
            .enumerate()
            .map(|(index, chunk)| EventItem {
                sk: format!("{}#part#{:04}", item.sk, index + 1),
                kind: TYPE_PART.to_owned(),
                body: None,
                body_gz: Some(ByteBuf::from(chunk)),
                parts: 0,
                error: None,
                ..item.clone()
            })
            .collect();
        Ok(Self { item, parts })
    }

    /// The DynamoDB attribute values of every item, parts first (the order they are written in).
    pub fn to_attributes(&self) -> Result<Vec<HashMap<String, AttributeValue>>> {
        self.parts
            .iter()
            .chain(std::iter::once(&self.item))
            .map(to_attributes)
            .collect()
    }
}

/// An item as DynamoDB attribute values.
pub fn to_attributes<T: Serialize>(item: &T) -> Result<HashMap<String, AttributeValue>> {
    serde_dynamo::to_item(item).map_err(|e| Error::Internal(format!("item encoding: {e}")))
}

/// Puts the body on the item, compressed when large, and returns the chunks that must go into
/// part items because one item cannot hold them.
fn encode_body(body: &[u8], item: &mut EventItem) -> Vec<Vec<u8>> {
    if body.len() <= COMPRESS_ABOVE {
        if let Ok(text) = std::str::from_utf8(body) {
            item.body = Some(text.to_owned());
            return Vec::new();
        }
        item.body_gz = Some(ByteBuf::from(body.to_vec()));
        item.body_encoding = Some("raw".to_owned());
        return Vec::new();
    }
    let mut encoder = GzEncoder::new(Vec::with_capacity(body.len() / 4), Compression::fast());
    // Writing to a Vec cannot fail.
    let compressed = encoder
        .write_all(body)
        .and_then(|()| encoder.finish())
        .unwrap_or_default();
    item.body_encoding = Some("gzip".to_owned());
    let mut chunks: Vec<Vec<u8>> = compressed.chunks(PART_BYTES).map(<[u8]>::to_vec).collect();
    let first = if chunks.is_empty() {
        Vec::new()
    } else {
        chunks.remove(0)
    };
    item.body_gz = Some(ByteBuf::from(first));
    chunks
}

pub fn from_item<T: serde::de::DeserializeOwned>(
    item: HashMap<String, AttributeValue>,
) -> Result<T> {
    serde_dynamo::from_item(item)
        .map_err(|e| Error::Internal(format!("stored item does not decode: {e}")))
}

/// A storage failure, with the service's error code for the log (never shown to senders).
pub fn storage<E: ProvideErrorMetadata + std::fmt::Debug, R: std::fmt::Debug>(
    error: SdkError<E, R>,
) -> Error {
    let detail = match &error {
        SdkError::ServiceError(e) => format!(
            "{}: {}",
            e.err().code().unwrap_or("service error"),
            e.err().message().unwrap_or_default()
        ),
        SdkError::TimeoutError(_) => "timed out".to_owned(),
        SdkError::DispatchFailure(e) => format!("dispatch failure: {e:?}"),
        other => format!("{other:?}").chars().take(300).collect(),
    };
    Error::Storage(detail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Agent, Cost};

    fn blank_item() -> EventItem {
        EventItem {
            pk: "vox#c".into(),
            sk: "ev#k".into(),
            kind: "call_ended".into(),
            provider: "vox".into(),
            provider_event: "call_ended".into(),
            call_id: "c".into(),
            dedupe_key: "k".into(),
            received_at: 1,
            occurred_at: None,
            body: None,
            body_gz: None,
            body_encoding: None,
            parts: 0,
            error: None,
            expires_at: None,
        }
    }

    /// Incompressible bytes (xorshift).
    fn noise(len: usize) -> Vec<u8> {
        let mut seed = 7u64;
        (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect()
    }

    #[test]
    fn small_utf8_bodies_stay_readable_and_large_ones_are_compressed_and_split() {
        let mut item = blank_item();
        assert!(encode_body(b"{\"a\":1}", &mut item).is_empty());
        assert_eq!(item.body.as_deref(), Some("{\"a\":1}"));

        let mut item = blank_item();
        assert!(encode_body(b"\xff\xfe", &mut item).is_empty());
        assert_eq!(item.body_encoding.as_deref(), Some("raw"));

        // Incompressible 1 MiB: the event item holds the first 350 KiB, two parts the rest.
        let mut item = blank_item();
        let chunks = encode_body(&noise(1 << 20), &mut item);
        assert_eq!(chunks.len(), 2);
        assert!(chunks.iter().all(|c| c.len() <= PART_BYTES));
        assert_eq!(item.body_encoding.as_deref(), Some("gzip"));
    }

    #[test]
    fn a_quarantined_body_too_large_for_one_item_counts_its_parts() {
        // Event and quarantine items share one builder: a quarantined body split into parts
        // must say how many, or `load_body` would return only its first 350 KiB.
        let body = noise(1 << 20);
        let error = Error::Unusable("x".into());
        let items = EventItems::for_quarantine("vox", &error, &body, 1, None).unwrap();
        assert_eq!(items.item.parts, 2);
        assert_eq!(items.parts.len(), 2);
        let mut gz = items.item.body_gz.clone().unwrap().into_vec();
        for (index, part) in items.parts.iter().enumerate() {
            assert_eq!(part.sk, format!("{}#part#{:04}", items.item.sk, index + 1));
            assert_eq!(part.kind, TYPE_PART);
            gz.extend_from_slice(part.body_gz.as_ref().unwrap());
        }
        let mut back = Vec::new();
        GzDecoder::new(gz.as_slice())
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, body);
        assert_eq!(items.to_attributes().unwrap().len(), 3);
    }

    #[test]
    fn items_round_trip_through_dynamodb_attribute_values() {
        let mut record = CallRecord::new("vox", "c1");
        record.agent = Some(Agent {
            id: Some("a1".into()),
            version: Some("v3".into()),
        });
        record.cost = Some(Cost {
            amount: serde_json::Number::from_f64(12.5).unwrap(),
            unit: "credits".into(),
        });
        record.started_at = Some(1_700_000_000_000);
        record
            .merge_sources
            .insert("agent".into(), "1|0000000000000|k".into());
        let item = CallItem::new(record.clone(), 3, false);
        let attributes: HashMap<String, AttributeValue> = serde_dynamo::to_item(&item).unwrap();
        assert_eq!(
            attributes["sort_at"],
            AttributeValue::N("1700000000000".into())
        );
        assert_eq!(attributes["agent_id"], AttributeValue::S("a1".into()));
        assert!(
            !attributes.contains_key("from_number"),
            "absent keys stay absent (GSI keys)"
        );
        let back: CallItem = from_item(attributes).unwrap();
        assert_eq!(back.record, record);
        assert_eq!(back.version, 3);

        let mut event = blank_item();
        event.body_gz = Some(ByteBuf::from(vec![0u8, 1, 2]));
        let attributes: HashMap<String, AttributeValue> = serde_dynamo::to_item(&event).unwrap();
        assert!(matches!(attributes["body_gz"], AttributeValue::B(_)));
        assert_eq!(attributes["type"], AttributeValue::S("call_ended".into()));
        assert_eq!(from_item::<EventItem>(attributes).unwrap(), event);
    }
}
