//! The pages (maud templates): one self-contained file each, styles and
//! charts inline, no request to anywhere; the figures also as JSON in a
//! `<script type="application/json" id="report-data">` element.

use maud::{html, Markup, PreEscaped, DOCTYPE};
use serde_json::Value;

use super::svg;
use super::{band, utc, Summary, Top, BANDS};

const CSS: &str = r#"
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:1.5em auto;max-width:1000px;color:#222;padding:0 1em}
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ddd;padding-bottom:.2em}
.meta{color:#555;margin:.2em 0}.meta b{color:#222}
table{border-collapse:collapse;width:100%;font-size:.9em}th,td{text-align:left;padding:.2em .5em;border-bottom:1px solid #eee;vertical-align:top}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
td.t{white-space:nowrap}td:last-child{overflow-wrap:anywhere}
.grid{display:grid;grid-template-columns:1fr 1fr;gap:1em}
.chart text.axis{font-size:11px;fill:#444}
.legend span{display:inline-block;margin-right:1em;font-size:.85em}.legend i{display:inline-block;width:.9em;height:.9em;margin-right:.3em;vertical-align:-.1em}
.lvl{display:inline-block;min-width:1.6em;text-align:center;border-radius:3px;color:#fff;font-weight:600}
pre{background:#f6f8fa;padding:.6em;overflow:auto;font-size:.8em;max-height:30em}
details summary{cursor:pointer}
form.filters input,form.filters select{margin-right:.6em}
textarea{width:100%;font-family:monospace}
.approx{color:#a00;font-size:.85em}
"#;

/// The JSON data section (safe inside `<script>`).
fn data_section(data: &Value) -> Markup {
    let text = data.to_string().replace("</", "<\\/");
    html! {
        script type="application/json" id="report-data" { (PreEscaped(text)) }
    }
}

fn layout(title: &str, head_extra: Markup, body: Markup) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                style { (PreEscaped(CSS)) }
                (head_extra)
            }
            body { (body) }
        }
    }
    .into_string()
}

fn level_badge(level: u32) -> Markup {
    html! {
        span.lvl style=(format!("background:{}", BANDS[band(level)].3)) { (level) }
    }
}

fn legend() -> Markup {
    html! {
        p.legend {
            @for (lo, hi, name, colour) in BANDS.iter().rev() {
                span { i style=(format!("background:{colour}")) {} (lo) "–" (hi) ": " (name) }
            }
        }
    }
}

fn top_table(title: &str, t: &Top) -> Markup {
    let max = t.rows.first().map(|r| r.1).unwrap_or(1).max(1);
    html! {
        div.top {
            h3 { (title) }
            @if t.rows.is_empty() {
                p.meta { "none" }
            } @else {
                table {
                    tr { th { "value" } th.n { "alerts" } th {} }
                    @for (v, n) in &t.rows {
                        tr {
                            td { code { (v) } }
                            td.n { (n) }
                            td style="width:30%" {
                                div style=(format!("background:#4e79a7;height:.7em;width:{}%", n * 100 / max)) {}
                            }
                        }
                    }
                }
                @if !t.exact {
                    p.approx { "more distinct values than tracked: counts are upper bounds" }
                }
            }
        }
    }
}

fn pretty(alert: &[u8]) -> String {
    serde_json::from_slice::<Value>(alert)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| String::from_utf8_lossy(alert).into_owned())
}

/// The body shared by the replay report and the live page.
fn summary_body(s: &Summary) -> Markup {
    html! {
        p.meta {
            @match s.context.kind {
                "live" => { "Source: " }
                _ => { "Inputs: " }
            }
            @for (i, p) in s.context.inputs.iter().enumerate() {
                @if i > 0 { ", " }
                code { (p) }
            }
            @if !s.context.ruleset.is_empty() {
                " · ruleset " code { (s.context.ruleset) }
            }
        }
        p.meta {
            "Time range (UTC): "
            b { (s.first.map(utc).unwrap_or_else(|| "-".into())) }
            " – "
            b { (s.last.map(utc).unwrap_or_else(|| "-".into())) }
        }
        p.meta #totals {
            @if let Some(e) = s.events {
                b #events { (e) } " events, "
            }
            b #alerts { (s.alerts) } " alerts, "
            b { (s.rules.len()) } " rules"
            @if s.unreadable > 0 {
                ", " b { (s.unreadable) } " lines not read as alerts"
            }
        }
        h2 { "Alerts over time (" (svg::duration(s.bucket_seconds)) " buckets, by level band)" }
        (legend())
        (PreEscaped(svg::timeline(&s.buckets, s.bucket_seconds)))
        h2 { "Alerts by rule" }
        (PreEscaped(svg::rules(&s.rules)))
        table #rules {
            tr { th { "rule" } th.n { "level" } th.n { "alerts" } th { "description (from one of its alerts)" } }
            @for r in &s.rules {
                tr data-rule=(r.id) {
                    td { (r.id) } td.n { (level_badge(r.level)) } td.n { (r.count) } td { (r.description) }
                }
            }
        }
        h2 { "Who, from where" }
        div.grid {
            (top_table("Identities (userIdentity.arn)", &s.identities))
            (top_table("Source addresses", &s.sources))
            (top_table("Regions", &s.regions))
            (top_table("Accounts", &s.accounts))
        }
        h2 { "Highest-level alerts" }
        p.meta { "The " (s.highest.len()) " highest-level alerts (at most " (super::HIGHEST_KEPT) "), highest first; open one for its JSON." }
        table #highest {
            tr { th { "time (UTC)" } th.n { "level" } th { "rule" } th { "alert" } }
            @for k in &s.highest {
                tr {
                    td.t { (utc(k.secs)) }
                    td.n { (level_badge(k.level)) }
                    td { (k.rule) }
                    td {
                        details {
                            summary {
                                (k.description)
                                @if let Some(i) = &k.identity { " · " code { (i) } }
                                @if let Some(src) = &k.source { " · " code { (src) } }
                            }
                            pre { (pretty(&k.alert)) }
                        }
                    }
                }
            }
        }
    }
}

