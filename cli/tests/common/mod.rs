//! Running the `callhook` binary against a test stack's tables, as a user of a deployed stack
//! would (tables named by environment, DynamoDB Local as the endpoint).

use callhook_e2e::{Stack, endpoint};
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_callhook");

/// `callhook ARGS` on the stack's tables, with no `CALLHOOK_*` or `AWS_*` variable of the
/// caller's leaking in.
pub fn run(stack: &Stack, args: &[&str]) -> Output {
    let mut command = Command::new(BIN);
    for (key, _) in std::env::vars() {
        if key.starts_with("CALLHOOK_") || key.starts_with("AWS_") {
            command.env_remove(key);
        }
    }
    command
        .args(args)
        .env("CALLHOOK_EVENTS_TABLE", &stack.config.events_table)
        .env("CALLHOOK_CALLS_TABLE", &stack.config.calls_table)
        .env("CALLHOOK_DYNAMODB_ENDPOINT", endpoint())
        .stdin(Stdio::null())
        .output()
        .unwrap()
}
