//! `callhook failures list|replay`: the events a function could not merge.
//!
//! Two places hold them. A failure that retrying cannot fix (the stored body no longer parses,
//! DynamoDB refuses the record) is recorded by the function in the events table. A failure that
//! might have passed later (throttling, storage down) was retried by Lambda and then put on the
//! failure queue: SQS in AWS (the stack output `FailureQueueUrl`), emulated in the events table
//! on the local stack. Both are listed together, newest first; `replay` merges their events
//! again, with today's parsers, and removes each failure whose events all merged.

use crate::output::{Table, datetime, print_json};
use crate::stack::{Stack, StackArgs};
use crate::{Error, NotFound};
use callhook::bus::{Bus, EventRef};
use callhook::config::OptOutPolicy;
use callhook::handlers::merge;
use callhook::store::failures::{Queued, parse_queued};
use serde_json::{Value, json};
use std::collections::HashSet;

/// Replaying a batch the pipe lost merges every event received in its window, widened by this
/// much on each side (the window's times are approximate).
const WINDOW_MARGIN_MS: i64 = 60_000;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Every failure, recorded or queued, newest first.
    List(ListArgs),
    /// Merge the events of failures again; remove the failures that succeed.
    Replay(ReplayArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct QueueArgs {
    /// The deployed stack's failure queue (its output `FailureQueueUrl`). The local stack's is
    /// found without it.
    #[arg(long, env = "CALLHOOK_FAILURE_QUEUE_URL", value_name = "URL")]
    failure_queue_url: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Print them as a JSON array.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    queue: QueueArgs,
}

#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// The failures to replay, by the id `failures list` prints.
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    ids: Vec<String>,
    /// Replay every failure.
    #[arg(long)]
    all: bool,
    /// Calls whose caller opted out of data storage: `keep` or `redact` (default: the local
    /// stack's policy, else keep). Use the deployed stack's OptOutPolicy.
    #[arg(long, env = "CALLHOOK_OPT_OUT_POLICY", value_parser = ["keep", "redact"])]
    opt_out_policy: Option<String>,
    /// The stack's event bus (its output `EventBusName`): call events a replayed merge makes
    /// due are put there, as the functions would have. Without it none are put.
    #[arg(long, env = "CALLHOOK_EVENT_BUS", value_name = "NAME")]
    event_bus: Option<String>,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    queue: QueueArgs,
}

pub async fn run(command: Command, stack: &StackArgs) -> Result<(), Error> {
    match command {
        Command::List(args) => list(args, stack).await,
        Command::Replay(args) => replay(args, stack).await,
    }
}

/// Where a failure is kept, to remove it once replayed.
#[derive(Debug, Clone)]
enum Handle {
    Recorded(String),
    LocalQueue(String),
    Sqs(String),
}

/// One failure, wherever it is kept.
#[derive(Debug, Clone)]
struct Entry {
    id: String,
    at: Option<i64>,
    /// `recorded` (permanent) or `queued` (retries exhausted).
    kind: &'static str,
    function: String,
    event: Option<EventRef>,
    window: Option<(i64, i64)>,
    reason: String,
    handle: Handle,
}

impl Entry {
    fn queued(id: String, queued: Queued, fallback_at: Option<i64>, handle: Handle) -> Self {
        Self {
            id,
            at: queued.at.or(fallback_at),
            kind: "queued",
            function: queued.function,
            event: queued.event,
            window: queued.window,
            reason: queued.reason,
            handle,
        }
    }

    /// What it concerns: the event's record, or the pipe's window.
    fn subject(&self) -> String {
        match (&self.event, self.window) {
            (Some(event), _) => format!("{} {}", event.pk, event.sk),
            (None, Some((from, to))) => {
                format!(
                    "events received {} – {}",
                    datetime(Some(from)),
                    datetime(Some(to))
                )
            }
            (None, None) => "-".to_owned(),
        }
    }

    fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "at": self.at,
            "kind": self.kind,
            "function": self.function,
            "record": self.event.as_ref().map(|e| &e.pk),
            "event": self.event.as_ref().map(|e| json!({"pk": e.pk, "sk": e.sk, "type": e.kind})),
            "window": self.window.map(|(from, to)| json!({"from": from, "to": to})),
            "reason": self.reason,
        })
    }
}

/// The failure queue of the stack at hand.
enum Queue {
    /// The local stack's, in its events table.
    Local,
    Sqs {
        client: aws_sdk_sqs::Client,
        url: String,
    },
    /// A deployed stack whose queue was not named.
    Unnamed,
}

