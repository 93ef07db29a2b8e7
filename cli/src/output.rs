//! What the commands print: aligned tables, times, durations, progress bars.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use time::OffsetDateTime;
use time::macros::format_description;

static QUIET: AtomicBool = AtomicBool::new(false);

/// `-q`: no progress bars and no remarks for people on standard error (data, warnings and errors
/// are still printed).
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

pub fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

/// A remark for the person at the terminal, on standard error; nothing under `-q`.
#[macro_export]
macro_rules! remark {
    ($($arg:tt)*) => {
        if !$crate::output::quiet() {
            eprintln!($($arg)*);
        }
    };
}

/// What `-v` and `-q` ask for: the log filter (`RUST_LOG` overrides it) given the level a command
/// logs at by default.
pub fn log_filter(
    default: tracing::Level,
    verbose: u8,
    quiet: bool,
) -> tracing_subscriber::EnvFilter {
    use tracing::Level;
    const LEVELS: [Level; 5] = [
        Level::ERROR,
        Level::WARN,
        Level::INFO,
        Level::DEBUG,
        Level::TRACE,
    ];
    let at = LEVELS.iter().position(|l| *l == default).unwrap_or(1);
    let at = if quiet {
        at.saturating_sub(1)
    } else {
        (at + usize::from(verbose)).min(LEVELS.len() - 1)
    };
    tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(LEVELS[at].as_str()))
}

/// A plain text table: a header row, then rows, columns padded to their widest cell.
pub struct Table {
    header: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&'static str]) -> Self {
        Self {
            header: header.to_vec(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn render(&self) -> String {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                if let Some(width) = widths.get_mut(i) {
                    *width = (*width).max(cell.chars().count());
                }
            }
        }
        let line = |cells: Vec<&str>| {
            let mut out = String::new();
            for (i, cell) in cells.iter().enumerate() {
                if i + 1 == cells.len() {
                    out.push_str(cell);
                } else {
                    let pad = widths[i].saturating_sub(cell.chars().count());
                    out.push_str(cell);
                    out.extend(std::iter::repeat_n(' ', pad + 2));
                }
            }
            out.trim_end().to_owned() + "\n"
        };
        let mut out = line(self.header.clone());
        for row in &self.rows {
            out.push_str(&line(row.iter().map(String::as_str).collect()));
        }
        out
    }
}

/// Unix ms as `2026-11-21 09:30:05` (UTC).
pub fn datetime(ms: Option<i64>) -> String {
    let Some(ms) = ms else {
        return "-".to_owned();
    };
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(format_description!(
                "[year]-[month]-[day] [hour]:[minute]:[second]"
            ))
            .ok()
        })
        .unwrap_or_else(|| ms.to_string())
}

/// Unix ms as RFC 3339 (`2026-11-21T09:30:05.120Z`), for files.
pub fn rfc3339(ms: Option<i64>) -> String {
    ms.and_then(|ms| OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok())
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// Milliseconds as `1h 02m 05s`, `2m 05s` or `42s`.
pub fn duration(ms: Option<i64>) -> String {
    let Some(ms) = ms else {
        return "-".to_owned();
    };
    let secs = (ms + 500) / 1000;
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m {s:02}s"),
        _ => format!("{h}h {m:02}m {s:02}s"),
    }
}

pub fn or_dash(value: Option<&str>) -> String {
    match value {
        Some(v) if !v.trim().is_empty() => v.to_owned(),
        _ => "-".to_owned(),
    }
}

/// A progress bar on stderr when it is a terminal (and nothing at all otherwise). `len` unknown
/// gives a counter with a rate.
pub fn progress(len: Option<u64>, what: &'static str) -> ProgressBar {
    let bar = match len {
        Some(len) => ProgressBar::new(len).with_style(
            ProgressStyle::with_template(&format!(
                "{{bar:30}} {{pos}}/{{len}} {what} ({{per_sec}}, {{eta}} left)"
            ))
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template(&format!("{{spinner}} {{pos}} {what} ({{per_sec}})"))
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        ),
    };
    let target = if std::io::stderr().is_terminal() && !quiet() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    bar.set_draw_target(target);
    bar
}

/// Prints pretty JSON on stdout.
pub fn print_json(value: &serde_json::Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_on_the_widest_cell() {
        let mut table = Table::new(&["A", "LONG HEADER", "C"]);
        table.row(vec!["wide cell".into(), "x".into(), "end".into()]);
        assert_eq!(
            table.render(),
            "A          LONG HEADER  C\nwide cell  x            end\n"
        );
    }

    #[test]
    fn times_and_durations_read_well() {
        assert_eq!(datetime(Some(1_700_000_000_123)), "2023-11-14 22:13:20");
        assert_eq!(rfc3339(Some(1_700_000_000_123)), "2023-11-14T22:13:20.123Z");
        assert_eq!(datetime(None), "-");
        assert_eq!(duration(Some(42_400)), "42s");
        assert_eq!(duration(Some(125_000)), "2m 05s");
        assert_eq!(duration(Some(3_725_000)), "1h 02m 05s");
    }
}
