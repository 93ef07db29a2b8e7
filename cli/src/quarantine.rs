//! `callhook quarantine list|show`: payloads that were authenticated but could not be used (they
//! were answered 400 or 422, and kept here for inspection).

use crate::filter::{parse_time, provider_names};
use crate::output::{Table, datetime, print_json};
use crate::stack::StackArgs;
use crate::{Error, NotFound};
use callhook::provider::REGISTRY;
use callhook::store::TYPE_QUARANTINE;
use serde_json::{Value, json};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// List quarantined payloads, newest first.
    List(ListArgs),
    /// One quarantined payload: why it was refused, and its raw body.
    Show(ShowArgs),
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Only this provider's payloads.
    #[arg(long, value_parser = provider_names())]
    provider: Option<String>,
    /// Only payloads received at or after this time: RFC 3339, a date (UTC), unix milliseconds,
    /// or an age such as 30m, 12h or 7d.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    since: Option<i64>,
    /// At most this many payloads, the newest.
    #[arg(long, short = 'n', default_value_t = 50)]
    limit: usize,
    /// Print them as a JSON array.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    #[arg(value_parser = provider_names())]
    provider: String,
    /// The payload's id, as `quarantine list` prints it.
    id: String,
    /// Print it as JSON.
    #[arg(long)]
    json: bool,
}

pub async fn run(command: Command, stack: &StackArgs) -> Result<(), Error> {
    match command {
        Command::List(args) => list(args, stack).await,
        Command::Show(args) => show(args, stack).await,
    }
}

async fn list(args: ListArgs, stack: &StackArgs) -> Result<(), Error> {
    let stack = stack.connect().await?;
    let mut items = Vec::new();
    for provider in REGISTRY {
        if args
            .provider
            .as_deref()
            .is_none_or(|p| p == provider.name())
        {
            // Without their bodies: a listing never reads them.
            items.extend(stack.store.quarantined(provider.name(), args.since).await?);
        }
    }
    items.sort_by_key(|item| std::cmp::Reverse(item.received_at));
    let total = items.len();
    items.truncate(args.limit);
    if args.json {
        print_json(&Value::Array(
            items
                .iter()
                .map(|item| {
                    json!({
                        "provider": item.provider,
                        "id": item.dedupe_key,
                        "received_at": item.received_at,
                        "body_bytes": item.body_bytes,
                        "error": item.error,
                    })
                })
                .collect(),
        ));
        return Ok(());
    }
    if items.is_empty() {
        crate::remark!("Nothing in quarantine.");
        return Ok(());
    }
    let mut table = Table::new(&["RECEIVED (UTC)", "PROVIDER", "ID", "BYTES", "WHY"]);
    let shown = items.len();
    for item in items {
        table.row(vec![
            datetime(Some(item.received_at)),
            item.provider,
            item.dedupe_key,
            item.body_bytes
                .map_or_else(|| "-".to_owned(), |b| b.to_string()),
            item.error.unwrap_or_default(),
        ]);
    }
    print!("{}", table.render());
    if shown < total {
        crate::remark!("{shown} of {total} shown: --limit shows more.");
    }
    Ok(())
}

async fn show(args: ShowArgs, stack: &StackArgs) -> Result<(), Error> {
    let stack = stack.connect().await?;
    let pk = format!("{TYPE_QUARANTINE}#{}", args.provider);
    let id = args.id.trim_start_matches("q#");
    let item = stack
        .store
        .get_event(&pk, &format!("q#{id}"))
        .await?
        .ok_or_else(|| NotFound(format!("no quarantined {} payload {id}", args.provider)))?;
    let body = stack.store.load_body(&item).await?;
    let text = String::from_utf8_lossy(&body);
    if args.json {
        print_json(&json!({
            "provider": item.provider,
            "id": item.dedupe_key,
            "received_at": item.received_at,
            "error": item.error,
            "body": text,
        }));
    } else {
        println!("{} payload {}", item.provider, item.dedupe_key);
        println!("  received  {} UTC", datetime(Some(item.received_at)));
        println!("  why       {}", item.error.unwrap_or_default());
        println!("\n{}", text.trim_end());
    }
    Ok(())
}
