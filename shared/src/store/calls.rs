//! The calls table: one item collection per call under its record key (`call#<provider>#<id>`),
//! read whole with one Query, so that no item can outgrow DynamoDB's 400 KB whatever a provider
//! sends:
//!
//! - `h`, the header: every field of the record that is small, the merge bookkeeping, the
//!   `version` the merges' optimistic concurrency is on, the index keys, and `ext`: where each
//!   field too large for the header is (`f#…` items);
//! - `t#<at>#<digest>`: one item per live turn (from `mid_call` events), named by the turn, so a
//!   redelivery writes nothing new; each carries the time its event was received;
//! - `f#<field>#<digest>#<nnnn>`: the chunks of one large value (the full transcript, a large
//!   analysis or metadata map, a long string), named by content, so two writers of one value
//!   write the same items.
//!
//! A merge reads the header only, folds the event in, writes the event's new turn or new large
//! values, and then the header under its version, and only when the header changed: a
//! `mid_call` costs its turn's item, not a rewrite of the record. A turn's received time stands
//! in the turn item, so a turn that only moves `last_event_at` does not touch the header.
//! Messages (`msg#<provider>#<id>`) are a header alone.

use super::codec::{self, Encoding, Packed};
use super::dynamo::{Condition, Item, Put, Table, from_item, to_attributes};
use super::queries::IndexKeys;
use crate::bus::Marks;
use crate::error::{Error, Result, StorageKind};
use crate::event::{CanonicalEvent, EventType, Message, Turn};
use crate::record::CallRecord;
use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

/// The header's sort key.
pub const HEADER: &str = "h";
const TURN: &str = "t#";
const FIELD: &str = "f#";
/// A field whose JSON is larger than this is kept in its own items, not in the header.
pub const FIELD_INLINE_BYTES: usize = 2048;
/// A live turn whose content is larger than this keeps its content in its own items.
pub const TURN_INLINE_BYTES: usize = 16 * 1024;
/// Fields that always stay in the header: small by construction, and what merging needs.
const PINNED: [&str; 11] = [
    "provider",
    "call_id",
    "status",
    "started_at",
    "ended_at",
    "duration_ms",
    "missed",
    "events",
    "first_event_at",
    "last_event_at",
    "merge_sources",
];
const PINNED_MESSAGE: [&str; 4] = ["provider", "message_id", "created_at", "received_at"];
/// Optimistic-concurrency attempts before a merge gives up (and is retried later as a whole).
const MERGE_ATTEMPTS: u32 = 12;
/// The full transcript's field name (also its merge-bookkeeping key).
const TRANSCRIPT: &str = "transcript";

/// Where a large value is: the chunks `f#<field>#<digest>#0001…`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtRef {
    pub digest: String,
    pub parts: u32,
    pub encoding: String,
}

/// The header item of a call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Header {
    pk: String,
    sk: String,
    kind: String,
    #[serde(default)]
    version: u64,
    #[serde(flatten)]
    keys: IndexKeys,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    ext: BTreeMap<String, ExtRef>,
    /// The record's fields that are in the header (the others are in `ext`, the transcript in
    /// turns or in `ext`).
    #[serde(flatten)]
    record: CallRecord,
}

/// A live turn's item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct TurnItem {
    pk: String,
    sk: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    at: Option<i64>,
    #[serde(default)]
    role: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    content: String,
    /// The content, when it was too large for this item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    content_ref: Option<ExtRef>,
    /// When the event that brought the turn was received (absent on turns a replay wrote).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    received_at: Option<i64>,
}

/// One chunk of a large value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ChunkItem {
    pk: String,
    sk: String,
    v: ByteBuf,
}

/// A message record: a header alone (its large fields, if any, in `f#` items like a call's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageItem {
    pub pk: String,
    pub sk: String,
    pub kind: String,
    #[serde(flatten)]
    pub keys: IndexKeys,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ext: BTreeMap<String, ExtRef>,
    #[serde(flatten)]
    pub message: Message,
}

/// A call as the listing indexes project it: the fields a table of calls prints.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct CallSummary {
    pub pk: String,
    #[serde(default)]
    pub sort_at: i64,
    #[serde(flatten)]
    pub record: CallRecord,
}

