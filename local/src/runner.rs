//! The event side of the local stack, in the shape AWS runs it (see docs/ARCHITECTURE.md):
//!
//! - **one reader of the events table's stream**, the pipe: the template's filter and input
//!   transformation turn each new event item into a bus event (keys and small attributes);
//! - **the bus**: each function's rule (its pattern, from the template) selects the events its
//!   function serves, and the function is invoked **asynchronously and concurrently**, as Lambda
//!   invokes it: many invocations at once, so merges of one call race here as they do in AWS;
//! - **Lambda's asynchronous retries**: an invocation that returns an error is retried
//!   (`EventInvokeConfig.MaximumRetryAttempts`, after [`PipeRunner::retry_delay`], then twice
//!   that, where Lambda waits a minute, then two), then its invocation record goes to the
//!   failure queue — emulated in the events table (`failures#queue`), in the very format Lambda
//!   puts on SQS, so `callhook failures` reads both alike.
//!
//! What the emulation leaves out: the rules' own retries and dead-letter queue act only when
//! Lambda refuses an invocation (throttling), which an in-process call never is; and the pipe's
//! puts on an in-memory bus do not fail.

use crate::template::{PipeDef, RuleDef, at_path, matches, pipe, rules, transform};
use aws_lambda_events::event::dynamodb::EventRecord;
use aws_sdk_dynamodbstreams::types::ShardIteratorType;
use callhook::bus::{Bus, BusEvent, EventRef};
use callhook::config::{Config, OptOutPolicy};
use callhook::error::{Error, Result};
use callhook::handlers::merge::{self, Outcome};
use callhook::store::Store;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// Invocations running at once by default.
pub const DEFAULT_CONCURRENCY: usize = 64;

/// An invocation that exhausted its retries: what went to the failure queue.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    /// It is on the queue (the local queue is in DynamoDB Local: while that is down, the letter
    /// waits in memory and is put on the next poll).
    pub enqueued: bool,
    pub function: String,
    pub pk: String,
    pub sk: String,
    pub error: String,
    /// The invocation record, as Lambda sends it to the on-failure destination.
    pub message: Value,
}

/// What the runner did, cumulated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Stream records the pipe read, and bus events it put (after its filter).
    pub records: usize,
    pub events: usize,
    /// Function invocations, retries included, and the retries alone.
    pub invocations: usize,
    pub retries: usize,
    /// Invocations that recorded a permanent failure.
    pub failed: usize,
    /// Merges that lost a race with a concurrent merge of the same call and tried again.
    pub lost_races: usize,
    /// Most invocations running at once.
    pub peak_concurrency: usize,
    /// For each merged event: from its receipt by ingest (just before its 2xx) to the end of
    /// its merge, in ms.
    pub merge_latencies_ms: Vec<i64>,
}

#[derive(Debug, Default)]
struct Shard {
    iterator: Option<String>,
    last_sequence: Option<String>,
    closed: bool,
}

/// What one asynchronous invocation (with its retries) came to.
#[derive(Debug)]
struct Report {
    invocations: usize,
    failed: bool,
    lost_races: usize,
    latency_ms: Option<i64>,
    dead_letter: Option<DeadLetter>,
}

#[derive(Debug)]
pub struct PipeRunner {
    streams: aws_sdk_dynamodbstreams::Client,
    store: Store,
    pipe: PipeDef,
    rules: Vec<RuleDef>,
    stream_arn: String,
    shards: HashMap<String, Shard>,
    /// The bus the functions put call events on.
    bus: Bus,
    tasks: JoinSet<Report>,
    running: Arc<Semaphore>,
    active: Arc<AtomicU64>,
    peak: Arc<AtomicU64>,
    /// Stands for Lambda's wait before an asynchronous retry (one minute, then two).
    pub retry_delay: Duration,
    pub stats: Stats,
    pub dead_letters: Vec<DeadLetter>,
    /// The call events the functions put on the bus, in the order they were put.
    pub published: Vec<BusEvent>,
}

impl PipeRunner {
    pub async fn new(store: Store, streams: aws_sdk_dynamodbstreams::Client) -> Result<Self> {
        let table = store
            .client()
            .describe_table()
            .table_name(&store.events_table)
            .send()
            .await
            .map_err(callhook::store::storage)?;
        let stream_arn = table
            .table
            .and_then(|t| t.latest_stream_arn)
            .ok_or_else(|| Error::Config(format!("table {} has no stream", store.events_table)))?;
        Ok(Self {
            streams,
            store,
            pipe: pipe()?,
            rules: rules()?,
            stream_arn,
            shards: HashMap::new(),
            bus: Bus::memory(),
            tasks: JoinSet::new(),
            running: Arc::new(Semaphore::new(DEFAULT_CONCURRENCY)),
            active: Arc::default(),
            peak: Arc::default(),
            retry_delay: Duration::from_secs(1),
            stats: Stats::default(),
            dead_letters: Vec::new(),
            published: Vec::new(),
        })
    }

