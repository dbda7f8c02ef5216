//! Command-line interface (clap). The help texts are the user manual's
//! first page: they say what each command reads, writes and decides.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "trailwatch",
    version,
    about = "Watches an AWS account on its own: Wazuh-compatible rules over CloudTrail and other AWS logs",
    long_about = "trailwatch decides on every event exactly what wazuh-analysisd 4.14 decides, \
with rules and decoders in Wazuh's XML format, and no Wazuh manager.\n\n\
Without --ruleset every command uses the ruleset shipped inside trailwatch \
(the AWS rules 80200-80499 and the JSON decoder). With --ruleset DIR it reads a \
Wazuh-style tree: DIR/rules/*.xml, DIR/decoders/*.xml and DIR/lists/ (a list \
that rules name etc/lists/X is DIR/lists/X).",
    after_help = "Examples:\n  \
trailwatch analyze events.jsonl > alerts.json\n  \
trailwatch analyze --ruleset /var/ossec/ruleset --clock event trail.jsonl.gz\n  \
trailwatch logtest '{\"integration\":\"aws\",\"aws\":{...}}'\n  \
trailwatch test-rules --ruleset ../wazuh/ruleset ../wazuh/ruleset/testing/tests/aws_*.ini"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run events through the rules and print alerts.json lines.
    ///
    /// Input is one event per line, exactly what wazuh-analysisd receives
    /// (JSON or text; `.gz` files are read transparently). Output is one
    /// alerts.json object per alert, in input order, on standard output.
    /// Problems with single events (too long, unreadable) are reported on
    /// standard error with their line number and processing goes on.
    Analyze(AnalyzeArgs),
    /// Show the three phases of wazuh-logtest for each event.
    ///
    /// Events come from the EVENT argument or, one per line, from standard
    /// input; all of them share one logtest session (so frequency rules can
    /// be tested). --json prints the JSON reply of analysisd's logtest
    /// socket instead of the text layout.
    Logtest(LogtestArgs),
    /// Run Wazuh's .ini rule tests (ruleset/testing/tests/*.ini).
    ///
    /// Semantics of Wazuh's runtests.py: every `log N pass|fail` key is one
    /// case run in a fresh logtest session, repeated keys of a section are
    /// merged into one multi-line case, and only the last event is judged
    /// against the section's `rule`, `alert` (level) and `decoder`. With
    /// --ruleset DIR the files DIR/testing/ruleset/test_*rules.xml and
    /// test_*decoders.xml are loaded too and rule 60000 is switched to
    /// `decoded_as json`, as runtests.py does. Prints one line per file and
    /// `N passed, M failed` last; exits 1 when a case fails.
    TestRules(TestRulesArgs),
    /// Read the AWS sources of a <wodle name="aws-s3"> block and print
    /// every event, one per line, exactly as it would enter the engine.
    ///
    /// Sources: every <bucket type=...>, <service type="cloudwatchlogs">
    /// and <subscriber type="buckets"|"security_hub"> (not yet: the
    /// inspector service and the security_lake subscriber). No rules and no outputs:
    /// this shows what the collector reads. The
    /// configuration is Wazuh's ossec.conf dialect (the file may be a whole
    /// ossec.conf; only the aws-s3 wodle is read). State is recorded as in
    /// a normal run, each file once its events are printed, so a second
    /// call prints only what is new. Without --once the sources are read
    /// again every <interval>. Pipe the output into `trailwatch analyze` to
    /// see the alerts. Errors name the bucket, the key and the cause; a
    /// bucket that fails does not stop the others (exit status 1).
    #[command(after_help = "Example configuration:\n  \
<ossec_config>\n    <wodle name=\"aws-s3\">\n      <interval>10m</interval>\n      \
<bucket type=\"cloudtrail\">\n        <name>my-trail-bucket</name>\n        \
<aws_profile>default</aws_profile>\n        <only_logs_after>2024-MAR-10</only_logs_after>\n      \
</bucket>\n    </wodle>\n  </ossec_config>\n\n\
Examples:\n  trailwatch collect -c ossec.conf --once\n  \
trailwatch collect -c ossec.conf --once --dry-run | trailwatch analyze")]
    Collect(CollectArgs),
}