/// What a merge did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Merged {
    /// The header was written (the record's summary changed).
    pub header_written: bool,
    /// Items written besides the header (turns, chunks of large values).
    pub items_written: u32,
    /// Attempts the optimistic concurrency took (1 without a concurrent writer).
    pub attempts: u32,
    /// What users act on (ended, analyzed, missed), before and after the merge.
    pub was: crate::bus::Marks,
    pub now: crate::bus::Marks,
}

/// The calls path on any [`Table`]: the DynamoDB one, or an in-memory one in unit tests.
#[derive(Debug)]
pub struct Calls<'a, T> {
    pub table: T,
    /// Under the redact policy: numbers are indexed by their keyed hash under this key.
    pub number_key: Option<&'a [u8]>,
    /// Day shards of the time index already recorded by this process.
    pub days: &'a Mutex<HashSet<String>>,
}

/// The items a record is stored as.
struct Layout {
    header: Item,
    /// Chunks of large values and turn items, by sort key.
    others: BTreeMap<String, Item>,
    /// The sort keys of the turn items among `others`.
    turns: Vec<String>,
    time_key: Option<String>,
}

impl<T: Table + Sync> Calls<'_, T> {
    /// Folds an event into its call record under optimistic concurrency on the header's
    /// version. `finish` runs on the merged record (the redact policy's hook); a record it has
    /// to see whole (an opted-out call) is read and written whole.
    pub async fn merge(
        &self,
        event: &CanonicalEvent,
        finish: Option<fn(&mut CallRecord)>,
    ) -> Result<Merged> {
        let pk = event.record_key();
        let mut current = self.table.get(&pk, HEADER).await?;
        let mut merged = Merged::default();
        for attempt in 1..=MERGE_ATTEMPTS {
            merged.attempts = attempt;
            let old: Option<Header> = current.clone().map(from_item).transpose()?;
            let mut record = old.as_ref().map_or_else(
                || CallRecord::new(event.provider, &event.call_id),
                |h| h.record.clone(),
            );
            record.merge(event);
            let analysis_elsewhere = old.as_ref().is_some_and(|h| h.ext.contains_key("analysis"));
            merged.was = old
                .as_ref()
                .map_or_else(Marks::default, |h| Marks::of(&h.record, analysis_elsewhere));
            merged.now = Marks::of(&record, analysis_elsewhere);
            if finish.is_some() && record.sensitive_data_opt_out == Some(true) {
                return self
                    .merge_whole(event, finish, old.map(|h| h.version), merged)
                    .await;
            }
            let layout = self.layout(&pk, &record, old.as_ref(), Some(event.received_at))?;
            // New large values and new turns first: the header that points at them is written
            // last, so a reader never finds a reference to an item that is not there yet.
            let mut witnessed = false;
            for (sk, item) in &layout.others {
                if layout.turns.contains(sk) {
                    match self.table.put(item.clone(), Condition::Absent).await? {
                        Put::Written => witnessed = true,
                        Put::Refused(existing) => {
                            witnessed |= existing
                                .and_then(|e| e.get("received_at").cloned())
                                .is_some_and(|r| {
                                    r == AttributeValue::N(event.received_at.to_string())
                                });
                        }
                    }
                } else {
                    self.table.put(item.clone(), Condition::Always).await?;
                }
                merged.items_written += 1;
            }
            let old_header = match &old {
                Some(h) => Some(to_attributes(h)?),
                None => None,
            };
            if let Some(old_header) = &old_header {
                if same_header(old_header, &layout.header, witnessed) {
                    return Ok(merged);
                }
            }
            self.record_day(&pk, layout.time_key.as_deref()).await?;
            let condition = old
                .as_ref()
                .map_or(Condition::Absent, |h| Condition::Version(h.version));
            match self.table.put(layout.header.clone(), condition).await? {
                Put::Written => {
                    merged.header_written = true;
                    if let Some(old) = &old {
                        self.delete_unreferenced(&pk, &old.ext, &layout.header)
                            .await;
                    }
                    return Ok(merged);
                }
                Put::Refused(now) => {
                    current = now;
                    backoff(attempt, &pk).await;
                }
            }
        }
        Err(Error::storage(
            StorageKind::Conflict,
            format!("call record {pk} kept changing under concurrent merges"),
        ))
    }

    /// The merge of a record that must be seen whole: read it all, fold, rewrite it all.
    async fn merge_whole(
        &self,
        event: &CanonicalEvent,
        finish: Option<fn(&mut CallRecord)>,
        mut version: Option<u64>,
        mut merged: Merged,
    ) -> Result<Merged> {
        let pk = event.record_key();
        for attempt in merged.attempts..=MERGE_ATTEMPTS {
            merged.attempts = attempt;
            let (stored, items) = match self.load_items(&pk).await? {
                Some((record, version_now, items)) => {
                    version = Some(version_now);
                    (Some(record), items)
                }
                None => (None, Vec::new()),
            };
            let mut record = stored
                .clone()
                .unwrap_or_else(|| CallRecord::new(event.provider, &event.call_id));
            record.merge(event);
            if let Some(finish) = finish {
                finish(&mut record);
            }
            merged.was = stored
                .as_ref()
                .map_or_else(Marks::default, |r| Marks::of(r, false));
            merged.now = Marks::of(&record, false);
            if stored.as_ref() == Some(&record) {
                return Ok(merged);
            }
            if self.write_whole(&record, version, &items).await? {
                merged.header_written = true;
                return Ok(merged);
            }
            backoff(attempt, &pk).await;
        }
        Err(Error::storage(
            StorageKind::Conflict,
            format!("call record {pk} kept changing under concurrent merges"),
        ))
    }

    /// Writes `record` whole in place of the one read at `version` (`None`: there was none),
    /// given the items read with it: the items it lacks, then the header, then the removal of
    /// what it no longer has. `Ok(false)` when the record changed in between.
    async fn write_whole(
        &self,
        record: &CallRecord,
        version: Option<u64>,
        existing: &[Item],
    ) -> Result<bool> {
        let pk =
            crate::event::record_key(&record.provider, EventType::CallStarted, &record.call_id);
        let mut layout = self.layout(&pk, record, None, None)?;
        set_version(&mut layout.header, version.map_or(1, |v| v + 1));
        let present: HashSet<String> = existing.iter().filter_map(sk_of).collect();
        for (sk, item) in &layout.others {
            if !present.contains(sk) {
                self.table.put(item.clone(), Condition::Always).await?;
            }
        }
        self.record_day(&pk, layout.time_key.as_deref()).await?;
        let condition = version.map_or(Condition::Absent, Condition::Version);
        if self.table.put(layout.header, condition).await? != Put::Written {
            return Ok(false);
        }
        for sk in present {
            if sk != HEADER && !layout.others.contains_key(&sk) {
                // Best effort: an item left behind is never read (nothing references it).
                let _ = self.table.delete(&pk, &sk).await;
            }
        }
        Ok(true)
    }

    /// Replaces the record read at `version` with `record` (what `callhook replay` writes).
    /// `Ok(false)` when a merge changed it in between: read and rebuild again.
    pub async fn replace(&self, record: &CallRecord, version: Option<u64>) -> Result<bool> {
        let pk =
            crate::event::record_key(&record.provider, EventType::CallStarted, &record.call_id);
        let existing = self.table.query(&pk, "").await?;
        self.write_whole(record, version, &existing).await
    }

    /// The record of a call, whole, with the version of its header.
    pub async fn load(&self, pk: &str) -> Result<Option<(CallRecord, u64)>> {
        Ok(self
            .load_items(pk)
            .await?
            .map(|(record, version, _)| (record, version)))
    }

    async fn load_items(&self, pk: &str) -> Result<Option<(CallRecord, u64, Vec<Item>)>> {
        let items = self.table.query(pk, "").await?;
        let record = assemble(&items)?;
        Ok(record.map(|(record, version)| (record, version, items)))
    }

    /// The items `record` is stored as. With `old` (the header read for a merge), values that
    /// are in its `ext` and absent from `record` (not read, not changed) keep their reference,
    /// and the transcript turns in `record` are new live turns.
    /// `received_at`: the time of the event whose turns these are, stamped on their items.
    fn layout(
        &self,
        pk: &str,
        record: &CallRecord,
        old: Option<&Header>,
        received_at: Option<i64>,
    ) -> Result<Layout> {
        let mut fields = record_map(record)?;
        let mut ext = BTreeMap::new();
        let mut others = BTreeMap::new();
        let mut turns = Vec::new();
        let full_transcript = record.merge_sources.contains_key(TRANSCRIPT);
        let transcript = fields.remove(TRANSCRIPT);
        match transcript {
            Some(value) if full_transcript => {
                ext.insert(
                    TRANSCRIPT.to_owned(),
                    chunk_items(pk, TRANSCRIPT, &value, &mut others)?,
                );
            }
            Some(Value::Array(_)) => {
                for turn in &record.transcript {
                    let (sk, item) = turn_item(pk, turn, received_at, &mut others)?;
                    turns.push(sk.clone());
                    others.insert(sk, item);
                }
            }
            _ => {}
        }
        let large: Vec<String> = fields
            .iter()
            .filter(|(name, value)| {
                !PINNED.contains(&name.as_str()) && json_len(value) > FIELD_INLINE_BYTES
            })
            .map(|(name, _)| name.clone())
            .collect();
        for name in large {
            if let Some(value) = fields.remove(&name) {
                let reference = chunk_items(pk, &name, &value, &mut others)?;
                ext.insert(name, reference);
            }
        }
        if let Some(old) = old {
            for (name, reference) in &old.ext {
                let kept = if name == TRANSCRIPT {
                    full_transcript && record.transcript.is_empty()
                } else {
                    !fields.contains_key(name) && !ext.contains_key(name)
                };
                if kept {
                    ext.entry(name.clone()).or_insert_with(|| reference.clone());
                }
            }
        }
        let header_record: CallRecord = serde_json::from_value(Value::Object(fields))
            .map_err(|e| Error::Internal(format!("record layout: {e}")))?;
        let keys = IndexKeys::of_call(record, self.number_key);
        let time_key = keys.time_key.clone();
        let header = Header {
            pk: pk.to_owned(),
            sk: HEADER.to_owned(),
            kind: "call".to_owned(),
            version: old.map_or(1, |h| h.version + 1),
            keys,
            ext,
            record: header_record,
        };
        Ok(Layout {
            header: to_attributes(&header)?,
            others,
            turns,
            time_key,
        })
    }

    /// Records the day shard of the time index a header is in, once per process and day.
    async fn record_day(&self, pk: &str, time_key: Option<&str>) -> Result<()> {
        let Some(time_key) = time_key else {
            return Ok(());
        };
        let known = self
            .days
            .lock()
            .map(|days| days.contains(time_key))
            .unwrap_or(false);
        if known {
            return Ok(());
        }
        let Some((provider, day)) = time_key.split_once('#') else {
            return Err(Error::Internal(format!("time key {time_key} of {pk}")));
        };
        let item = HashMap::from([
            (
                "pk".to_owned(),
                AttributeValue::S(super::queries::days_key(provider)),
            ),
            ("sk".to_owned(), AttributeValue::S(day.to_owned())),
        ]);
        self.table.put(item, Condition::Always).await?;
        if let Ok(mut days) = self.days.lock() {
            days.insert(time_key.to_owned());
        }
        Ok(())
    }

    /// Removes the chunks of large values the previous header referenced and the new one does
    /// not. Best effort: an item left behind is never read.
    async fn delete_unreferenced(&self, pk: &str, old: &BTreeMap<String, ExtRef>, header: &Item) {
        let new: Option<Header> = from_item(header.clone()).ok();
        let new = new.map(|h| h.ext).unwrap_or_default();
        for (name, reference) in old {
            if new.get(name).is_some_and(|r| r.digest == reference.digest) {
                continue;
            }
            for index in 0..reference.parts as usize {
                let _ = self
                    .table
                    .delete(pk, &chunk_key(name, &reference.digest, index))
                    .await;
            }
        }
    }

    /// Stores a message record; a redelivery finds it there and changes nothing.
    pub async fn put_message(&self, message: &Message) -> Result<bool> {
        let pk = crate::event::record_key(
            &message.provider,
            EventType::MessageReceived,
            &message.message_id,
        );
        let mut fields = match serde_json::to_value(message) {
            Ok(Value::Object(map)) => map,
            _ => return Err(Error::Internal("message layout".into())),
        };
        let mut others = BTreeMap::new();
        let mut ext = BTreeMap::new();
        let large: Vec<String> = fields
            .iter()
            .filter(|(name, value)| {
                !PINNED_MESSAGE.contains(&name.as_str()) && json_len(value) > FIELD_INLINE_BYTES
            })
            .map(|(name, _)| name.clone())
            .collect();
        for name in large {
            if let Some(value) = fields.remove(&name) {
                ext.insert(name.clone(), chunk_items(&pk, &name, &value, &mut others)?);
            }
        }
        let inline: Message = serde_json::from_value(Value::Object(fields))
            .map_err(|e| Error::Internal(format!("message layout: {e}")))?;
        let item = MessageItem {
            pk,
            sk: HEADER.to_owned(),
            kind: "message".to_owned(),
            keys: IndexKeys::of_message(message, self.number_key),
            ext,
            message: inline,
        };
        for chunk in others.into_values() {
            self.table.put(chunk, Condition::Always).await?;
        }
        Ok(self
            .table
            .put(to_attributes(&item)?, Condition::Absent)
            .await?
            == Put::Written)
    }

    /// A message record, whole.
    pub async fn load_message(&self, pk: &str) -> Result<Option<MessageItem>> {
        let items = self.table.query(pk, "").await?;
        let chunks = chunk_map(&items);
        let Some(header) = items.iter().find(|i| sk_of(i).as_deref() == Some(HEADER)) else {
            return Ok(None);
        };
        let mut item: MessageItem = from_item(header.clone())?;
        if !item.ext.is_empty() {
            let mut fields = match serde_json::to_value(&item.message) {
                Ok(Value::Object(map)) => map,
                _ => return Err(Error::Internal("message layout".into())),
            };
            for (name, reference) in &item.ext {
                fields.insert(name.clone(), read_value(&chunks, name, reference, pk)?);
            }
            item.message = serde_json::from_value(Value::Object(fields))
                .map_err(|e| Error::Internal(format!("message layout: {e}")))?;
        }
        Ok(Some(item))
    }
}

