//! `call-started`: merges the events table's `call_started` stream records into the calls table.
#![forbid(unsafe_code)]

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    callhook::handlers::run_stream(callhook::EventType::CallStarted).await
}