/// `replay --report`.
pub fn replay_page(s: &Summary) -> String {
    layout(
        "trailwatch replay report",
        html! {},
        html! {
            h1 { "trailwatch replay report" }
            (summary_body(s))
            (data_section(&s.to_json()))
        },
    )
}

/// What the live page adds: its filters, refresh and the logtest form.
pub struct Live<'a> {
    pub refresh_secs: u64,
    pub level: Option<u32>,
    pub rule: Option<u32>,
    pub identity: Option<&'a str>,
    /// Alerts read from the files (before the filters).
    pub scanned: u64,
    /// The window was cut short at this many alerts.
    pub capped: bool,
}

const LIVE_JS: &str = r#"
(function(){
  var form=document.getElementById('logtest');
  var out=document.getElementById('logtest-out');
  var busy=false;
  form.addEventListener('submit',function(e){
    e.preventDefault();busy=true;
    var body={event:form.event.value,location:form.location.value||'stdin'};
    if(form.dataset.token){body.token=form.dataset.token;}
    fetch('/logtest',{method:'POST',headers:{'Content-Type':'application/json'},body:JSON.stringify(body),credentials:'same-origin'})
      .then(function(r){return r.text();})
      .then(function(t){
        try{var v=JSON.parse(t);if(v.data&&v.data.token){form.dataset.token=v.data.token;}out.textContent=JSON.stringify(v,null,2);}
        catch(x){out.textContent=t;}
      })
      .catch(function(x){out.textContent=String(x);});
  });
  form.event.addEventListener('input',function(){busy=true;});
  var given=new URLSearchParams(location.search);
  if(given.get('event')){
    form.event.value=given.get('event');
    if(given.get('location')){form.location.value=given.get('location');}
    form.requestSubmit();
  }
  var secs=parseInt(document.body.dataset.refresh,10);
  if(secs>0){setInterval(function(){if(!busy){location.reload();}},secs*1000);}
})();
"#;

