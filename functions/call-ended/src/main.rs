//! `call-ended`: merges the events table's `call_ended` stream records into the calls table.
#![forbid(unsafe_code)]

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    callhook::handlers::run_stream(callhook::EventType::CallEnded).await
}
