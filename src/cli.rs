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
Without --ruleset every command uses the ruleset shipped inside trailwatch, \
`shipped`: Wazuh's AWS rules 80200-80499 (Security Lake 99000-99082, Security \
Hub 99800-99860) with the JSON decoder, plus trailwatch's detection pack \
98000-98799 (CIS AWS Monitoring controls and AWS attack techniques; see \
`trailwatch coverage`). `--ruleset shipped-wazuh` is the Wazuh part alone, \
deciding exactly what wazuh-analysisd decides with Wazuh's AWS rules. With \
--ruleset DIR it reads a Wazuh-style tree: DIR/rules/*.xml, \
DIR/decoders/*.xml and DIR/lists/ (a list that rules name etc/lists/X is \
DIR/lists/X).",
    after_help = "Examples:\n  \
trailwatch analyze events.jsonl > alerts.json\n  \
trailwatch analyze --ruleset /var/ossec/ruleset --clock event trail.jsonl.gz\n  \
trailwatch logtest '{\"integration\":\"aws\",\"aws\":{...}}'\n  \
trailwatch test-rules --ruleset ../wazuh/ruleset ../wazuh/ruleset/testing/tests/aws_*.ini"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// ATT&CK release that names techniques and tactics in alerts (and
    /// logtest, coverage): 18.1, the current names, or 13.1, the MITRE
    /// database Wazuh 4.14.7 ships, for `rule.mitre` identical to its
    /// alerts (e.g. T1562.008 "Disable Cloud Logs").
    #[arg(long, global = true, value_enum, default_value = "18.1")]
    pub mitre_version: MitreVersion,
}

/// `--mitre-version`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum MitreVersion {
    #[value(name = "18.1")]
    V18_1,
    #[value(name = "13.1")]
    V13_1,
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
    /// Sources: every <bucket type=...>, <service type="cloudwatchlogs"|
    /// "inspector"> and <subscriber type="buckets"|"security_hub"> (not
    /// yet: the security_lake subscriber). No rules and no outputs: this
    /// shows what the collector reads. The
    /// configuration is Wazuh's ossec.conf dialect (the file may be a whole
    /// ossec.conf; only the aws-s3 wodle is read). State is recorded as in
    /// a normal run, each file once its events are printed, so a second
    /// call prints only what is new. Without --once the sources are read
    /// again every <interval>. Pipe the output into `trailwatch analyze` to
    /// see the alerts. Errors name the bucket, the key and the cause; a
    /// bucket that fails does not stop the others (exit status 2). A
    /// closed standard output (`| head`) ends it quietly, the file in hand
    /// not marked.
    #[command(after_help = "Example configuration:\n  \
<ossec_config>\n    <wodle name=\"aws-s3\">\n      <interval>10m</interval>\n      \
<bucket type=\"cloudtrail\">\n        <name>my-trail-bucket</name>\n        \
<aws_profile>default</aws_profile>\n        <only_logs_after>2024-MAR-10</only_logs_after>\n      \
</bucket>\n    </wodle>\n  </ossec_config>\n\n\
Examples:\n  trailwatch collect -c ossec.conf --once\n  \
trailwatch collect -c ossec.conf --once --dry-run | trailwatch analyze")]
    Collect(CollectArgs),
    /// Replay recorded trails through the rules: alerts on standard output,
    /// or to the outputs of a configuration.
    ///
    /// PATH is a CloudTrail file (`.json`, `.json.gz`), a directory of them
    /// (loose or in the S3 `AWSLogs/...` layout, read in time order), or
    /// JSON lines (`.jsonl`, `.jsonl.gz`: events as the collector delivers
    /// them, or bare CloudTrail records). The event's own time drives
    /// correlation windows unless --clock arrival. Without -c the alerts
    /// (alerts.json lines) go to standard output; with -c they go where the
    /// configuration sends them (alerts.json, email, webhooks) and replay
    /// waits for the email and webhook queue to drain. A progress bar is
    /// shown on a terminal, and a table of alerts by rule at the end (on
    /// standard error). A file that cannot be read is reported, counted and
    /// skipped. Exit status: 0 all replayed (and delivered), 1 no trail
    /// file found, 2 errors (a file unreadable, deliveries left queued).
    #[command(after_help = "Examples:\n  \
