//! `callhook export [--format jsonl|csv]`: the call records, for analysis elsewhere.
//!
//! CSV goes through the `csv` crate (RFC 4180 quoting). A spreadsheet that opens the file would
//! take a cell starting with `=`, `+`, `-`, `@`, a tab or a carriage return for a formula, and a
//! caller controls much of a record (numbers, transcript, summary): such cells get a leading `'`,
//! which spreadsheets read as "text" and do not show. JSON lines keep every value as it is.

use crate::Error;
use crate::filter::FilterArgs;
use crate::output::{progress, rfc3339};
use crate::stack::StackArgs;
use callhook::record::CallRecord;
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    /// One JSON record (the contract) per line.
    Jsonl,
    /// One row per call, the main fields as columns (times in RFC 3339, UTC); cells starting
    /// with `=`, `+`, `-`, `@`, a tab or a carriage return get a leading `'` so that spreadsheets
    /// take them as text, not formulas (a number such as +14155550123 becomes '+14155550123).
    Csv,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// jsonl (the default): the records as they are. csv: a cell starting with `=`, `+`, `-`, `@`,
    /// a tab or a carriage return gets a leading `'`, so that spreadsheets take it as text, not a
    /// formula.
    #[arg(long, value_enum, default_value_t = Format::Jsonl)]
    format: Format,
    /// Write here instead of to standard output.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    #[command(flatten)]
    filter: FilterArgs,
}

/// The CSV columns, in order.
pub const CSV_COLUMNS: [&str; 25] = [
    "provider",
    "call_id",
    "agent_id",
    "agent_version",
    "direction",
    "from_number",
    "to_number",
    "status",
    "outcome",
    "missed",
    "started_at",
    "ended_at",
    "duration_ms",
    "end_reason",
    "recording_url",
    "cost_amount",
    "cost_unit",
    "summary",
    "sentiment",
    "transcript_turns",
    "transcript",
    "events",
    "first_event_at",
    "last_event_at",
    "sensitive_data_opt_out",
];

pub async fn run(args: Args, stack: &StackArgs) -> Result<(), Error> {
    let stack = stack.connect().await?;
    let out: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let mut out = match args.format {
        Format::Csv => {
            let mut csv = csv::Writer::from_writer(out);
            csv.write_record(CSV_COLUMNS)?;
            Sink::Csv(Box::new(csv))
        }
        Format::Jsonl => Sink::Jsonl(out),
    };
    let bar = progress(None, "calls");
    let mut selection = args.filter.select(&stack.store).await?;
    let mut count = 0u64;
    while let Some(item) = selection.next().await? {
        let record = stack.store.complete(&item).await?;
        out.write(&record)?;
        count += 1;
        bar.inc(1);
    }
    out.flush()?;
    bar.finish_and_clear();
    let to = args
        .output
        .as_ref()
        .map_or("standard output".to_owned(), |p| p.display().to_string());
    crate::remark!("Exported {count} calls to {to}.");
    Ok(())
}

/// Where the records go, in the chosen format.
enum Sink {
    Jsonl(Box<dyn Write>),
    Csv(Box<csv::Writer<Box<dyn Write>>>),
}

impl Sink {
    fn write(&mut self, record: &CallRecord) -> Result<(), Error> {
        match self {
            Self::Jsonl(out) => {
                serde_json::to_writer(&mut *out, &record.to_contract_json())?;
                out.write_all(b"\n")?;
            }
            Self::Csv(csv) => {
                csv.write_record(
                    csv_row(record)
                        .iter()
                        .map(|cell| neutralized(cell).into_owned()),
                )?;
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Self::Jsonl(out) => out.flush(),
            Self::Csv(csv) => csv.flush(),
        }
    }
}

/// A cell a spreadsheet would take for a formula (it starts with `=`, `+`, `-`, `@`, a tab or a
/// carriage return) with a leading `'`, which makes it text; any other cell as it is.
pub fn neutralized(cell: &str) -> std::borrow::Cow<'_, str> {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{cell}").into()
    } else {
        cell.into()
    }
}

/// The record's cells, in [`CSV_COLUMNS`] order.
pub fn csv_row(r: &CallRecord) -> [String; CSV_COLUMNS.len()] {
    let text = |v: Option<&String>| v.cloned().unwrap_or_default();
    let number = |v: Option<i64>| v.map(|n| n.to_string()).unwrap_or_default();
    let agent = r.agent.clone().unwrap_or_default();
    let analysis = r.analysis.clone().unwrap_or_default();
    let status = r
        .status
        .and_then(|s| serde_json::to_value(s).ok())
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let transcript = serde_json::to_string(&r.transcript).unwrap_or_default();
    [
        r.provider.clone(),
        r.call_id.clone(),
        text(agent.id.as_ref()),
        text(agent.version.as_ref()),
        text(r.direction.as_ref()),
        text(r.from_number.as_ref()),
        text(r.to_number.as_ref()),
        status,
        text(r.outcome.as_ref()),
        r.missed.to_string(),
        rfc3339(r.started_at),
        rfc3339(r.ended_at),
        number(r.duration_ms),
        text(r.end_reason.as_ref()),
        text(r.recording_url.as_ref()),
        r.cost
            .as_ref()
            .map(|c| c.amount.to_string())
            .unwrap_or_default(),
        r.cost.as_ref().map(|c| c.unit.clone()).unwrap_or_default(),
        text(analysis.summary.as_ref()),
        text(analysis.sentiment.as_ref()),
        r.transcript.len().to_string(),
        if r.transcript.is_empty() {
            String::new()
        } else {
            transcript
        },
        r.events
            .iter()
            .map(|e| e.as_str())
            .collect::<Vec<_>>()
            .join(" "),
        rfc3339(r.first_event_at),
        rfc3339(r.last_event_at),
        r.sensitive_data_opt_out
            .map(|b| b.to_string())
            .unwrap_or_default(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_a_spreadsheet_would_evaluate_are_made_text() {
        for cell in ["=1+1", "+14155550123", "-2", "@SUM(A1)", "\tx", "\rx"] {
            assert_eq!(neutralized(cell), format!("'{cell}"));
        }
        for cell in [
            "",
            "plain",
            "0123",
            "a=b",
            "[{\"content\":\"=1\"}]",
            "'quoted",
        ] {
            assert_eq!(neutralized(cell), cell);
        }
    }

    #[test]
    fn a_row_has_one_cell_per_column() {
        let record = CallRecord::new("vox", "c1");
        let row = csv_row(&record);
        assert_eq!(row[0], "vox");
        assert_eq!(row[1], "c1");
        assert_eq!(row[9], "false");
    }
}
