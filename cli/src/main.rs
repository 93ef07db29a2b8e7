//! `callhook`: the command-line companion of the stack. It runs the stack locally, sends signed
//! webhooks, and reads, exports and replays what a stack stored, local or deployed.
#![forbid(unsafe_code)]

mod calls;
mod dev;
mod events;
mod export;
mod failures;
mod filter;
mod output;
mod quarantine;
mod replay;
mod send;
mod stack;
mod state;
mod ui;

use clap::{CommandFactory, Parser, Subcommand};
use std::process::ExitCode;

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// Nothing matches what was asked for (exit status 3).
#[derive(Debug)]
pub struct NotFound(pub String);

impl std::fmt::Display for NotFound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NotFound {}

#[derive(Debug, Parser)]
#[command(
    name = "callhook",
    version,
    about = "Receive, verify and keep the webhooks of AI phone agents",
    after_help = "\
Commands find the local stack (`make dev`) through .local/dev.json when run from the project \
folder. For a deployed stack, name its tables with --events-table and --calls-table (or \
CALLHOOK_EVENTS_TABLE and CALLHOOK_CALLS_TABLE, the stack outputs EventsTableName and \
CallsTableName); credentials and region come from the standard AWS chain (AWS_PROFILE, \
AWS_REGION, ...). These options, -v and -q go before or after the subcommand.

Exit status: 0 done, 1 failed (or a delivery was refused), 2 bad arguments, 3 nothing found."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    stack: stack::StackArgs,
    /// More logging on standard error: -v info, -vv debug (the AWS SDK's requests too), -vvv
    /// trace (RUST_LOG overrides them). `dev` logs info without it.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// No progress bars and no remarks on standard error; data, warnings and errors are still
    /// printed.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the whole stack locally: the webhook routes on 127.0.0.1 and the event path (pipe, bus, functions),
    /// on DynamoDB Local (`make dev` starts it and runs this).
    Dev(dev::Args),
    /// Post a webhook signed as its provider would (`--all`: every seed fixture).
    Send(send::Args),
    /// List calls or show one.
    Calls {
        #[command(subcommand)]
        command: calls::Command,
    },
    /// Every stored event of a call, oldest first, with dedupe keys and raw bodies.
    Events(events::Args),
    /// Export call records as JSON lines (the default) or CSV.
    Export(export::Args),
    /// Rebuild call records from their stored raw events with today's parsers and merge.
    Replay(replay::Args),
    /// Events a function could not merge: recorded failures and the failure queue; replay them.
    Failures {
        #[command(subcommand)]
        command: failures::Command,
    },
    /// Payloads that were authenticated but unusable (answered 400/422), kept for inspection.
    Quarantine {
        #[command(subcommand)]
        command: quarantine::Command,
    },
    /// A local, read-only web view of the calls: the list with its filters, each call with its
    /// conversation, its events and their raw bodies (served on 127.0.0.1).
    Ui(ui::Args),
    /// Print the completion script of a shell for callhook (for example
    /// `callhook completions bash > ~/.local/share/bash-completion/completions/callhook`).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print callhook's man page (roff) on standard output (`callhook man | man -l -`).
    Man,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "callhook",
                &mut std::io::stdout(),
            );
            return ExitCode::SUCCESS;
        }
        Command::Man => {
            return match clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("callhook: cannot write the man page: {e}");
                    ExitCode::FAILURE
                }
            };
        }
        _ => {}
    }
    output::set_quiet(cli.quiet);
    let default_level = match cli.command {
        Command::Dev(_) => tracing::Level::INFO,
        _ => tracing::Level::WARN,
    };
    let log = output::log_filter(default_level, cli.verbose, cli.quiet);
    if !matches!(cli.command, Command::Dev(_)) {
        tracing_subscriber::fmt()
            .with_env_filter(log.clone())
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("callhook: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let stack = &cli.stack;
        match cli.command {
            Command::Dev(args) => dev::run(args, log).await,
            Command::Send(args) => send::run(args, &stack.state).await,
            Command::Calls { command } => calls::run(command, stack).await,
            Command::Events(args) => events::run(args, stack).await,
            Command::Export(args) => export::run(args, stack).await,
            Command::Replay(args) => replay::run(args, stack).await,
            Command::Failures { command } => failures::run(command, stack).await,
            Command::Quarantine { command } => quarantine::run(command, stack).await,
            Command::Ui(args) => ui::run(args, stack).await,
            Command::Completions { .. } | Command::Man => Ok(()),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("callhook: {}", with_causes(&*e));
            if e.is::<NotFound>() {
                ExitCode::from(3)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// An error followed by its causes (its `source()` chain), each after a colon:
/// `<error>: <cause>: <cause>`. A cause whose text is already in the line is not repeated.
pub(crate) fn with_causes(error: &(dyn std::error::Error + 'static)) -> String {
    callhook::error::with_sources(error, usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<Layer>>);

    impl std::fmt::Display for Layer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Layer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|l| l as _)
        }
    }

    #[test]
    fn errors_are_told_with_their_causes() {
        let io = Layer("connection refused", None);
        let connect = Layer("tcp connect error", Some(Box::new(io)));
        let error = Layer("cannot reach x", Some(Box::new(connect)));
        assert_eq!(
            with_causes(&error),
            "cannot reach x: tcp connect error: connection refused"
        );
        let repeated = Layer(
            "read failed: disk gone",
            Some(Box::new(Layer("disk gone", None))),
        );
        assert_eq!(with_causes(&repeated), "read failed: disk gone");
    }
}
