//! `callhook replay`: rebuilds call records from their stored raw events with today's parsers and
//! merge (after a parser fix, or to repair a record), and says what changed.

use crate::Error;
use crate::filter::FilterArgs;
use crate::output::{print_json, progress};
use crate::stack::StackArgs;
use callhook::config::OptOutPolicy;
use callhook::handlers::merge::rebuild_call;
use callhook::record::{CONTRACT_FIELDS, CallRecord};
use callhook::store::Store;
use serde_json::{Value, json};

/// Rebuilds of one call that lose the race with a live merge before one sticks.
const ATTEMPTS: usize = 5;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    filter: FilterArgs,
    /// Find the calls in the events table instead (a scan of it): rebuilds records that are
    /// missing altogether. Takes --provider, not the other filters.
    #[arg(long, conflicts_with_all = ["agent", "number", "since", "until", "status", "missed"])]
    from_events: bool,
    /// Say what would change, and write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Calls whose caller opted out of data storage: `keep` or `redact` (default: the local
    /// stack's policy, else keep). Use the deployed stack's OptOutPolicy.
    #[arg(long, env = "CALLHOOK_OPT_OUT_POLICY", value_parser = ["keep", "redact"])]
    opt_out_policy: Option<String>,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

/// What replaying one call did.
enum Outcome {
    Unchanged,
    Changed(Vec<String>),
    NoEvents,
}

pub async fn run(args: Args, stack: &StackArgs) -> Result<(), Error> {
    let stack = stack.connect().await?;
    let policy = stack.opt_out_policy(args.opt_out_policy.as_deref());
    let store = &stack.store;

    let keys: Vec<String> = if args.from_events {
        let provider = args.filter.provider.as_deref();
        store
            .call_keys_from_events()
            .await?
            .into_iter()
            .filter(|k| {
                provider.is_none_or(|p| {
                    callhook::event::parse_call_key(k).is_some_and(|(kp, _)| kp == p)
                })
            })
            .collect()
    } else {
        let mut keys = Vec::new();
        let mut selection = args.filter.select(store).await?;
        while let Some(item) = selection.next().await? {
            keys.push(item.pk);
        }
        keys
    };

    let bar = progress(Some(keys.len() as u64), "calls");
    let (mut changed, mut unchanged, mut failed, mut unreadable, mut no_events) =
        (Vec::new(), 0usize, Vec::new(), Vec::new(), 0usize);
    let mut events = 0usize;
    for key in &keys {
        let (provider, call_id) = callhook::event::parse_call_key(key).unwrap_or((key, ""));
        match replay_one(store, policy, key, args.dry_run).await {
            Ok((outcome, folded, bad)) => {
                events += folded;
                for (sk, error) in bad {
                    unreadable.push(json!({
                        "provider": provider, "call_id": call_id, "event": sk,
                        "error": error.to_string(),
                    }));
                }
                match outcome {
                    Outcome::Unchanged => unchanged += 1,
                    Outcome::NoEvents => no_events += 1,
                    Outcome::Changed(fields) => changed.push(json!({
                        "provider": provider, "call_id": call_id, "fields": fields,
                    })),
                }
            }
            Err(error) => failed.push(json!({
                "provider": provider, "call_id": call_id, "error": error.to_string(),
            })),
        }
        bar.inc(1);
    }
    bar.finish_and_clear();

    let summary = json!({
        "dry_run": args.dry_run,
        "calls": keys.len(),
        "events": events,
        "changed": changed,
        "unchanged": unchanged,
        "without_readable_events": no_events,
        "unreadable_events": unreadable,
        "failed": failed,
    });
    if args.json {
        print_json(&summary);
    } else {
        print_summary(&summary, args.dry_run);
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("{} calls could not be replayed", failed.len()).into())
    }
}

