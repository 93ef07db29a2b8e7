//! The stream side of the local stack: polls the events table's DynamoDB stream and invokes the
//! stream handlers as the template's event source mappings would — same filters, batch sizes,
//! partial batch failures (resume from the lowest failed record), bisection on error, bounded
//! retries, and an on-failure destination (here: [`StreamRunner::dead_letters`] and the log).

use super::template::{StreamMapping, matches, stream_mappings};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::handlers::stream;
use crate::store::Store;
use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_sdk_dynamodbstreams::types::ShardIteratorType;
use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;

/// A record that exhausted its retries: what AWS would put on the failure queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub function: String,
    pub sequence_number: String,
    pub pk: String,
    pub sk: String,
}

#[derive(Debug, Default)]
struct Shard {
    iterator: Option<String>,
    last_sequence: Option<String>,
    closed: bool,
}

#[derive(Debug)]
pub struct StreamRunner {
    streams: aws_sdk_dynamodbstreams::Client,
    store: Store,
    mappings: Vec<StreamMapping>,
    stream_arn: String,
    shards: HashMap<String, Shard>,
    /// Base delay between retries of a failed batch (Lambda backs off too).
    pub retry_delay: Duration,
    pub dead_letters: Vec<DeadLetter>,
    /// Records handed to handlers, counting retries.
    pub invocations: usize,
}

impl StreamRunner {
    pub async fn new(store: Store, streams: aws_sdk_dynamodbstreams::Client) -> Result<Self> {
        let table = store
            .client()
            .describe_table()
            .table_name(&store.events_table)
            .send()
            .await
            .map_err(crate::store::storage)?;
        let stream_arn = table
            .table
            .and_then(|t| t.latest_stream_arn)
            .ok_or_else(|| Error::Config(format!("table {} has no stream", store.events_table)))?;
        Ok(Self {
            streams,
            store,
            mappings: stream_mappings()?,
            stream_arn,
            shards: HashMap::new(),
            retry_delay: Duration::from_millis(200),
            dead_letters: Vec::new(),
            invocations: 0,
        })
    }

    pub fn mappings(&self) -> &[StreamMapping] {
        &self.mappings
    }

    /// Reads what is new on every shard and runs the handlers on it. Returns the number of
    /// stream records read.
    pub async fn poll(&mut self, config: &Config) -> Result<usize> {
        self.discover_shards().await?;
        let mut seen = 0;
        let ids: Vec<String> = self.shards.keys().cloned().collect();
        for id in ids {
            let records = self.read_shard(&id).await?;
            seen += records.len();
            if !records.is_empty() {
                self.dispatch(config, &records).await;
            }
        }
        Ok(seen)
    }

    /// Polls until a pass reads nothing new.
    pub async fn drain(&mut self, config: &Config) -> Result<usize> {
        let mut total = 0;
        loop {
            let seen = self.poll(config).await?;
            if seen == 0 {
                return Ok(total);
            }
            total += seen;
        }
    }

    async fn discover_shards(&mut self) -> Result<()> {
        let mut start = None;
        loop {
            let out = self
                .streams
                .describe_stream()
                .stream_arn(&self.stream_arn)
                .set_exclusive_start_shard_id(start)
                .send()
                .await
                .map_err(crate::store::storage)?;
            let Some(description) = out.stream_description else {
                return Ok(());
            };
            for shard in description.shards.unwrap_or_default() {
                if let Some(id) = shard.shard_id {
                    self.shards.entry(id).or_default();
                }
            }
            start = description.last_evaluated_shard_id;
            if start.is_none() {
                return Ok(());
            }
        }
    }

