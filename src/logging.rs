//! Log lines in the style of Wazuh's `ossec.log`:
//! `2026/11/23 15:04:05 trailwatch: INFO: message`, on standard error.

use std::fmt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

struct OssecLine;

impl<S, N> FormatEvent<S, N> for OssecLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let (y, mo, d, h, mi, s, ..) = engine::time::local(crate::clock::now().0);
        let meta = event.metadata();
        let module = if meta.target().starts_with("collector") {
            "trailwatch:aws-s3"
        } else if meta.target().starts_with("outputs") {
            "trailwatch:outputs"
        } else {
            "trailwatch"
        };
        let level = match *meta.level() {
            Level::ERROR => "ERROR",
            Level::WARN => "WARNING",
            Level::INFO => "INFO",
            Level::DEBUG => "DEBUG",
            Level::TRACE => "DEBUG2",
        };
        write!(
            w,
            "{y:04}/{mo:02}/{d:02} {h:02}:{mi:02}:{s:02} {module}: {level}: "
        )?;
        ctx.field_format().format_fields(w.by_ref(), event)?;
        writeln!(w)
    }
}

/// Installs the logger: INFO and above (DEBUG with `verbose`) of
/// trailwatch's own crates.
pub fn init(verbose: bool) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let level = if verbose { Level::DEBUG } else { Level::INFO };
    let ours = tracing_subscriber::filter::Targets::new()
        .with_target("collector", level)
        .with_target("outputs", level)
        .with_target("trailwatch", level);
    let _ = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .event_format(OssecLine)
                .with_writer(std::io::stderr),
        )
        .with(ours)
        .try_init();
}