/// The record of a collection's items, with its header's version; `None` without a header.
fn assemble(items: &[Item]) -> Result<Option<(CallRecord, u64)>> {
    let Some(header) = items.iter().find(|i| sk_of(i).as_deref() == Some(HEADER)) else {
        return Ok(None);
    };
    let header: Header = from_item(header.clone())?;
    let pk = header.pk.clone();
    let chunks = chunk_map(items);
    let mut fields = record_map(&header.record)?;
    for (name, reference) in &header.ext {
        fields.insert(name.clone(), read_value(&chunks, name, reference, &pk)?);
    }
    let mut record: CallRecord = serde_json::from_value(Value::Object(fields))
        .map_err(|e| Error::Internal(format!("stored record of {pk} does not decode: {e}")))?;
    let full_transcript = record.merge_sources.contains_key(TRANSCRIPT);
    let mut live = Vec::new();
    for item in items {
        let Some(sk) = sk_of(item) else { continue };
        if !sk.starts_with(TURN) {
            continue;
        }
        let turn: TurnItem = from_item(item.clone())?;
        if let Some(at) = turn.received_at {
            record.first_event_at = Some(record.first_event_at.map_or(at, |t| t.min(at)));
            record.last_event_at = Some(record.last_event_at.map_or(at, |t| t.max(at)));
        }
        if full_transcript {
            continue;
        }
        let content = match &turn.content_ref {
            Some(reference) => match read_value(&chunks, "turn", reference, &pk)? {
                Value::String(s) => s,
                _ => return Err(Error::Internal(format!("a turn of {pk} does not decode"))),
            },
            None => turn.content,
        };
        live.push(Turn {
            at: turn.at,
            role: turn.role.into(),
            content,
        });
    }
    if !full_transcript {
        live.sort();
        live.dedup();
        record.transcript = live;
    }
    Ok(Some((record, header.version)))
}

