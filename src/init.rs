//! `trailwatch init`: a starting configuration, the directories it names,
//! and what to do next.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};

use crate::cli::InitArgs;

/// The commented example configuration, the starting point.
const EXAMPLE: &str = include_str!("../samples/trailwatch.conf");

/// The example with this installation's directories and header.
fn configuration(conf: &Path, logs: &str, state: &str) -> anyhow::Result<String> {
    let mut text = EXAMPLE.to_string();
    for (from, to) in [
        (
            "<logs_dir>../trailwatch-logs</logs_dir>",
            format!("<logs_dir>{logs}</logs_dir>"),
        ),
        (
            "<state_dir>../trailwatch-state</state_dir>",
            format!("<state_dir>{state}</state_dir>"),
        ),
        (
            "trailwatch check-config samples/trailwatch.conf",
            format!("trailwatch check-config {}", conf.display()),
        ),
        (
            "trailwatch run -c samples/trailwatch.conf",
            format!("trailwatch run -c {}", conf.display()),
        ),
    ] {
        if !text.contains(from) {
            bail!("the example configuration no longer has {from}");
        }
        text = text.replacen(from, &to, 1);
    }
    Ok(text.replacen(
        "trailwatch: a commented example configuration.",
        "trailwatch configuration, written by `trailwatch init`: edit the\n  bucket, the mail and the webhooks below, then check it.",
        1,
    ))
}

/// Creates a directory (and its parents) readable by its owner only; one
/// that exists already is made so too.
fn private_dir(p: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    outputs::file::create_private_dir(p).with_context(|| format!("creating {}", p.display()))?;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("setting the mode of {}", p.display()))
}

/// `trailwatch init [DIR]`.
pub fn run(a: InitArgs) -> anyhow::Result<ExitCode> {
    let dir = a.dir.clone().unwrap_or_else(|| PathBuf::from("."));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let conf = dir.join("trailwatch.conf");
    if conf.exists() && !a.force {
        bail!(
            "{} exists; not overwritten (--force replaces it)",
            conf.display()
        );
    }
    // Relative directories start at the configuration's directory, as
    // every path of the file does.
    let logs = a.logs_dir.clone().unwrap_or_else(|| PathBuf::from("logs"));
    let state = a
        .state_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("state"));
    for d in [&logs, &state] {
        private_dir(&if d.is_absolute() {
            d.clone()
        } else {
            dir.join(d)
        })?;
    }
    let text = configuration(&conf, &logs.to_string_lossy(), &state.to_string_lossy())?;
    {
        use std::io::Write;
        let mut f = outputs::file::private_file()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&conf)
            .with_context(|| format!("writing {}", conf.display()))?;
        f.write_all(text.as_bytes())
            .with_context(|| format!("writing {}", conf.display()))?;
    }
    println!("wrote {} (mode 600)", conf.display());
    println!(
        "created {} and {} (mode 700)",
        logs.display(),
        state.display()
    );
    println!();
    println!("Next:");
    println!(
        "  1. Edit {}: the CloudTrail bucket (<bucket><name>), its AWS profile or role,",
        conf.display()
    );
    println!("     the mail server and addresses (<global>), and the webhooks (<integration>);");
    println!("     the SMTP password comes from TRAILWATCH_SMTP_PASSWORD (<smtp_password_env>).");
    println!("     docs/aws-setup.md says how to set up the AWS side and the IAM policy it needs.");
    println!("  2. trailwatch check-config {}", conf.display());
    println!(
        "  3. trailwatch run -c {} --once      # one pass, then exit",
        conf.display()
    );
    println!(
        "  4. As a service: dist/trailwatch.service (systemd), with the configuration in /etc/trailwatch."
    );
    Ok(ExitCode::SUCCESS)
}
