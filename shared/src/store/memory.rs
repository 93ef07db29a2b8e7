//! An in-memory [`Table`] for unit tests and benchmarks (never for the integration tests, which run
//! on DynamoDB Local): the conditions DynamoDB evaluates, the item it returns on a failed one,
//! and the write units it would bill, counted by DynamoDB's documented sizing rules — the item
//! size rounded up to 1 KB per write (the larger of the old and new item for a replacement), and
//! for each global secondary index whose key or projected attributes a write changes, one write
//! of the index entry (two when its key changes).

use super::dynamo::{Condition, Item, Put, Table};
use crate::error::Result;
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// An index of the table: its key attribute and the attributes it projects (besides the keys).
#[derive(Debug, Clone)]
pub struct MemoryIndex {
    pub key: String,
    pub range: String,
    pub projected: Vec<String>,
}

#[derive(Debug, Default)]
pub struct MemoryTable {
    items: Mutex<BTreeMap<(String, String), Item>>,
    indexes: Vec<MemoryIndex>,
    /// Write units billed so far (table and indexes).
    pub write_units: AtomicU64,
    /// Index write units among them.
    pub index_write_units: AtomicU64,
    pub puts: AtomicU64,
    /// Before each of the next this-many version-conditional puts, another writer bumps the
    /// item's version (a concurrent merge landing first).
    pub interfere: AtomicU32,
}

impl MemoryTable {
    pub fn new(indexes: Vec<MemoryIndex>) -> Self {
        Self {
            indexes,
            ..Self::default()
        }
    }

    /// The calls table's indexes as the template declares them.
    pub fn calls_indexes() -> Vec<MemoryIndex> {
        let projected: Vec<String> = [
            "provider",
            "call_id",
            "direction",
            "from_number",
            "to_number",
            "status",
            "outcome",
            "duration_ms",
            "agent",
            "started_at",
            "ended_at",
            "first_event_at",
            "missed",
        ]
        .map(str::to_owned)
        .to_vec();
        ["time_key", "agent_key", "from_key", "to_key"]
            .map(|key| MemoryIndex {
                key: key.to_owned(),
                range: "sort_at".to_owned(),
                projected: projected.clone(),
            })
            .to_vec()
    }

    pub fn items(&self) -> Vec<Item> {
        self.items
            .lock()
            .map(|items| items.values().cloned().collect())
            .unwrap_or_default()
    }

    pub fn len(&self) -> usize {
        self.items.lock().map(|items| items.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn bill(&self, old: Option<&Item>, new: Option<&Item>) {
        let size = old.map_or(0, item_size).max(new.map_or(0, item_size));
        let mut units = units(size);
        let mut index_units = 0;
        for index in &self.indexes {
            let entry = |item: &Item| -> Option<(Item, usize)> {
                item.get(&index.key)?;
                let kept: Item = item
                    .iter()
                    .filter(|(name, _)| {
                        ["pk", "sk", index.key.as_str(), index.range.as_str()]
                            .contains(&name.as_str())
                            || index.projected.contains(name)
                    })
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                let size = item_size(&kept) + 100;
                Some((kept, size))
            };
            let before = old.and_then(entry);
            let after = new.and_then(entry);
            index_units += match (before, after) {
                (None, None) => 0,
                (Some((_, size)), None) | (None, Some((_, size))) => units_of(size),
                (Some((a, size_a)), Some((b, size_b))) if a != b => {
                    let moved = a.get(&index.key) != b.get(&index.key);
                    if moved {
                        units_of(size_a) + units_of(size_b)
                    } else {
                        units_of(size_a.max(size_b))
                    }
                }
                _ => 0,
            };
        }
        units += index_units;
        self.write_units.fetch_add(units, Ordering::Relaxed);
        self.index_write_units
            .fetch_add(index_units, Ordering::Relaxed);
    }
}

fn units_of(size: usize) -> u64 {
    u64::try_from(size.div_ceil(1024).max(1)).unwrap_or(u64::MAX)
}

fn units(size: usize) -> u64 {
    units_of(size)
}

/// An item's size as DynamoDB counts it: attribute names plus values.
pub fn item_size(item: &Item) -> usize {
    item.iter()
        .map(|(name, value)| name.len() + value_size(value))
        .sum()
}

fn value_size(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => n.trim_start_matches('-').len().div_ceil(2) + 1,
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::L(items) => 3 + items.iter().map(|v| 1 + value_size(v)).sum::<usize>(),
        AttributeValue::M(map) => {
            3 + map
                .iter()
                .map(|(k, v)| 1 + k.len() + value_size(v))
                .sum::<usize>()
        }
        AttributeValue::Ss(v) | AttributeValue::Ns(v) => v.iter().map(String::len).sum(),
        AttributeValue::Bs(v) => v.iter().map(|b| b.as_ref().len()).sum(),
        _ => 0,
    }
}

fn key_of(item: &Item) -> (String, String) {
    let text = |name: &str| {
        item.get(name)
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default()
    };
    (text("pk"), text("sk"))
}

fn version_of(item: &Item) -> Option<u64> {
    item.get("version")?.as_n().ok()?.parse().ok()
}

impl Table for MemoryTable {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>> {
        Ok(self
            .items
            .lock()
            .ok()
            .and_then(|items| items.get(&(pk.to_owned(), sk.to_owned())).cloned()))
    }

    async fn put(&self, item: Item, condition: Condition) -> Result<Put> {
        let Ok(mut items) = self.items.lock() else {
            return Ok(Put::Refused(None));
        };
        let key = key_of(&item);
        if let Condition::Version(_) = condition {
            let interfere = self
                .interfere
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
            if interfere {
                if let Some(current) = items.get_mut(&key) {
                    let next = version_of(current).unwrap_or(0) + 1;
                    current.insert("version".into(), AttributeValue::N(next.to_string()));
                }
            }
        }
        let old = items.get(&key).cloned();
        let passes = match condition {
            Condition::Always => true,
            Condition::Absent => old.is_none(),
            Condition::Version(v) => old
                .as_ref()
                .is_some_and(|old| version_of(old).unwrap_or(0) == v),
        };
        self.puts.fetch_add(1, Ordering::Relaxed);
        if !passes {
            // A failed condition is billed too (for the item's size; no index changes).
            let size = old.as_ref().map_or(0, item_size).max(item_size(&item));
            self.write_units.fetch_add(units(size), Ordering::Relaxed);
            return Ok(Put::Refused(old));
        }
        self.bill(old.as_ref(), Some(&item));
        items.insert(key, item);
        Ok(Put::Written)
    }

    async fn query(&self, pk: &str, prefix: &str) -> Result<Vec<Item>> {
        Ok(self
            .items
            .lock()
            .map(|items| {
                items
                    .iter()
                    .filter(|((p, s), _)| p == pk && s.starts_with(prefix))
                    .map(|(_, item)| item.clone())
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn delete(&self, pk: &str, sk: &str) -> Result<()> {
        let old = self
            .items
            .lock()
            .ok()
            .and_then(|mut items| items.remove(&(pk.to_owned(), sk.to_owned())));
        if let Some(old) = old {
            self.bill(Some(&old), None);
        }
        Ok(())
    }
}
