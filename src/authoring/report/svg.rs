//! The report's charts as plain SVG (inline in the page, no script): one
//! `<g>` per time bucket or rule carrying its figures as `data-`
//! attributes, so a reader (or a test) finds the numbers in the DOM.

use std::fmt::Write as _;

use super::{band, utc, Bucket, RuleRow, BANDS};

/// Text for SVG and HTML content or attributes.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// A round number at least `n` (1, 2, 5 × 10^k).
fn nice(n: u64) -> u64 {
    let mut p = 1u64;
    loop {
        for m in [1, 2, 5] {
            if p * m >= n {
                return p * m;
            }
        }
        p *= 10;
    }
}

/// Alerts over time, stacked by level band.
pub fn timeline(buckets: &[Bucket], width_secs: i64) -> String {
    let (w, h, left, bottom, top) = (900.0, 240.0, 44.0, 28.0, 10.0);
    let plot_w = w - left - 10.0;
    let plot_h = h - bottom - top;
    let max = nice(buckets.iter().map(Bucket::total).max().unwrap_or(0).max(1));
    let n = buckets.len().max(1) as f64;
    let slot = plot_w / n;
    let bar = (slot * 0.8).max(1.0);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="chart timeline" viewBox="0 0 {w} {h}" width="100%" role="img" aria-label="alerts over time by level band">"#
    );
    // Grid: 0, half, max.
    for v in [0, max / 2, max] {
        let y = top + plot_h - plot_h * (v as f64) / (max as f64);
        let _ = write!(
            s,
            r##"<line x1="{left}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text class="axis" x="{}" y="{:.1}" text-anchor="end">{v}</text>"##,
            w - 10.0,
            left - 4.0,
            y + 4.0
        );
    }
    let every = (buckets.len() / 6).max(1);
    for (i, b) in buckets.iter().enumerate() {
        let x = left + slot * i as f64 + (slot - bar) / 2.0;
        let total = b.total();
        let _ = write!(
            s,
            r#"<g class="bucket" data-start="{}" data-seconds="{width_secs}" data-total="{total}"><title>{} (+{}): {total} alerts</title>"#,
            utc(b.start),
            utc(b.start),
            duration(width_secs)
        );
        let mut y = top + plot_h;
        for (bi, c) in b.counts.iter().enumerate() {
            if *c == 0 {
                continue;
            }
            let bh = plot_h * (*c as f64) / (max as f64);
            y -= bh;
            let _ = write!(
                s,
                r#"<rect class="band{bi}" x="{x:.1}" y="{y:.1}" width="{bar:.1}" height="{bh:.1}" fill="{}" data-levels="{}-{}" data-count="{c}"/>"#,
                BANDS[bi].3, BANDS[bi].0, BANDS[bi].1
            );
        }
        s.push_str("</g>");
        if i % every == 0 {
            let t = utc(b.start);
            let label = if width_secs >= 86400 {
                t[..10].to_string()
            } else {
                format!("{} {}", &t[5..10], &t[11..16])
            };
            let _ = write!(
                s,
                r#"<text class="axis" x="{:.1}" y="{}" text-anchor="middle">{label}</text>"#,
                // Kept inside the picture (a label is about 60 wide).
                (x + bar / 2.0).clamp(left + 30.0, w - 40.0),
                h - 8.0
            );
        }
    }
    s.push_str("</svg>");
    s
}

/// `1 h`, `15 min`, `1 d`...
pub fn duration(secs: i64) -> String {
    match secs {
        s if s % 86400 == 0 => format!("{} d", s / 86400),
        s if s % 3600 == 0 => format!("{} h", s / 3600),
        s if s % 60 == 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

/// Alerts by rule: one horizontal bar per rule, in the band's colour.
pub fn rules(rows: &[RuleRow]) -> String {
    let (w, row, left) = (900.0, 20.0, 70.0);
    let h = row * rows.len().max(1) as f64 + 6.0;
    let max = rows.iter().map(|r| r.count).max().unwrap_or(1).max(1) as f64;
    let plot_w = w - left - 60.0;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="chart rules" viewBox="0 0 {w} {h}" width="100%" role="img" aria-label="alerts by rule">"#
    );
    for (i, r) in rows.iter().enumerate() {
        let y = 3.0 + row * i as f64;
        let bw = (plot_w * r.count as f64 / max).max(1.0);
        let _ = write!(
            s,
            r#"<g class="rule" data-rule="{}" data-level="{}" data-count="{}"><title>{}: {}</title><text class="axis" x="{}" y="{:.1}" text-anchor="end">{}</text><rect x="{left}" y="{y:.1}" width="{bw:.1}" height="{:.1}" fill="{}"/><text class="axis" x="{:.1}" y="{:.1}">{}</text></g>"#,
            r.id,
            r.level,
            r.count,
            r.id,
            esc(&r.description),
            left - 6.0,
            y + row * 0.7,
            r.id,
            row - 5.0,
            BANDS[band(r.level)].3,
            left + bw + 4.0,
            y + row * 0.7,
            r.count
        );
    }
    s.push_str("</svg>");
    s
}

/// Old and new counts per rule (the diff): two bars per rule.
pub fn old_new(rows: &[(u32, u64, u64)]) -> String {
    let (w, row, left) = (900.0, 24.0, 70.0);
    let h = row * rows.len().max(1) as f64 + 6.0;
    let max = rows.iter().map(|r| r.1.max(r.2)).max().unwrap_or(1).max(1) as f64;
    let plot_w = w - left - 60.0;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="chart oldnew" viewBox="0 0 {w} {h}" width="100%" role="img" aria-label="alerts per rule, old and new ruleset">"#
    );
    for (i, (id, old, new)) in rows.iter().enumerate() {
        let y = 3.0 + row * i as f64;
        let bw = |n: u64| (plot_w * n as f64 / max).max(if n > 0 { 1.0 } else { 0.0 });
        let _ = write!(
            s,
            r##"<g class="rule" data-rule="{id}" data-old="{old}" data-new="{new}"><title>{id}: old {old}, new {new}</title><text class="axis" x="{}" y="{:.1}" text-anchor="end">{id}</text><rect class="old" x="{left}" y="{y:.1}" width="{:.1}" height="9" fill="#9aa0a6"/><rect class="new" x="{left}" y="{:.1}" width="{:.1}" height="9" fill="#4e79a7"/><text class="axis" x="{:.1}" y="{:.1}">{old} → {new}</text></g>"##,
            left - 6.0,
            y + 13.0,
            bw(*old),
            y + 10.0,
            bw(*new),
            left + bw(*old).max(bw(*new)) + 4.0,
            y + 13.0,
        );
    }
    s.push_str("</svg>");
    s
}
