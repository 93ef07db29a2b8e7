//! The `callhook` command against a running local stack (`callhook dev` on DynamoDB Local, started
//! by `make test`): send, list, show, events, export, replay and quarantine, all through the
//! command's own output, as a user or a script sees it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aws_sdk_dynamodb::types::AttributeValue;
use callhook_e2e::{SEED_CALLS, assert_snapshot, endpoint, repo_root, snapshot};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_callhook");
const VOX_CALL: &str = "3079f46c-d141-4cd9-805f-69f212136b66";
const SYNTHFLOW_CALL: &str = "1711646262471x768387119913843100";
const ANSWERED: &str = "CA7f3b2c9e1d4a4f8b9c0d1e2f3a4b5c6d";
const MISSED: &str = "CA0a1b2c3d4e5f60718293a4b5c6d7e8f9";
/// A scratch folder, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("callhook-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `program` with none of the caller's callhook settings, and `state` as the state file.
fn isolated(program: impl AsRef<std::ffi::OsStr>, state: &Path) -> Command {
    let mut command = Command::new(program);
    for (key, _) in std::env::vars() {
        if key.starts_with("CALLHOOK_") {
            command.env_remove(key);
        }
    }
    command.env("CALLHOOK_STATE", state).stdin(Stdio::null());
    command
}

fn callhook(state: &Path) -> Command {
    isolated(BIN, state)
}

fn run(state: &Path, args: &[&str]) -> Output {
    callhook(state).args(args).output().unwrap()
}