#[derive(Args, Debug)]
pub struct CollectArgs {
    /// ossec.conf-style file with a <wodle name="aws-s3"> block.
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: PathBuf,
    /// Read every source once and exit.
    #[arg(long)]
    pub once: bool,
    /// Read state but never write it (nothing is marked done, nothing is
    /// removed from buckets).
    #[arg(long)]
    pub dry_run: bool,
    /// Where state is kept (default: <state_dir> of the config, else
    /// ./trailwatch-state).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Re-read from only_logs_after (or today) whatever state says (the
    /// module's --reparse; buckets then record nothing).
    #[arg(long)]
    pub reparse: bool,
    /// Objects downloaded at once per bucket.
    #[arg(long, default_value_t = 16, value_name = "N")]
    pub concurrency: usize,
    /// Print the module's debug lines (markers, files found and skipped)
    /// on standard error.
    #[arg(short = 'v', long)]
    pub verbose: bool,
}

/// Which time drives correlation windows, `<time>` and alert timestamps.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClockKind {
    /// The time the event is processed (wazuh-analysisd's behaviour).
    Arrival,
    /// The event's own timestamp (CloudTrail eventTime, GuardDuty
    /// updatedAt, a top-level timestamp...): what replaying a recorded trail
    /// needs. Events without one keep the previous event's time.
    Event,
}

#[derive(Args, Debug, Clone)]
pub struct RulesetArgs {
    /// Wazuh-style ruleset directory (rules/, decoders/, lists/).
    /// Default: the ruleset shipped in trailwatch.
    #[arg(long, value_name = "DIR")]
    pub ruleset: Option<PathBuf>,
    /// Refuse to run when a ruleset file fails to load (default: report
    /// the error and run with the files that loaded).
    #[arg(long)]
    pub strict: bool,
    /// Print load warnings too (duplicate ids, skipped rules).
    #[arg(long)]
    pub warnings: bool,
    /// log_alert_level of ossec.conf <alerts>: lowest level written as an alert.
    #[arg(long, default_value_t = 3, value_name = "LEVEL")]
    pub log_alert_level: i32,
    /// email_alert_level of ossec.conf <alerts>: sets rule.mail.
    #[arg(long, default_value_t = 12, value_name = "LEVEL")]
    pub email_alert_level: i32,
}

#[derive(Args, Debug)]
pub struct AnalyzeArgs {
    #[command(flatten)]
    pub ruleset: RulesetArgs,
    /// Location of the events (Wazuh's location field).
    #[arg(long, default_value = "Wazuh-AWS")]
    pub location: String,
    /// Clock for correlation windows and timestamps.
    #[arg(long, value_enum, default_value_t = ClockKind::Arrival)]
    pub clock: ClockKind,
    /// manager.name and hostname of local events (default: this host's name).
    #[arg(long)]
    pub manager_name: Option<String>,
    /// Events longer than this many bytes are skipped with a message, as
    /// Wazuh's queue refuses messages over 64 KiB.
    #[arg(long, default_value_t = 65536, value_name = "BYTES")]
    pub max_event_size: usize,
    /// Input file (`-` or nothing: standard input). `.gz` is decompressed.
    #[arg(value_name = "FILE")]
    pub input: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct LogtestArgs {
    #[command(flatten)]
    pub ruleset: RulesetArgs,
    /// Print analysisd's JSON reply instead of the text phases.
    #[arg(long)]
    pub json: bool,
    /// Also list the rules tried (wazuh-logtest -v).
    #[arg(short = 'v', long)]
    pub verbose: bool,
    /// Location of the event.
    #[arg(long, default_value = "stdin")]
    pub location: String,
    /// manager.name (default: this host's name).
    #[arg(long)]
    pub manager_name: Option<String>,
    /// The event; without it, events are read from standard input.
    #[arg(value_name = "EVENT")]
    pub event: Option<String>,
}

#[derive(Args, Debug)]
pub struct TestRulesArgs {
    #[command(flatten)]
    pub ruleset: RulesetArgs,
    /// Do not switch rule 60000 to `decoded_as json` (runtests.py -s).
    #[arg(long)]
    pub skip_windows_eventchannel: bool,
    /// Print every failing case with expected and actual results.
    #[arg(short = 'v', long)]
    pub verbose: bool,
    /// Also run `*geoip.ini` files (runtests.py -g); they need GeoIP data
    /// trailwatch does not have, so they are reported as skipped otherwise.
    #[arg(long)]
    pub geoip: bool,
    /// The .ini files.
    #[arg(value_name = "FILE.ini", required = true)]
    pub files: Vec<PathBuf>,
}
