//! `ingest`: `POST /webhooks/{provider}` behind API Gateway; verifies, parses and stores events.
#![forbid(unsafe_code)]

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    callhook::handlers::run_ingest().await
}
