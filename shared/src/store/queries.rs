//! What the CLI lists, through the calls table's indexes (never a scan). Each index is sparse (a
//! record without the attribute is not in it) and projects only what a listing prints; `--json`
//! reads the full record. Keys carry their kind and provider, so no two kinds of value meet:
//!
//! - `by_time`: `time_key` = `<provider>#<UTC day of sort_at>`, one partition per provider and
//!   day rather than one per provider for the whole table (a hot key at any real volume). The
//!   days a provider has calls on are items `days#<provider>` / `<day>` of the calls table, so a
//!   listing queries exactly the days of its window that exist.
//! - `by_agent`: `agent_key` = `<provider>#<agent id>`.
//! - `by_from` / `by_to`: `from_key` / `to_key` = `n#<number>` as the provider sent it, or,
//!   under the redact policy, `h#<keyed hash of the number>`: the index never holds the number.

use super::Store;
use super::calls::CallSummary;
use super::dynamo::{Item, from_item, storage};
use crate::error::Result;
use crate::event::Message;
use crate::record::CallRecord;
use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};

/// Index key values longer than this are left out of the index (DynamoDB's limit for a key
/// attribute of an index is 2048 bytes; nobody looks a call up by a kilobyte-long value).
const KEY_BYTES: usize = 1024;

/// The calls table's indexes, as `template.yaml` declares them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListIndex {
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

    /// The attribute the index is keyed on.
    pub fn key(self) -> &'static str {
        match self {
            Self::Time => "time_key",
            Self::Agent => "agent_key",
            Self::From => "from_key",
            Self::To => "to_key",
        }
    }
}

/// The attributes every index of a record is keyed on (absent: not in that index).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct IndexKeys {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_key: Option<String>,
    #[serde(default)]
    pub sort_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_key: Option<String>,
}

impl IndexKeys {
    pub fn of_call(record: &CallRecord, number_key: Option<&[u8]>) -> Self {
        let sort_at = record
            .started_at
            .or(record.ended_at)
            .or(record.first_event_at)
            .unwrap_or(0);
        Self {
            time_key: Some(time_key(&record.provider, &day_of(sort_at))),
            sort_at,
            agent_key: record
                .agent
                .as_ref()
                .and_then(|a| a.id.as_deref())
                .and_then(|id| agent_key(&record.provider, id)),
            from_key: number_key_for(
                record.from_key.as_deref(),
                record.from_number.as_deref(),
                number_key,
            ),
            to_key: number_key_for(
                record.to_key.as_deref(),
                record.to_number.as_deref(),
                number_key,
            ),
        }
    }

    /// Messages are found by number only.
    pub fn of_message(message: &Message, number_key: Option<&[u8]>) -> Self {
        Self {
            time_key: None,
            sort_at: message.created_at.or(message.received_at).unwrap_or(0),
            agent_key: None,
            from_key: message
                .from_number
                .as_deref()
                .and_then(|n| number_key_of(n, number_key)),
            to_key: message
                .to_number
                .as_deref()
                .and_then(|n| number_key_of(n, number_key)),
        }
    }
}

fn bounded(value: String) -> Option<String> {
    (value.len() <= KEY_BYTES).then_some(value)
}

pub fn time_key(provider: &str, day: &str) -> String {
    format!("{provider}#{day}")
}

pub fn agent_key(provider: &str, agent_id: &str) -> Option<String> {
    let id = agent_id.trim();
    if id.is_empty() {
        return None;
    }
    bounded(format!("{provider}#{id}"))
}

/// The index key of a phone number: the number itself, or its keyed hash under `key`.
pub fn number_key_of(number: &str, key: Option<&[u8]>) -> Option<String> {
    let number = number.trim();
    if number.is_empty() {
        return None;
    }
    match key {
        None => bounded(format!("n#{number}")),
        Some(key) => crate::privacy::number_index_key(number, key),
    }
}

/// A record's number index key: the one ingest computed from the number as sent (a redacted
/// record's number is masked), else the one of the number it holds. Under a key, never the
/// number itself.
fn number_key_for(
    carried: Option<&str>,
    number: Option<&str>,
    key: Option<&[u8]>,
) -> Option<String> {
    match (carried, key) {
        (Some(carried), Some(_)) if carried.starts_with("h#") => Some(carried.to_owned()),
        _ => number.and_then(|n| number_key_of(n, key)),
    }
}

