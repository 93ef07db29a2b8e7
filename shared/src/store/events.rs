//! The events table, the durable inbox. Key `pk` (the record key, `call#<provider>#<call id>`)
//! + `sk`:
//!
//! - `ev#<dedupe key>`: one item per canonical event, written by ONE conditional put whose
//!   condition failure *is* the duplicate answer (the old item comes back with it, so no read is
//!   needed). The stream reacts to these items only.
//! - `body#<digest>#<nnnn>` and `body#<digest>`: a raw body too large to sit in its event item
//!   (or shared by the several events of one delivery), named by its content: its parts, then a
//!   small manifest written last. A redelivery finds the manifest and writes no part again, and
//!   the two events of a Vox v1 `call_ended` share one stored body.
//!
//! Small bodies sit in the event item: verbatim (`body`) when UTF-8 and at most 16 KiB, else
//! encoded (`body_gz`). Quarantined bodies live under `quarantine#<provider>`, `q#<digest>`.

use super::Store;
use super::codec::{self, Encoding, Packed};
use super::dynamo::{Condition, Item, Put, Table, from_item, storage};
use crate::error::{Error, Result, StorageKind};
use crate::event::{CanonicalEvent, EventType};
use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

pub const TYPE_PART: &str = "part";
pub const TYPE_BODY: &str = "body";
pub const TYPE_QUARANTINE: &str = "quarantine";

/// Encoded bodies up to this size sit in their event item; larger ones are stored once, as parts.
pub const INLINE_BODY_BYTES: usize = 64 * 1024;
/// A delivery of several events shares one stored body past this size (below it, one write unit
/// per event holds the body anyway).
pub const SHARED_BODY_BYTES: usize = 1024;
/// A stored body whose manifest expires sooner than this is written again rather than reused:
/// TTL deletes items up to days after their time, and expiry is checked here, not trusted to it.
const REUSE_MARGIN_SECONDS: i64 = 86_400;

/// One item of the events table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventItem {
    pub pk: String,
    pub sk: String,
    /// The canonical event type, or `part` / `body` / `quarantine`. The stream filters read it.
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
    /// The raw body encoded (`body_encoding`), or this part of a stored body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_gz: Option<ByteBuf>,
    /// `gzip` or `raw` for `body_gz` (or for the parts of `body_ref`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_encoding: Option<String>,
    /// The digest of the stored body this event's body is (`body#<digest>` items).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_ref: Option<String>,
    /// How many parts the stored body has (on event items with `body_ref`, and on manifests).
    #[serde(default)]
    pub parts: u32,
    /// The raw body's length in bytes, so that listings need not read the body (absent on items
    /// stored before callhook wrote it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Under the redact policy: the number index keys of the numbers the body held before it
    /// was redacted (the stored body no longer has them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_key: Option<String>,
    /// Unix seconds; DynamoDB's TTL deletes the item some time after.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
}

impl EventItem {
    pub fn event_type(&self) -> Option<EventType> {
        EventType::parse(&self.kind)
    }

    /// An item with its key, type, provider and receipt time, and nothing else.
    pub fn new(pk: String, sk: String, kind: &str, provider: &str, received_at: i64) -> Self {
        Self {
            pk,
            sk,
            kind: kind.to_owned(),
            provider: provider.to_owned(),
            provider_event: String::new(),
            call_id: String::new(),
            dedupe_key: String::new(),
            received_at,
            occurred_at: None,
            body: None,
            body_gz: None,
            body_encoding: None,
            body_ref: None,
            parts: 0,
            body_bytes: None,
            error: None,
            from_key: None,
            to_key: None,
            expires_at: None,
        }
    }

