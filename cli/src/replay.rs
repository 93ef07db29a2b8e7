//! `callhook replay`: rebuilds call records from their stored raw events with today's parsers and
//! merge (after a parser fix, or to repair a record), and says what changed.

use crate::Error;
use crate::filter::{FilterArgs, Selection};
use crate::output::{print_json, progress};
use crate::stack::StackArgs;
use callhook::config::OptOutPolicy;
use callhook::handlers::merge::rebuild_call;
use callhook::record::{CONTRACT_FIELDS, CallRecord};
use callhook::store::Store;
use futures_util::{FutureExt, Stream, TryStreamExt};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;

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
    /// How many calls are replayed at once.
    #[arg(long, short = 'j', default_value_t = 8, value_name = "N")]
    concurrency: usize,
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

    // The keys are found page by page while the first calls are already being replayed; the
    // bar's length grows as they are found.
    let bar = progress(Some(0), "calls");
    let keys: KeyStream<'_> = if args.from_events {
        let provider = args.filter.provider.clone();
        Box::pin(keys_from_events(store).try_filter(move |k| {
            let keep = provider
                .as_deref()
                .is_none_or(|p| callhook::event::parse_call_key(k).is_some_and(|(kp, _)| kp == p));
            std::future::ready(keep)
        }))
    } else {
        Box::pin(keys_of_selection(args.filter.select(store).await?))
    };
    let keys = keys.inspect_ok(|_| bar.inc_length(1));
    let dry_run = args.dry_run;
    let mut results = Vec::new();
    for_each_key(keys, args.concurrency.max(1), |key| async move {
        let result = replay_one(store, policy, &key, dry_run).await;
        (key, result)
    })
    .try_for_each(|done| {
        bar.inc(1);
        results.push(done);
        std::future::ready(Ok(()))
    })
    .await?;
    bar.finish_and_clear();
    // Finished in any order; reported in the keys' order.
    results.sort_by(|a, b| a.0.cmp(&b.0));

    let (mut changed, mut unchanged, mut failed, mut unreadable, mut no_events) =
        (Vec::new(), 0usize, Vec::new(), Vec::new(), 0usize);
    let mut events = 0usize;
    for (key, result) in &results {
        let (provider, call_id) = callhook::event::parse_call_key(key).unwrap_or((key, ""));
        match result {
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
                "provider": provider, "call_id": call_id,
                "error": crate::with_causes(error.as_ref()),
            })),
        }
    }

    let summary = json!({
        "dry_run": args.dry_run,
        "calls": results.len(),
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

/// The record keys of the calls to replay, as they are found.
type KeyStream<'a> = Pin<Box<dyn Stream<Item = Result<String, Error>> + 'a>>;

/// The keys of the calls the listing's filters select, one page of the index at a time.
fn keys_of_selection(selection: Selection<'_>) -> impl Stream<Item = Result<String, Error>> + '_ {
    futures_util::stream::try_unfold(selection, |mut selection| async move {
        Ok(selection.next().await?.map(|item| (item.pk, selection)))
    })
}

/// The keys of every call with events, from a Scan of the events table, each once.
fn keys_from_events(store: &Store) -> impl Stream<Item = Result<String, Error>> + '_ {
    let seen = HashSet::new();
    futures_util::stream::try_unfold(
        (store.scan_call_keys(), seen),
        |(mut scan, mut seen)| async move {
            match scan.next_page().await? {
                None => Ok::<_, Error>(None),
                Some(page) => {
                    let new: Vec<Result<String, Error>> = page
                        .into_iter()
                        .filter(|k| seen.insert(k.clone()))
                        .map(Ok)
                        .collect();
                    Ok(Some((futures_util::stream::iter(new), (scan, seen))))
                }
            }
        },
    )
    .try_flatten()
}

/// Runs `work` on every key, at most `limit` at once, starting as soon as the first key is
/// known, and yields each result as it finishes; a failure to find the keys ends the stream.
fn for_each_key<'a, W, F, T>(
    keys: impl Stream<Item = Result<String, Error>> + 'a,
    limit: usize,
    work: W,
) -> impl Stream<Item = Result<T, Error>> + 'a
where
    W: Fn(String) -> F + 'a,
    F: Future<Output = T> + 'a,
{
    keys.map_ok(move |key| work(key).map(Ok))
        .try_buffer_unordered(limit)
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test]
    async fn replays_start_with_the_first_key_and_never_exceed_the_limit() {
        let (send, receive) = tokio::sync::mpsc::unbounded_channel::<Result<String, Error>>();
        let keys = futures_util::stream::unfold(receive, |mut receive| async move {
            receive.recv().await.map(|key| (key, receive))
        });
        let (started, mut first_started) = tokio::sync::mpsc::unbounded_channel::<String>();
        let (running, most) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let work = |key: String| {
            let (started, running, most) = (started.clone(), &running, &most);
            async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                let _ = started.send(key.clone());
                for _ in 0..20 {
                    tokio::task::yield_now().await;
                }
                running.fetch_sub(1, Ordering::SeqCst);
                key
            }
        };
        let replayed = for_each_key(keys, 3, work).try_collect::<Vec<String>>();
        let feeder = async {
            send.send(Ok("call#vox#0".to_owned())).unwrap();
            // The key source stays open until the first replay has started: replays that
            // waited for every key would never start, and this would time out.
            let first = tokio::time::timeout(Duration::from_secs(30), first_started.recv())
                .await
                .expect("the first call was not replayed before the last key was found");
            assert_eq!(first.as_deref(), Some("call#vox#0"));
            for n in 1..12 {
                send.send(Ok(format!("call#vox#{n}"))).unwrap();
            }
            drop(send);
        };
        let (replayed, ()) = tokio::join!(replayed, feeder);
        let mut replayed = replayed.unwrap();
        replayed.sort_by_key(|k| k[9..].parse::<u32>().unwrap());
        let expected: Vec<String> = (0..12).map(|n| format!("call#vox#{n}")).collect();
        assert_eq!(replayed, expected);
        assert_eq!(
            most.load(Ordering::SeqCst),
            3,
            "at most 3 at once, and 3 used"
        );
    }

    #[tokio::test]
    async fn a_failure_to_find_keys_ends_the_replay_with_it() {
        let keys = futures_util::stream::iter(vec![
            Ok("call#vox#1".to_owned()),
            Err::<String, Error>("the scan was refused".into()),
        ]);
        let result = for_each_key(keys, 4, |key| async move { key })
            .try_collect::<Vec<String>>()
            .await;
        assert_eq!(result.unwrap_err().to_string(), "the scan was refused");
    }
}
