//! `callhook`: the command-line companion of the stack.
#![forbid(unsafe_code)]

mod dev;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "callhook",
    version,
    about = "Receive, verify and keep AI phone-agent webhooks"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the whole stack locally: the webhook routes on 127.0.0.1 and the stream functions,
    /// on DynamoDB Local (`CALLHOOK_DYNAMODB_ENDPOINT`).
    Dev(dev::Args),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("callhook: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Dev(args) => dev::run(args).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("callhook: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
