//! The end-to-end harness: a callhook stack on DynamoDB Local (started by `make test`, address in
//! `CALLHOOK_TEST_DYNAMODB_ENDPOINT`), with its own freshly created tables so tests run in
//! parallel. Requests go through the ingest handler as real API Gateway v2 events; the stream is
//! read by the local pipe, and the functions run concurrently as the bus rules invoke them.
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod http;
pub mod logs;
pub mod traffic;

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextMut;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use base64::Engine;
use callhook::auth::Signature;
use callhook::config::Config;
use callhook::handlers::{ingest, sdk_config_for};
use callhook::record::CallRecord;
use callhook::store::{EventItem, Store, from_item};
use callhook_local::template::create_tables;
use callhook_local::{PipeRunner, streams_client};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

pub const VOX_TOKEN: &str = "vox-e2e-token";
pub const SYNTHFLOW_TOKEN: &str = "synthflow-e2e-token";
pub const CLAWOPS_SECRET: &str = "whsec_clawops_e2e";
/// The private key (Ed25519 seed, base64) the tests sign Telnyx webhooks with; the stack is
/// configured with its public key.
pub const TELNYX_SIGNING_KEY: &str = "dGVsbnl4LWUyZS1zaWduaW5nLWtleS0wMTIzNDU2Nzg=";
/// The URL the tests' Twilio signs, as configured at Twilio (`CALLHOOK_TWILIO_PUBLIC_URL`).
pub const TWILIO_URL: &str = "https://e2e.example/webhooks/twilio";

/// Each call of the seed fixtures, and its snapshot in `tests/fixtures/expected/e2e/`.
pub const SEED_CALLS: [(&str, &str, &str); 13] = [
    ("vox", "3079f46c-d141-4cd9-805f-69f212136b66", "vox"),
    (
        "clawops",
        "CA7f3b2c9e1d4a4f8b9c0d1e2f3a4b5c6d",
        "clawops_answered",
    ),
    (
        "clawops",
        "CA0a1b2c3d4e5f60718293a4b5c6d7e8f9",
        "clawops_missed",
    ),
    ("synthflow", "1711646262471x768387119913843100", "synthflow"),
    ("retell", "call_5d2a8f0c3b7e41a9c6d4e2f1a8b3c790", "retell"),
    ("vapi", "8c3f6a2e-5b1d-4e7a-9c2f-1a4b7d9e3f50", "vapi"),
    ("bland", "7f3c9a2e-5b1d-4e8f-a6c0-2d9b8e1f4a37", "bland"),
    (
        "bland",
        "e2a41c9f-7d3b-4b60-9f58-1a6c3e8d2b04",
        "bland_missed",
    ),
    (
        "elevenlabs",
        "conv_4701k2mq8d3fz6e5xv9tb2ar7c1",
        "elevenlabs",
    ),
    (
        "elevenlabs",
        "conv_6201k2mx4c8vb1n3m5q7w9e2r4t6",
        "elevenlabs_initiation_failure",
    ),
    ("twilio", "CA5810a815ebe62076493274ecba977c76", "twilio"),
    (
        "twilio",
        "CA5001d77688b99e96474b49166da731d4",
        "twilio_missed",
    ),
    ("telnyx", "251c5957-9636-463b-80dc-54e05eaee732", "telnyx"),
];

/// The long tier of the reliability suites (`scripts/reliability.sh`) rather than the fast one.
pub fn long() -> bool {
    std::env::var("CALLHOOK_RELIABILITY_TIER").is_ok_and(|t| t == "long")
}

/// Prints a suite's figures, and appends them to `CALLHOOK_RELIABILITY_REPORT` when set (the
/// reliability script builds docs/RELIABILITY.md from them).
pub fn report(suite: &str, figures: Value) {
    let line = json!({
        "suite": suite,
        "tier": if long() { "long" } else { "fast" },
        "figures": figures,
    });
    println!("RELIABILITY {line}");
    if let Ok(path) = std::env::var("CALLHOOK_RELIABILITY_REPORT") {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        writeln!(file, "{line}").unwrap();
    }
}