    /// The item as DynamoDB attribute values: what `serde_dynamo` makes of it (a test holds the
    /// two equal), built directly, with no intermediate map, on ingest's path.
    pub fn to_attributes(&self) -> Item {
        fn s(value: &str) -> AttributeValue {
            AttributeValue::S(value.to_owned())
        }
        fn n(value: impl ToString) -> AttributeValue {
            AttributeValue::N(value.to_string())
        }
        let mut item = Item::with_capacity(16);
        let mut put = |name: &str, value: AttributeValue| {
            item.insert(name.to_owned(), value);
        };
        put("pk", s(&self.pk));
        put("sk", s(&self.sk));
        put("type", s(&self.kind));
        put("provider", s(&self.provider));
        for (name, value) in [
            ("provider_event", &self.provider_event),
            ("call_id", &self.call_id),
            ("dedupe_key", &self.dedupe_key),
        ] {
            if !value.is_empty() {
                put(name, s(value));
            }
        }
        put("received_at", n(self.received_at));
        if let Some(at) = self.occurred_at {
            put("occurred_at", n(at));
        }
        if let Some(body) = &self.body {
            put("body", s(body));
        }
        if let Some(bytes) = &self.body_gz {
            put("body_gz", AttributeValue::B(bytes.to_vec().into()));
        }
        for (name, value) in [
            ("body_encoding", &self.body_encoding),
            ("body_ref", &self.body_ref),
        ] {
            if let Some(value) = value {
                put(name, s(value));
            }
        }
        put("parts", n(self.parts));
        if let Some(bytes) = self.body_bytes {
            put("body_bytes", n(bytes));
        }
        for (name, value) in [
            ("error", &self.error),
            ("from_key", &self.from_key),
            ("to_key", &self.to_key),
        ] {
            if let Some(value) = value {
                put(name, s(value));
            }
        }
        if let Some(at) = self.expires_at {
            put("expires_at", n(at));
        }
        item
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

/// What one delivery (or one quarantined body) is stored as: the stored body, if it does not sit
/// in the items themselves (its parts, then its manifest: the order they are written in), and
/// the items the stream reacts to. Pure: the benchmarks time exactly what ingest builds.
#[derive(Debug, Clone, PartialEq)]
pub struct EventItems {
    pub body: Vec<EventItem>,
    pub items: Vec<EventItem>,
}

impl EventItems {
    /// The items of one delivery's events, which all belong to one record.
    pub fn for_delivery(
        events: &[CanonicalEvent],
        body: &[u8],
        expires_at: Option<i64>,
    ) -> Result<Self> {
        let items = events
            .iter()
            .map(|event| {
                let mut item = EventItem::new(
                    event.record_key(),
                    format!("ev#{}", event.dedupe_key),
                    event.event_type.as_str(),
                    event.provider,
                    event.received_at,
                );
                item.provider_event.clone_from(&event.provider_event);
                item.call_id.clone_from(&event.call_id);
                item.dedupe_key.clone_from(&event.dedupe_key);
                item.occurred_at = event.occurred_at;
                item.expires_at = expires_at;
                if let crate::event::EventData::Call(patch) = &event.data {
                    item.from_key.clone_from(&patch.from_key);
                    item.to_key.clone_from(&patch.to_key);
                }
                item
            })
            .collect();
        Self::with_body(items, body)
    }

    pub fn for_quarantine(
        provider: &str,
        error: &Error,
        body: &[u8],
        received_at: i64,
        expires_at: Option<i64>,
    ) -> Result<Self> {
        let digest = codec::digest(body);
        let mut item = EventItem::new(
            format!("{TYPE_QUARANTINE}#{provider}"),
            format!("q#{digest}"),
            TYPE_QUARANTINE,
            provider,
            received_at,
        );
        item.dedupe_key = digest;
        item.error = Some(error.to_string());
        item.expires_at = expires_at;
        Self::with_body(vec![item], body)
    }

    fn with_body(mut items: Vec<EventItem>, body: &[u8]) -> Result<Self> {
        for item in &mut items {
            item.body_bytes = Some(body.len() as u64);
        }
        let Some(first) = items.first() else {
            return Ok(Self {
                body: Vec::new(),
                items,
            });
        };
        if body.len() <= codec::COMPRESS_ABOVE && items.len() == 1 {
            if let Ok(text) = simdutf8::basic::from_utf8(body) {
                items[0].body = Some(text.to_owned());
                return Ok(Self {
                    body: Vec::new(),
                    items,
                });
            }
        }
        let packed = Packed::new(body);
        let encoding = Some(packed.encoding.as_str().to_owned());
        let shared = packed.len() > INLINE_BODY_BYTES
            || (items.len() > 1 && packed.len() > SHARED_BODY_BYTES);
        if !shared {
            let bytes = packed.chunks.concat();
            for item in &mut items {
                item.body_gz = Some(ByteBuf::from(bytes.clone()));
                item.body_encoding.clone_from(&encoding);
            }
            return Ok(Self {
                body: Vec::new(),
                items,
            });
        }
        let digest = codec::digest(body);
        let parts = u32::try_from(packed.chunks.len())
            .map_err(|_| Error::Internal("body too large".into()))?;
        let (pk, received_at, expires_at) = (first.pk.clone(), first.received_at, first.expires_at);
        let mut stored: Vec<EventItem> = packed
            .chunks
            .into_iter()
            .enumerate()
            .map(|(index, chunk)| {
                let mut part = EventItem::new(
                    pk.clone(),
                    part_key(&digest, index),
                    TYPE_PART,
                    &items[0].provider,
                    received_at,
                );
                part.body_gz = Some(ByteBuf::from(chunk));
                part.expires_at = expires_at;
                part
            })
            .collect();
        let mut manifest = EventItem::new(
            pk,
            format!("body#{digest}"),
            TYPE_BODY,
            &items[0].provider,
            received_at,
        );
        manifest.parts = parts;
        manifest.body_encoding.clone_from(&encoding);
        manifest.expires_at = expires_at;
        stored.push(manifest);
        for item in &mut items {
            item.body_ref = Some(digest.clone());
            item.parts = parts;
            item.body_encoding.clone_from(&encoding);
        }
        Ok(Self {
            body: stored,
            items,
        })
    }

    /// The DynamoDB attribute values of every item, in the order they are written.
    pub fn to_attributes(&self) -> Result<Vec<Item>> {
        self.body
            .iter()
            .chain(&self.items)
            .map(|item| Ok(item.to_attributes()))
            .collect()
    }
}

fn part_key(digest: &str, index: usize) -> String {
    format!("body#{digest}#{:04}", index + 1)
}

impl Store {
    /// Stores the events of one delivery with the body they came from: the body first (unless
    /// an earlier delivery stored it), then one conditional put per event.
    pub async fn put_delivery(
        &self,
        events: &[CanonicalEvent],
        body: &[u8],
    ) -> Result<Vec<Stored>> {
        let Some(first) = events.first() else {
            return Ok(Vec::new());
        };
        let items = EventItems::for_delivery(events, body, self.expiry(first.received_at))?;
        self.put_body(&items).await?;
        let mut stored = Vec::with_capacity(events.len());
        for (event, item) in events.iter().zip(items.items) {
            let first_received_at = match self
                .events()
                .put(item.to_attributes(), Condition::Absent)
                .await?
            {
                Put::Written => None,
                Put::Refused(old) => Some(
                    old.as_ref()
                        .and_then(|old| old.get("received_at"))
                        .and_then(|v| v.as_n().ok())
                        .and_then(|n| n.parse().ok())
                        .unwrap_or(event.received_at),
                ),
            };
            stored.push(Stored {
                event_type: event.event_type,
                dedupe_key: event.dedupe_key.clone(),
                duplicate: first_received_at.is_some(),
                first_received_at: first_received_at.unwrap_or(event.received_at),
            });
        }
        Ok(stored)
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
        self.put_body(&items).await?;
        let mut written = false;
        for item in &items.items {
            written |= self
                .events()
                .put(item.to_attributes(), Condition::Absent)
                .await?
                == Put::Written;
        }
        Ok(written)
    }

    /// Writes a stored body's parts, then its manifest, unless a manifest that lives long enough
    /// is already there.
    async fn put_body(&self, items: &EventItems) -> Result<()> {
        let Some(manifest) = items.body.last() else {
            return Ok(());
        };
        if let Some(existing) = self.events().get(&manifest.pk, &manifest.sk).await? {
            let existing: EventItem = from_item(existing)?;
            let now = crate::handlers::now_ms() / 1000;
            if existing
                .expires_at
                .is_none_or(|at| at > now + REUSE_MARGIN_SECONDS)
            {
                return Ok(());
            }
        }
        for item in &items.body {
            self.events()
                .put(item.to_attributes(), Condition::Always)
                .await?;
        }
        Ok(())
    }

    /// The raw body of a stored event (or quarantined payload).
    pub async fn load_body(&self, item: &EventItem) -> Result<Vec<u8>> {
        if let Some(body) = &item.body {
            return Ok(body.clone().into_bytes());
        }
        let encoding = Encoding::parse(item.body_encoding.as_deref())?;
        let Some(digest) = &item.body_ref else {
            let bytes = item
                .body_gz
                .as_ref()
                .map(|b| b.as_slice())
                .unwrap_or_default();
            return codec::unpack(encoding, [bytes]);
        };
        let parts: Vec<EventItem> = self
            .events()
            .query(&item.pk, &format!("body#{digest}#"))
            .await?
            .into_iter()
            .map(from_item)
            .collect::<Result<_>>()?;
        if parts.len() != item.parts as usize {
            // Parts are written before the items that point at them: a missing one means TTL or
            // a person deleted it, and waiting will not bring it back.
            return Err(Error::storage(
                StorageKind::Rejected,
                format!(
                    "{} of {} body parts of {} found",
                    parts.len(),
                    item.parts,
                    item.pk
                ),
            ));
        }
        codec::unpack(
            encoding,
            parts
                .iter()
                .map(|p| p.body_gz.as_ref().map(|b| b.as_slice()).unwrap_or_default()),
        )
    }

    /// Every stored event of a record, oldest first.
    pub async fn events_of(&self, record_key: &str) -> Result<Vec<EventItem>> {
        let mut events: Vec<EventItem> = self
            .events()
            .query(record_key, "ev#")
            .await?
            .into_iter()
            .map(from_item)
            .collect::<Result<_>>()?;
        sort_events(&mut events);
        Ok(events)
    }

    /// Every stored event of a record, oldest first, without its body: what listings show.
    /// [`Store::body_size`] tells each body's size; [`Store::load_body`] needs the whole item.
    pub async fn event_headers(&self, record_key: &str) -> Result<Vec<EventItem>> {
        let mut events = self.headers(record_key, "ev#", None).await?;
        sort_events(&mut events);
        Ok(events)
    }

    /// One item of the events table.
    pub async fn get_event(&self, pk: &str, sk: &str) -> Result<Option<EventItem>> {
        self.events().get(pk, sk).await?.map(from_item).transpose()
    }

    /// The quarantined payloads of a provider received at or after `since` (unix ms), without
    /// their bodies: one Query of one partition, never a scan.
    pub async fn quarantined(&self, provider: &str, since: Option<i64>) -> Result<Vec<EventItem>> {
        self.headers(&format!("{TYPE_QUARANTINE}#{provider}"), "q#", since)
            .await
    }

    /// The size in bytes of a stored event's raw body, from the item's own record of it; items
    /// written before callhook recorded sizes have their body read.
    pub async fn body_size(&self, item: &EventItem) -> Result<u64> {
        if let Some(bytes) = item.body_bytes {
            return Ok(bytes);
        }
        let whole = match self.get_event(&item.pk, &item.sk).await? {
            Some(whole) => whole,
            None => return Ok(0),
        };
        Ok(self.load_body(&whole).await?.len() as u64)
    }

    /// The items of one partition whose sort key starts with `prefix` (and, given `since`,
    /// received at or after it), every attribute but the body's own: a projection, so the
    /// bodies never cross the network (DynamoDB still counts whole items against read capacity).
    async fn headers(&self, pk: &str, prefix: &str, since: Option<i64>) -> Result<Vec<EventItem>> {
        let projection = (0..HEADER_ATTRIBUTES.len())
            .map(|i| format!("#a{i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let items = self
            .events()
            .query_shaped(pk, prefix, |mut query| {
                query = query.projection_expression(&projection);
                for (i, name) in HEADER_ATTRIBUTES.iter().enumerate() {
                    query = query.expression_attribute_names(format!("#a{i}"), *name);
                }
                match since {
                    Some(since) => query
                        .filter_expression("#since >= :since")
                        .expression_attribute_names("#since", "received_at")
                        .expression_attribute_values(
                            ":since",
                            AttributeValue::N(since.to_string()),
                        ),
                    None => query,
                }
            })
            .await?;
        items.into_iter().map(from_item).collect()
    }

    /// A Scan of the events table for the record keys of every call that has events: only
    /// `callhook replay --from-events` walks the whole table, to find calls whose record is
    /// missing altogether. Read page by page, so that work can start on the first keys.
    pub fn scan_call_keys(&self) -> CallKeyScan<'_> {
        CallKeyScan {
            store: self,
            start: None,
            done: false,
        }
    }

    /// Every item of the events table a Scan shaped by `shape` returns, page after page.
    async fn scan_events(
        &self,
        shape: impl Fn(
            aws_sdk_dynamodb::operation::scan::builders::ScanFluentBuilder,
        ) -> aws_sdk_dynamodb::operation::scan::builders::ScanFluentBuilder,
    ) -> Result<Vec<Item>> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let out = shape(self.client.scan().table_name(&self.events_table))
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

    /// References to every event (of a type a function merges) received between `from` and
    /// `to` (unix ms, inclusive), read with a Scan: what `callhook failures replay` merges again
    /// for a batch of stream records the pipe could not put on the bus.
    pub async fn events_received_between(
        &self,
        from: i64,
        to: i64,
    ) -> Result<Vec<crate::bus::EventRef>> {
        let items = self
            .scan_events(|scan| {
                scan.filter_expression("received_at BETWEEN :from AND :to AND begins_with(sk, :ev)")
                    .expression_attribute_values(":from", AttributeValue::N(from.to_string()))
                    .expression_attribute_values(":to", AttributeValue::N(to.to_string()))
                    .expression_attribute_values(":ev", AttributeValue::S("ev#".into()))
                    .projection_expression("pk, sk, #t, provider, call_id, dedupe_key, received_at")
                    .expression_attribute_names("#t", "type")
            })
            .await?;
        let mut refs = Vec::new();
        for item in items {
            let text = |name: &str| {
                item.get(name)
                    .and_then(|v| v.as_s().ok().or_else(|| v.as_n().ok()))
                    .cloned()
                    .unwrap_or_default()
            };
            let kind = text("type");
            if EventType::parse(&kind).is_some_and(|t| t != EventType::Unknown) {
                refs.push(crate::bus::EventRef {
                    id: text("dedupe_key"),
                    pk: text("pk"),
                    sk: text("sk"),
                    kind,
                    provider: text("provider"),
                    call_id: text("call_id"),
                    received_at: text("received_at"),
                });
            }
        }
        refs.sort_by(|x, y| (&x.received_at, &x.sk).cmp(&(&y.received_at, &y.sk)));
        Ok(refs)
    }
}

/// Every attribute of an events-table item except the body's own (`body`, `body_gz`).
const HEADER_ATTRIBUTES: &[&str] = &[
    "pk",
    "sk",
    "type",
    "provider",
    "provider_event",
    "call_id",
    "dedupe_key",
    "received_at",
    "occurred_at",
    "body_encoding",
    "body_ref",
    "parts",
    "body_bytes",
    "error",
    "from_key",
    "to_key",
    "expires_at",
];

/// Oldest first; events received in the same millisecond in their types' order.
fn sort_events(events: &mut [EventItem]) {
    events.sort_by(|a, b| {
        (a.received_at, a.event_type(), &a.sk).cmp(&(b.received_at, b.event_type(), &b.sk))
    });
}

/// A Scan of the events table for call record keys, one page at a time
/// ([`Store::scan_call_keys`]). A call's key comes once per event: callers de-duplicate.
#[derive(Debug)]
pub struct CallKeyScan<'a> {
    store: &'a Store,
    start: Option<Item>,
    done: bool,
}

impl CallKeyScan<'_> {
    /// The call record keys of the next page (possibly none), or `None` once the scan is over.
    pub async fn next_page(&mut self) -> Result<Option<Vec<String>>> {
        if self.done {
            return Ok(None);
        }
        let out = self
            .store
            .client
            .scan()
            .table_name(&self.store.events_table)
            .projection_expression("pk, #t")
            .expression_attribute_names("#t", "type")
            .set_exclusive_start_key(self.start.take())
            .send()
            .await
            .map_err(storage)?;
        self.start = out.last_evaluated_key;
        self.done = self.start.is_none();
        let keys = out
            .items
            .unwrap_or_default()
            .into_iter()
            .filter_map(|mut item| {
                let kind = item.get("type").and_then(|t| t.as_s().ok());
                let is_call_event = kind
                    .and_then(|k| EventType::parse(k))
                    .is_some_and(|t| t != EventType::MessageReceived);
                match item.remove("pk") {
                    Some(AttributeValue::S(pk)) if is_call_event => Some(pk),
                    _ => None,
                }
            })
            .collect();
        Ok(Some(keys))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{DeliveryContext, EventData, dedupe_key};
    use crate::store::codec::{CHUNK_BYTES, noise};
    use crate::store::to_attributes;

    fn event(event_type: EventType, body: &[u8]) -> CanonicalEvent {
        let ctx = DeliveryContext::default();
        CanonicalEvent {
            provider: "vox",
            event_type,
            provider_event: "call_ended".into(),
            call_id: "c1".into(),
            dedupe_key: dedupe_key("vox", event_type, "c1", &ctx, body),
            occurred_at: None,
            received_at: 1,
            data: EventData::Opaque,
        }
    }

    #[test]
    fn a_small_body_sits_verbatim_in_its_event_item() {
        let items =
            EventItems::for_delivery(&[event(EventType::CallEnded, b"{}")], b"{}", None).unwrap();
        assert!(items.body.is_empty());
        assert_eq!(items.items[0].body.as_deref(), Some("{}"));
        assert_eq!(items.items[0].pk, "call#vox#c1");
    }

    #[test]
    fn a_large_body_is_stored_once_by_content_and_named_by_every_event_of_its_delivery() {
        let body = noise(1 << 20);
        let events = [
            event(EventType::CallEnded, &body),
            event(EventType::CallAnalyzed, &body),
        ];
        let items = EventItems::for_delivery(&events, &body, Some(9)).unwrap();
        let digest = codec::digest(&body);
        // Three parts of at most 350 KiB, then the manifest that says how many.
        assert_eq!(items.body.len(), 4);
        let manifest = items.body.last().unwrap();
        assert_eq!(manifest.sk, format!("body#{digest}"));
        assert_eq!((manifest.kind.as_str(), manifest.parts), (TYPE_BODY, 3));
        for (index, part) in items.body[..3].iter().enumerate() {
            assert_eq!(part.sk, format!("body#{digest}#{:04}", index + 1));
            assert_eq!(part.expires_at, Some(9));
            assert!(part.body_gz.as_ref().unwrap().len() <= CHUNK_BYTES);
        }
        for item in &items.items {
            assert_eq!(item.body_ref.as_deref(), Some(digest.as_str()));
            assert!(item.body.is_none() && item.body_gz.is_none());
        }
        let gz: Vec<&[u8]> = items.body[..3]
            .iter()
            .map(|p| p.body_gz.as_ref().unwrap().as_slice())
            .collect();
        assert_eq!(codec::unpack(Encoding::Gzip, gz).unwrap(), body);
        // The same body again names the same items: a redelivery writes no new part.
        let again = EventItems::for_delivery(&events, &body, Some(9)).unwrap();
        assert_eq!(again.body, items.body);
    }

    #[test]
    fn a_medium_body_shared_by_two_events_is_stored_once() {
        let body = vec![b'x'; 4096];
        let events = [
            event(EventType::CallEnded, &body),
            event(EventType::CallAnalyzed, &body),
        ];
        let items = EventItems::for_delivery(&events, &body, None).unwrap();
        assert_eq!(items.body.len(), 2, "one part and its manifest");
        assert!(items.items.iter().all(|i| i.body_ref.is_some()));
        // Alone, the same body sits in its item.
        let one = EventItems::for_delivery(&events[..1], &body, None).unwrap();
        assert!(one.body.is_empty());
    }

    #[test]
    fn a_quarantined_body_too_large_for_one_item_is_stored_in_parts() {
        let body = noise(1 << 20);
        let error = Error::Unusable("x".into());
        let items = EventItems::for_quarantine("vox", &error, &body, 1, None).unwrap();
        assert_eq!(items.items.len(), 1);
        assert_eq!(items.items[0].parts, 3);
        assert_eq!(items.items[0].pk, "quarantine#vox");
        assert_eq!(items.to_attributes().unwrap().len(), 5);
    }

    #[test]
    fn items_built_directly_are_what_serde_dynamo_makes_of_them() {
        let event = |t| event(t, b"{}");
        let small = b"{\"event\":\"call_ended\"}".to_vec();
        let not_utf8 = vec![0xFF, 0xFE, b'{'];
        let mut all: Vec<EventItem> = Vec::new();
        for (events, body) in [
            (vec![event(EventType::CallEnded)], small.clone()),
            (vec![event(EventType::CallEnded)], not_utf8),
            (vec![event(EventType::CallEnded)], noise(40 * 1024)),
            (
                vec![event(EventType::CallEnded), event(EventType::CallAnalyzed)],
                noise(4 * 1024),
            ),
            (vec![event(EventType::CallEnded)], noise(1 << 20)),
        ] {
            let items = EventItems::for_delivery(&events, &body, Some(1_900_000_000)).unwrap();
            all.extend(items.body);
            all.extend(items.items);
        }
        let quarantined =
            EventItems::for_quarantine("vox", &Error::Unusable("x".into()), &small, 7, None)
                .unwrap();
        all.extend(quarantined.items);
        let mut every = all[0].clone();
        every.provider_event = "call_ended".into();
        every.occurred_at = Some(-5);
        every.body_gz = Some(ByteBuf::from(vec![1u8, 2]));
        every.body_encoding = Some("gzip".into());
        every.body_ref = Some("d".into());
        every.error = Some("e".into());
        every.from_key = Some("f".into());
        every.to_key = Some("t".into());
        all.push(every);
        let mut bare = EventItem::new("p".into(), "s".into(), "part", "vox", 0);
        bare.parts = 0;
        all.push(bare);
        for item in &all {
            assert_eq!(
                item.to_attributes(),
                to_attributes(item).unwrap(),
                "{}",
                item.sk
            );
        }
        // Every optional attribute was present in one item or another.
        let names: std::collections::BTreeSet<String> = all
            .iter()
            .flat_map(|i| i.to_attributes().into_keys())
            .collect();
        assert_eq!(names.len(), 19, "{names:?}");
    }

    #[test]
    fn event_items_round_trip_through_dynamodb_attribute_values() {
        let mut item = EventItems::for_delivery(&[event(EventType::CallEnded, b"{}")], b"{}", None)
            .unwrap()
            .items
            .remove(0);
        item.body = None;
        item.body_gz = Some(ByteBuf::from(vec![0u8, 1, 2]));
        let attributes = to_attributes(&item).unwrap();
        assert!(matches!(attributes["body_gz"], AttributeValue::B(_)));
        assert_eq!(attributes["type"], AttributeValue::S("call_ended".into()));
        assert_eq!(from_item::<EventItem>(attributes).unwrap(), item);
    }
}