trailwatch replay samples/trail\n  \
trailwatch replay --ruleset /var/ossec/ruleset AWSLogs/ > alerts.json\n  \
trailwatch replay -c trailwatch.conf recorded/2024-11-05/\n  \
trailwatch replay -q samples/trail --report report.html > /dev/null")]
    Replay(ReplayArgs),
    /// Run the service: collect the configured AWS sources, run the rules,
    /// and deliver alerts to alerts.json, email and webhooks.
    ///
    /// One configuration file in the ossec.conf dialect: <wodle
    /// name="aws-s3"> (what to collect), <ruleset>, <global> (email
    /// settings), <alerts>, <email_alerts>, <integration> and trailwatch's
    /// <trailwatch> block (logs_dir, state_dir, api). Sources are read
    /// every <interval>; a source file counts as done only once its alerts
    /// are fsync'd in alerts.json and its email and webhook deliveries are
    /// in the on-disk queue, so nothing is lost on a crash and nothing is
    /// written twice. Email and webhooks are retried with backoff until
    /// the receiver takes them, across restarts. SIGTERM or Ctrl-C stops
    /// cleanly; SIGHUP reads the configuration again (sources, email and
    /// integrations; a bad one is refused and the running one kept). Logs
    /// go to standard error in ossec.log style. With --once the exit
    /// status is 2 when a source failed or deliveries are left queued.
    #[command(
        after_help = "See samples/trailwatch.conf for a commented configuration.\n\n\
Examples:\n  trailwatch check-config trailwatch.conf\n  trailwatch run -c trailwatch.conf"
    )]
    Run(RunArgs),
    /// What a rule change does: two rulesets over the same recorded trail.
    ///
    /// Both rulesets (Wazuh-style directories, or `shipped`) see every
    /// event in one pass, each in its own thread. Reported per rule: alerts
    /// only under the old or only under the new ruleset, alerts whose level,
    /// description or groups changed (with up to --examples events each, and
    /// the old and new alert), firing counts that moved by more than
    /// --threshold percent, correlation rules that fire at other times, the
    /// rules of the files in play that never fired (coverage; with the
    /// fields they need that no event of the trail carried), and the new
    /// ruleset's load problems with file and line, with the rules the change
    /// leaves unable to fire (see lint). TRAIL: CloudTrail files
    /// or directories (S3 layout or loose), JSON lines of analysisd input,
    /// or Wazuh .ini test files. Exit status: 0 nothing changed, 1 alerts
    /// changed (see --fail-on), 2 errors (including load errors of the new
    /// ruleset).
    #[command(after_help = "Examples:\n  \
trailwatch diff --old /var/ossec/ruleset --new ./ruleset samples/trail\n  \
trailwatch diff --old shipped --new ./my-ruleset --format markdown recorded/ > report.md\n  \
trailwatch diff --old main/ --new pr/ --fail-on removed --format json trail.jsonl.gz\n  \
trailwatch diff --old shipped-wazuh --new shipped samples/trail --report diff.html")]
    Diff(DiffArgs),
    /// Check a ruleset without running it: every load error and warning
    /// with its file and line.
    ///
    /// What the loader reports (analysisd's checks: unknown options, bad
    /// values, duplicate rule ids, if_sid or if_matched_sid to a rule that
    /// does not exist, lists that are not loaded, regexes that do not
    /// compile) plus the rules that load but can never fire: shadowed by an
    /// earlier sibling that takes all their events (Wazuh tries siblings in
    /// order and the first match takes the event): its conditions are a
    /// subset of theirs, or its literal patterns accept all they accept
    /// (ResourceDeleted before ResourceDeletedNotRecorded); a condition
    /// that rejects every value the parents' conditions allow (e.g.
    /// ^StopLogging$ under a parent requiring ^ConsoleLogin$, another
    /// <decoded_as>, or DeleteObjects under a parent whose match_key list
    /// has no such key); a pcre2 pattern that accepts no text; or a parent
    /// that never fires. Exit status 0 clean, 1 warnings with
    /// --deny-warnings, 2 errors.
    #[command(after_help = "Examples:\n  \