/// A seed call's expected record (its snapshot).
pub fn snapshot(name: &str) -> Value {
    let path = repo_root().join(format!("tests/fixtures/expected/e2e/{name}.json"));
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// The shared DynamoDB Local of this test run.
pub fn endpoint() -> String {
    std::env::var("CALLHOOK_TEST_DYNAMODB_ENDPOINT").expect(
        "CALLHOOK_TEST_DYNAMODB_ENDPOINT is not set: run the end-to-end tests through `make test`, \
         which starts DynamoDB Local",
    )
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn fixture(provider: &str, name: &str) -> Vec<u8> {
    callhook_local::fixtures::find(provider, name)
        .unwrap_or_else(|| panic!("no fixture {provider}/{name}"))
        .body
        .to_vec()
}

/// Every seed fixture, in a sensible delivery order per call (the list `callhook send --all`
/// delivers).
pub fn all_fixtures() -> Vec<(&'static str, &'static str)> {
    callhook_local::fixtures::ALL
        .iter()
        .map(|f| (f.provider, f.name))
        .collect()
}

pub fn default_vars() -> Vec<(String, String)> {
    let telnyx = callhook::auth::Recipe::ed25519_public_key(TELNYX_SIGNING_KEY).unwrap();
    [
        ("CALLHOOK_VOX_TOKENS", VOX_TOKEN),
        ("CALLHOOK_SYNTHFLOW_TOKENS", SYNTHFLOW_TOKEN),
        ("CALLHOOK_CLAWOPS_SECRETS", CLAWOPS_SECRET),
        ("CALLHOOK_RETELL_SECRETS", "retell-e2e-api-key"),
        ("CALLHOOK_VAPI_SECRETS", "vapi-e2e-secret"),
        ("CALLHOOK_BLAND_SECRETS", "bland-e2e-secret"),
        ("CALLHOOK_ELEVENLABS_SECRETS", "elevenlabs-e2e-secret"),
        ("CALLHOOK_TWILIO_SECRETS", "twilio-e2e-auth-token"),
        ("CALLHOOK_TWILIO_PUBLIC_URL", TWILIO_URL),
        ("CALLHOOK_TELNYX_PUBLIC_KEYS", &telnyx),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .to_vec()
}

/// A Vox `call_ended` event item of `call_id` under `sk` holding `body`, as ingest would have
/// stored it.
pub fn raw_event_item(call_id: &str, sk: &str, body: &str) -> EventItem {
    let mut item = EventItem::new(
        format!("call#vox#{call_id}"),
        sk.into(),
        "call_ended",
        "vox",
        1,
    );
    item.provider_event = "call_ended".into();
    item.call_id = call_id.into();
    item.dedupe_key = sk.trim_start_matches("ev#").into();
    item.body = Some(body.into());
    item
}

/// A stored body that parses as JSON but not as a Vox event.
pub const POISON_BODY: &str = "{\"event\":\"call_ended\"}";

/// The answer to one delivery.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

#[derive(Debug)]
pub struct Stack {
    /// The `CALLHOOK_*` variables it was configured with, table names included.
    pub vars: Vec<(String, String)>,
    pub config: Config,
    pub store: Store,
    pub runner: PipeRunner,
    /// Storage faults the functions (the runner's store) meet when switched on.
    pub faults: Arc<Faults>,
}

/// Storage faults a test switches on for the functions: a matching request is sent to a closed
/// port instead of DynamoDB Local, and fails as it would with DynamoDB unreachable (a
/// transient failure: the SDK retries, then the invocation fails).
#[derive(Debug, Default)]
pub struct Faults {
    /// Every request to the calls table.
    pub calls_table: AtomicBool,
    /// Writes of failure records (the `failures` partition of the events table).
    pub failure_records: AtomicBool,
    /// Every request: DynamoDB is down for the functions and the local failure queue.
    pub everything: AtomicBool,
}

#[derive(Debug)]
struct FaultInterceptor {
    faults: Arc<Faults>,
    calls_table: String,
    dead_end: String,
}

impl Intercept for FaultInterceptor {
    fn name(&self) -> &'static str {
        "callhook-test-faults"
    }

    fn modify_before_transmit(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request_mut();
        let body = std::str::from_utf8(request.body().bytes().unwrap_or_default())
            .unwrap_or_default()
            .to_owned();
        let calls = self.faults.calls_table.load(Ordering::Relaxed)
            && body.contains(&format!("\"TableName\":\"{}\"", self.calls_table));
        let failures = self.faults.failure_records.load(Ordering::Relaxed)
            && body.contains("\"pk\":{\"S\":\"failures\"}");
        if calls || failures || self.faults.everything.load(Ordering::Relaxed) {
            request.set_uri(self.dead_end.as_str())?;
        }
        Ok(())
    }
}

/// A loopback address nothing listens on.
fn dead_end() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}/")
}

