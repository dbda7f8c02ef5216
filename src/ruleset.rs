//! Loading the ruleset for a command: the shipped default (compiled into
//! the binary) or a Wazuh-style directory, with load problems reported.

use std::sync::Arc;

use anyhow::{bail, Context};
use engine::{AlertLevels, LoadError, Ruleset, Severity, Sources};

use crate::cli::RulesetArgs;

// The shipped ruleset: `rules/`, `decoders/` and `lists/` of this
// repository, embedded at build time (build.rs).
include!(concat!(env!("OUT_DIR"), "/shipped.rs"));

/// Whether a shipped file belongs to trailwatch's detection pack (rather
/// than to the Wazuh-equivalent AWS rules).
pub fn is_pack_file(name: &str) -> bool {
    name.contains("trailwatch")
}

/// The default ruleset, `shipped`: the Wazuh-equivalent AWS rules and the
/// detection pack.
pub fn shipped_sources() -> Sources {
    builtin_sources(true)
}

/// `shipped-wazuh`: the Wazuh-equivalent AWS rules alone (what
/// wazuh-analysisd decides with Wazuh 4.14's AWS rules).
pub fn shipped_wazuh_sources() -> Sources {
    builtin_sources(false)
}

fn builtin_sources(pack: bool) -> Sources {
    let conv = |v: &[(&str, &str)]| {
        v.iter()
            .filter(|(n, _)| pack || !is_pack_file(n))
            .map(|(n, t)| (n.to_string(), t.as_bytes().to_vec()))
            .collect()
    };
    Sources {
        decoders: conv(SHIPPED_DECODERS),
        rules: conv(SHIPPED_RULES),
        lists: conv(SHIPPED_LISTS),
    }
}

/// The sources of a built-in ruleset name (`shipped`, `shipped-wazuh`).
pub fn builtin(name: &std::path::Path) -> Option<Sources> {
    match name.to_str()? {
        "shipped" => Some(shipped_sources()),
        "shipped-wazuh" => Some(shipped_wazuh_sources()),
        _ => None,
    }
}

/// Reads the sources the arguments name.
pub fn sources(args: &RulesetArgs) -> anyhow::Result<Sources> {
    match &args.ruleset {
        None => Ok(shipped_sources()),
        Some(dir) => match builtin(dir) {
            Some(src) => Ok(src),
            None => read_dir(dir),
        },
    }
}

/// Reads a Wazuh-style ruleset directory (rules/, decoders/, lists/),
/// leaving out what Wazuh's default ossec.conf leaves out.
pub fn read_dir(dir: &std::path::Path) -> anyhow::Result<Sources> {
    if !dir.is_dir() {
        bail!("ruleset directory {} does not exist", dir.display());
    }
    Sources::from_dir(dir, &engine::default_excludes())
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("reading ruleset {}", dir.display()))
}

/// Loads sources, printing problems to standard error. Fails with
/// `--strict` when a file did not load.
pub fn load(src: &Sources, args: &RulesetArgs) -> anyhow::Result<Arc<Ruleset>> {
    load_with(src, args, AlertLevels::default())
}

/// [`load`] with the alert levels of a configuration (flags still win).
pub fn load_with(
    src: &Sources,
    args: &RulesetArgs,
    levels: AlertLevels,
) -> anyhow::Result<Arc<Ruleset>> {
    let levels = AlertLevels {
        log_alert_level: args.log_alert_level.unwrap_or(levels.log_alert_level),
        email_alert_level: args.email_alert_level.unwrap_or(levels.email_alert_level),
    };
    let (rs, problems) = Ruleset::load(src, levels);
    report(&problems, args.warnings);
    let errors = problems
        .iter()
        .filter(|p| p.severity == Severity::Error)
        .count();
    if errors > 0 && args.strict {
        bail!("{errors} ruleset file(s) failed to load (see above)");
    }
    if rs.rules.list.is_empty() {
        bail!("no rule loaded");
    }
    Ok(Arc::new(rs))
}

/// The sources a configuration's `<ruleset>` names (flags win: with
/// `--ruleset`, that directory; without a `<ruleset>`, the shipped one).
pub fn sources_for(
    conf: Option<&crate::service::settings::RulesetSettings>,
    base: &std::path::Path,
    args: &RulesetArgs,
) -> anyhow::Result<Sources> {
    let Some(conf) = conf.filter(|_| args.ruleset.is_none()) else {
        return sources(args);
    };
    let mut src = Sources::default();
    let fail = |e: LoadError| anyhow::anyhow!("{e}");
    for d in &conf.decoder_dirs {
        if !d.is_dir() {
            // A Wazuh install's etc/decoders may be absent in a copy.
            eprintln!(
                "trailwatch: warning: <decoder_dir> {} does not exist; skipped",
                d.display()
            );
            continue;
        }
        src.add_xml_dir(d, &conf.decoder_exclude, true)
            .map_err(fail)?;
    }
    for f in &conf.decoder_files {
        src.add_file(f, true).map_err(fail)?;
    }
    for d in &conf.rule_dirs {
        if !d.is_dir() {
            eprintln!(
                "trailwatch: warning: <rule_dir> {} does not exist; skipped",
                d.display()
            );
            continue;
        }
        src.add_xml_dir(d, &conf.rule_exclude, false)
            .map_err(fail)?;
    }
    for f in &conf.rule_files {
        src.add_file(f, false).map_err(fail)?;
    }
    for (name, path) in &conf.lists {
        let text = match std::fs::read(path) {
            Ok(t) => t,
            // A Wazuh install copies ruleset/lists/X to etc/lists/X; a
            // ruleset tree without the copy has only the former.
            Err(e) => match name
                .strip_prefix("etc/lists/")
                .map(|rest| base.join("ruleset/lists").join(rest))
                .filter(|p| p.is_file())
            {
                Some(p) => std::fs::read(&p).with_context(|| format!("<list> {}", p.display()))?,
                None => return Err(e).with_context(|| format!("<list> {}", path.display())),
            },
        };
        src.lists.push((name.clone(), text));
    }
    Ok(src)
}

/// Prints load problems: errors always, warnings on request.
pub fn report(problems: &[LoadError], warnings: bool) {
    for p in problems {
        if p.severity == Severity::Error || warnings {
            eprintln!("trailwatch: {p}");
        }
    }
}

/// The machine's host name (analysisd's `manager.name`).
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr() as *mut libc::c_char, buf.len() - 1) };
    if rc != 0 {
        return "localhost".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}
