//! The bootstrap of every callhook Lambda function. Each function of the template is its own
//! Lambda function (its own role, rule, concurrency and logs) running this one binary; its
//! `Handler` (`ingest`, `call-started`, `mid-call`, `call-ended`, `call-analyzed`,
//! `message-received`), which Lambda passes as `_HANDLER`, says which it is. One binary means one
//! build and one link for `sam build`, whatever the number of functions.
#![forbid(unsafe_code)]

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    let handler = std::env::var("_HANDLER").unwrap_or_default();
    callhook::handlers::run(&handler).await
}
