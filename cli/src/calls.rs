//! `callhook calls list` and `callhook calls show`.

use crate::filter::{FilterArgs, provider_names};
use crate::output::{Table, datetime, duration, or_dash, print_json};
use crate::stack::StackArgs;
use crate::{Error, NotFound};
use callhook::record::CallRecord;
use serde_json::Value;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// List calls, newest first, as a table (or JSON records with --json).
    List(ListArgs),
    /// One call's record, its transcript rendered as a conversation (the record's JSON contract
    /// with --json).
    Show(ShowArgs),
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    #[command(flatten)]
    filter: FilterArgs,
    /// At most this many calls.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
    limit: u32,
    /// Print the call records as a JSON array.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    #[arg(value_parser = provider_names())]
    provider: String,
    call_id: String,
    /// Print the record's JSON contract.
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
    let items = args
        .filter
        .newest(&stack.store, args.limit as usize)
        .await?;
    if args.json {
        let mut records = Vec::with_capacity(items.len());
        for item in items {
            records.push(stack.store.complete(&item).await?.to_contract_json());
        }
        print_json(&Value::Array(records));
        return Ok(());
    }
    if items.is_empty() {
        crate::remark!("No calls match.");
        return Ok(());
    }
    let mut table = Table::new(&[
        "STARTED (UTC)",
        "PROVIDER",
        "CALL ID",
        "DIRECTION",
        "FROM",
        "TO",
        "STATUS",
        "OUTCOME",
        "DURATION",
        "AGENT",
    ]);
    let count = items.len();
    for item in items {
        let r = &item.record;
        let mut outcome = or_dash(r.outcome.as_deref());
        if r.missed {
            outcome.push_str(" (missed)");
        }
        table.row(vec![
            datetime(r.started_at.or(r.ended_at).or(r.first_event_at)),
            r.provider.clone(),
            r.call_id.clone(),
            or_dash(r.direction.as_deref()),
            or_dash(r.from_number.as_deref()),
            or_dash(r.to_number.as_deref()),
            status(r),
            outcome,
            duration(r.duration_ms),
            or_dash(r.agent.as_ref().and_then(|a| a.id.as_deref())),
        ]);
    }
    print!("{}", table.render());
    if count == args.limit as usize {
        crate::remark!("(the newest {count}; --limit shows more)");
    }
    Ok(())
}

async fn show(args: ShowArgs, stack: &StackArgs) -> Result<(), Error> {
    let stack = stack.connect().await?;
    let record = stack
        .store
        .load_call(&args.provider, &args.call_id)
        .await?
        .ok_or_else(|| NotFound(format!("no {} call {}", args.provider, args.call_id)))?;
    if args.json {
        print_json(&record.to_contract_json());
    } else {
        print!("{}", render(&record));
    }
    Ok(())
}

/// The record's status as the contract writes it (`in_progress`, ...), `-` when unknown.
pub(crate) fn status(record: &CallRecord) -> String {
    record
        .status
        .and_then(|s| serde_json::to_value(s).ok())
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "-".to_owned())
}

/// The record for a person: the facts, the analysis, then the conversation.
pub fn render(r: &CallRecord) -> String {
    let mut out = format!("{} call {}\n\n", r.provider, r.call_id);
    let mut fact = |name: &str, value: String| {
        if value != "-" && !value.is_empty() {
            out.push_str(&format!("  {name:<12}{value}\n"));
        }
    };
    let mut state = status(r);
    if let Some(outcome) = &r.outcome {
        state.push_str(&format!(", {outcome}"));
    }
    if r.missed {
        state.push_str(" (missed)");
    }
    fact("status", state);
    fact("direction", or_dash(r.direction.as_deref()));
    fact("from", or_dash(r.from_number.as_deref()));
    fact("to", or_dash(r.to_number.as_deref()));
    if let Some(agent) = &r.agent {
        let mut text = or_dash(agent.id.as_deref());
        if let Some(version) = &agent.version {
            text.push_str(&format!(" ({version})"));
        }
        fact("agent", text);
    }
    fact("started", with_utc(r.started_at));
    fact("ended", with_utc(r.ended_at));
    fact("duration", duration(r.duration_ms));
    fact("end reason", or_dash(r.end_reason.as_deref()));
    if let Some(cost) = &r.cost {
        fact("cost", format!("{} {}", cost.amount, cost.unit));
    }
    fact("recording", or_dash(r.recording_url.as_deref()));
    fact(
        "events",
        r.events
            .iter()
            .map(|e| e.as_str())
            .collect::<Vec<_>>()
            .join(", "),
    );
    fact("received", with_utc(r.first_event_at));
    if r.sensitive_data_opt_out == Some(true) {
        fact(
            "opted out",
            "the caller opted out of data storage".to_owned(),
        );
    }
    for (name, value) in [
        ("dynamic variables", r.dynamic_variables.as_ref()),
        ("metadata", r.metadata.as_ref()),
        ("lead", r.lead.as_ref()),
    ] {
        if let Some(map) = value.filter(|m| !m.is_empty()) {
            out.push_str(&format!("\n{name}\n"));
            for (key, value) in map {
                out.push_str(&format!("  {key}: {}\n", plain(value)));
            }
        }
    }
    if let Some(analysis) = r.analysis.as_ref().filter(|a| !a.is_empty()) {
        out.push_str("\nanalysis\n");
        if let Some(summary) = &analysis.summary {
            out.push_str(&indent(summary, "  ", "  "));
        }
        if let Some(sentiment) = &analysis.sentiment {
            out.push_str(&format!("  sentiment: {sentiment}\n"));
        }
        for item in &analysis.data {
            out.push_str(&format!(
                "  {} ({}): {}\n",
                item.name,
                item.kind,
                plain(&item.value)
            ));
        }
    }
    out.push_str(&format!("\ntranscript ({} turns)\n", r.transcript.len()));
    let width = r
        .transcript
        .iter()
        .map(|t| t.role.chars().count())
        .max()
        .unwrap_or(0);
    for turn in &r.transcript {
        let head = format!("  {:<width$}  ", turn.role);
        let rest = " ".repeat(head.chars().count());
        out.push_str(&indent(&turn.content, &head, &rest));
    }
    out
}

fn with_utc(ms: Option<i64>) -> String {
    match ms {
        Some(_) => format!("{} UTC", datetime(ms)),
        None => "-".to_owned(),
    }
}

fn plain(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `text` with `first` before its first line and `rest` before the others.
fn indent(text: &str, first: &str, rest: &str) -> String {
    let mut out = String::new();
    for (i, line) in text.trim_end().lines().enumerate() {
        out.push_str(if i == 0 { first } else { rest });
        out.push_str(line);
        out.push('\n');
    }
    if out.is_empty() {
        out.push_str(first.trim_end());
        out.push('\n');
    }
    out
}