impl Queue {
    fn of(stack: &Stack, args: &QueueArgs) -> Self {
        match (&args.failure_queue_url, &stack.endpoint) {
            (Some(url), _) if !url.trim().is_empty() => Self::Sqs {
                client: aws_sdk_sqs::Client::new(&stack.sdk),
                url: url.trim().to_owned(),
            },
            (_, Some(_)) => Self::Local,
            _ => Self::Unnamed,
        }
    }
}

async fn entries(stack: &Stack, queue: &Queue, hold_seconds: i32) -> Result<Vec<Entry>, Error> {
    let mut entries: Vec<Entry> = stack
        .store
        .failures()
        .await?
        .into_iter()
        .map(|f| Entry {
            id: f.sk.clone(),
            at: Some(f.at),
            kind: "recorded",
            function: f.function,
            event: Some(EventRef {
                id: f.event_sk.trim_start_matches("ev#").to_owned(),
                pk: f.event_pk,
                sk: f.event_sk,
                kind: f.event_type,
                ..EventRef::default()
            }),
            window: None,
            reason: f.reason,
            handle: Handle::Recorded(f.sk),
        })
        .collect();
    match queue {
        Queue::Local => {
            for item in stack.store.local_failure_queue().await? {
                let queued = parse_queued(&item.message, None);
                entries.push(Entry::queued(
                    item.sk.clone(),
                    queued,
                    Some(item.at),
                    Handle::LocalQueue(item.sk),
                ));
            }
        }
        Queue::Sqs { client, url } => {
            entries.extend(receive_all(client, url, hold_seconds).await?);
        }
        Queue::Unnamed => eprintln!(
            "callhook: the failure queue is not shown: name it with --failure-queue-url (or \
             CALLHOOK_FAILURE_QUEUE_URL; the stack output FailureQueueUrl)"
        ),
    }
    entries.sort_by(|a, b| b.at.cmp(&a.at).then_with(|| a.id.cmp(&b.id)));
    Ok(entries)
}

/// Every message of an SQS failure queue. Listing holds none (`hold_seconds` 0: each stays
/// visible to the next reader); replaying holds them while it works, and deletes those it
/// replayed.
async fn receive_all(
    client: &aws_sdk_sqs::Client,
    url: &str,
    hold_seconds: i32,
) -> Result<Vec<Entry>, Error> {
    use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
    let depth = client
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .map_err(|e| format!("cannot read the failure queue {url}: {}", sqs_error(&e)))?
        .attributes
        .and_then(|a| {
            a.get(&QueueAttributeName::ApproximateNumberOfMessages)
                .and_then(|n| n.parse::<usize>().ok())
        })
        .unwrap_or(0);
    let mut seen = HashSet::new();
    let mut entries = Vec::new();
    // Short polls sample the queue's servers: keep asking until every message was seen, or
    // several polls in a row bring nothing new.
    let mut fruitless = 0;
    while seen.len() < depth && fruitless < 5 {
        let out = client
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .visibility_timeout(hold_seconds)
            .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|e| format!("cannot read the failure queue {url}: {}", sqs_error(&e)))?;
        let mut new = 0;
        for message in out.messages.unwrap_or_default() {
            let Some(id) = message.message_id.clone() else {
                continue;
            };
            if !seen.insert(id.clone()) {
                continue;
            }
            new += 1;
            let error = message
                .message_attributes
                .as_ref()
                .and_then(|a| a.get("ERROR_MESSAGE"))
                .and_then(|v| v.string_value.clone());
            let sent = message
                .attributes
                .as_ref()
                .and_then(|a| a.get(&MessageSystemAttributeName::SentTimestamp))
                .and_then(|t| t.parse::<i64>().ok());
            let queued = parse_queued(message.body.as_deref().unwrap_or(""), error.as_deref());
            entries.push(Entry::queued(
                id,
                queued,
                sent,
                Handle::Sqs(message.receipt_handle.unwrap_or_default()),
            ));
        }
        fruitless = if new == 0 { fruitless + 1 } else { 0 };
    }
    Ok(entries)
}

fn sqs_error<E: aws_sdk_sqs::error::ProvideErrorMetadata>(e: &E) -> String {
    e.message()
        .or(e.code())
        .unwrap_or("the request failed")
        .to_owned()
}

async fn list(args: ListArgs, stack: &StackArgs) -> Result<(), Error> {
    let stack = stack.connect().await?;
    let queue = Queue::of(&stack, &args.queue);
    let entries = entries(&stack, &queue, 0).await?;
    if args.json {
        print_json(&Value::Array(entries.iter().map(Entry::to_json).collect()));
        return Ok(());
    }
    if entries.is_empty() {
        crate::remark!("No failures.");
        return Ok(());
    }
    let mut table = Table::new(&["WHEN (UTC)", "KIND", "FUNCTION", "ID", "EVENT", "WHY"]);
    for entry in &entries {
        table.row(vec![
            datetime(entry.at),
            entry.kind.to_owned(),
            entry.function.clone(),
            entry.id.clone(),
            entry.subject(),
            entry.reason.clone(),
        ]);
    }
    print!("{}", table.render());
    Ok(())
}

