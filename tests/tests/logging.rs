//! The functions' logs at the most verbose level a stack allows hold no secret: every provider's
//! signed webhooks through ingest and the event path, with the production log filter at TRACE.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use callhook_e2e::{CLAWOPS_SECRET, SYNTHFLOW_TOKEN, Stack, VOX_TOKEN, all_fixtures, logs};

/// A ClawOps request presenting `secret` itself as its signature (a forgery's worst case: what
/// is presented is a secret).
fn signed_with(secret: &str) -> serde_json::Value {
    let presented = format!("sha256={secret}");
    callhook_e2e::api_gateway_event(
        "POST",
        "clawops",
        &[("x-clawops-signature", presented.as_str())],
        None,
        b"{}",
        false,
    )
}

#[tokio::test]
async fn a_trace_level_run_logs_no_secret() {
    logs::capture_with(callhook::handlers::log_filter(Some("TRACE")));
    let mut stack = Stack::new().await;
    for (provider, name) in all_fixtures() {
        assert_eq!(stack.send_fixture(provider, name).await.status, 200);
    }
    // A forged one too: refusals log their reason, never what was presented.
    let forged = stack.deliver(&signed_with(CLAWOPS_SECRET)).await;
    assert_eq!(forged.status, 401);
    stack.drain().await;
    // What the runtime logs at TRACE for each invocation: its raw event, tokens and signature
    // headers included (lambda_runtime's `raw JSON event received from Lambda`).
    tracing::trace!(
        target: "lambda_runtime::layers::api_response",
        body = %format!("{{\"rawQueryString\":\"token={VOX_TOKEN}\"}}"),
        "raw JSON event received from Lambda"
    );
    let captured = logs::captured();
    let trace_lines = captured
        .lines()
        .filter(|l| l.contains("\"level\":\"TRACE\""))
        .count();
    assert!(
        trace_lines > 0,
        "the filter did not let TRACE through: the run proves nothing"
    );
    assert_eq!(
        logs::secret_hits(&[VOX_TOKEN, SYNTHFLOW_TOKEN, CLAWOPS_SECRET]),
        0,
        "a secret in the logs"
    );
}

/// The provider secret's reads, changes and refusals at TRACE: nothing of the secret is logged,
/// neither the values it holds nor, when it is malformed, what it holds.
#[tokio::test]
async fn reading_and_rotating_the_provider_secret_logs_no_secret() {
    use callhook::secrets::{LiveConfig, SecretSource};
    use std::sync::{Arc, Mutex};

    logs::capture_with(callhook::handlers::log_filter(Some("TRACE")));
    let stack = Stack::new().await;
    const NEXT: &str = "clawops-next-secret-7f3a";
    let secret = Arc::new(Mutex::new(format!(
        r#"{{"CALLHOOK_CLAWOPS_SECRETS": "{CLAWOPS_SECRET}"}}"#
    )));
    let live = LiveConfig::load(Vec::new(), SecretSource::Memory(Arc::clone(&secret)))
        .await
        .unwrap();
    *secret.lock().unwrap() =
        format!(r#"{{"CALLHOOK_CLAWOPS_SECRETS": ["{CLAWOPS_SECRET}", "{NEXT}"]}}"#);
    assert!(live.refresh_now().await);
    // Malformed: a key that is no provider's credentials, then no JSON at all.
    *secret.lock().unwrap() = format!(r#"{{"CALLHOOK_CLAWOPS_SECRET": "{NEXT}"}}"#);
    assert!(!live.refresh_now().await);
    *secret.lock().unwrap() = format!(r#"{{"CALLHOOK_CLAWOPS_SECRETS": "{NEXT}"#);
    assert!(!live.refresh_now().await);
    // A request that fails verification and has the secret read again.
    let live = Arc::new(live.with_intervals(
        std::time::Duration::from_secs(300),
        std::time::Duration::ZERO,
    ));
    let request = lambda_http::request::from_str(&signed_with(NEXT).to_string()).unwrap();
    let refused = callhook::handlers::ingest::handle_live(&live, &stack.store, request).await;
    assert_eq!(refused.status(), 401);

    let captured = logs::captured();
    assert!(
        captured.contains("provider secret changed"),
        "the change was not logged: the run proves nothing"
    );
    assert!(
        captured.contains("not usable"),
        "the refusal of a malformed secret was not logged"
    );
    assert_eq!(
        logs::secret_hits(&[CLAWOPS_SECRET, NEXT]),
        0,
        "a secret in the logs"
    );
}