    async fn read_shard(&mut self, id: &str) -> Result<Vec<EventRecord>> {
        let shard = self.shards.entry(id.to_owned()).or_default();
        if shard.closed {
            return Ok(Vec::new());
        }
        let iterator = match shard.iterator.clone() {
            Some(iterator) => iterator,
            None => {
                let request = self
                    .streams
                    .get_shard_iterator()
                    .stream_arn(&self.stream_arn)
                    .shard_id(id);
                let request = match &shard.last_sequence {
                    Some(seq) => request
                        .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                        .sequence_number(seq),
                    None => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
                };
                let out = request.send().await.map_err(crate::store::storage)?;
                match out.shard_iterator {
                    Some(iterator) => iterator,
                    None => {
                        shard.closed = true;
                        return Ok(Vec::new());
                    }
                }
            }
        };
        let out = match self
            .streams
            .get_records()
            .shard_iterator(iterator)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) => {
                // An expired or unknown iterator (DynamoDB Local restarted): start again after
                // the last record handled.
                shard.iterator = None;
                return Err(crate::store::storage(e));
            }
        };
        shard.iterator = out.next_shard_iterator;
        shard.closed = shard.iterator.is_none();
        let records: Vec<EventRecord> = out
            .records
            .unwrap_or_default()
            .into_iter()
            .map(to_lambda_record)
            .collect();
        if let Some(last) = records.last() {
            shard.last_sequence.clone_from(&last.change.sequence_number);
        }
        Ok(records)
    }

    async fn dispatch(&mut self, config: &Config, records: &[EventRecord]) {
        let values: Vec<serde_json::Value> = records
            .iter()
            .map(|r| serde_json::to_value(r).unwrap_or_default())
            .collect();
        for mapping in self.mappings.clone() {
            let selected: Vec<EventRecord> = records
                .iter()
                .zip(&values)
                .filter(|(_, value)| mapping.patterns.iter().any(|p| matches(p, value)))
                .map(|(record, _)| record.clone())
                .collect();
            for batch in selected.chunks(mapping.batch_size.max(1)) {
                self.invoke(config, &mapping, batch.to_vec()).await;
            }
        }
    }

    /// One batch with the mapping's failure semantics.
    async fn invoke(&mut self, config: &Config, mapping: &StreamMapping, batch: Vec<EventRecord>) {
        let mut queue = VecDeque::from([(batch, 0u32)]);
        while let Some((records, attempts)) = queue.pop_front() {
            if attempts > 0 {
                let backoff = self.retry_delay * 2u32.saturating_pow(attempts.min(5) - 1);
                tokio::time::sleep(backoff.min(Duration::from_secs(5))).await;
            }
            self.invocations += records.len();
            let mut event = Event::default();
            event.records.clone_from(&records);
            let response = stream::handle(config, &self.store, mapping.event_type, event).await;
            if response.batch_item_failures.is_empty() {
                continue;
            }
            let failed: HashSet<String> = response
                .batch_item_failures
                .into_iter()
                .filter_map(|f| f.item_identifier)
                .collect();
            // Lambda checkpoints before the lowest failed record and resumes from it.
            let first = records
                .iter()
                .position(|r| {
                    r.change
                        .sequence_number
                        .as_ref()
                        .is_some_and(|s| failed.contains(s))
                })
                .unwrap_or(0);
            let rest = records[first..].to_vec();
            if attempts >= mapping.maximum_retry_attempts {
                for record in rest.iter().filter(|r| {
                    r.change
                        .sequence_number
                        .as_ref()
                        .is_some_and(|s| failed.contains(s))
                }) {
                    let letter = dead_letter(&mapping.binary, record);
                    tracing::error!(function = %letter.function, pk = %letter.pk, sk = %letter.sk, "record sent to the failure queue");
                    self.dead_letters.push(letter);
                }
                continue;
            }
            if mapping.bisect_on_error && rest.len() > 1 {
                let (left, right) = rest.split_at(rest.len() / 2);
                queue.push_back((left.to_vec(), attempts + 1));
                queue.push_back((right.to_vec(), attempts + 1));
            } else {
                queue.push_back((rest, attempts + 1));
            }
        }
    }
}

fn dead_letter(function: &str, record: &EventRecord) -> DeadLetter {
    let text = |key: &str| {
        record
            .change
            .keys
            .get(key)
            .and_then(|v| serde_json::to_value(v).ok())
            .and_then(|v| v.get("S").and_then(|s| s.as_str().map(str::to_owned)))
            .unwrap_or_default()
    };
    DeadLetter {
        function: function.to_owned(),
        sequence_number: record.change.sequence_number.clone().unwrap_or_default(),
        pk: text("pk"),
        sk: text("sk"),
    }
}

/// A DynamoDB Streams record in the shape Lambda delivers it.
fn to_lambda_record(record: aws_sdk_dynamodbstreams::types::Record) -> EventRecord {
    let mut out = EventRecord::default();
    out.event_id = record.event_id.unwrap_or_default();
    out.event_name = record
        .event_name
        .map(|n| n.as_str().to_owned())
        .unwrap_or_default();
    out.event_source = Some("aws:dynamodb".to_owned());
    out.event_version = record.event_version;
    out.aws_region = record.aws_region.unwrap_or_else(|| "local".to_owned());
    if let Some(change) = record.dynamodb {
        out.change.keys = serde_dynamo::Item::from(change.keys.unwrap_or_default());
        out.change.new_image = serde_dynamo::Item::from(change.new_image.unwrap_or_default());
        out.change.old_image = serde_dynamo::Item::from(change.old_image.unwrap_or_default());
        out.change.sequence_number = change.sequence_number;
        out.change.size_bytes = change.size_bytes.unwrap_or_default();
    }
    out
}