/// The service's page at `/`.
pub fn live_page(s: &Summary, live: &Live) -> String {
    let body = html! {
        h1 { "trailwatch: the last 24 hours" }
        p.meta {
            "Read from alerts.json (" (live.scanned) " alerts in the window"
            @if live.capped { ", the most recent only" }
            "); this page reloads every " (live.refresh_secs) " s."
        }
        form.filters method="get" action="/" {
            label { "level ≥ " input type="number" name="level" min="0" max="16" size="3" value=[live.level]; }
            label { "rule " input type="number" name="rule" size="7" value=[live.rule]; }
            label { "identity " input type="text" name="identity" size="50" value=[live.identity]; }
            button type="submit" { "filter" }
            " " a href="/" { "clear" }
        }
        (summary_body(s))
        h2 { "Logtest" }
        form #logtest {
            label { "event" textarea name="event" rows="4" placeholder="an event as the collector delivers it (JSON)" {} }
            label { "location " input type="text" name="location" value="Wazuh-AWS"; }
            " " button type="submit" { "test" }
        }
        pre #logtest-out {}
        (data_section(&s.to_json()))
        script { (PreEscaped(LIVE_JS)) }
    };
    // The refresh interval rides on the body element for the script.
    layout("trailwatch alerts", html! {}, body).replacen(
        "<body>",
        &format!("<body data-refresh=\"{}\">", live.refresh_secs),
        1,
    )
}

/// One line per event or alert, as the text report writes them.
pub struct Lines<'a> {
    pub event: &'a dyn Fn(&str) -> String,
    pub rule: &'a dyn Fn(&Option<Vec<u8>>) -> String,
}