trailwatch lint ./my-ruleset\n  \
trailwatch lint --deny-warnings shipped               # CI: fail on any warning\n  \
trailwatch lint --format json /var/ossec/ruleset | jq '.findings[] | select(.kind == \"shadowed\")'")]
    Lint(LintArgs),
    /// Print which CIS controls and ATT&CK techniques a ruleset covers.
    ///
    /// Read off the rules themselves: a `cis_aws_4.N` group marks a rule as
    /// watching control 4.N of the CIS AWS Foundations Benchmark's
    /// Monitoring section (every control is listed, covered or not), and
    /// the technique ids of its <mitre> block map it to ATT&CK. Rules that
    /// cannot alert (level 0, noalert) are left out. --navigator also
    /// writes an ATT&CK Navigator layer (JSON) scored by the highest level
    /// of the rules behind each technique.
    #[command(after_help = "Examples:\n  \
trailwatch coverage                               # the default ruleset (Wazuh's AWS rules + the pack)\n  \
trailwatch coverage shipped-wazuh                 # Wazuh's AWS rules alone\n  \
trailwatch coverage ./my-ruleset --format markdown --navigator layer.json")]
    Coverage(CoverageArgs),
    /// Write a starting configuration and the directories it names.
    ///
    /// DIR/trailwatch.conf (mode 600) is the commented example
    /// configuration with its logs and state directories set (default:
    /// DIR/logs and DIR/state, created with mode 700); an existing file is
    /// kept unless --force. Then prints the next steps.
    #[command(after_help = "Examples:\n  \
trailwatch init ./watch\n  \
sudo trailwatch init /etc/trailwatch --state-dir /var/lib/trailwatch --logs-dir /var/log/trailwatch")]
    Init(InitArgs),
    /// Validate a configuration and print the effective settings.
    ///
    /// Reads the file as `trailwatch run` would (every block it uses, the
    /// ruleset it names, the AWS profiles, secret and CA files it points
    /// to) and refuses what `run` refuses: each problem is printed as
    /// FILE:LINE: <tag>: message, with "Did you mean <x>?" for a misspelt
    /// tag, and the exit status is 2. Blocks of Wazuh's ossec.conf that
    /// trailwatch does not use (syscheck, remote, other wodles) are listed
    /// as skipped. With --probe, also tries each target without changing
    /// anything: lists one page of every bucket, queue and log group;
    /// connects to the SMTP server (EHLO, STARTTLS or TLS, login; no mail
    /// is sent); sends each webhook a HEAD request with the header
    /// `X-Trailwatch-Probe: 1` (any HTTP answer counts as reached: the
    /// receiver can tell it from an alert, which is a POST). Exit status:
    /// 0 all well, 2 a problem or a failed probe.
    #[command(after_help = "Examples:\n  \
trailwatch check-config /etc/trailwatch/trailwatch.conf\n  \
trailwatch check-config --probe trailwatch.conf\n  \
trailwatch check-config --format json trailwatch.conf | jq .problems")]
    CheckConfig(CheckConfigArgs),
    /// See and settle the email and webhook deliveries waiting in the
    /// queue (`<state_dir>/outputs.db`).
    ///
    /// Each integration has its own channel, named by what it is:
    /// `hook:NAME@HOST#HASH` (HASH stands for the whole URL, and for
    /// PagerDuty the routing key, which are not written down); mail goes
    /// through `email` (and `email!` for <do_not_delay>). Renaming,
    /// removing or re-pointing an <integration> leaves its queued
    /// deliveries in a channel the configuration no longer has: the
    /// service keeps them, says so at start and in /health, and does not
    /// send them until they are moved (`retry CHANNEL --to NEW`; a renamed
    /// integration with the same destination is found without --to) or
    /// dropped. `retry` also puts deliveries set aside after a refusal
    /// back in the queue. May run beside the service. Exit status: 0 done,
    /// 1 nothing to retry, 2 errors.
    #[command(after_help = "Examples:\n  \