fn record_map(record: &CallRecord) -> Result<Map<String, Value>> {
    match serde_json::to_value(record) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(Error::Internal("record layout".into())),
    }
}

fn json_len(value: &Value) -> usize {
    serde_json::to_vec(value).map_or(usize::MAX, |v| v.len())
}

fn sk_of(item: &Item) -> Option<String> {
    item.get("sk").and_then(|v| v.as_s().ok()).cloned()
}

fn set_version(header: &mut Item, version: u64) {
    header.insert("version".to_owned(), AttributeValue::N(version.to_string()));
}

/// Whether the new header says nothing the old one does not, once the version is left aside
/// and, when the event's turn item witnesses its time (`witnessed`), its received time too.
fn same_header(old: &Item, new: &Item, witnessed: bool) -> bool {
    let mut ignored = vec!["version"];
    if witnessed {
        ignored.extend(["first_event_at", "last_event_at"]);
    }
    let strip = |item: &Item| -> Item {
        item.iter()
            .filter(|(k, _)| !ignored.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    // With the turn item holding this event's time, a reader's min and max over the header and
    // the turns give the bounds the new header would have held.
    strip(old) == strip(new)
}

fn chunk_key(field: &str, digest: &str, index: usize) -> String {
    format!("{FIELD}{field}#{digest}#{:04}", index + 1)
}

/// Adds the chunk items of `value` (its JSON) to `items` and returns where they are.
fn chunk_items(
    pk: &str,
    field: &str,
    value: &Value,
    items: &mut BTreeMap<String, Item>,
) -> Result<ExtRef> {
    let json =
        serde_json::to_vec(value).map_err(|e| Error::Internal(format!("value encoding: {e}")))?;
    let digest = codec::digest(&json);
    let packed = Packed::new(&json);
    let parts = u32::try_from(packed.chunks.len())
        .map_err(|_| Error::Internal("value too large".into()))?;
    for (index, chunk) in packed.chunks.into_iter().enumerate() {
        let sk = chunk_key(field, &digest, index);
        let item = ChunkItem {
            pk: pk.to_owned(),
            sk: sk.clone(),
            v: ByteBuf::from(chunk),
        };
        items.insert(sk, to_attributes(&item)?);
    }
    Ok(ExtRef {
        digest,
        parts,
        encoding: packed.encoding.as_str().to_owned(),
    })
}

/// A live turn's item (and the chunks of its content when it is large).
fn turn_item(
    pk: &str,
    turn: &Turn,
    received_at: Option<i64>,
    items: &mut BTreeMap<String, Item>,
) -> Result<(String, Item)> {
    let json =
        serde_json::to_vec(turn).map_err(|e| Error::Internal(format!("turn encoding: {e}")))?;
    let at = match turn.at {
        Some(at) if at >= 0 => format!("{at:013}"),
        Some(_) => "neg".to_owned(),
        None => "-".to_owned(),
    };
    let sk = format!("{TURN}{at}#{}", codec::digest(&json));
    let (content, content_ref) = if turn.content.len() > TURN_INLINE_BYTES {
        let reference = chunk_items(pk, "turn", &Value::String(turn.content.clone()), items)?;
        (String::new(), Some(reference))
    } else {
        (turn.content.clone(), None)
    };
    let item = TurnItem {
        pk: pk.to_owned(),
        sk: sk.clone(),
        at: turn.at,
        role: turn.role.to_string(),
        content,
        content_ref,
        received_at,
    };
    Ok((sk, to_attributes(&item)?))
}

/// The chunk items of a collection, by sort key.
fn chunk_map(items: &[Item]) -> HashMap<String, Vec<u8>> {
    items
        .iter()
        .filter_map(|item| {
            let sk = sk_of(item)?;
            if !sk.starts_with(FIELD) {
                return None;
            }
            let bytes = item
                .get("v")
                .and_then(|v| v.as_b().ok())?
                .clone()
                .into_inner();
            Some((sk, bytes))
        })
        .collect()
}

fn read_value(
    chunks: &HashMap<String, Vec<u8>>,
    field: &str,
    reference: &ExtRef,
    pk: &str,
) -> Result<Value> {
    let mut parts = Vec::with_capacity(reference.parts as usize);
    for index in 0..reference.parts as usize {
        let part = chunks
            .get(&chunk_key(field, &reference.digest, index))
            .ok_or_else(|| {
                Error::storage(
                    StorageKind::Transient,
                    format!("part {} of `{field}` of {pk} is not there (yet)", index + 1),
                )
            })?;
        parts.push(part.as_slice());
    }
    let json = codec::unpack(Encoding::parse(Some(&reference.encoding))?, parts)?;
    serde_json::from_slice(&json)
        .map_err(|e| Error::Internal(format!("`{field}` of {pk} does not decode: {e}")))
}

/// Waits before the next attempt of a merge that lost a race: exponential, with full jitter so
/// that racing writers spread out.
async fn backoff(attempt: u32, pk: &str) {
    let cap_ms = (5u64 << attempt.min(6)).min(250);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let seed = codec::digest(format!("{pk}{attempt}{nanos}").as_bytes());
    let random = u64::from_str_radix(&seed[..8], 16).unwrap_or(0);
    tokio::time::sleep(Duration::from_millis(random % (cap_ms + 1))).await;
}