/// `diff --report`, from the JSON report of `diff --format json`.
pub fn diff_page(d: &Value, inputs: &[String], lines: &Lines) -> String {
    let rules = d["rules"].as_array().cloned().unwrap_or_default();
    let bars: Vec<(u32, u64, u64)> = rules
        .iter()
        .map(|r| {
            (
                r["rule"].as_u64().unwrap_or(0) as u32,
                r["old_count"].as_u64().unwrap_or(0),
                r["new_count"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    let level = |r: &Value| match (r["old_level"].as_u64(), r["new_level"].as_u64()) {
        (Some(o), Some(n)) if o != n => format!("{o} → {n}"),
        (Some(o), _) => o.to_string(),
        (None, Some(n)) => n.to_string(),
        _ => "-".into(),
    };
    let alert_of = |v: &Value| -> Option<Vec<u8>> {
        (!v.is_null()).then(|| serde_json::to_vec(v).unwrap_or_default())
    };
    let shifted: Vec<&Value> = rules
        .iter()
        .filter(|r| r["old_first_times"] != r["new_first_times"])
        .filter(|r| {
            r["old_first_times"]
                .as_array()
                .is_some_and(|a| !a.is_empty())
                || r["new_first_times"]
                    .as_array()
                    .is_some_and(|a| !a.is_empty())
        })
        .collect();
    let times = |v: &Value| -> String {
        let t: Vec<String> = v
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_i64).map(utc).collect())
            .unwrap_or_default();
        if t.is_empty() {
            "never".into()
        } else {
            t.join(", ")
        }
    };
    // A rule's description as one of its examples' alerts words it (fields
    // substituted), else as the rule writes it.
    let described = |r: &Value| -> String {
        ["only_new", "changed", "only_old"]
            .iter()
            .flat_map(|k| r["examples"][*k].as_array().into_iter().flatten())
            .flat_map(|e| [&e["new"], &e["old"]])
            .find(|a| a["rule"]["id"].as_str() == Some(&r["rule"].to_string()))
            .and_then(|a| a["rule"]["description"].as_str())
            .or(r["description"].as_str())
            .unwrap_or("")
            .to_string()
    };
    let s = &d["summary"];
    let body = html! {
        h1 { "trailwatch diff report" }
        p.meta {
            "Inputs: "
            @for (i, p) in inputs.iter().enumerate() { @if i > 0 { ", " } code { (p) } }
        }
        p.meta {
            b #events { (d["events"]) } " events in " b { (d["files"]) } " files. "
            "Old " code { (d["old"]["ruleset"].as_str().unwrap_or("")) } " (" (d["old"]["rules"]) " rules): "
            b #old-alerts { (d["old"]["alerts"]) } " alerts; new "
            code { (d["new"]["ruleset"].as_str().unwrap_or("")) } " (" (d["new"]["rules"]) " rules): "
            b #new-alerts { (d["new"]["alerts"]) } " alerts."
        }
        p.meta #verdict {
            b { (s["only_new"]) } " alerts only under new, "
            b { (s["only_old"]) } " only under old, "
            b { (s["changed"]) } " changed, in " b { (rules.len()) } " rules"
        }
        h2 { "Alerts per rule, old and new" }
        p.legend { span { i style="background:#9aa0a6" {} "old" } span { i style="background:#4e79a7" {} "new" } }
        (PreEscaped(svg::old_new(&bars)))
        table #rules {
            tr {
                th { "rule" } th.n { "level" } th.n { "old" } th.n { "new" } th.n { "only old" }
                th.n { "only new" } th.n { "changed" } th { "what changed" } th { "description (from an example)" }
            }
            @for r in &rules {
                tr data-rule=(r["rule"]) {
                    td { (r["rule"]) } td.n { (level(r)) } td.n { (r["old_count"]) } td.n { (r["new_count"]) }
                    td.n { (r["only_old"]) } td.n { (r["only_new"]) } td.n { (r["changed"]) }
                    td { (r["what_changed"].as_array().map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", ")).unwrap_or_default()) }
                    td { (described(r)) }
                }
            }
        }
        h2 { "Examples" }
        @for r in &rules {
            @for (kind, label) in [("only_new", "only under new"), ("only_old", "only under old"), ("changed", "changed")] {
                @for e in r["examples"][kind].as_array().into_iter().flatten() {
                    details.example {
                        summary { "rule " (r["rule"]) ", " (label) ": " ((lines.event)(&e["event"].to_string())) }
                        p { "old: " ((lines.rule)(&alert_of(&e["old"]))) }
                        p { "new: " ((lines.rule)(&alert_of(&e["new"]))) }
                        pre { (serde_json::to_string_pretty(e).unwrap_or_default()) }
                    }
                }
            }
        }
        @if !shifted.is_empty() {
            h2 { "Correlation rules firing at other times" }
            table #timing {
                tr { th { "rule" } th { "old, first firings (UTC)" } th { "new, first firings (UTC)" } }
                @for r in &shifted {
                    tr { td { (r["rule"]) } td { (times(&r["old_first_times"])) } td { (times(&r["new_first_times"])) } }
                }
            }
        }
        @if let Some(moved) = d["moved"].as_array().filter(|m| !m.is_empty()) {
            h2 { "Firing counts that moved" }
            table #moved {
                tr { th { "rule" } th.n { "old" } th.n { "new" } }
                @for m in moved { tr { td { (m["rule"]) } td.n { (m["old"]) } td.n { (m["new"]) } } }
            }
        }
        h2 { "Coverage: rules that never fired" }
        @let never = d["never_fired"].as_array().cloned().unwrap_or_default();
        p.meta { (never.len()) " rules of the files that did fire never fired on this trail." }
        table #never-fired {
            tr { th { "rule" } th { "description" } th { "fields no event carried" } }
            @for n in &never {
                tr {
                    td { (n["rule"]) } td { (n["description"].as_str().unwrap_or("")) }
                    td { (n["fields_never_seen"].as_array().map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", ")).unwrap_or_default()) }
                }
            }
        }
        @if let Some(p) = d["load_problems"].as_array().filter(|p| !p.is_empty()) {
            h2 { "Load problems of the new ruleset" }
            ul { @for x in p { li { code { (x.as_str().unwrap_or("")) } } } }
        }
        (data_section(d))
    };
    layout("trailwatch diff report", html! {}, body)
}