/// Runs and expects success; returns stdout.
fn ok(state: &Path, args: &[&str]) -> String {
    let out = run(state, args);
    assert!(
        out.status.success(),
        "callhook {args:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn json(state: &Path, args: &[&str]) -> Value {
    serde_json::from_str(&ok(state, args)).unwrap()
}

/// Waits until `path` exists (the local stack writes its state file once it serves).
fn wait_for_file(path: &Path, child: &mut Child, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while !path.exists() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("{what} exited before it was ready: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not start within 90 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(50));
}

/// Waits for a child to exit, at most `secs`.
fn wait_exit(child: &mut Child, secs: u64) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("still running {secs} s after SIGINT");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn interrupt(pid: i64) {
    let status = Command::new("kill")
        .args(["-INT", "--", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// `callhook dev` on the test run's DynamoDB Local, with its own tables and port.
struct Dev {
    child: Child,
    state: PathBuf,
    _scratch: Scratch,
}

impl Dev {
    fn start(name: &str) -> Self {
        let scratch = Scratch::new(name);
        let state = scratch.0.join("dev.json");
        let child = callhook(&state)
            .args(["dev", "--poll-ms", "100"])
            .env("CALLHOOK_DYNAMODB_ENDPOINT", endpoint())
            .env("CALLHOOK_PORT", free_port().to_string())
            .env(
                "CALLHOOK_EVENTS_TABLE",
                format!("cli-events-{name}-{}", std::process::id()),
            )
            .env(
                "CALLHOOK_CALLS_TABLE",
                format!("cli-calls-{name}-{}", std::process::id()),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut dev = Self {
            child,
            state,
            _scratch: scratch,
        };
        wait_for_file(&dev.state, &mut dev.child, "callhook dev");
        dev
    }

    fn state_json(&self) -> Value {
        serde_json::from_slice(&std::fs::read(&self.state).unwrap()).unwrap()
    }

    async fn client(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(&callhook::handlers::sdk_config_for(Some(&endpoint())).await)
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A record's contract JSON without the receive times, which depend on when the test ran.
fn comparable(mut record: Value) -> Value {
    record["first_event_at"] = Value::Null;
    record["last_event_at"] = Value::Null;
    record
}

/// Waits until the stream has brought every seed call to its snapshot, then checks them.
fn assert_seed_records(state: &Path) {
    for (provider, call_id, name) in SEED_CALLS {
        let expected = snapshot(name);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = run(state, &["calls", "show", provider, call_id, "--json"]);
            if out.status.success() {
                let record = comparable(serde_json::from_slice(&out.stdout).unwrap());
                if record == expected || Instant::now() > deadline {
                    assert_snapshot(name, &record);
                    break;
                }
            } else {
                assert!(
                    Instant::now() < deadline,
                    "no record for {provider} {call_id}"
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn call_ids(records: &Value) -> Vec<String> {
    let mut ids: Vec<String> = records
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["call_id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

/// Counts CSV records (line breaks outside quoted cells).
fn csv_records(text: &str) -> usize {
    let mut quoted = false;
    let mut records = 0;
    for c in text.chars() {
        match c {
            '"' => quoted = !quoted,
            '\n' if !quoted => records += 1,
            _ => {}
        }
    }
    records
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_all_then_list_show_events_export_replay_and_quarantine() {
    let dev = Dev::start("tour");
    let state = dev.state.clone();

    // send --all: every seed fixture, signed as its provider would, is accepted.
    let answers = json(&state, &["send", "--all", "--json"]);
    let answers = answers.as_array().unwrap();
    assert_eq!(answers.len(), callhook_local::fixtures::ALL.len());
    for answer in answers {
        assert_eq!(answer["status"], 200, "{answer}");
        assert_eq!(answer["response"]["duplicate"], false, "{answer}");
    }
    // Every seed call's record, read through `calls show --json`, is its snapshot.
    assert_seed_records(&state);
    // Sending one again is a duplicate.
    let again = json(&state, &["send", "vox", "v2_call_ended", "--json"]);
    assert_eq!(again[0]["response"]["duplicate"], true);

    // calls list, and its filters (answered through the indexes).
    let list = |extra: &[&str]| {
        let mut args = vec!["calls", "list", "--json"];
        args.extend_from_slice(extra);
        call_ids(&json(&state, &args))
    };
    let mut all: Vec<String> = SEED_CALLS.iter().map(|c| c.1.to_owned()).collect();
    all.sort();
    assert_eq!(list(&[]), all);
    assert_eq!(list(&["--provider", "clawops"]), [MISSED, ANSWERED]);
    assert_eq!(list(&["--number", "01012345678"]), [VOX_CALL, ANSWERED]);
    assert_eq!(list(&["--number", "+1234334546"]), [SYNTHFLOW_CALL]);
    assert_eq!(
        list(&["--agent", "7ea3516d-08f6-4129-ab40-a731e379b320"]),
        [VOX_CALL]
    );
    let mut missed = vec![
        MISSED.to_owned(),
        "CA5001d77688b99e96474b49166da731d4".to_owned(),
        "e2a41c9f-7d3b-4b60-9f58-1a6c3e8d2b04".to_owned(),
    ];
    missed.sort();
    assert_eq!(
        list(&["--missed"]),
        missed,
        "ClawOps', Bland's and Twilio's missed calls"
    );
    assert_eq!(list(&["--status", "ended"]), all);
    assert_eq!(list(&["--status", "ringing"]), Vec::<String>::new());
    assert_eq!(list(&["--until", "2025-01-01"]), [SYNTHFLOW_CALL]);
    assert_eq!(
        list(&["--since", "2025-01-01", "--until", "2025-12-31T23:59:59Z"]),
        [VOX_CALL]
    );
    assert_eq!(
        list(&["--provider", "vox", "--number", "01012345678"]),
        [VOX_CALL]
    );
    // Newest first, and --limit keeps the newest.
    let newest = json(
        &state,
        &[
            "calls",
            "list",
            "--json",
            "--provider",
            "clawops",
            "--limit",
            "2",
        ],
    );
    assert_eq!(call_ids(&newest), [MISSED, ANSWERED]);
    assert_eq!(newest[0]["call_id"], MISSED);
    let newest = json(&state, &["calls", "list", "--json", "--limit", "3"]);
    assert_eq!(newest.as_array().unwrap().len(), 3);
    // The table, for people.
    let table = ok(&state, &["calls", "list"]);
    let mut lines = table.lines();
    assert!(lines.next().unwrap().starts_with("STARTED (UTC)"));
    assert_eq!(lines.count(), SEED_CALLS.len());
    assert!(table.contains(VOX_CALL) && table.contains("(missed)"));
    // calls show renders the conversation.
    let shown = ok(&state, &["calls", "show", "vox", VOX_CALL]);
    assert!(shown.contains("transcript (2 turns)"), "{shown}");
    assert!(
        shown.contains("  agent  안녕하세요. 무엇을 도와드릴까요?"),
        "{shown}"
    );
    assert!(
        shown.contains("  user   주문 상태를 확인하고 싶습니다."),
        "{shown}"
    );

    // events: every stored event in order, with dedupe keys and the raw bodies.
    let events = json(&state, &["events", "vox", VOX_CALL, "--raw", "--json"]);
    let events = events.as_array().unwrap();
    assert_eq!(
        events.len(),
        8,
        "7 deliveries, the v1 call_ended making two events"
    );
    let keys: std::collections::HashSet<&str> = events
        .iter()
        .map(|e| e["dedupe_key"].as_str().unwrap())
        .collect();
    assert_eq!(keys.len(), 8);
    assert!(
        events
            .windows(2)
            .all(|w| w[0]["received_at"].as_i64() <= w[1]["received_at"].as_i64())
    );
    let fixture = callhook_local::fixtures::find("vox", "v2_call_started").unwrap();
    assert_eq!(events[0]["body"].as_str().unwrap().as_bytes(), fixture.body);
    let table = ok(&state, &["events", "vox", VOX_CALL]);
    assert_eq!(table.lines().count(), 9);
    // Without --raw, the sizes come without the bodies.
    let listed = json(&state, &["events", "vox", VOX_CALL, "--json"]);
    for (listed, raw) in listed.as_array().unwrap().iter().zip(events) {
        assert_eq!(listed.get("body"), None);
        assert_eq!(listed["dedupe_key"], raw["dedupe_key"]);
        assert_eq!(
            listed["body_bytes"].as_u64(),
            Some(raw["body"].as_str().unwrap().len() as u64)
        );
    }

    // export: one row per call, the documented header.
    let scratch = Scratch::new("tour-export");
    let csv = scratch.0.join("calls.csv");
    ok(
        &state,
        &["export", "--format", "csv", "-o", csv.to_str().unwrap()],
    );
    let text = std::fs::read_to_string(&csv).unwrap();
    assert!(text.starts_with(
        "provider,call_id,agent_id,agent_version,direction,from_number,to_number,status,outcome,\
         missed,started_at,ended_at,duration_ms,end_reason,recording_url,cost_amount,cost_unit,\
         summary,sentiment,transcript_turns,transcript,events,first_event_at,last_event_at,\
         sensitive_data_opt_out\n"
    ));
    assert_eq!(csv_records(&text), 1 + SEED_CALLS.len());
    let csv_clawops = ok(
        &state,
        &["export", "--format", "csv", "--provider", "clawops"],
    );
    assert_eq!(csv_records(&csv_clawops), 1 + 2);
    let jsonl = ok(&state, &["export", "--format", "jsonl"]);
    let exported: Vec<Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(call_ids(&Value::Array(exported.clone())), all);
    let vox = exported.iter().find(|r| r["call_id"] == VOX_CALL).unwrap();
    assert_snapshot("vox", &comparable(vox.clone()));

    // replay: a record corrupted behind callhook's back is rebuilt from its events.
    let client = dev.client().await;
    let calls_table = dev.state_json()["calls_table"].as_str().unwrap().to_owned();
    client
        .update_item()
        .table_name(&calls_table)
        .key("pk", AttributeValue::S(format!("call#vox#{VOX_CALL}")))
        .key("sk", AttributeValue::S("h".into()))
        .update_expression("SET #s = :s, outcome = :o REMOVE ext.transcript")
        .expression_attribute_names("#s", "status")
        .expression_attribute_values(":s", AttributeValue::S("ringing".into()))
        .expression_attribute_values(":o", AttributeValue::S("busy".into()))
        .send()
        .await
        .unwrap();
    let corrupted = json(&state, &["calls", "show", "vox", VOX_CALL, "--json"]);
    assert_eq!(corrupted["status"], "ringing");
    let dry = json(&state, &["replay", "--dry-run", "--json"]);
    assert_eq!(dry["calls"], SEED_CALLS.len());
    assert_eq!(dry["unchanged"], SEED_CALLS.len() - 1);
    assert_eq!(dry["changed"][0]["call_id"], VOX_CALL);
    assert_eq!(
        dry["changed"][0]["fields"],
        serde_json::json!(["status", "outcome", "transcript"])
    );
    assert_eq!(
        json(&state, &["calls", "show", "vox", VOX_CALL, "--json"]),
        corrupted
    );
    let replayed = json(&state, &["replay", "--provider", "vox", "--json"]);
    assert_eq!(replayed["changed"].as_array().unwrap().len(), 1);
    assert_eq!(replayed["events"], 8);
    assert_seed_records(&state);
    let again = json(&state, &["replay", "--json"]);
    assert_eq!(again["changed"], serde_json::json!([]));
    assert_eq!(again["unchanged"], SEED_CALLS.len());
    // A record whose header is deleted outright comes back from the events table.
    client
        .delete_item()
        .table_name(&calls_table)
        .key(
            "pk",
            AttributeValue::S(format!("call#synthflow#{SYNTHFLOW_CALL}")),
        )
        .key("sk", AttributeValue::S("h".into()))
        .send()
        .await
        .unwrap();
    let out = run(&state, &["calls", "show", "synthflow", SYNTHFLOW_CALL]);
    assert_eq!(out.status.code(), Some(3));
    let human = ok(&state, &["replay", "--from-events"]);
    let unchanged = format!("1 changed, {} unchanged", SEED_CALLS.len() - 1);
    assert!(human.contains(&unchanged), "{human}");
    assert!(
        human.contains(&format!("synthflow {SYNTHFLOW_CALL}: (new record)")),
        "{human}"
    );
    assert_seed_records(&state);

    // quarantine: an authenticated but unusable payload is refused (422) and kept.
    let bad = scratch.0.join("bad.json");
    std::fs::write(&bad, br#"{"event": "call_ended"}"#).unwrap();
    let out = run(&state, &["send", "vox", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("422 unusable_payload"));
    let held = json(&state, &["quarantine", "list", "--json"]);
    assert_eq!(held.as_array().unwrap().len(), 1);
    assert_eq!(held[0]["body_bytes"], 23);
    let id = held[0]["id"].as_str().unwrap().to_owned();
    let id = id.as_str();
    // --limit keeps the newest, --since the recent.
    std::thread::sleep(std::time::Duration::from_millis(5));
    std::fs::write(&bad, br#"{"event": "call_ended", "again": 1}"#).unwrap();
    run(&state, &["send", "vox", bad.to_str().unwrap()]);
    let both = json(&state, &["quarantine", "list", "--json"]);
    assert_eq!(both.as_array().unwrap().len(), 2);
    let newest = json(&state, &["quarantine", "list", "--limit", "1", "--json"]);
    assert_eq!(newest.as_array().unwrap().len(), 1);
    assert_eq!(newest[0]["id"], both[0]["id"]);
    assert_ne!(newest[0]["id"], id);
    let since = both[0]["received_at"].as_i64().unwrap().to_string();
    let recent = json(&state, &["quarantine", "list", "--since", &since, "--json"]);
    assert_eq!(recent, newest);
    assert_eq!(
        json(&state, &["quarantine", "list", "--since", "1h", "--json"]),
        both
    );
    let human = ok(&state, &["quarantine", "list", "-n", "1"]);
    assert_eq!(human.lines().count(), 2, "{human}");
    let shown = json(&state, &["quarantine", "show", "vox", id, "--json"]);
    assert_eq!(shown["body"], r#"{"event": "call_ended"}"#);
    assert!(shown["error"].as_str().unwrap().contains("`call`"));
    assert_eq!(
        run(&state, &["quarantine", "show", "vox", "0000"])
            .status
            .code(),
        Some(3)
    );

    // Ctrl-C stops the local stack, which removes its state file.
    let mut dev = dev;
    interrupt(i64::from(dev.child.id()));
    assert!(wait_exit(&mut dev.child, 15).success());
    assert!(!state.exists());
    let out = run(&state, &["calls", "list"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no callhook stack found"));
}

#[test]
fn argument_errors_say_what_is_wrong_and_exit_2() {
    let state = Path::new("/nonexistent/dev.json");
    for (args, says) in [
        (&["calls", "show", "vox"][..], "required"),
        (&["calls", "list", "--provider", "nope"], "possible values"),
        (&["calls", "list", "--since", "yesterday"], "is not a time"),
        (&["calls", "list", "--limit", "0"], "--limit"),
        (&["send", "vox"], "required"),
        (&["send", "--all", "--secret", "x"], "cannot be used with"),
        (&["export", "--format", "xml"], "possible values"),
        (
            &["replay", "--from-events", "--agent", "a"],
            "cannot be used with",
        ),
        (&["frobnicate"], "unrecognized subcommand"),
    ] {
        let out = run(state, args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    // Help on every command.
    for args in [
        &["--help"][..],
        &["send", "--help"],
        &["calls", "list", "--help"],
        &["calls", "show", "--help"],
        &["events", "--help"],
        &["export", "--help"],
        &["replay", "--help"],
        &["quarantine", "list", "--help"],
        &["quarantine", "show", "--help"],
        &["dev", "--help"],
    ] {
        let out = run(state, args);
        assert!(out.status.success(), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("Usage: callhook"));
    }
    let help = ok(state, &["send", "--help"]);
    assert!(help.contains("v2_call_ended") && help.contains("missed_call_completed"));
}

#[test]
fn without_a_stack_commands_say_how_to_get_one() {
    let state = Path::new("/nonexistent/dev.json");
    let out = run(state, &["calls", "list"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("make dev"));
    let out = run(state, &["send", "--all"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--url"));
    let out = run(
        state,
        &[
            "send",
            "vox",
            "no_such_fixture",
            "--url",
            "http://127.0.0.1:9",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("v2_call_started"));
    // Nothing listens on port 9: the error names the URL.
    let out = run(
        state,
        &[
            "send",
            "vox",
            "v2_call_started",
            "--url",
            "http://127.0.0.1:9",
            "--token",
            "t",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("cannot reach http://127.0.0.1:9/webhooks/vox")
    );
}

#[test]
fn send_reads_its_key_from_a_file_or_standard_input_never_from_its_arguments() {
    let dev = Dev::start("keys");
    let state = dev.state.clone();
    let credentials = dev.state_json()["dev_credentials"].clone();
    let secret = credentials["clawops"]["value"].as_str().unwrap().to_owned();
    let token = credentials["synthflow"]["value"]
        .as_str()
        .unwrap()
        .to_owned();
    let scratch = Scratch::new("key-files");
    let file = |name: &str, text: &str| {
        let path = scratch.0.join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let status = |out: &Output| {
        let answers: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        answers[0]["status"].as_u64()
    };

    // A secret file (its final line break left out) signs the delivery
    let good = file("clawops.secret", &format!("{secret}\n"));
    let args = [
        "send",
        "clawops",
        "call_initiated",
        "--secret-file",
        &good,
        "--json",
    ];
    assert!(!args.iter().any(|a| a.contains(&secret)));
    let out = run(&state, &args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(status(&out), Some(200));
    // and it is the file's key that signs, not the local stack's: a wrong one is refused
    let wrong = file("wrong.secret", "not-the-secret\n");
    let out = run(
        &state,
        &[
            "send",
            "clawops",
            "call_ringing",
            "--secret-file",
            &wrong,
            "--json",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(status(&out), Some(401));
    // Same for a token
    let good = file("synthflow.token", &token);
    let out = run(
        &state,
        &[
            "send",
            "synthflow",
            "completed",
            "--token-file",
            &good,
            "--json",
        ],
    );
    assert_eq!(
        status(&out),
        Some(200),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let wrong = file("wrong.token", "not-the-token");
    let out = run(
        &state,
        &[
            "send",
            "synthflow",
            "completed",
            "--token-file",
            &wrong,
            "--json",
        ],
    );
    assert_eq!(status(&out), Some(401));

    // `--secret-file -` reads standard input: while `send` waits for it, its command line (what
    // `ps` shows) has no secret
    let mut child = callhook(&state)
        .args([
            "send",
            "clawops",
            "call_answered",
            "--secret-file",
            "-",
            "--json",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // (read once the child has exec'd the binary: it waits for standard input until we write)
    let deadline = Instant::now() + Duration::from_secs(10);
    let cmdline = loop {
        let bytes = std::fs::read(format!("/proc/{}/cmdline", child.id())).unwrap();
        let cmdline = String::from_utf8_lossy(&bytes).replace('\0', " ");
        if cmdline.contains("send") || Instant::now() > deadline {
            break cmdline;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(cmdline.contains("--secret-file -"), "{cmdline}");
    assert!(!cmdline.contains(&secret), "{cmdline}");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        writeln!(stdin, "{secret}").unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        status(&out),
        Some(200),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // An empty file is refused before anything is sent
    let empty = file("empty.secret", "\n");
    let out = run(
        &state,
        &["send", "clawops", "call_answered", "--secret-file", &empty],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no secret in"));
}

/// Pids of the processes whose process group is `pgid`.
fn group_members(pgid: u32) -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // pid (comm) state ppid pgrp ...; comm may hold spaces, so split after the last ')'.
        let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
        if fields[0] != "Z" && fields[2] == pgid.to_string() {
            pids.push(pid);
        }
    }
    pids
}

/// The DynamoDB Local process listening on `port`, if one runs.
fn dynamodb_local_on(port: &str) -> Option<u32> {
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        let on_port = args
            .windows(2)
            .any(|w| w[0] == b"-port" && w[1] == port.as_bytes());
        let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| s[s.rfind(')').unwrap() + 2..].starts_with('Z'))
            .unwrap_or(true);
        if on_port && !zombie && args.iter().any(|a| a.ends_with(b"DynamoDBLocal.jar")) {
            return Some(pid);
        }
    }
    None
}

#[test]
fn make_dev_stops_everything_it_started_on_ctrl_c() {
    use std::os::unix::process::CommandExt;
    let scratch = Scratch::new("sigint");
    let state = scratch.0.join("dev.json");
    // scripts/dev.sh as `make dev` runs it, in its own process group like a terminal's
    // foreground job; it starts its own DynamoDB Local.
    let mut child = isolated("bash", &state)
        .arg(repo_root().join("scripts/dev.sh"))
        .env("CALLHOOK_BIN", BIN)
        .env("CALLHOOK_PORT", free_port().to_string())
        .current_dir(repo_root())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    wait_for_file(&state, &mut child, "make dev");
    let endpoint = serde_json::from_slice::<Value>(&std::fs::read(&state).unwrap()).unwrap()
        ["dynamodb_endpoint"]
        .as_str()
        .unwrap()
        .to_owned();
    let port = endpoint.rsplit(':').next().unwrap().to_owned();
    let java = dynamodb_local_on(&port).expect("make dev started DynamoDB Local");
    let pgid = child.id();
    assert!(group_members(pgid).len() >= 2, "the script and callhook");

    // Ctrl-C: SIGINT to the whole foreground group.
    interrupt(-i64::from(pgid));
    let status = wait_exit(&mut child, 30);
    assert!(status.code().is_some(), "exited rather than died: {status}");
    // Nothing it started is left: not callhook, not DynamoDB Local, and the port is free.
    let deadline = Instant::now() + Duration::from_secs(15);
    while (dynamodb_local_on(&port).is_some() || !group_members(pgid).is_empty())
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(group_members(pgid), Vec::<u32>::new());
    assert_eq!(
        dynamodb_local_on(&port),
        None,
        "DynamoDB Local (pid {java}) still runs"
    );
    assert!(std::net::TcpStream::connect(format!("127.0.0.1:{port}")).is_err());
    assert!(!state.exists());
}

#[test]
fn the_local_stack_logs_no_configured_secret() {
    let scratch = Scratch::new("secrets");
    let state = scratch.0.join("dev.json");
    let log = scratch.0.join("dev.log");
    let secrets = [
        ("CALLHOOK_VOX_TOKENS", "vox-token-that-must-not-be-logged"),
        (
            "CALLHOOK_SYNTHFLOW_TOKENS",
            "synthflow-token-that-must-not-be-logged",
        ),
        (
            "CALLHOOK_CLAWOPS_SECRETS",
            "clawops-secret-that-must-not-be-logged",
        ),
    ];
    let mut dev = callhook(&state);
    dev.args(["dev", "--poll-ms", "100"])
        .env("CALLHOOK_DYNAMODB_ENDPOINT", endpoint())
        .env("CALLHOOK_PORT", free_port().to_string())
        .env(
            "CALLHOOK_EVENTS_TABLE",
            format!("cli-events-secrets-{}", std::process::id()),
        )
        .env(
            "CALLHOOK_CALLS_TABLE",
            format!("cli-calls-secrets-{}", std::process::id()),
        )
        .env("RUST_LOG", "debug")
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::fs::File::create(scratch.0.join("dev.err")).unwrap());
    for (key, value) in secrets {
        dev.env(key, value);
    }
    let mut child = dev.spawn().unwrap();
    wait_for_file(&state, &mut child, "callhook dev");
    // Genuine deliveries, and refused ones that carry a wrong token or signature.
    let mut send = callhook(&state);
    send.args(["send", "--all"]);
    for (key, value) in secrets {
        send.env(key, value);
    }
    assert!(send.output().unwrap().status.success());
    let refused = run(
        &state,
        &["send", "vox", "v2_call_started", "--token", "wrong-token"],
    );
    assert_eq!(refused.status.code(), Some(1));
    std::thread::sleep(Duration::from_millis(500));
    interrupt(i64::from(child.id()));
    assert!(wait_exit(&mut child, 15).success());

    let mut logged = std::fs::read_to_string(&log).unwrap();
    logged.push_str(&std::fs::read_to_string(scratch.0.join("dev.err")).unwrap());
    assert!(
        logged.matches("webhook").count() >= 16,
        "the requests were logged:\n{logged}"
    );
    for (_, secret) in secrets {
        assert_eq!(logged.matches(secret).count(), 0, "{secret} was logged");
    }
}