static NEXT: AtomicU32 = AtomicU32::new(0);

impl Stack {
    /// A stack on the shared DynamoDB Local with the default provider configuration.
    pub async fn new() -> Self {
        Self::with(&endpoint(), default_vars()).await
    }

    /// A stack on `endpoint` with its own tables and the given `CALLHOOK_*` variables.
    pub async fn with(endpoint: &str, mut vars: Vec<(String, String)>) -> Self {
        let unique = format!(
            "{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        vars.push(("CALLHOOK_EVENTS_TABLE".into(), format!("events-{unique}")));
        vars.push(("CALLHOOK_CALLS_TABLE".into(), format!("calls-{unique}")));
        let config = Config::from_vars(vars.clone()).unwrap();
        let sdk = sdk_config_for(Some(endpoint)).await;
        let client = aws_sdk_dynamodb::Client::new(&sdk);
        create_tables(&client, &config.events_table, &config.calls_table)
            .await
            .unwrap();
        let store = Store::new(client, &config);
        let faults = Arc::new(Faults::default());
        let interceptor = FaultInterceptor {
            faults: faults.clone(),
            calls_table: config.calls_table.clone(),
            dead_end: dead_end(),
        };
        let functions = aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(&sdk)
                .interceptor(interceptor)
                .build(),
        );
        let mut runner = PipeRunner::new(Store::new(functions, &config), streams_client(&sdk))
            .await
            .unwrap();
        runner.retry_delay = std::time::Duration::from_millis(10);
        Self {
            vars,
            config,
            store,
            runner,
            faults,
        }
    }

    /// Signs `body` as the provider's configured scheme requires and delivers it.
    pub async fn send(&self, provider: &str, body: &[u8]) -> Reply {
        let (headers, query) = self.sign(provider, body);
        let headers: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        self.request("POST", provider, &headers, query.as_deref(), body, false)
            .await
    }

    pub async fn send_fixture(&self, provider: &str, name: &str) -> Reply {
        self.send(provider, &fixture(provider, name)).await
    }

    /// The headers and query token a genuine sender would attach.
    pub fn sign(&self, provider: &str, body: &[u8]) -> (Vec<(String, String)>, Option<String>) {
        sign(&self.config, provider, body)
    }

    /// One API Gateway HTTP API (payload v2) request through the ingest handler.
    pub async fn request(
        &self,
        method: &str,
        provider: &str,
        headers: &[(&str, &str)],
        token: Option<&str>,
        body: &[u8],
        base64: bool,
    ) -> Reply {
        let event = api_gateway_event(method, provider, headers, token, body, base64);
        self.deliver(&event).await
    }