trailwatch queue list -c trailwatch.conf\n  \
trailwatch queue retry -c trailwatch.conf                       # every set-aside delivery again\n  \
trailwatch queue retry -c trailwatch.conf 'hook:custom-old@siem.example.com#1a2b3c4d'\n  \
trailwatch queue retry -c trailwatch.conf 'hook:2:slack' --to 'hook:slack@hooks.slack.com#9f8e7d6c'\n  \
trailwatch queue drop -c trailwatch.conf 'hook:custom-old@siem.example.com#1a2b3c4d'")]
    Queue(QueueArgs),
}

#[derive(Args, Debug)]
pub struct QueueArgs {
    #[command(subcommand)]
    pub action: QueueAction,
}

#[derive(Subcommand, Debug)]
pub enum QueueAction {
    /// Channels with queued deliveries: configured or orphaned, pending,
    /// set aside, the oldest's queueing time, the last error.
    List(QueueListArgs),
    /// Queue set-aside deliveries again (of CHANNEL, or of every
    /// configured channel), or move an orphaned channel's deliveries to a
    /// configured one.
    Retry(QueueRetryArgs),
    /// Forget every delivery of CHANNEL (pending and set aside).
    Drop(QueueDropArgs),
}

#[derive(Args, Debug)]
pub struct QueueListArgs {
    /// The service's configuration (its <state_dir> and channels).
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: PathBuf,
    /// Only this channel.
    #[arg(value_name = "CHANNEL")]
    pub channel: Option<String>,
}

#[derive(Args, Debug)]
pub struct QueueRetryArgs {
    #[command(flatten)]
    pub config: QueueListArgs,
    /// Move the deliveries of CHANNEL (orphaned) into this configured
    /// channel of the same kind.
    #[arg(long, value_name = "CHANNEL")]
    pub to: Option<String>,
}

#[derive(Args, Debug)]
pub struct QueueDropArgs {
    #[command(flatten)]
    pub config: QueueListArgs,
}

#[derive(Args, Debug)]
pub struct ReplayArgs {
    #[command(flatten)]
    pub ruleset: RulesetArgs,
    /// Configuration whose outputs (and <ruleset>, <alerts>) to use.
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Clock for correlation windows and timestamps.
    #[arg(long, value_enum, default_value_t = ClockKind::Event)]
    pub clock: ClockKind,
    /// manager.name of the alerts (default: this host's name).
    #[arg(long)]
    pub manager_name: Option<String>,
    /// With -c, also print the alerts on standard output.
    #[arg(long)]
    pub print: bool,
    /// Leave out the progress bar and the summary table.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// With -c, how long to wait for email and webhook deliveries before
    /// giving up (they stay queued for the next replay).
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    pub drain_timeout: u64,
    /// Also write an HTML report (one self-contained file: alerts over
    /// time by level band, by rule, top identities, addresses, regions and
    /// accounts, the highest-level alerts), built in the same pass.
    /// Example: `trailwatch replay samples/trail --report report.html`.
    #[arg(long, value_name = "FILE.html")]
    pub report: Option<PathBuf>,
    /// Trail files or directories.
    #[arg(value_name = "PATH", required = true)]
    pub paths: Vec<PathBuf>,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// The configuration (ossec.conf dialect).
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: PathBuf,
    #[command(flatten)]
    pub ruleset: RulesetArgs,
    /// Do one pass over every source, wait for email and webhook
    /// deliveries (see --drain-timeout), and exit.
    #[arg(long)]
    pub once: bool,
    /// With --once, how long to wait for email and webhook deliveries
    /// before exiting (what is left stays queued for the next start).
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    pub drain_timeout: u64,
    /// Objects downloaded at once per bucket.
    #[arg(long, default_value_t = 16, value_name = "N")]
    pub concurrency: usize,
    /// CloudTrail and Config objects larger than this (MiB, as stored,
    /// usually gzipped) are read as a stream: decompressed and parsed as
    /// they download, their events handed on in parts of 5,000, so memory
    /// does not grow with the object. Smaller ones are read whole, several
    /// at once (faster).
    #[arg(long, default_value_t = 4, value_name = "MIB")]
    pub stream_above: u64,
    /// Also log debug lines (markers, files found and skipped).
    #[arg(short = 'v', long)]
    pub verbose: bool,
}