async fn replay(args: ReplayArgs, stack: &StackArgs) -> Result<(), Error> {
    let stack = stack.connect().await?;
    let queue = Queue::of(&stack, &args.queue);
    let policy = stack.opt_out_policy(args.opt_out_policy.as_deref());
    let bus = match args.event_bus.as_deref().map(str::trim) {
        Some(name) if !name.is_empty() => Bus::EventBridge {
            client: callhook::bus::EventBridgeClient::new(&stack.sdk),
            name: name.to_owned(),
        },
        _ => Bus::Off,
    };
    let all = entries(&stack, &queue, 300).await?;
    let selected: Vec<Entry> = if args.all {
        all
    } else {
        let wanted: HashSet<&str> = args.ids.iter().map(String::as_str).collect();
        let (found, others): (Vec<Entry>, Vec<Entry>) = all
            .into_iter()
            .partition(|e| wanted.contains(e.id.as_str()));
        // Queue messages received but not replayed are visible again at once.
        for other in &others {
            release(&queue, &other.handle).await;
        }
        let missing: Vec<&&str> = wanted
            .iter()
            .filter(|id| !found.iter().any(|e| e.id == **id))
            .collect();
        if !missing.is_empty() {
            return Err(NotFound(format!(
                "no failure {} (ids as `callhook failures list` prints them)",
                missing
                    .iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .into());
        }
        found
    };

    let (mut replayed, mut failed) = (Vec::new(), Vec::new());
    for entry in &selected {
        match replay_entry(&stack, policy, &bus, entry).await {
            Ok(events) => {
                remove(&stack, &queue, &entry.handle).await?;
                replayed.push(json!({"id": entry.id, "events": events}));
            }
            Err(error) => {
                release(&queue, &entry.handle).await;
                failed.push(json!({"id": entry.id, "error": error.to_string()}));
            }
        }
    }
    let summary = json!({"replayed": replayed, "failed": failed});
    if args.json {
        print_json(&summary);
    } else {
        println!(
            "Replayed {} of {} failures{}.",
            replayed.len(),
            selected.len(),
            if failed.is_empty() {
                String::new()
            } else {
                format!("; {} failed again and were kept", failed.len())
            }
        );
        for failure in &failed {
            println!(
                "  {}: {}",
                failure["id"].as_str().unwrap_or_default(),
                failure["error"].as_str().unwrap_or_default()
            );
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("{} failures could not be replayed", failed.len()).into())
    }
}

/// Merges the events of one failure again: how many.
async fn replay_entry(
    stack: &Stack,
    policy: OptOutPolicy,
    bus: &Bus,
    entry: &Entry,
) -> Result<usize, Error> {
    let events = match (&entry.event, entry.window) {
        (Some(event), _) => vec![event.clone()],
        (None, Some((from, to))) => {
            stack
                .store
                .events_received_between(from - WINDOW_MARGIN_MS, to + WINDOW_MARGIN_MS)
                .await?
        }
        (None, None) => return Err("the failure names no event to replay".into()),
    };
    for event in &events {
        merge::process(policy, &stack.store, bus, event).await?;
    }
    Ok(events.len())
}

/// Makes a queue message received for replay visible again at once (best effort: otherwise it
/// is visible again when its hold ends).
async fn release(queue: &Queue, handle: &Handle) {
    if let (Handle::Sqs(receipt), Queue::Sqs { client, url }) = (handle, queue) {
        let _ = client
            .change_message_visibility()
            .queue_url(url)
            .receipt_handle(receipt)
            .visibility_timeout(0)
            .send()
            .await;
    }
}

async fn remove(stack: &Stack, queue: &Queue, handle: &Handle) -> Result<(), Error> {
    match (handle, queue) {
        (Handle::Recorded(sk), _) => stack.store.delete_failure(sk).await?,
        (Handle::LocalQueue(sk), _) => stack.store.delete_local_failure(sk).await?,
        (Handle::Sqs(receipt), Queue::Sqs { client, url }) => {
            client
                .delete_message()
                .queue_url(url)
                .receipt_handle(receipt)
                .send()
                .await
                .map_err(|e| format!("cannot delete from the failure queue: {}", sqs_error(&e)))?;
        }
        (Handle::Sqs(_), _) => {}
    }
    Ok(())
}
