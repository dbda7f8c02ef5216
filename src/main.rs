//! The `trailwatch` command: thin wiring over the `engine` crate.
//!
//! Subcommands live in their own modules; this file parses the command line
//! and maps errors to exit codes (0 fine, 1 test failures, 2 usage or
//! runtime errors).

mod analyze;
mod authoring;
mod cli;
mod clock;
mod collect;
mod init;
mod input;
mod logging;
mod regex_limits;
mod replay;
mod ruleset;
mod service;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match run(args) {
        Ok(code) => code,
        Err(err) => {
            if is_broken_pipe(&err) {
                return ExitCode::SUCCESS;
            }
            eprintln!("trailwatch: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn run(args: cli::Cli) -> anyhow::Result<ExitCode> {
    engine::mitre::select(match args.mitre_version {
        cli::MitreVersion::V18_1 => engine::mitre::Version::V18_1,
        cli::MitreVersion::V13_1 => engine::mitre::Version::V13_1,
    });
    match args.command {
        cli::Command::Analyze(a) => analyze::run(a),
        cli::Command::Logtest(a) => authoring::logtest::run(a),
        cli::Command::TestRules(a) => authoring::test_rules::run(a),
        cli::Command::Collect(a) => collect::run(a),
        cli::Command::Replay(a) => replay::run(a),
        cli::Command::Run(a) => service::run::run(a),
        cli::Command::CheckConfig(a) => service::check::run(a),
        cli::Command::Queue(a) => service::queue_cmd::run(a),
        cli::Command::Diff(a) => authoring::diff::run(a),
        cli::Command::Lint(a) => authoring::lint::lint(a),
        cli::Command::Coverage(a) => authoring::coverage::run(a),
        cli::Command::Init(a) => init::run(a),
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