#[derive(Args, Debug)]
pub struct CheckConfigArgs {
    #[command(flatten)]
    pub ruleset: RulesetArgs,
    /// The configuration file.
    #[arg(value_name = "FILE")]
    pub config: PathBuf,
    /// Also try every source, the SMTP server and every webhook (read
    /// only; no mail or alert is sent) and print a table of the results.
    #[arg(long)]
    pub probe: bool,
    /// Output: text, or one JSON object (problems, warnings, skipped
    /// blocks, probes).
    #[arg(long, value_enum, default_value_t = CheckFormat::Text)]
    pub format: CheckFormat,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckFormat {
    /// The effective settings and the problems, for a person.
    Text,
    /// One JSON object, for machines.
    Json,
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
    /// CloudTrail and Config objects larger than this (MiB, as stored,
    /// usually gzipped) are read as a stream: decompressed and parsed as
    /// they download, their events handed on in parts of 5,000, so memory
    /// does not grow with the object. Smaller ones are read whole, several
    /// at once (faster).
    #[arg(long, default_value_t = 4, value_name = "MIB")]
    pub stream_above: u64,
    /// Print the module's debug lines (markers, files found and skipped)
    /// on standard error.
    #[arg(short = 'v', long)]
    pub verbose: bool,
    /// List the objects skipped on error (every download attempt failed)
    /// and not read since, from the state, then exit. Each is tried again
    /// on the next <skipped_retries> passes (default 3).
    #[arg(long)]
    pub skipped: bool,
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
    /// Wazuh-style ruleset directory (rules/, decoders/, lists/), or a
    /// built-in ruleset: `shipped` (the default: Wazuh's AWS rules and
    /// trailwatch's detection pack) or `shipped-wazuh` (Wazuh's AWS rules
    /// alone).
    #[arg(long, value_name = "DIR")]
    pub ruleset: Option<PathBuf>,
    /// Refuse to run when a ruleset file fails to load (default: report
    /// the error and run with the files that loaded).
    #[arg(long)]
    pub strict: bool,
    /// Print load warnings too (duplicate ids, skipped rules).
    #[arg(long)]
    pub warnings: bool,
    /// log_alert_level of ossec.conf <alerts>: lowest level written as an
    /// alert [default: 3, or the configuration's].
    #[arg(long, value_name = "LEVEL")]
    pub log_alert_level: Option<i32>,
    /// email_alert_level of ossec.conf <alerts>: sets rule.mail
    /// [default: 12, or the configuration's].
    #[arg(long, value_name = "LEVEL")]
    pub email_alert_level: Option<i32>,
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
    /// Skip events longer than this many bytes (with a message). Without
    /// it, events are taken as analysisd receives them: the datagram
    /// `1:LOCATION:event` cut at 65,535 bytes and the rest analysed.
    #[arg(long, value_name = "BYTES")]
    pub max_event_size: Option<usize>,
    /// analysisd's `analysisd.log_fw` (internal_options.conf): 1 (default)
    /// drops firewall-decoded events lacking action, srcip, dstip, srcport,
    /// dstport or protocol before the rules; 0 keeps them.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(0..=1), value_name = "0|1")]
    pub log_fw: u8,
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
    /// Complete sections that lack expectations: run their first `pass`
    /// case and write the resulting `rule`, `alert` and `decoder` into the
    /// file (after the section's last line), then run the tests. Sections
    /// with expectations are left as they are.
    #[arg(long)]
    pub update: bool,
    /// The .ini files.
    #[arg(value_name = "FILE.ini", required = true)]
    pub files: Vec<PathBuf>,
}

#[derive(Args, Debug)]
pub struct LintArgs {
    /// Print warnings as well as errors (they are always counted).
    #[arg(long)]
    pub quiet_warnings: bool,
    /// Exit 1 when there are warnings (errors always exit 2).
    #[arg(long)]
    pub deny_warnings: bool,
    /// Layout on standard output: `text` (one line a problem, FILE:LINE:
    /// first) or `json` (one object: the counts and every problem with its
    /// file, line, rule id, kind and message).
    #[arg(long, value_enum, default_value = "text")]
    pub format: LintFormat,
    /// The ruleset: a Wazuh-style directory (rules/, decoders/, lists/), or
    /// `shipped` (the default ruleset) or `shipped-wazuh` (its Wazuh AWS
    /// rules alone).
    #[arg(value_name = "RULESET")]
    pub ruleset: PathBuf,
}

#[derive(Args, Debug)]
pub struct InitArgs {
    /// Where the configuration goes (created if missing) [default: .].
    #[arg(value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// The logs directory (alerts.json) [default: DIR/logs].
    #[arg(long, value_name = "DIR")]
    pub logs_dir: Option<PathBuf>,
    /// The state directory (collector state, delivery queue) [default:
    /// DIR/state].
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Replace an existing trailwatch.conf.
    #[arg(long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct CoverageArgs {
    /// Layout of the report on standard output.
    #[arg(long, value_enum, default_value = "text")]
    pub format: CoverageFormat,
    /// Also write an ATT&CK Navigator layer (JSON) to FILE.
    #[arg(long, value_name = "FILE")]
    pub navigator: Option<PathBuf>,
    /// The ruleset: a Wazuh-style directory, `shipped` or `shipped-wazuh`.
    #[arg(value_name = "RULESET", default_value = "shipped")]
    pub ruleset: PathBuf,
}

/// Report layout of `lint`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LintFormat {
    /// One line a problem, as a compiler prints them.
    Text,
    /// One JSON object, for machines.
    Json,
}