/// Rebuilds one record and, unless `dry_run`, writes it when it differs; a merge landing in
/// between makes it read and rebuild again.
async fn replay_one(
    store: &Store,
    policy: OptOutPolicy,
    key: &str,
    dry_run: bool,
) -> Result<(Outcome, usize, Vec<(String, callhook::Error)>), Error> {
    let (provider, call_id) = callhook::event::parse_call_key(key)
        .ok_or_else(|| format!("{key} is not the key of a call"))?;
    for _ in 0..ATTEMPTS {
        let current = store.get_call(provider, call_id).await?;
        let version = current.as_ref().map(|(_, version)| *version);
        let current = current.map(|(record, _)| record);
        let rebuilt = rebuild_call(policy, store, key).await?;
        let Some(record) = rebuilt.record else {
            return Ok((Outcome::NoEvents, 0, rebuilt.unreadable));
        };
        if current.as_ref() == Some(&record) {
            return Ok((Outcome::Unchanged, rebuilt.events, rebuilt.unreadable));
        }
        let fields = changed_fields(current.as_ref(), &record);
        if dry_run || store.replace_call(&record, version).await? {
            return Ok((Outcome::Changed(fields), rebuilt.events, rebuilt.unreadable));
        }
    }
    Err(format!("{key} kept changing while it was being replayed; try again").into())
}

/// The contract fields whose values differ (`merge_sources` when only the bookkeeping does).
fn changed_fields(before: Option<&CallRecord>, after: &CallRecord) -> Vec<String> {
    let Some(before) = before else {
        return vec!["(new record)".to_owned()];
    };
    let (Value::Object(old), Value::Object(new)) =
        (before.to_contract_json(), after.to_contract_json())
    else {
        return Vec::new();
    };
    // In the contract's order, then any field it does not list.
    let mut names: Vec<&str> = CONTRACT_FIELDS.to_vec();
    names.extend(
        new.keys()
            .map(String::as_str)
            .filter(|k| !CONTRACT_FIELDS.contains(k)),
    );
    let fields: Vec<String> = names
        .into_iter()
        .filter(|k| old.get(*k) != new.get(*k))
        .map(str::to_owned)
        .collect();
    if fields.is_empty() {
        vec!["merge_sources".to_owned()]
    } else {
        fields
    }
}

fn print_summary(summary: &Value, dry_run: bool) {
    let count = |key: &str| {
        summary[key]
            .as_array()
            .map_or_else(|| summary[key].as_u64().unwrap_or(0), |a| a.len() as u64)
    };
    let verb = if dry_run { "would change" } else { "changed" };
    println!(
        "Replayed {} calls from {} events: {} {verb}, {} unchanged{}{}.",
        count("calls"),
        count("events"),
        count("changed"),
        count("unchanged"),
        match count("failed") {
            0 => String::new(),
            n => format!(", {n} failed"),
        },
        match count("without_readable_events") {
            0 => String::new(),
            n => format!(", {n} with no readable event"),
        },
    );
    for call in summary["changed"].as_array().into_iter().flatten() {
        let fields: Vec<&str> = call["fields"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        println!(
            "  {} {}: {}",
            call["provider"].as_str().unwrap_or_default(),
            call["call_id"].as_str().unwrap_or_default(),
            fields.join(", ")
        );
    }
    for event in summary["unreadable_events"]
        .as_array()
        .into_iter()
        .flatten()
    {
        println!(
            "  unreadable: {} {} {}: {}",
            event["provider"].as_str().unwrap_or_default(),
            event["call_id"].as_str().unwrap_or_default(),
            event["event"].as_str().unwrap_or_default(),
            event["error"].as_str().unwrap_or_default(),
        );
    }
    for call in summary["failed"].as_array().into_iter().flatten() {
        println!(
            "  failed: {} {}: {}",
            call["provider"].as_str().unwrap_or_default(),
            call["call_id"].as_str().unwrap_or_default(),
            call["error"].as_str().unwrap_or_default(),
        );
    }
    if dry_run {
        println!("Dry run: nothing was written.");
    }
}
