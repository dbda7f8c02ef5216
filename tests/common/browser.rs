//! Headless Chromium (Debian's `chromium`, installed by tools/test): the
//! DOM after the page ran, a screenshot, and every URL the browser asked
//! for (from its network log).

use std::path::{Path, PathBuf};
use std::process::Command;

/// Debian's Chromium; tools/test installs it when missing.
pub fn chromium() -> PathBuf {
    let p = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    assert!(
        p.exists(),
        "{} is missing: tools/test installs it (apt-get install chromium), or set CHROMIUM",
        p.display()
    );
    p
}

/// What the browser made of a page.
pub struct Page {
    /// `--dump-dom`: the DOM after scripts ran.
    pub dom: String,
    /// The `--screenshot` PNG.
    pub png: Vec<u8>,
    /// URLs the browser requested, from its network log.
    pub requested: Vec<String>,
}

fn headless(profile: &Path) -> Command {
    let mut c = Command::new(chromium());
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        "--window-size=1100,1400",
        "--proxy-server=http://127.0.0.1:9",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    c
}

/// Loads `url` twice in a fresh profile: once for the DOM (with the
/// network log), once for a screenshot. Every request to another host goes
/// to a closed port on loopback (a proxy that is not there, and no name
/// resolution), so nothing leaves the machine whatever the page or the
/// browser's own updaters ask for.
pub fn open(url: &str) -> Page {
    let tmp = tempfile::tempdir().unwrap();
    let netlog = tmp.path().join("netlog.json");
    let out = headless(&tmp.path().join("profile-dom"))
        .arg(format!("--log-net-log={}", netlog.display()))
        // Scripts and their requests run before the DOM is taken.
        .arg("--virtual-time-budget=5000")
        .arg("--dump-dom")
        .arg(url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "chromium --dump-dom {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dom = String::from_utf8_lossy(&out.stdout).into_owned();
    let png_path = tmp.path().join("shot.png");
    let shot = headless(&tmp.path().join("profile-shot"))
        .arg(format!("--screenshot={}", png_path.display()))
        .arg(url)
        .output()
        .unwrap();
    assert!(
        shot.status.success(),
        "chromium --screenshot {url}: {}",
        String::from_utf8_lossy(&shot.stderr)
    );
    let png = std::fs::read(&png_path).unwrap();
    let log = std::fs::read_to_string(&netlog).unwrap_or_default();
    Page {
        dom,
        png,
        requested: urls_in(&log),
    }
}

/// The URLs the page asked for, from a network log: `URL_REQUEST_START_JOB`
/// events whose initiator is an origin (the browser's own background
/// requests, which the proxy below keeps on loopback, say "not an origin").
fn urls_in(log: &str) -> Vec<String> {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(log) else {
        return Vec::new();
    };
    let start_job = v["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"].as_u64();
    v["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["type"].as_u64() == start_job)
        .filter(|e| e["params"]["initiator"] != "not an origin")
        .filter_map(|e| e["params"]["url"].as_str().map(str::to_owned))
        .collect()
}

/// The host of an http(s) or ws(s) URL; `None` for other schemes.
pub fn host(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    if !["http", "https", "ws", "wss"].contains(&scheme) {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let hostport = authority.rsplit('@').next().unwrap_or("");
    Some(
        hostport
            .rsplit_once(':')
            .map_or(hostport, |(h, _)| h)
            .to_string(),
    )
}

/// Asserts no request left loopback.
pub fn assert_only_loopback(page: &Page) {
    let away: Vec<&String> = page
        .requested
        .iter()
        .filter(|u| host(u).is_some_and(|h| h != "127.0.0.1" && h != "localhost"))
        .collect();
    assert!(away.is_empty(), "requests to other hosts: {away:?}");
}

/// Asserts nothing in a page loads from another host: every `src`,
/// `href`, `action`, `url(...)` and `@import` is local (text that merely
/// contains a URL, such as an alert's JSON, loads nothing).
pub fn assert_no_remote_references(html: &str) {
    let lower = html.to_ascii_lowercase();
    for attr in [
        "src=", "href=", "action=", "srcset=", "url(", "@import", "poster=", "data=",
    ] {
        for (i, _) in lower.match_indices(attr) {
            let value: String = lower[i + attr.len()..]
                .trim_start_matches(['"', '\'', ' '])
                .chars()
                .take_while(|c| !c.is_whitespace() && !"\"')>".contains(*c))
                .collect();
            let remote = value.starts_with("//")
                || host(&value).is_some_and(|h| h != "127.0.0.1" && h != "localhost");
            assert!(!remote, "the page loads from another host: {attr}{value}");
        }
    }
}

/// Pixels of the screenshot that are not the page's background (white):
/// (share of such pixels, distinct colours).
pub fn ink(png: &[u8]) -> (f64, usize) {
    let decoder = png::Decoder::new(std::io::Cursor::new(png));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let bytes = &buf[..info.buffer_size()];
    let channels = info.color_type.samples();
    let mut colours = std::collections::HashSet::new();
    let mut inked = 0usize;
    let pixels = bytes.len() / channels;
    for px in bytes.chunks(channels) {
        let rgb = [px[0], px[1 % channels], px[2 % channels]];
        if rgb != [255, 255, 255] {
            inked += 1;
        }
        colours.insert(rgb);
    }
    (inked as f64 / pixels.max(1) as f64, colours.len())
}

/// The page's data section (`<script type="application/json"
/// id="report-data">`).
pub fn data_section(html: &str) -> serde_json::Value {
    let start = html
        .find("id=\"report-data\">")
        .expect("the page has a data section")
        + "id=\"report-data\">".len();
    let end = start + html[start..].find("</script>").unwrap();
    serde_json::from_str(&html[start..end]).unwrap()
}

/// The `data-NAME` attribute values of every `<g class="CLASS"`
/// element, in order (attributes as written by the report).
pub fn groups(dom: &str, class: &str, attr: &str) -> Vec<String> {
    let open = format!("<g class=\"{class}\"");
    dom.match_indices(&open)
        .map(|(i, _)| {
            let tag = &dom[i..i + dom[i..].find('>').unwrap()];
            let key = format!("data-{attr}=\"");
            let v = &tag[tag.find(&key).unwrap_or_else(|| panic!("{key} in {tag}")) + key.len()..];
            v[..v.find('"').unwrap()].to_string()
        })
        .collect()
}

/// A query parameter value, percent-encoded.
pub fn query_value(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