/// The partition of a provider's day markers.
pub fn days_key(provider: &str) -> String {
    format!("days#{provider}")
}

/// The UTC day (`YYYY-MM-DD`) of a unix-ms time, clamped to 1970-01-01 ..= 9999-12-31 so that
/// days sort as strings (a time outside is a provider's nonsense or an open window's bound).
pub fn day_of(ms: i64) -> String {
    const LAST_MS: i64 = 253_402_300_799_999;
    let seconds = ms.clamp(0, LAST_MS).div_euclid(1000);
    let date =
        time::OffsetDateTime::from_unix_timestamp(seconds).map_or(time::Date::MIN, |t| t.date());
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

impl Store {
    /// The days (newest first) on which `provider` has calls whose `sort_at` falls in
    /// `[since, until]`.
    pub async fn days(&self, provider: &str, since: i64, until: i64) -> Result<Vec<String>> {
        let out = self
            .client
            .query()
            .table_name(&self.calls_table)
            .key_condition_expression("pk = :pk AND sk BETWEEN :from AND :to")
            .expression_attribute_values(":pk", AttributeValue::S(days_key(provider)))
            .expression_attribute_values(":from", AttributeValue::S(day_of(since)))
            .expression_attribute_values(":to", AttributeValue::S(day_of(until)))
            .scan_index_forward(false)
            .into_paginator()
            .items()
            .send()
            .collect::<Vec<_>>()
            .await;
        out.into_iter()
            .map(|item| {
                let item = item.map_err(storage)?;
                Ok(item
                    .get("sk")
                    .and_then(|v| v.as_s().ok())
                    .cloned()
                    .unwrap_or_default())
            })
            .collect()
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
    ) -> Result<Vec<Item>> {
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
    /// `[since, until]`, newest first. Pass the returned key back as `start` for the next page;
    /// `None` means there is no next page.
    pub async fn calls_page(
        &self,
        index: ListIndex,
        key: &str,
        (since, until): (i64, i64),
        start: Option<Item>,
    ) -> Result<(Vec<CallSummary>, Option<Item>)> {
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
                item.get("pk")
                    .and_then(|v| v.as_s().ok())
                    .is_some_and(|pk| pk.starts_with("call#"))
            })
            .map(from_item)
            .collect::<Result<Vec<CallSummary>>>()?;
        Ok((calls, out.last_evaluated_key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_utc_calendar_days() {
        assert_eq!(day_of(0), "1970-01-01");
        assert_eq!(day_of(1_700_000_000_000), "2023-11-14");
        assert_eq!(day_of(1_699_999_199_999), "2023-11-14");
        assert_eq!(day_of(-1), "1970-01-01");
        assert_eq!(day_of(i64::MAX), "9999-12-31");
    }

    #[test]
    fn index_keys_are_sparse_bounded_and_kind_prefixed() {
        let mut record = CallRecord::new("vox", "c1");
        record.started_at = Some(1_700_000_000_000);
        record.from_number = Some("+14155550123".into());
        record.to_number = Some("   ".into());
        record.agent = Some(crate::event::Agent {
            id: Some("a".repeat(2000)),
            version: None,
        });
        let keys = IndexKeys::of_call(&record, None);
        assert_eq!(keys.time_key.as_deref(), Some("vox#2023-11-14"));
        assert_eq!(keys.from_key.as_deref(), Some("n#+14155550123"));
        assert_eq!(keys.to_key, None, "a blank number is not an index key");
        assert_eq!(
            keys.agent_key, None,
            "a key DynamoDB would refuse is left out"
        );
    }

    #[test]
    fn under_a_number_key_the_index_holds_a_keyed_hash_never_the_number() {
        let a = number_key_of("+14155550123", Some(b"k1")).unwrap();
        assert!(a.starts_with("h#") && !a.contains("4155550123"));
        assert_eq!(
            Some(a.clone()),
            number_key_of(" +14155550123 ", Some(b"k1"))
        );
        assert_ne!(Some(a), number_key_of("+14155550123", Some(b"k2")));
    }
}