    /// Invocations running at once at most (Lambda's concurrency, scaled to one machine).
    pub fn set_concurrency(&mut self, invocations: usize) {
        self.running = Arc::new(Semaphore::new(invocations.max(1)));
    }

    pub fn rules(&self) -> &[RuleDef] {
        &self.rules
    }

    /// Reads what is new on the stream, puts it on the bus and starts the invocations it
    /// causes, without waiting for them; collects those that finished. Returns the number of
    /// stream records read.
    pub async fn poll(&mut self, config: &Config) -> Result<usize> {
        self.reap();
        self.enqueue_pending().await?;
        self.discover_shards().await?;
        let policy = config.opt_out_policy;
        let mut seen = 0;
        let ids: Vec<String> = self.shards.keys().cloned().collect();
        for id in ids {
            let records = self.read_shard(&id).await?;
            seen += records.len();
            for batch in records.chunks(self.pipe.batch_size.max(1)) {
                self.pipe_batch(policy, batch);
            }
        }
        self.stats.records += seen;
        Ok(seen)
    }

    /// Polls and waits for every invocation until the stream has nothing new and nothing runs.
    pub async fn drain(&mut self, config: &Config) -> Result<usize> {
        let mut total = 0;
        loop {
            let seen = self.poll(config).await?;
            total += seen;
            let waited = self.wait().await;
            self.enqueue_pending().await?;
            if seen == 0 && !waited {
                return Ok(total);
            }
        }
    }

    /// Waits for every running invocation. Whether there was any.
    pub async fn wait(&mut self) -> bool {
        let mut any = false;
        while let Some(joined) = self.tasks.join_next().await {
            any = true;
            self.collect(joined);
        }
        self.route_published();
        any
    }

    /// Puts on the queue the letters that could not be put when their retries ran out.
    async fn enqueue_pending(&mut self) -> Result<()> {
        for letter in self.dead_letters.iter_mut().filter(|l| !l.enqueued) {
            letter.enqueued = enqueue(&self.store, letter).await;
            if !letter.enqueued {
                return Err(Error::storage(
                    callhook::error::StorageKind::Transient,
                    "the local failure queue cannot be written; its letters wait in memory",
                ));
            }
        }
        Ok(())
    }

    fn reap(&mut self) {
        while let Some(joined) = self.tasks.try_join_next() {
            self.collect(joined);
        }
        self.route_published();
    }

    fn collect(&mut self, joined: std::result::Result<Report, tokio::task::JoinError>) {
        match joined {
            Ok(report) => {
                self.stats.invocations += report.invocations;
                self.stats.retries += report.invocations.saturating_sub(1);
                self.stats.failed += usize::from(report.failed);
                self.stats.lost_races += report.lost_races;
                self.stats.merge_latencies_ms.extend(report.latency_ms);
                self.dead_letters.extend(report.dead_letter);
            }
            Err(error) => tracing::error!(%error, "a local invocation panicked"),
        }
        self.stats.peak_concurrency = self.peak.load(Ordering::Relaxed) as usize;
    }

    /// Call events put on the bus: no function's rule selects them (their source is not the
    /// pipe's), so they are kept for the developer to see, as a user's own rule would.
    fn route_published(&mut self) {
        for event in self.bus.take() {
            tracing::info!(
                detail_type = %event.detail_type,
                id = %event.detail["id"],
                "call event put on the bus"
            );
            self.published.push(event);
        }
    }

    /// One batch of stream records through the pipe: filter, transform, put on the bus, and
    /// the rules start their functions.
    fn pipe_batch(&mut self, policy: OptOutPolicy, records: &[EventRecord]) {
        for record in records {
            let value = serde_json::to_value(record).unwrap_or_default();
            if !self.pipe.patterns.iter().any(|p| matches(p, &value)) {
                continue;
            }
            let event = match self.bus_event(&value) {
                Ok(event) => event,
                Err(error) => {
                    // What AWS does with a record the pipe cannot transform: it fails, and after
                    // the pipe's retries goes to its dead-letter queue.
                    tracing::error!(%error, "the pipe could not transform a stream record");
                    continue;
                }
            };
            self.stats.events += 1;
            let selected: Vec<RuleDef> = self
                .rules
                .iter()
                .filter(|r| matches(&r.pattern, &event))
                .cloned()
                .collect();
            for rule in selected {
                self.start(policy, rule, event.clone());
            }
        }
    }

    /// The bus event (EventBridge's envelope) the pipe makes of a stream record.
    fn bus_event(&self, record: &Value) -> Result<Value> {
        let resolve = |field: &str| -> String {
            if field.starts_with("$.") {
                at_path(record, field)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            } else {
                field.to_owned()
            }
        };
        let detail = transform(&self.pipe.input_template, record)?;
        static NEXT: AtomicU64 = AtomicU64::new(0);
        Ok(json!({
            "version": "0",
            "id": format!("local-{}", NEXT.fetch_add(1, Ordering::Relaxed)),
            "detail-type": resolve(&self.pipe.detail_type),
            "source": resolve(&self.pipe.source),
            "account": "000000000000",
            "time": callhook::timefmt::rfc3339_ms(callhook::handlers::now_ms()),
            "region": "local",
            "resources": [],
            "detail": detail,
        }))
    }