    /// One API Gateway event, as built by [`api_gateway_event`] (or altered), through the ingest
    /// handler.
    pub async fn deliver(&self, event: &Value) -> Reply {
        let request = lambda_http::request::from_str(&event.to_string()).unwrap();
        let response = ingest::handle(&self.config, &self.store, request).await;
        let status = response.status().as_u16();
        let body = match response.body() {
            lambda_http::Body::Text(text) => serde_json::from_str(text).unwrap(),
            other => panic!("unexpected body {other:?}"),
        };
        Reply { status, body }
    }

    /// Writes an event item as it is, bypassing ingest (a stored body today's parser rejects,
    /// as after a parser regression).
    pub async fn store_raw(&self, item: &EventItem) {
        self.store
            .client()
            .put_item()
            .table_name(&self.config.events_table)
            .set_item(Some(serde_dynamo::to_item(item).unwrap()))
            .send()
            .await
            .unwrap();
    }

    /// Runs the pipe and the functions until the stream has nothing new and nothing runs.
    pub async fn drain(&mut self) {
        self.runner.drain(&self.config).await.unwrap();
    }

    pub async fn call(&self, provider: &str, call_id: &str) -> Option<CallRecord> {
        self.store.load_call(provider, call_id).await.unwrap()
    }

    /// Every event and quarantine item of the events table, stored bodies left out (tests
    /// only: a scan).
    pub async fn event_items(&self) -> Vec<EventItem> {
        self.scan(&self.config.events_table)
            .await
            .into_iter()
            .map(|i| from_item::<EventItem>(i).unwrap())
            .filter(|i| {
                i.kind != callhook::store::TYPE_PART && i.kind != callhook::store::events::TYPE_BODY
            })
            .collect()
    }

    pub async fn call_items(
        &self,
    ) -> Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
        self.scan(&self.config.calls_table).await
    }

    async fn scan(
        &self,
        table: &str,
    ) -> Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
        self.store
            .client()
            .scan()
            .table_name(table)
            .consistent_read(true)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .unwrap()
    }
}

/// The headers and query token a genuine sender of `provider` would attach under `config`: its
/// first secret or token, the public URL for the schemes that sign it, and for Ed25519 (Telnyx)
/// the tests' private key, whose public key the default configuration holds.
pub fn sign(
    config: &Config,
    provider: &str,
    body: &[u8],
) -> (Vec<(String, String)>, Option<String>) {
    let Ok(provider) = config.provider(provider) else {
        return (vec![], None);
    };
    let url = provider.public_url.as_deref().unwrap_or_default();
    let signature = if provider.verifier.scheme.uses_public_keys() {
        callhook::auth::sign_as(
            &provider.verifier.scheme,
            TELNYX_SIGNING_KEY,
            body,
            url,
            "msg_e2e",
            now_secs(),
        )
        .unwrap()
    } else {
        provider.verifier.sign_for(body, url, "msg_e2e", now_secs())
    };
    let mut headers: Vec<(String, String)> = Vec::new();
    if !body.trim_ascii_start().starts_with(b"{") && !body.is_empty() {
        headers.push((
            "content-type".into(),
            "application/x-www-form-urlencoded".into(),
        ));
    }
    match signature {
        Signature::Headers(signed) => {
            headers.extend(signed.into_iter().map(|(k, v)| (k.to_string(), v)));
            (headers, None)
        }
        Signature::QueryToken(token) => (headers, Some(token)),
        Signature::Nothing => (headers, None),
    }
}

pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// An API Gateway HTTP API v2 event, as API Gateway sends it to the function.
pub fn api_gateway_event(
    method: &str,
    provider: &str,
    headers: &[(&str, &str)],
    token: Option<&str>,
    body: &[u8],
    base64: bool,
) -> Value {
    let path = format!("/webhooks/{provider}");
    let mut header_map = serde_json::Map::new();
    header_map.insert("content-type".into(), json!("application/json"));
    header_map.insert("user-agent".into(), json!("callhook-e2e"));
    for (name, value) in headers {
        header_map.insert(name.to_ascii_lowercase(), json!(value));
    }
    let (body, encoded) = match std::str::from_utf8(body) {
        Ok(text) if !base64 => (json!(text), false),
        _ => (
            json!(base64::engine::general_purpose::STANDARD.encode(body)),
            true,
        ),
    };
    let mut event = json!({
        "version": "2.0",
        "routeKey": "POST /webhooks/{provider}",
        "rawPath": path,
        "rawQueryString": token.map(|t| format!("token={t}")).unwrap_or_default(),
        "headers": header_map,
        "pathParameters": {"provider": provider},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "e2e",
            "domainName": "e2e.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "e2e",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "callhook-e2e"},
            "requestId": "e2e",
            "routeKey": "POST /webhooks/{provider}",
            "stage": "$default",
            "time": "21/Nov/2026:20:00:00 +0000",
            "timeEpoch": 0
        },
        "body": body,
        "isBase64Encoded": encoded
    });
    if let Some(token) = token {
        event["queryStringParameters"] = json!({ "token": token });
    }
    event
}

/// The record's contract JSON without the receive times, which depend on when the test ran.
pub fn comparable(record: &CallRecord) -> Value {
    let mut value = record.to_contract_json();
    value["first_event_at"] = Value::Null;
    value["last_event_at"] = Value::Null;
    value
}

/// Compares with `tests/fixtures/expected/e2e/<name>.json` (rewritten with
/// `CALLHOOK_UPDATE_SNAPSHOTS=1`).
pub fn assert_snapshot(name: &str, actual: &Value) {
    let path = repo_root()
        .join("tests/fixtures/expected/e2e")
        .join(format!("{name}.json"));
    if std::env::var_os("CALLHOOK_UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, serde_json::to_string_pretty(actual).unwrap() + "\n").unwrap();
    }
    let expected: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(actual, &expected, "snapshot {name}");
}

/// A DynamoDB Local of this test's own, persisted on disk, that can be stopped and restarted.
#[derive(Debug)]
pub struct OwnDynamoDb {
    dir: std::path::PathBuf,
    pidfile: std::path::PathBuf,
    pub port: String,
}

impl OwnDynamoDb {
    /// Starts one persisted in `dir` (on `port`, to restart a stopped one).
    pub fn start(dir: &std::path::Path, port: Option<&str>) -> (Self, String) {
        Self::launch(dir, port, true)
    }

    /// Starts one in memory, its pid file in `dir`: a suite that writes a lot gets an engine
    /// of its own, not slowed by every other test's tables and streams.
    pub fn in_memory(dir: &std::path::Path) -> (Self, String) {
        Self::launch(dir, None, false)
    }

    fn launch(dir: &std::path::Path, port: Option<&str>, persist: bool) -> (Self, String) {
        std::fs::create_dir_all(dir).unwrap();
        let pidfile = dir.join("ddb.pid");
        let mut command = std::process::Command::new(repo_root().join("scripts/dynamodb-local.sh"));
        command.arg("start").arg("--pidfile").arg(&pidfile);
        if persist {
            command.arg("--persist").arg(dir.join("data"));
        }
        if let Some(port) = port {
            command.args(["--port", port]);
        }
        let out = command.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let endpoint = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        let port = endpoint.rsplit(':').next().unwrap().to_owned();
        (
            Self {
                dir: dir.to_owned(),
                pidfile,
                port,
            },
            endpoint,
        )
    }

    /// Where its data and pid file are.
    pub fn dir_path(&self) -> std::path::PathBuf {
        self.dir.clone()
    }

    pub fn stop(&self) {
        let script = repo_root().join("scripts/dynamodb-local.sh");
        let _ = std::process::Command::new(script)
            .arg("stop")
            .arg(&self.pidfile)
            .output();
    }
}

impl Drop for OwnDynamoDb {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
