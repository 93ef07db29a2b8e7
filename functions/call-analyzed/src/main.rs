//! `call-analyzed`: merges `call_analyzed` events, put on the bus by the pipe, into the calls table.
#![forbid(unsafe_code)]

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    callhook::handlers::run_merge(callhook::EventType::CallAnalyzed).await
}
