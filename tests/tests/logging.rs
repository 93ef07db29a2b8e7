//! The functions' logs at the most verbose level a stack allows hold no secret: every provider's
//! signed webhooks through ingest and the event path, with the production log filter at TRACE.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use callhook_e2e::{CLAWOPS_SECRET, SYNTHFLOW_TOKEN, Stack, VOX_TOKEN, all_fixtures, logs};

#[tokio::test]
async fn a_trace_level_run_logs_no_secret() {
    logs::capture_with(callhook::handlers::log_filter(Some("TRACE")));
    let mut stack = Stack::new().await;
    for (provider, name) in all_fixtures() {
        assert_eq!(stack.send_fixture(provider, name).await.status, 200);
    }
    // A forged one too: refusals log their reason, never what was presented.
    let presented = format!("sha256={CLAWOPS_SECRET}");
    let forged = stack
        .request(
            "POST",
            "clawops",
            &[("x-clawops-signature", presented.as_str())],
            None,
            b"{}",
            false,
        )
        .await;
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
