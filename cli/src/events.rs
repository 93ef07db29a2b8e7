//! `callhook events <provider> <call-id>`: every stored event of a call, oldest first.

use crate::filter::provider_names;
use crate::output::{Table, datetime, print_json};
use crate::stack::StackArgs;
use crate::{Error, NotFound};
use serde_json::{Value, json};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(value_parser = provider_names())]
    provider: String,
    call_id: String,
    /// Also print each event's raw body, exactly as it was received.
    #[arg(long)]
    raw: bool,
    /// Print the events as a JSON array (bodies included with --raw).
    #[arg(long)]
    json: bool,
}

pub async fn run(args: Args, stack: &StackArgs) -> Result<(), Error> {
    let stack = stack.connect().await?;
    let key = callhook::event::record_key(
        &args.provider,
        callhook::EventType::CallStarted,
        &args.call_id,
    );
    // The bodies are read only when they are to be printed; sizes come with the items.
    let items = if args.raw {
        stack.store.events_of(&key).await?
    } else {
        stack.store.event_headers(&key).await?
    };
    if items.is_empty() {
        return Err(NotFound(format!(
            "no events stored for {} call {}",
            args.provider, args.call_id
        ))
        .into());
    }
    let mut bodies = Vec::with_capacity(items.len());
    let mut sizes = Vec::with_capacity(items.len());
    for item in &items {
        if args.raw {
            let body = stack.store.load_body(item).await?;
            sizes.push(body.len() as u64);
            bodies.push(body);
        } else {
            sizes.push(stack.store.body_size(item).await?);
        }
    }
    if args.json {
        let events: Vec<Value> = items
            .iter()
            .zip(&sizes)
            .enumerate()
            .map(|(i, (item, size))| {
                let mut event = json!({
                    "type": item.kind,
                    "provider_event": item.provider_event,
                    "dedupe_key": item.dedupe_key,
                    "received_at": item.received_at,
                    "occurred_at": item.occurred_at,
                    "body_bytes": size,
                });
                if let Some(body) = bodies.get(i) {
                    event["body"] = Value::String(String::from_utf8_lossy(body).into_owned());
                }
                event
            })
            .collect();
        print_json(&Value::Array(events));
        return Ok(());
    }
    let mut table = Table::new(&[
        "RECEIVED (UTC)",
        "TYPE",
        "PROVIDER EVENT",
        "BYTES",
        "DEDUPE KEY",
    ]);
    for (item, size) in items.iter().zip(&sizes) {
        table.row(vec![
            datetime(Some(item.received_at)),
            item.kind.clone(),
            if item.provider_event.is_empty() {
                "-".to_owned()
            } else {
                item.provider_event.clone()
            },
            size.to_string(),
            item.dedupe_key.clone(),
        ]);
    }
    print!("{}", table.render());
    for (item, body) in items.iter().zip(&bodies) {
        println!("\n--- {} {} ---", item.kind, item.dedupe_key);
        println!("{}", String::from_utf8_lossy(body).trim_end());
    }
    Ok(())
}