    /// One asynchronous invocation of a rule's function, with Lambda's retries, in the
    /// background.
    fn start(&mut self, policy: OptOutPolicy, rule: RuleDef, event: Value) {
        let (store, bus) = (self.store.clone(), self.bus.clone());
        let (running, active, peak) =
            (self.running.clone(), self.active.clone(), self.peak.clone());
        let delay = self.retry_delay;
        self.tasks.spawn(async move {
            let detail: EventRef = match serde_json::from_value(event["detail"].clone()) {
                Ok(detail) => detail,
                Err(e) => EventRef {
                    kind: format!("(not an event reference: {e})"),
                    ..EventRef::default()
                },
            };
            let mut report = Report {
                invocations: 0,
                failed: false,
                lost_races: 0,
                latency_ms: None,
                dead_letter: None,
            };
            let mut last_error = String::new();
            for attempt in 0..=rule.maximum_retry_attempts {
                if attempt > 0 {
                    tokio::time::sleep(delay * attempt).await;
                }
                let _slot = Slot::take(&running, &active, &peak).await;
                report.invocations += 1;
                match merge::handle(policy, &store, &bus, rule.event_type, &detail).await {
                    Ok(outcome) => {
                        match outcome {
                            Outcome::Failed(_) => report.failed = true,
                            Outcome::Merged { attempts, .. } => {
                                report.lost_races = attempts.saturating_sub(1) as usize;
                                report.latency_ms = detail
                                    .received_at
                                    .parse::<i64>()
                                    .ok()
                                    .map(|at| callhook::handlers::now_ms() - at);
                            }
                            Outcome::Skipped => {}
                        }
                        return report;
                    }
                    Err(error) => last_error = error.to_string(),
                }
            }
            let mut letter = dead_letter(&rule, &event, &detail, &last_error, report.invocations);
            letter.enqueued = enqueue(&store, &letter).await;
            report.dead_letter = Some(letter);
            report
        });
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
                .map_err(callhook::store::storage)?;
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
                let out = request.send().await.map_err(callhook::store::storage)?;
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
                return Err(callhook::store::storage(e));
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
}

/// A slot among the invocations allowed to run at once, counted for the peak.
#[derive(Debug)]
struct Slot<'a> {
    _permit: tokio::sync::SemaphorePermit<'a>,
    active: &'a AtomicU64,
}

impl<'a> Slot<'a> {
    async fn take(running: &'a Semaphore, active: &'a AtomicU64, peak: &AtomicU64) -> Option<Self> {
        let permit = running.acquire().await.ok()?;
        let now = active.fetch_add(1, Ordering::AcqRel) + 1;
        peak.fetch_max(now, Ordering::Relaxed);
        Some(Self {
            _permit: permit,
            active,
        })
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.active.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Puts a letter on the local failure queue; whether it is there.
async fn enqueue(store: &Store, letter: &DeadLetter) -> bool {
    tracing::error!(function = %letter.function, pk = %letter.pk, sk = %letter.sk, "invocation sent to the failure queue");
    match store
        .enqueue_local_failure(&letter.message.to_string(), callhook::handlers::now_ms())
        .await
    {
        Ok(()) => true,
        Err(error) => {
            tracing::error!(%error, "the local failure queue could not be written; the letter waits");
            false
        }
    }
}

/// The invocation record Lambda sends to an on-failure destination once an asynchronous
/// invocation has exhausted its retries.
fn dead_letter(
    rule: &RuleDef,
    event: &Value,
    detail: &EventRef,
    error: &str,
    invocations: usize,
) -> DeadLetter {
    let message = json!({
        "version": "1.0",
        "timestamp": callhook::timefmt::rfc3339_ms(callhook::handlers::now_ms()),
        "requestContext": {
            "requestId": event["id"],
            "functionArn": format!("arn:aws:lambda:local:000000000000:function:{}:$LATEST", rule.handler),
            "condition": "RetriesExhausted",
            "approximateInvokeCount": invocations,
        },
        "requestPayload": event,
        "responseContext": {
            "statusCode": 200,
            "executedVersion": "$LATEST",
            "functionError": "Unhandled",
        },
        "responsePayload": {"errorType": "callhook", "errorMessage": error},
    });
    DeadLetter {
        enqueued: false,
        function: rule.handler.clone(),
        pk: detail.pk.clone(),
        sk: detail.sk.clone(),
        error: error.to_owned(),
        message,
    }
}

/// A DynamoDB Streams record in the shape Lambda and EventBridge Pipes deliver it.
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
