//! `message-received`: merges the events table's `message_received` stream records into the calls table.
#![forbid(unsafe_code)]

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    callhook::handlers::run_stream(callhook::EventType::MessageReceived).await
}