/// Report layout of `coverage`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum CoverageFormat {
    /// Aligned columns for a terminal.
    Text,
    /// Tables to paste into a README or a pull request.
    Markdown,
    /// One JSON object, for machines.
    Json,
}

/// Report layout of `diff`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiffFormat {
    /// A summary table first, then examples and the other findings.
    Text,
    /// One JSON object, for machines.
    Json,
    /// To paste into a pull request.
    Markdown,
}

/// Which changes make `diff` exit 1.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailOn {
    /// Any alert added, removed or changed.
    Any,
    /// Alerts only under the new ruleset.
    Added,
    /// Alerts only under the old ruleset.
    Removed,
}

#[derive(Args, Debug)]
pub struct DiffArgs {
    /// The ruleset before the change (a directory, `shipped` or
    /// `shipped-wazuh`).
    #[arg(long, value_name = "RULESET")]
    pub old: PathBuf,
    /// The ruleset after the change (a directory, `shipped` or
    /// `shipped-wazuh`).
    #[arg(long, value_name = "RULESET")]
    pub new: PathBuf,
    /// Clock for correlation windows and timestamps.
    #[arg(long, value_enum, default_value_t = ClockKind::Event)]
    pub clock: ClockKind,
    /// Report layout.
    #[arg(long, value_enum, default_value_t = DiffFormat::Text)]
    pub format: DiffFormat,
    /// Example events kept per rule and kind of change.
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub examples: usize,
    /// Report rules whose firing count moved by more than this percentage.
    #[arg(long, default_value_t = 10.0, value_name = "PERCENT")]
    pub threshold: f64,
    /// Which changes make the exit status 1.
    #[arg(long, value_enum, default_value_t = FailOn::Any)]
    pub fail_on: FailOn,
    /// Do not report alerts whose description alone changed (e.g. Wazuh's
    /// own ruleset against trailwatch's, which words the same rules
    /// differently).
    #[arg(long)]
    pub ignore_descriptions: bool,
    /// No progress bar.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Also write the report as one self-contained HTML file (old and new
    /// counts per rule as a chart, examples, timing shifts, coverage).
    /// Example: `trailwatch diff --old shipped-wazuh --new shipped
    /// samples/trail --report diff.html`.
    #[arg(long, value_name = "FILE.html")]
    pub report: Option<PathBuf>,
    /// Trail files or directories, JSON lines, or .ini test files.
    #[arg(value_name = "TRAIL", required = true)]
    pub paths: Vec<PathBuf>,
}
