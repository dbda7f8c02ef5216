//! `trailwatch queue list|retry|drop`: the email and webhook deliveries
//! waiting in `<state_dir>/outputs.db`, per channel, and the two ways to
//! settle what the service cannot send on its own: items set aside after a
//! refusal, and items of a channel the configuration no longer has (an
//! integration renamed, removed or pointed elsewhere).

use std::process::ExitCode;

use anyhow::bail;
use outputs::queue::{Depth, Outbox};
use outputs::route::{EMAIL_CHANNEL, EMAIL_NOW_CHANNEL};

use crate::cli::{QueueAction, QueueArgs};
use crate::service::settings;

pub fn run(a: QueueArgs) -> anyhow::Result<ExitCode> {
    let config = match &a.action {
        QueueAction::List(x) => &x.config,
        QueueAction::Retry(x) => &x.config.config,
        QueueAction::Drop(x) => &x.config.config,
    };
    let conf = settings::load(config)?;
    if !conf.state_dir.join("outputs.db").exists() {
        eprintln!(
            "trailwatch: {}: no delivery queue yet (nothing was queued with this configuration)",
            conf.state_dir.display()
        );
        return Ok(match a.action {
            QueueAction::List(_) => ExitCode::SUCCESS,
            _ => ExitCode::from(1),
        });
    }
    let outbox = Outbox::open(&conf.state_dir)?;
    let channels = crate::service::run::adopt_channels(&outbox, &conf)?;
    let depths = outbox.depths()?;
    match a.action {
        QueueAction::List(x) => list(&depths, &channels, x.channel.as_deref()),
        QueueAction::Retry(x) => retry(
            &outbox,
            &depths,
            &channels,
            x.config.channel.as_deref(),
            x.to.as_deref(),
        ),
        QueueAction::Drop(x) => {
            let Some(channel) = x.config.channel else {
                bail!("name the channel to drop (`trailwatch queue list` shows them)");
            };
            if !depths.iter().any(|(c, _)| *c == channel) {
                bail!(
                    "{channel}: no such channel in the queue (`trailwatch queue list` shows them)"
                );
            }
            let n = outbox.drop_channel(&channel)?;
            println!("{n} deliveries of {channel} dropped");
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn list(
    depths: &[(String, Depth)],
    channels: &[String],
    only: Option<&str>,
) -> anyhow::Result<ExitCode> {
    if let Some(c) = only {
        if !depths.iter().any(|(d, _)| d == c) {
            bail!("{c}: no such channel in the queue");
        }
    }
    println!(
        "{:<44} {:<10} {:>7} {:>9}  {:<28} last error",
        "channel", "state", "pending", "set-aside", "oldest"
    );
    for (c, d) in depths.iter().filter(|(c, _)| only.is_none_or(|o| o == c)) {
        let state = if channels.contains(c) {
            "configured"
        } else {
            "orphaned"
        };
        println!(
            "{:<44} {:<10} {:>7} {:>9}  {:<28} {}",
            c,
            state,
            d.pending,
            d.failed,
            engine::time::alert_timestamp(d.oldest, 0),
            outputs::webhook::escape_controls(d.last_error.as_deref().unwrap_or("-"))
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The kind of receiver a channel feeds (items move only between channels
/// of the same kind: their bodies are built for it).
fn kind(channel: &str) -> &str {
    if channel == EMAIL_CHANNEL || channel == EMAIL_NOW_CHANNEL {
        return "email";
    }
    let rest = channel.strip_prefix("hook:").unwrap_or(channel);
    // `hook:NAME@HOST#HASH`, or the older `hook:INDEX:NAME`.
    let name = match rest.split_once(':') {
        Some((i, n)) if i.chars().all(|c| c.is_ascii_digit()) => n,
        _ => rest.split('@').next().unwrap_or(rest),
    };
    match outputs::settings::IntegrationKind::from_name(name) {
        Some(outputs::settings::IntegrationKind::Custom) => "custom",
        _ => name,
    }
}

/// The destination hash of a `hook:NAME@HOST#HASH` channel.
fn destination(channel: &str) -> Option<&str> {
    channel.rsplit_once('#').map(|(_, h)| h)
}

fn retry(
    outbox: &Outbox,
    depths: &[(String, Depth)],
    channels: &[String],
    channel: Option<&str>,
    to: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let Some(channel) = channel else {
        if to.is_some() {
            bail!("--to needs the channel whose deliveries move");
        }
        // Every configured channel's set-aside items back in the queue.
        let mut n = 0;
        for (c, d) in depths {
            if channels.contains(c) && d.failed > 0 {
                n += outbox.requeue_channel(c)?;
            }
        }
        let orphans: Vec<&str> = depths
            .iter()
            .filter(|(c, _)| !channels.contains(c))
            .map(|(c, _)| c.as_str())
            .collect();
        println!("{n} set-aside deliveries queued again");
        if !orphans.is_empty() {
            eprintln!(
                "trailwatch: not configured, left as they are: {} (`queue retry CHANNEL --to NEW` or `queue drop CHANNEL`)",
                orphans.join(", ")
            );
        }
        return Ok(if n > 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        });
    };
    if !depths.iter().any(|(c, _)| c == channel) {
        bail!("{channel}: no such channel in the queue (`trailwatch queue list` shows them)");
    }
    if channels.iter().any(|c| c == channel) && to.is_none_or(|t| t == channel) {
        let n = outbox.requeue_channel(channel)?;
        println!("{n} set-aside deliveries of {channel} queued again");
        return Ok(if n > 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        });
    }
    // Somewhere else: the channel given, or the one configured channel of
    // the same kind and destination (an integration renamed).
    let target = match to {
        Some(t) => t.to_string(),
        None => {
            let same: Vec<&String> = channels
                .iter()
                .filter(|c| {
                    kind(c) == kind(channel)
                        && destination(c).is_some()
                        && destination(c) == destination(channel)
                })
                .collect();
            match same.as_slice() {
                [one] => one.to_string(),
                _ => bail!(
                    "{channel} is no longer configured: say where its deliveries go with --to (configured channels: {})",
                    channels.join(", ")
                ),
            }
        }
    };
    if !channels.contains(&target) {
        bail!(
            "--to {target}: not a channel of this configuration (configured: {})",
            channels.join(", ")
        );
    }
    if kind(&target) != kind(channel) {
        bail!(
            "--to {target}: its deliveries are built for {}, those of {channel} for {}",
            kind(&target),
            kind(channel)
        );
    }
    let n = outbox.move_channel(channel, &target)?;
    println!("{n} deliveries of {channel} moved to {target}; the service sends them");
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_destinations_of_channels() {
        assert_eq!(kind("hook:custom-siem@127.0.0.1:80#0011aabb"), "custom");
        assert_eq!(kind("hook:slack@hooks.slack.com#0011aabb"), "slack");
        assert_eq!(kind("hook:2:pagerduty"), "pagerduty");
        assert_eq!(kind("hook:0:custom"), "custom");
        assert_eq!(kind("email!"), "email");
        assert_eq!(
            destination("hook:slack@hooks.slack.com#0011aabb"),
            Some("0011aabb")
        );
        assert_eq!(destination("hook:0:slack"), None);
    }
}
