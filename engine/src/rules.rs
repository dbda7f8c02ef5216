//! Rules: the `<group><rule>` XML files, their options, and the rule tree
//! (Wazuh's `Rules_OP_ReadRules`, `OS_AddChild`, `OS_AddRuleInfo`,
//! `OS_MarkID`, `OS_MarkGroup`).
//!
//! Rules with an id below 10 are the top-level category templates. Every
//! other rule becomes a child of the rules named by `if_sid` (or of every
//! rule whose level / group matches `if_level` / `if_group`, or of the
//! template of its category). Siblings are ordered by descending level, and
//! level 0 sorts first while loading (it is stored as 99 then), so
//! exclusion rules are tried before the others. Only rules loaded earlier
//! can be parents.

use std::collections::HashMap;

use crate::decoder::Decoders;
use crate::event::Static;
use crate::expr::ip::IpList;
use crate::expr::osmatch::{word_match, OsMatch};
use crate::expr::osregex::OsRegex;
use crate::expr::{Expr, ExprType};
use crate::lists::{CdbList, Lookup};
use crate::time::{DayTime, WeekDays};
use crate::xml::Node;
use crate::{Category, LoadError, Severity};

/// `same_*` / `different_*` bits (Wazuh's `FIELD_*`).
pub const FIELD_SRCIP: u32 = 1 << 0;
pub const FIELD_ID: u32 = 1 << 1;
pub const FIELD_DSTIP: u32 = 1 << 2;
pub const FIELD_SRCPORT: u32 = 1 << 3;
pub const FIELD_DSTPORT: u32 = 1 << 4;
pub const FIELD_SRCUSER: u32 = 1 << 5;
pub const FIELD_USER: u32 = 1 << 6;
pub const FIELD_PROTOCOL: u32 = 1 << 7;
pub const FIELD_ACTION: u32 = 1 << 8;
pub const FIELD_URL: u32 = 1 << 9;
pub const FIELD_DATA: u32 = 1 << 10;
pub const FIELD_EXTRADATA: u32 = 1 << 11;
pub const FIELD_STATUS: u32 = 1 << 12;
pub const FIELD_SYSTEMNAME: u32 = 1 << 13;
pub const FIELD_SRCGEOIP: u32 = 1 << 14;
pub const FIELD_DSTGEOIP: u32 = 1 << 15;
pub const FIELD_LOCATION: u32 = 1 << 16;
pub const N_FIELDS: u32 = 17;
pub const ALL_FIELDS: u32 = (1 << N_FIELDS) - 1;

/// Alert option flags (Wazuh's `alert_opts`).
pub const DO_FTS: u32 = 0x0001;
pub const DO_MAILALERT: u32 = 0x0002;
pub const DO_LOGALERT: u32 = 0x0004;
pub const NO_AR: u32 = 0x0008;
pub const NO_ALERT: u32 = 0x0010;
pub const DO_OVERWRITE: u32 = 0x0020;
pub const DO_PACKETINFO: u32 = 0x0040;
pub const DO_EXTRAINFO: u32 = 0x0100;
pub const SAME_EXTRAINFO: u32 = 0x0200;
pub const NO_FULL_LOG: u32 = 0x0400;
pub const NO_COUNTER: u32 = 0x1000;

/// A compiled option test with its `negate` flag.
#[derive(Debug, Clone)]
pub struct Cond {
    pub expr: Expr,
    pub negate: bool,
}

impl Cond {
    /// Wazuh: `if (match == negate) fail`.
    #[inline]
    pub fn test(&self, subject: &[u8]) -> bool {
        self.expr.is_match(subject) != self.negate
    }
}

/// Which event value a `<list>` looks up.
#[derive(Debug, Clone)]
pub enum ListField {
    Static(Static),
    /// `field="user"`: srcuser first, then dstuser.
    User,
    Hostname,
    ProgramName,
    Dynamic(Vec<u8>),
}

/// A `<list>` option.
#[derive(Debug, Clone)]
pub struct ListCond {
    pub field: ListField,
    pub lookup: Lookup,
    pub list: usize,
    pub check: Option<OsMatch>,
}

/// How a context rule searches past events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Search {
    None,
    /// `if_matched_sid`: the list fed by the watched rule (`None` when the
    /// watched rule does not exist: the search then always fails).
    Sids(Option<usize>),
    /// `if_matched_group`: this rule's own list.
    Groups(usize),
    /// Any other context rule: the global list of recent events.
    Events,
}

/// Built-in C predicates (`<compiled_rule>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compiled {
    IsSimpleHttpRequest,
    IsValidCrawler,
    CheckIdSize,
    CompSrcuserDstuser,
    CompMswinTargetuserCalleruserDiff,
}

/// One rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub id: u32,
    /// Level while loading (x100, level 0 as 9900); the real level after.
    pub level: i32,
    pub maxsize: i32,
    /// Stored frequency: the attribute minus 2 (0 without one).
    pub frequency: i32,
    pub timeframe: i32,
    pub ignore_time: i32,
    pub alert_opts: u32,
    pub category: Category,
    pub decoded_as: u32,
    pub group: Vec<u8>,
    pub description: Vec<u8>,
    pub info: Option<Vec<u8>>,
    pub cve: Option<Vec<u8>>,

    pub program_name: Option<Cond>,
    pub id_opt: Option<Cond>,
    pub system_name: Option<Cond>,
    pub protocol: Option<Cond>,
    pub match_: Option<Cond>,
    pub regex: Option<Cond>,
    pub action: Option<Cond>,
    pub url: Option<Cond>,
    pub location: Option<Cond>,
    pub fields: Vec<(Vec<u8>, Cond)>,
    pub srcip: Option<Cond>,
    pub dstip: Option<Cond>,
    pub srcport: Option<Cond>,
    pub dstport: Option<Cond>,
    pub compiled: Option<Compiled>,
    pub user: Option<Cond>,
    pub srcgeoip: Option<Cond>,
    pub dstgeoip: Option<Cond>,
    pub day_time: Option<DayTime>,
    pub week_day: Option<WeekDays>,
    pub data: Option<Cond>,
    pub extra_data: Option<Cond>,
    pub hostname: Option<Cond>,
    pub status: Option<Cond>,
    pub lists: Vec<ListCond>,

    pub context: bool,
    pub check_diff: bool,
    pub global_frequency: bool,
    pub if_matched_sid: u32,
    pub if_matched_group: Option<OsMatch>,
    pub if_matched_regex: Option<OsRegex>,
    pub same_field: u32,
    pub different_field: u32,
    pub same_fields: Vec<Vec<u8>>,
    pub not_same_fields: Vec<Vec<u8>>,
    pub search: Search,
    /// The list this rule's alerts feed (when an `if_matched_sid` rule
    /// watches it).
    pub sid_prev_matched: Option<usize>,
    /// The lists this rule's alerts feed (`if_matched_group` rules), with
    /// Wazuh's duplicates.
    pub group_prev_matched: Vec<usize>,

    pub mitre_ids: Vec<Vec<u8>>,
    pub mitre_pairs: Vec<(Vec<u8>, Vec<u8>)>,
    pub ignore_fields: Vec<Vec<u8>>,
    pub ckignore_fields: Vec<Vec<u8>>,

    if_sid: Option<Vec<u8>>,
    if_group: Option<Vec<u8>>,
    if_level: Option<Vec<u8>>,
    pub file: String,
    pub line: u32,
}

impl Rule {
    /// Every expression test of the rule (fields included), in no
    /// particular order.
    pub fn conds(&self) -> impl Iterator<Item = &Cond> {
        [
            &self.program_name,
            &self.id_opt,
            &self.system_name,
            &self.protocol,
            &self.match_,
            &self.regex,
            &self.action,
            &self.url,
            &self.location,
            &self.srcip,
            &self.dstip,
            &self.srcport,
            &self.dstport,
            &self.user,
            &self.srcgeoip,
            &self.dstgeoip,
            &self.data,
            &self.extra_data,
            &self.hostname,
            &self.status,
        ]
        .into_iter()
        .flatten()
        .chain(self.fields.iter().map(|(_, c)| c))
    }

    pub fn noalert(&self) -> bool {
        self.alert_opts & NO_ALERT != 0
    }

    /// The `frequency` value shown in alerts (the attribute; 2 without one).
    pub fn frequency_attr(&self) -> i32 {
        self.frequency + 2
    }
}

#[derive(Debug, Clone, Default)]
pub struct RNode {
    pub rule: usize,
    pub children: Vec<usize>,
}

/// The children of a node that can match an event of a given decoder:
/// those without `<decoded_as>` and those decoded as that decoder, in
/// sibling order. Built for nodes with many children; skipping the others
/// changes nothing but the `rules_debug` trace.
#[derive(Debug, Clone, Default)]
pub struct ChildIndex {
    pub generic: Vec<usize>,
    pub by_decoder: HashMap<u32, Vec<usize>>,
    /// Set when many children test one dynamic field for a few whole
    /// values (`aws.eventName` under the detection pack's containers).
    pub by_field: Option<FieldIndex>,
}

/// The children of a node sorted by the value of one dynamic field: a
/// child whose `<field>` on it accepts only a few whole values is worth
/// trying only for events carrying one of them. Lists keep sibling order.
#[derive(Debug, Clone, Default)]
pub struct FieldIndex {
    /// The field's name, lowered (lookup ignores case, as Wazuh's).
    pub field: Vec<u8>,
    /// Lowered value -> the children that may match an event with it.
    pub by_value: HashMap<Vec<u8>, Vec<usize>>,
    /// The children that do not test the field for whole values.
    pub other: Vec<usize>,
}

/// A field a child tests for whole values, and those values (both
/// lowered).
type WholeValues = (Vec<u8>, Vec<Vec<u8>>);

/// Longest field value the index looks up (longer ones try every child).
const FIELD_INDEX_MAX_VALUE: usize = 128;

/// Levels that decide the `mail` and log flags (ossec.conf `<alerts>`).
#[derive(Debug, Clone, Copy)]
pub struct AlertLevels {
    pub log_alert_level: i32,
    pub email_alert_level: i32,
}

impl Default for AlertLevels {
    /// The values of the shipped ossec.conf (`3` and `12`).
    fn default() -> Self {
        AlertLevels {
            log_alert_level: 3,
            email_alert_level: 12,
        }
    }
}

/// The loaded rules and their tree.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    pub list: Vec<Rule>,
    pub nodes: Vec<RNode>,
    pub top: Vec<usize>,
    /// Rule ids present in the tree -> rule index.
    pub by_id: HashMap<u32, usize>,
    /// Number of correlation lists (sid and group) created.
    pub n_lists: usize,
    /// Highest stored frequency (Wazuh's `_max_freq`, used by eviction).
    pub max_freq: i32,
    /// Per node, the children filtered by decoder (see [`ChildIndex`]).
    pub child_index: Vec<Option<ChildIndex>>,
    /// Some rule searches every recent event (`Search::Events`), so every
    /// stored event must keep its data.
    pub has_event_search: bool,
}

/// Names that may not be used in `<field name=...>`.
const STATIC_NAMES: &[&str] = &[
    "srcip",
    "dstip",
    "srcgeoip",
    "dstgeoip",
    "srcport",
    "dstport",
    "user",
    "srcuser",
    "dstuser",
    "url",
    "id",
    "data",
    "extra_data",
    "status",
    "protocol",
    "system_name",
    "action",
];

/// A rule parsed from XML, not yet in the tree.
struct Parsed {
    rule: Rule,
    overwrite: bool,
    if_matched_group_text: Option<Vec<u8>>,
}

struct Ctx<'a> {
    file: &'a str,
    errors: &'a mut Vec<LoadError>,
}

impl Ctx<'_> {
    fn error(&mut self, line: u32, element: &str, message: String) -> LoadError {
        LoadError {
            file: self.file.to_string(),
            line,
            element: element.to_string(),
            message,
            severity: Severity::Error,
        }
    }

    fn warn(&mut self, line: u32, element: &str, message: String) {
        self.errors.push(LoadError {
            file: self.file.to_string(),
            line,
            element: element.to_string(),
            message,
            severity: Severity::Warning,
        });
    }
}

/// Per-option temporary text (options may repeat and concatenate).
#[derive(Default)]
struct Tmp {
    text: HashMap<&'static str, (Vec<u8>, bool, Option<ExprType>)>,
}

impl Tmp {
    fn append(
        &mut self,
        key: &'static str,
        content: &[u8],
        negate: bool,
        ty: Option<ExprType>,
    ) -> Result<(), String> {
        let e = self
            .text
            .entry(key)
            .or_insert_with(|| (Vec::new(), false, None));
        if content.len() > 2048 || e.0.len() > 2048 {
            return Err(format!("<{key}> longer than 2048 bytes"));
        }
        e.0.extend_from_slice(content);
        e.1 = negate;
        e.2 = ty;
        Ok(())
    }
}

impl Rules {
    /// Loads one rules file. Returns false when the file failed (nothing of
    /// it is kept).
    pub fn load_file(
        &mut self,
        file: &str,
        text: &[u8],
        decoders: &Decoders,
        lists: &[CdbList],
        levels: AlertLevels,
        errors: &mut Vec<LoadError>,
    ) -> bool {
        let mut ctx = Ctx { file, errors };
        let roots = match crate::xml::parse(text) {
            Ok(r) => r,
            Err(e) => {
                let err = ctx.error(e.line, "", e.message);
                ctx.errors.push(err);
                return false;
            }
        };
        // Parse every rule of the file first: a file with an error loads
        // nothing. Attaching to the tree only produces warnings.
        let mut parsed = Vec::new();
        let result = (|| -> Result<(), LoadError> {
            for g in &roots {
                if !g.is("group") {
                    return Err(ctx.error(
                        g.line,
                        &g.name_str(),
                        format!(
                            "invalid root element '{}': only <group> is allowed",
                            g.name_str()
                        ),
                    ));
                }
                if g.attrs.len() != 1 || !g.attrs[0].0.eq_ignore_ascii_case(b"name") {
                    return Err(ctx.error(
                        g.line,
                        "group",
                        "a <group> takes exactly one attribute, name".into(),
                    ));
                }
            }
            for g in &roots {
                if g.children.is_empty() {
                    return Err(ctx.error(g.line, "group", "group without any rule".into()));
                }
                let gname = g.attrs[0].1.clone();
                for r in &g.children {
                    if !r.is("rule") {
                        return Err(ctx.error(
                            r.line,
                            &r.name_str(),
                            format!("'{}' is not a valid element inside <group>", r.name_str()),
                        ));
                    }
                    if let Some(p) = self.load_rule(&mut ctx, r, &gname, decoders, lists, levels)? {
                        parsed.push(p);
                    }
                }
            }
            Ok(())
        })();
        if let Err(e) = result {
            ctx.errors.push(e);
            return false;
        }
        for p in parsed {
            self.attach(&mut ctx, p);
        }
        true
    }

    fn load_rule(
        &mut self,
        ctx: &mut Ctx,
        node: &Node,
        group_name: &[u8],
        decoders: &Decoders,
        lists: &[CdbList],
        levels: AlertLevels,
    ) -> Result<Option<Parsed>, LoadError> {
        let line = node.line;
        if node.attrs.is_empty() {
            return Err(ctx.error(
                line,
                "rule",
                "a rule needs at least an id and a level".into(),
            ));
        }
        let mut id: i64 = -1;
        let mut level: i32 = -1;
        let mut maxsize = 0;
        let mut timeframe = 360;
        let mut frequency = 0;
        let mut accuracy = 1;
        let mut noalert = false;
        let mut ignore_time = 0;
        let mut overwrite = false;
        let num = |v: &[u8]| !v.is_empty() && v.iter().all(|c| c.is_ascii_digit());
        let scan = |v: &[u8], width: usize| -> i32 {
            let digits = &v[..v.len().min(width)];
            std::str::from_utf8(digits)
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0)
        };
        for (k, v) in &node.attrs {
            let ks = String::from_utf8_lossy(k).to_ascii_lowercase();
            let vs = String::from_utf8_lossy(v).into_owned();
            match ks.as_str() {
                "id" => {
                    if num(v) && v.len() <= 6 {
                        id = scan(v, 6) as i64;
                    } else {
                        return Err(ctx.error(
                            line,
                            "rule",
                            format!(
                                "invalid rule id '{vs}': must be an integer of at most 6 digits"
                            ),
                        ));
                    }
                }
                "level" => {
                    if num(v) {
                        let l: i64 = vs.parse().unwrap_or(i64::MAX);
                        if !(0..=16).contains(&l) {
                            return Err(ctx.error(
                                line,
                                "rule",
                                format!("invalid level {vs}: must be between 0 and 16"),
                            ));
                        }
                        level = l as i32;
                    }
                }
                "maxsize" => {
                    if !num(v) {
                        return Err(ctx.error(line, "rule", format!("invalid maxsize '{vs}'")));
                    }
                    maxsize = scan(v, 4);
                }
                "timeframe" => {
                    if !num(v) {
                        return Err(ctx.error(line, "rule", format!("invalid timeframe '{vs}'")));
                    }
                    timeframe = scan(v, 5);
                }
                "frequency" => {
                    if !num(v) {
                        return Err(ctx.error(line, "rule", format!("invalid frequency '{vs}'")));
                    }
                    let f: i64 = vs.parse().unwrap_or(i64::MAX);
                    if !(2..=9999).contains(&f) {
                        return Err(ctx.error(
                            line,
                            "rule",
                            format!("invalid frequency {vs}: must be between 2 and 9999"),
                        ));
                    }
                    frequency = f as i32 - 2;
                }
                "accuracy" => {
                    if !num(v) {
                        return Err(ctx.error(line, "rule", format!("invalid accuracy '{vs}'")));
                    }
                    accuracy = scan(v, 4);
                }
                "ignore" => {
                    if !num(v) {
                        return Err(ctx.error(line, "rule", format!("invalid ignore '{vs}'")));
                    }
                    ignore_time = scan(v, 6);
                }
                "noalert" => match v.as_slice() {
                    b"0" => noalert = false,
                    b"1" => noalert = true,
                    _ => ctx.warn(
                        line,
                        "rule",
                        format!("invalid value '{vs}' for noalert (ignored)"),
                    ),
                },
                "overwrite" => match v.as_slice() {
                    b"yes" => overwrite = true,
                    b"no" => overwrite = false,
                    _ => {
                        return Err(ctx.error(
                            line,
                            "rule",
                            format!("invalid overwrite '{vs}': yes or no"),
                        ))
                    }
                },
                other => {
                    return Err(ctx.error(
                        line,
                        "rule",
                        format!("invalid rule attribute '{other}'"),
                    ))
                }
            }
        }
        if id == -1 || level == -1 {
            return Err(ctx.error(line, "rule", "no rule id or level specified".into()));
        }
        let id = id as u32;
        let mut alert_opts = 0;
        if noalert {
            alert_opts |= NO_ALERT;
        }
        if levels.email_alert_level <= level {
            alert_opts |= DO_MAILALERT;
        }
        if levels.log_alert_level <= level {
            alert_opts |= DO_LOGALERT;
        }
        let mut internal = if level == 0 { 99 } else { level };
        if accuracy != 0 {
            internal *= 100;
        }
        if maxsize > 0 {
            alert_opts |= DO_EXTRAINFO;
        }
        let mut rule = Rule {
            id,
            level: internal,
            maxsize,
            frequency,
            timeframe,
            ignore_time,
            alert_opts,
            category: Category::Syslog,
            decoded_as: 0,
            group: group_name.to_vec(),
            description: Vec::new(),
            info: None,
            cve: None,
            program_name: None,
            id_opt: None,
            system_name: None,
            protocol: None,
            match_: None,
            regex: None,
            action: None,
            url: None,
            location: None,
            fields: Vec::new(),
            srcip: None,
            dstip: None,
            srcport: None,
            dstport: None,
            compiled: None,
            user: None,
            srcgeoip: None,
            dstgeoip: None,
            day_time: None,
            week_day: None,
            data: None,
            extra_data: None,
            hostname: None,
            status: None,
            lists: Vec::new(),
            context: false,
            check_diff: false,
            global_frequency: false,
            if_matched_sid: 0,
            if_matched_group: None,
            if_matched_regex: None,
            same_field: 0,
            different_field: 0,
            same_fields: Vec::new(),
            not_same_fields: Vec::new(),
            search: Search::None,
            sid_prev_matched: None,
            group_prev_matched: Vec::new(),
            mitre_ids: Vec::new(),
            mitre_pairs: Vec::new(),
            ignore_fields: Vec::new(),
            ckignore_fields: Vec::new(),
            if_sid: None,
            if_group: None,
            if_level: None,
            file: ctx.file.to_string(),
            line,
        };
        let mut description: Option<Vec<u8>> = None;
        let mut tmp = Tmp::default();
        let mut skip = false;
        let mut if_matched_group_text: Option<Vec<u8>> = None;
        let mut if_matched_regex_text: Option<Vec<u8>> = None;
        let mut mitre_new_format = false;
        let mut mitre_deprecated = false;
        if node.children.is_empty() {
            return Err(ctx.error(line, "rule", format!("rule {id} has no options")));
        }
        for opt in &node.children {
            let el = opt.name.as_slice();
            let en = opt.name_str();
            let oline = opt.line;
            let c = opt.content.as_slice();
            let negate = check_negate(ctx, opt, id);
            let ty = |default: ExprType, ctx: &mut Ctx| -> ExprType {
                match opt.attr("type") {
                    None => default,
                    Some(t) => match ExprType::parse(t) {
                        Some(t) => t,
                        None => {
                            ctx.warn(
                                oline,
                                &en,
                                format!(
                                    "rule {id}: invalid type '{}' (default used)",
                                    String::from_utf8_lossy(t)
                                ),
                            );
                            default
                        }
                    },
                }
            };
            let lower = el.to_ascii_lowercase();
            let lname = String::from_utf8_lossy(&lower).into_owned();
            macro_rules! text_opt {
                ($key:literal, $default:expr, $flag:expr) => {{
                    let t = ty($default, ctx);
                    tmp.append($key, c, negate, Some(t))
                        .map_err(|m| ctx.error(oline, &en, format!("rule {id}: {m}")))?;
                    rule.alert_opts |= $flag;
                }};
            }
            match lname.as_str() {
                "regex" => text_opt!("regex", ExprType::OsRegex, 0),
                "match" => text_opt!("match", ExprType::OsMatch, 0),
                "decoded_as" => {
                    rule.decoded_as = decoders.id_of(c).ok_or_else(|| {
                        ctx.error(
                            oline,
                            &en,
                            format!(
                                "rule {id}: unknown decoder '{}' in <decoded_as>",
                                String::from_utf8_lossy(c)
                            ),
                        )
                    })?;
                }
                "cve" => append_opt(&mut rule.cve, c),
                "info" => {
                    if let Some((k, v)) = opt.attrs.first() {
                        if !k.eq_ignore_ascii_case(b"type")
                            || !matches!(v.as_slice(), b"text" | b"link" | b"cve" | b"osvdb")
                        {
                            ctx.warn(
                                oline,
                                &en,
                                format!(
                                    "rule {id}: invalid <info> attribute {}=\"{}\"",
                                    String::from_utf8_lossy(k),
                                    String::from_utf8_lossy(v)
                                ),
                            );
                        }
                    }
                    append_opt(&mut rule.info, c);
                }
                "time" => {
                    rule.day_time = Some(DayTime::parse(c).ok_or_else(|| {
                        ctx.error(
                            oline,
                            &en,
                            format!("rule {id}: invalid <time> '{}'", String::from_utf8_lossy(c)),
                        )
                    })?);
                    rule.alert_opts |= DO_EXTRAINFO;
                }
                "weekday" => {
                    rule.week_day = Some(WeekDays::parse(c).ok_or_else(|| {
                        ctx.error(
                            oline,
                            &en,
                            format!(
                                "rule {id}: invalid <weekday> '{}'",
                                String::from_utf8_lossy(c)
                            ),
                        )
                    })?);
                    rule.alert_opts |= DO_EXTRAINFO;
                }
                "group" => {
                    rule.group.extend(c.iter().copied().filter(|&b| b != b'\n'));
                }
                "description" => {
                    let mut piece = c.to_vec();
                    if let Some(p) = piece.iter().position(|&b| b == b'\n') {
                        piece[p] = b' ';
                    }
                    let d = description.get_or_insert_with(Vec::new);
                    if piece.len() > 2048 || d.len() > 2048 {
                        return Err(ctx.error(
                            oline,
                            &en,
                            format!("rule {id}: <description> longer than 2048 bytes"),
                        ));
                    }
                    d.extend_from_slice(&piece);
                }
                "srcip" | "dstip" => {
                    let slot = if lname == "srcip" {
                        &mut rule.srcip
                    } else {
                        &mut rule.dstip
                    };
                    let list = match slot.take() {
                        Some(Cond {
                            expr: Expr::Ip(l), ..
                        }) => l,
                        _ => IpList::default(),
                    };
                    let mut list = list;
                    list.add(c)
                        .map_err(|m| ctx.error(oline, &en, format!("rule {id}: {m}")))?;
                    *slot = Some(Cond {
                        expr: Expr::Ip(list),
                        negate,
                    });
                    rule.alert_opts |= DO_PACKETINFO;
                }
                "user" => text_opt!("user", ExprType::OsMatch, DO_EXTRAINFO),
                "srcgeoip" => text_opt!("srcgeoip", ExprType::OsMatch, DO_EXTRAINFO),
                "dstgeoip" => text_opt!("dstgeoip", ExprType::OsMatch, DO_EXTRAINFO),
                "id" => text_opt!("id", ExprType::OsMatch, 0),
                "srcport" => text_opt!("srcport", ExprType::OsMatch, DO_PACKETINFO),
                "dstport" => text_opt!("dstport", ExprType::OsMatch, DO_PACKETINFO),
                "status" => text_opt!("status", ExprType::OsMatch, DO_EXTRAINFO),
                "hostname" => text_opt!("hostname", ExprType::OsMatch, DO_EXTRAINFO),
                "data" => text_opt!("data", ExprType::OsMatch, DO_EXTRAINFO),
                "extra_data" => text_opt!("extra_data", ExprType::OsMatch, DO_EXTRAINFO),
                "program_name" => text_opt!("program_name", ExprType::OsMatch, 0),
                "action" => text_opt!("action", ExprType::String, 0),
                "system_name" => text_opt!("system_name", ExprType::OsMatch, 0),
                "protocol" => text_opt!("protocol", ExprType::OsMatch, 0),
                "location" => text_opt!("location", ExprType::OsMatch, 0),
                "url" => text_opt!("url", ExprType::OsMatch, 0),
                "field" => {
                    if rule.fields.len() >= crate::decoder::MAX_FIELDS {
                        return Err(ctx.error(
                            oline,
                            &en,
                            format!("rule {id} has too many <field> options"),
                        ));
                    }
                    let Some(name) = opt.attr("name") else {
                        return Err(ctx.error(
                            oline,
                            &en,
                            format!("rule {id}: <field> needs a name attribute"),
                        ));
                    };
                    if STATIC_NAMES
                        .iter()
                        .any(|s| s.as_bytes().eq_ignore_ascii_case(name))
                    {
                        return Err(ctx.error(
                            oline,
                            &en,
                            format!(
                                "rule {id}: field '{}' is a static field; use its own option",
                                String::from_utf8_lossy(name)
                            ),
                        ));
                    }
                    let t = ty(ExprType::OsRegex, ctx);
                    let expr = Expr::compile(t, c, false).map_err(|m| {
                        ctx.error(
                            oline,
                            &en,
                            format!(
                                "rule {id}: bad expression for field '{}': {m}",
                                String::from_utf8_lossy(name)
                            ),
                        )
                    })?;
                    rule.fields.push((name.to_vec(), Cond { expr, negate }));
                }
                "list" => {
                    if opt.attrs.is_empty() {
                        return Err(ctx.error(
                            oline,
                            &en,
                            format!("rule {id}: <list> needs a field attribute"),
                        ));
                    }
                    let mut lookup = Lookup::MatchKey;
                    let mut field: Option<ListField> = None;
                    let mut check: Option<OsMatch> = None;
                    for (k, v) in &opt.attrs {
                        if k.eq_ignore_ascii_case(b"lookup") {
                            lookup = Lookup::parse(v).ok_or_else(|| {
                                ctx.error(
                                    oline,
                                    &en,
                                    format!(
                                        "rule {id}: invalid list lookup '{}'",
                                        String::from_utf8_lossy(v)
                                    ),
                                )
                            })?;
                        } else if k.eq_ignore_ascii_case(b"field") {
                            field = Some(list_field(v));
                        } else if k.eq_ignore_ascii_case(b"check_value") {
                            check =
                                Some(OsMatch::new(v).map_err(|m| {
                                    ctx.error(oline, &en, format!("rule {id}: {m}"))
                                })?);
                        } else {
                            return Err(ctx.error(
                                oline,
                                &en,
                                format!(
                                    "rule {id}: invalid list attribute '{}'",
                                    String::from_utf8_lossy(k)
                                ),
                            ));
                        }
                    }
                    let Some(field) = field else {
                        return Err(ctx.error(
                            oline,
                            &en,
                            format!("rule {id}: <list> needs a field attribute"),
                        ));
                    };
                    match lists
                        .iter()
                        .position(|l| l.name.as_bytes() == c || cdb_name(&l.name).as_bytes() == c)
                    {
                        Some(list) => rule.lists.push(ListCond {
                            field,
                            lookup,
                            list,
                            check,
                        }),
                        None => {
                            ctx.warn(
                                oline,
                                &en,
                                format!(
                                    "list '{}' is not loaded; rule {id} is skipped",
                                    String::from_utf8_lossy(c)
                                ),
                            );
                            skip = true;
                            break;
                        }
                    }
                }
                "compiled_rule" => {
                    rule.compiled = Some(match c {
                        b"is_simple_http_request" => Compiled::IsSimpleHttpRequest,
                        b"is_valid_crawler" => Compiled::IsValidCrawler,
                        b"check_id_size" => Compiled::CheckIdSize,
                        b"comp_srcuser_dstuser" => Compiled::CompSrcuserDstuser,
                        b"comp_mswin_targetuser_calleruser_diff" => {
                            Compiled::CompMswinTargetuserCalleruserDiff
                        }
                        other => {
                            return Err(ctx.error(
                                oline,
                                &en,
                                format!(
                                    "rule {id}: compiled rule '{}' not found",
                                    String::from_utf8_lossy(other)
                                ),
                            ))
                        }
                    });
                    rule.alert_opts |= DO_EXTRAINFO;
                }
                "category" => {
                    rule.category = match c {
                        b"firewall" => Category::Firewall,
                        b"ids" => Category::Ids,
                        b"syslog" => Category::Syslog,
                        b"web-log" => Category::WebLog,
                        b"squid" => Category::Squid,
                        b"windows" => Category::Windows,
                        b"ossec" => Category::Ossec,
                        other => {
                            return Err(ctx.error(
                                oline,
                                &en,
                                format!(
                                    "rule {id}: invalid category '{}'",
                                    String::from_utf8_lossy(other)
                                ),
                            ))
                        }
                    };
                }
                "if_sid" => append_opt(&mut rule.if_sid, c),
                "if_level" => {
                    if !num(c) {
                        ctx.warn(
                            oline,
                            &en,
                            format!(
                                "invalid if_level '{}' in rule {id}; rule skipped",
                                String::from_utf8_lossy(c)
                            ),
                        );
                        skip = true;
                        break;
                    }
                    append_opt(&mut rule.if_level, c);
                }
                "if_group" => append_opt(&mut rule.if_group, c),
                "if_matched_regex" => {
                    rule.context = true;
                    append_opt(&mut if_matched_regex_text, c);
                }
                "if_matched_group" => {
                    rule.context = true;
                    append_opt(&mut if_matched_group_text, c);
                }
                "if_matched_sid" => {
                    rule.context = true;
                    if !num(c) {
                        ctx.warn(
                            oline,
                            &en,
                            format!(
                                "invalid if_matched_sid '{}' in rule {id}; rule skipped",
                                String::from_utf8_lossy(c)
                            ),
                        );
                        skip = true;
                        break;
                    }
                    rule.if_matched_sid = std::str::from_utf8(c)
                        .ok()
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(0);
                }
                "check_diff" => {
                    rule.context = true;
                    rule.check_diff = true;
                    rule.alert_opts |= DO_EXTRAINFO;
                }
                "if_fts" => rule.alert_opts |= DO_FTS,
                "global_frequency" => rule.global_frequency = true,
                "same_field" => rule.same_fields.push(c.to_vec()),
                "not_same_field" | "different_field" => rule.not_same_fields.push(c.to_vec()),
                "same_agent" | "not_same_agent" => {
                    ctx.warn(
                        oline,
                        &en,
                        format!("<{lname}> is deprecated and has no effect"),
                    );
                }
                "options" => match c {
                    b"alert_by_email" => rule.alert_opts |= DO_MAILALERT,
                    b"no_email_alert" => {
                        if rule.alert_opts & DO_MAILALERT != 0 {
                            rule.alert_opts &= 0xfff - DO_MAILALERT;
                        }
                    }
                    b"log_alert" => rule.alert_opts |= DO_LOGALERT,
                    b"no_log" => {
                        if rule.alert_opts & DO_LOGALERT != 0 {
                            rule.alert_opts &= 0xfff - DO_LOGALERT;
                        }
                    }
                    b"no_ar" => rule.alert_opts |= NO_AR,
                    b"no_full_log" => rule.alert_opts |= NO_FULL_LOG,
                    b"no_counter" => rule.alert_opts |= NO_COUNTER,
                    other => {
                        return Err(ctx.error(
                            oline,
                            &en,
                            format!(
                                "rule {id}: invalid option '{}'",
                                String::from_utf8_lossy(other)
                            ),
                        ))
                    }
                },
                "ignore" | "check_if_ignored" => {
                    let mut words = Vec::new();
                    for raw in c.split(|&b| b == b',') {
                        let w = crate::util::first_word(raw);
                        if w.is_empty() {
                            return Err(ctx.error(
                                oline,
                                &en,
                                format!(
                                    "rule {id}: wrong <{lname}> option '{}'",
                                    String::from_utf8_lossy(c)
                                ),
                            ));
                        }
                        words.push(w.to_vec());
                    }
                    if lname == "ignore" {
                        rule.ignore_fields = words;
                    } else {
                        rule.ckignore_fields = words;
                    }
                }
                "mitre" => {
                    self.load_mitre(
                        ctx,
                        opt,
                        &mut rule,
                        &mut mitre_new_format,
                        &mut mitre_deprecated,
                    )?;
                }
                _ => {
                    let sf = same_diff_bits(el);
                    match sf {
                        Some((true, bit, extra)) => {
                            rule.same_field |= bit;
                            if extra {
                                rule.alert_opts |= SAME_EXTRAINFO;
                            }
                        }
                        Some((false, bit, _)) => {
                            rule.different_field |= bit;
                            rule.alert_opts |= SAME_EXTRAINFO;
                        }
                        None => {
                            return Err(ctx.error(
                                oline,
                                &en,
                                format!("invalid option '{en}' for rule {id}"),
                            ));
                        }
                    }
                }
            }
        }
        if let Some(s) = &rule.if_sid {
            let valid = !s.is_empty()
                && s.iter().enumerate().all(|(i, &b)| {
                    b.is_ascii_digit() || b == b',' || b == b' ' || (b == b'\n' && i == s.len() - 1)
                });
            if !valid {
                ctx.warn(
                    line,
                    "if_sid",
                    format!(
                        "invalid if_sid '{}' in rule {id}; rule skipped",
                        String::from_utf8_lossy(s)
                    ),
                );
                skip = true;
            }
        }
        if skip {
            return Ok(None);
        }
        let Some(description) = description else {
            return Err(ctx.error(line, "rule", format!("rule {id} has no <description>")));
        };
        rule.description = description;
        if !rule.same_fields.is_empty() {
            rule.same_field |= 1 << 17;
        }
        if !rule.not_same_fields.is_empty() {
            rule.different_field |= 1 << 17;
        }
        if (rule.check_diff
            || rule.global_frequency
            || rule.same_field != 0
            || rule.different_field != 0
            || rule.frequency != 0)
            && !rule.context
        {
            return Err(ctx.error(
                line,
                "rule",
                format!("rule {id}: frequency/same/different options need an if_matched_* option"),
            ));
        }
        // Compile the text options in Wazuh's order.
        let compile =
            |tmp: &Tmp, key: &'static str, ctx: &mut Ctx| -> Result<Option<Cond>, LoadError> {
                match tmp.text.get(key) {
                    None => Ok(None),
                    Some((text, negate, ty)) => {
                        let t = ty.unwrap_or(ExprType::OsMatch);
                        Expr::compile(t, text, false)
                            .map(|expr| {
                                Some(Cond {
                                    expr,
                                    negate: *negate,
                                })
                            })
                            .map_err(|m| {
                                ctx.error(
                                    line,
                                    key,
                                    format!(
                                        "rule {id}: bad <{key}> '{}': {m}",
                                        String::from_utf8_lossy(text)
                                    ),
                                )
                            })
                    }
                }
            };
        rule.regex = compile(&tmp, "regex", ctx)?;
        rule.match_ = compile(&tmp, "match", ctx)?;
        rule.id_opt = compile(&tmp, "id", ctx)?;
        rule.srcport = compile(&tmp, "srcport", ctx)?;
        rule.dstport = compile(&tmp, "dstport", ctx)?;
        rule.status = compile(&tmp, "status", ctx)?;
        rule.hostname = compile(&tmp, "hostname", ctx)?;
        rule.data = compile(&tmp, "data", ctx)?;
        rule.extra_data = compile(&tmp, "extra_data", ctx)?;
        rule.program_name = compile(&tmp, "program_name", ctx)?;
        rule.user = compile(&tmp, "user", ctx)?;
        rule.srcgeoip = compile(&tmp, "srcgeoip", ctx)?;
        rule.dstgeoip = compile(&tmp, "dstgeoip", ctx)?;
        rule.url = compile(&tmp, "url", ctx)?;
        rule.location = compile(&tmp, "location", ctx)?;
        rule.action = compile(&tmp, "action", ctx)?;
        if let Some(g) = &if_matched_group_text {
            rule.if_matched_group =
                Some(OsMatch::new(g).map_err(|m| ctx.error(line, "if_matched_group", m))?);
        }
        if let Some(r) = &if_matched_regex_text {
            rule.if_matched_regex = Some(OsRegex::new(r, false).map_err(|m| {
                ctx.error(
                    line,
                    "if_matched_regex",
                    format!("rule {id}: bad if_matched_regex: {m}"),
                )
            })?);
        }
        rule.protocol = compile(&tmp, "protocol", ctx)?;
        rule.system_name = compile(&tmp, "system_name", ctx)?;
        Ok(Some(Parsed {
            rule,
            overwrite,
            if_matched_group_text,
        }))
    }

    fn load_mitre(
        &mut self,
        ctx: &mut Ctx,
        opt: &Node,
        rule: &mut Rule,
        new_format: &mut bool,
        deprecated: &mut bool,
    ) -> Result<(), LoadError> {
        let id = rule.id;
        if opt.children.is_empty() {
            ctx.warn(opt.line, "mitre", format!("empty <mitre> in rule {id}"));
            return Ok(());
        }
        let (mut has_id, mut has_tactic, mut has_technique) = (false, false, false);
        let (mut n_tactic, mut n_technique) = (0, 0);
        let mut failure = false;
        for m in &opt.children {
            if m.is("id") {
                if m.content.is_empty() {
                    ctx.warn(
                        m.line,
                        "id",
                        format!("empty MITRE technique id in rule {id}"),
                    );
                    failure = true;
                } else {
                    has_id = true;
                }
            } else if m.is("tacticID") {
                if m.content.is_empty() {
                    ctx.warn(
                        m.line,
                        "tacticID",
                        format!("empty MITRE tactic id in rule {id}"),
                    );
                    failure = true;
                } else {
                    has_tactic = true;
                    n_tactic += 1;
                }
            } else if m.is("techniqueID") {
                if m.content.is_empty() {
                    ctx.warn(
                        m.line,
                        "techniqueID",
                        format!("empty MITRE technique id in rule {id}"),
                    );
                    failure = true;
                } else {
                    has_technique = true;
                    n_technique += 1;
                }
            } else {
                ctx.warn(
                    m.line,
                    &m.name_str(),
                    format!(
                        "invalid <mitre> option '{}' in rule {id}; block discarded",
                        m.name_str()
                    ),
                );
                failure = true;
            }
        }
        if !failure {
            if has_id {
                if has_tactic || has_technique {
                    ctx.warn(opt.line, "mitre", format!("rule {id} mixes old and new MITRE formats in one block; block discarded"));
                    failure = true;
                } else if *new_format {
                    ctx.warn(
                        opt.line,
                        "mitre",
                        format!("rule {id} mixes old and new MITRE formats; old ids discarded"),
                    );
                    rule.mitre_ids.clear();
                    failure = true;
                } else {
                    *deprecated = true;
                }
            } else if has_tactic && has_technique {
                if n_tactic > 1 || n_technique > 1 {
                    ctx.warn(opt.line, "mitre", format!("rule {id}: one tacticID and one techniqueID per <mitre> block; block discarded"));
                    failure = true;
                } else {
                    *new_format = true;
                    if *deprecated {
                        rule.mitre_ids.clear();
                        *deprecated = false;
                    }
                }
            } else if has_technique {
                ctx.warn(
                    opt.line,
                    "mitre",
                    format!("rule {id}: MITRE tacticID missing"),
                );
                failure = true;
            } else if has_tactic {
                ctx.warn(
                    opt.line,
                    "mitre",
                    format!("rule {id}: MITRE techniqueID missing"),
                );
                failure = true;
            }
        }
        if !failure {
            let mut tactic = None;
            let mut technique = None;
            for m in &opt.children {
                if m.is("id") {
                    if !rule.mitre_ids.contains(&m.content) {
                        rule.mitre_ids.push(m.content.clone());
                    }
                } else if m.is("tacticID") {
                    tactic = Some(m.content.clone());
                } else if m.is("techniqueID") {
                    technique = Some(m.content.clone());
                }
            }
            if let (Some(ta), Some(te)) = (tactic, technique) {
                if !rule.mitre_pairs.iter().any(|(a, b)| *a == ta && *b == te) {
                    rule.mitre_pairs.push((ta, te));
                }
            }
        }
        Ok(())
    }

    /// Puts a parsed rule into the tree (or overwrites an existing one) and
    /// sets up its correlation lists.
    fn attach(&mut self, ctx: &mut Ctx, p: Parsed) {
        let Parsed {
            mut rule,
            mut overwrite,
            if_matched_group_text,
        } = p;
        let id = rule.id;
        let line = rule.line;
        if self.by_id.contains_key(&id) {
            if !overwrite {
                ctx.warn(
                    line,
                    "rule",
                    format!("rule id {id} is duplicated; only the first definition is used"),
                );
                return;
            }
        } else if overwrite {
            ctx.warn(
                line,
                "rule",
                format!(
                    "rule {id} does not exist and cannot be overwritten; it is added as a new rule"
                ),
            );
            overwrite = false;
        }
        if overwrite {
            rule.alert_opts |= DO_OVERWRITE;
        } else {
            if let Some(g) = if_matched_group_text {
                if rule.if_sid.is_none() && rule.if_group.is_none() {
                    rule.if_group = Some(g);
                }
            }
            if rule.if_matched_sid != 0 && rule.if_sid.is_none() && rule.if_group.is_none() {
                rule.if_sid = Some(rule.if_matched_sid.to_string().into_bytes());
            }
        }
        if rule.frequency > self.max_freq {
            self.max_freq = rule.frequency;
        }
        if id < 10 {
            let idx = self.push_rule(rule);
            let n = self.push_node(idx);
            let top = std::mem::take(&mut self.top);
            self.top = self.insert_sorted(top, n);
            self.by_id.entry(id).or_insert(idx);
            self.setup_search(idx);
            return;
        }
        if overwrite {
            if let Some(&existing) = self.by_id.get(&id) {
                self.overwrite(ctx, existing, rule);
                return;
            }
        }
        let idx = self.push_rule(rule);
        if !self.add_child(ctx, idx, line) {
            self.list.pop();
            return;
        }
        self.list[idx].if_group = None;
        self.by_id.entry(id).or_insert(idx);
        self.setup_search(idx);
    }

    fn push_rule(&mut self, rule: Rule) -> usize {
        self.list.push(rule);
        self.list.len() - 1
    }

    fn push_node(&mut self, rule: usize) -> usize {
        self.nodes.push(RNode {
            rule,
            children: Vec::new(),
        });
        self.nodes.len() - 1
    }

    /// `_OS_AddRule`: insert before the first sibling with a lower level.
    fn insert_sorted(&self, mut list: Vec<usize>, node: usize) -> Vec<usize> {
        let lvl = self.list[self.nodes[node].rule].level;
        let pos = list
            .iter()
            .position(|&n| lvl > self.list[self.nodes[n].rule].level)
            .unwrap_or(list.len());
        list.insert(pos, node);
        list
    }

    fn add_as_child_of(&mut self, parent_node: usize, rule: usize) {
        let n = self.push_node(rule);
        let kids = std::mem::take(&mut self.nodes[parent_node].children);
        self.nodes[parent_node].children = self.insert_sorted(kids, n);
    }

    /// `_AddtoRule` over a sibling list (`None` = the top level).
    fn add_to_rule(
        &mut self,
        sid: u32,
        level: i32,
        group: Option<&[u8]>,
        list: Option<usize>,
        rule: usize,
    ) -> bool {
        let mut r_code = false;
        let len = match list {
            None => self.top.len(),
            Some(p) => self.nodes[p].children.len(),
        };
        let mut i = 0;
        while i < len {
            let node = match list {
                None => self.top[i],
                Some(p) => self.nodes[p].children[i],
            };
            let nrule = self.nodes[node].rule;
            if sid != 0 {
                if self.list[nrule].id == sid {
                    self.list[rule].category = self.list[nrule].category;
                    self.add_as_child_of(node, rule);
                    return true;
                }
            } else if let Some(g) = group {
                if word_match(g, &self.list[nrule].group)
                    && self.list[nrule].id != self.list[rule].id
                {
                    self.add_as_child_of(node, rule);
                    r_code = true;
                }
            } else if level != 0 {
                if self.list[nrule].level >= level && self.list[nrule].id != self.list[rule].id {
                    self.add_as_child_of(node, rule);
                    r_code = true;
                }
            } else if self.list[rule].category != self.list[nrule].category {
                i += 1;
                continue;
            } else {
                self.list[rule].category = self.list[nrule].category;
                self.add_as_child_of(node, rule);
                return true;
            }
            if !self.nodes[node].children.is_empty()
                && self.add_to_rule(sid, level, group, Some(node), rule)
            {
                r_code = true;
            }
            // The list may have grown if the rule was inserted into it
            // (it never is: insertion goes into a child list).
            i += 1;
        }
        r_code
    }

    /// `OS_AddChild`.
    fn add_child(&mut self, ctx: &mut Ctx, rule: usize, line: u32) -> bool {
        let id = self.list[rule].id;
        if let Some(if_sid) = self.list[rule].if_sid.clone() {
            let implied = self.list[rule].if_matched_sid != 0;
            let mut added = false;
            let mut id_found = false;
            let mut p = 0;
            loop {
                let c = if_sid.get(p).copied().unwrap_or(0);
                if c == b',' || c == b' ' {
                    id_found = false;
                } else if c.is_ascii_digit() || c == 0 {
                    if !id_found {
                        id_found = true;
                        let digits: Vec<u8> = if_sid[p.min(if_sid.len())..]
                            .iter()
                            .take_while(|b| b.is_ascii_digit())
                            .copied()
                            .collect();
                        let sid: u32 = std::str::from_utf8(&digits)
                            .ok()
                            .and_then(|s| s.parse().ok())
                            .unwrap_or(0);
                        if !self.add_to_rule(sid, 0, None, None, rule) {
                            if implied {
                                ctx.warn(
                                    line,
                                    "if_matched_sid",
                                    format!(
                                        "rule {id}: watched rule {sid} not found; rule skipped"
                                    ),
                                );
                                return false;
                            }
                            ctx.warn(
                                line,
                                "if_sid",
                                format!("rule {id}: parent rule {sid} not found"),
                            );
                        } else {
                            added = true;
                        }
                    }
                } else {
                    ctx.warn(line, "if_sid", format!("rule {id}: invalid if_sid"));
                    return added;
                }
                if c == 0 {
                    break;
                }
                p += 1;
            }
            if !added {
                ctx.warn(
                    line,
                    "if_sid",
                    format!("rule {id}: none of the if_sid parents exist; rule skipped"),
                );
                return false;
            }
            return true;
        }
        if let Some(if_level) = self.list[rule].if_level.clone() {
            let l: i32 = std::str::from_utf8(&if_level)
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            if l == 0 {
                ctx.warn(
                    line,
                    "if_level",
                    format!("rule {id}: invalid if_level; rule skipped"),
                );
                return false;
            }
            if !self.add_to_rule(0, l * 100, None, None, rule) {
                ctx.warn(
                    line,
                    "if_level",
                    format!("rule {id}: no rule with level {l} or above; rule skipped"),
                );
                return false;
            }
            return true;
        }
        if let Some(g) = self.list[rule].if_group.clone() {
            if !self.add_to_rule(0, 0, Some(&g), None, rule) {
                ctx.warn(
                    line,
                    "if_group",
                    format!(
                        "rule {id}: no rule in group '{}'; rule skipped",
                        String::from_utf8_lossy(&g)
                    ),
                );
                return false;
            }
            return true;
        }
        if !self.add_to_rule(0, 0, None, None, rule) {
            ctx.warn(
                line,
                "rule",
                format!("rule {id}: no top-level rule for its category; rule skipped"),
            );
            return false;
        }
        true
    }

    /// Event-search wiring at the end of a rule (`OS_MarkID`, `OS_MarkGroup`).
    fn setup_search(&mut self, idx: usize) {
        let r = &self.list[idx];
        if r.alert_opts & DO_OVERWRITE != 0 {
            return;
        }
        if r.if_matched_sid != 0 {
            let watched = r.if_matched_sid;
            let mut list = None;
            let all: Vec<usize> = self.preorder();
            for n in all {
                let ri = self.nodes[n].rule;
                if self.list[ri].id == watched {
                    if self.list[ri].sid_prev_matched.is_none() {
                        self.list[ri].sid_prev_matched = Some(self.n_lists);
                        self.n_lists += 1;
                    }
                    list = self.list[ri].sid_prev_matched;
                }
            }
            self.list[idx].search = Search::Sids(list);
        } else if r.if_matched_group.is_some() {
            let list = self.n_lists;
            self.n_lists += 1;
            self.list[idx].search = Search::Groups(list);
            let pat = self.list[idx].if_matched_group.clone().expect("checked");
            for n in self.preorder() {
                let ri = self.nodes[n].rule;
                if pat.is_match(&self.list[ri].group) {
                    self.list[ri].group_prev_matched.push(list);
                }
            }
        } else if r.context && !r.check_diff {
            self.list[idx].search = Search::Events;
        }
    }

    /// All tree nodes in Wazuh's traversal order (a shared rule appears once
    /// per parent).
    fn preorder(&self) -> Vec<usize> {
        let mut out = Vec::new();
        fn walk(r: &Rules, list: &[usize], out: &mut Vec<usize>) {
            for &n in list {
                out.push(n);
                walk(r, &r.nodes[n].children, out);
            }
        }
        walk(self, &self.top, &mut out);
        out
    }

    /// `OS_AddRuleInfo`: replace an existing rule's definition, keeping its
    /// place in the tree, its parents and its correlation wiring.
    fn overwrite(&mut self, ctx: &mut Ctx, existing: usize, new: Rule) {
        let id = new.id;
        let old = &self.list[existing];
        if new.if_sid.is_some() && new.if_matched_sid == 0 && old.if_sid != new.if_sid {
            ctx.warn(
                new.line,
                "if_sid",
                format!("rule {id}: if_sid cannot be overwritten"),
            );
        }
        if new.if_level.is_some() && old.if_level != new.if_level {
            ctx.warn(
                new.line,
                "if_level",
                format!("rule {id}: if_level cannot be overwritten"),
            );
        }
        if new.if_matched_sid != 0 && old.if_matched_sid != new.if_matched_sid {
            ctx.warn(
                new.line,
                "if_matched_sid",
                format!("rule {id}: if_matched_sid cannot be overwritten"),
            );
        }
        let old = self.list[existing].clone();
        let mut merged = new;
        merged.if_sid = old.if_sid;
        merged.if_group = old.if_group;
        merged.if_level = old.if_level;
        merged.if_matched_sid = old.if_matched_sid;
        merged.if_matched_group = old.if_matched_group;
        merged.search = old.search;
        merged.sid_prev_matched = old.sid_prev_matched;
        merged.group_prev_matched = old.group_prev_matched;
        self.list[existing] = merged;
    }

    /// `_setlevels`: back to real levels once everything is loaded; then
    /// the per-decoder child indexes.
    pub fn finish(&mut self) {
        for r in self.list.iter_mut() {
            if r.level == 9900 {
                r.level = 0;
            }
            if r.level >= 100 {
                r.level /= 100;
            }
        }
        self.has_event_search = self.list.iter().any(|r| r.search == Search::Events);
        self.child_index = self
            .nodes
            .iter()
            .map(|n| {
                if n.children.len() < 8 {
                    return None;
                }
                // A field index replaces the decoder one (children_for
                // consults one or the other).
                if let Some(f) = self.field_index(&n.children) {
                    return Some(ChildIndex {
                        by_field: Some(f),
                        ..ChildIndex::default()
                    });
                }
                let mut idx = ChildIndex::default();
                let ids: std::collections::BTreeSet<u32> = n
                    .children
                    .iter()
                    .map(|&c| self.list[self.nodes[c].rule].decoded_as)
                    .filter(|&d| d != 0)
                    .collect();
                for &c in &n.children {
                    let d = self.list[self.nodes[c].rule].decoded_as;
                    if d == 0 {
                        idx.generic.push(c);
                    }
                    for &id in &ids {
                        if d == 0 || d == id {
                            idx.by_decoder.entry(id).or_default().push(c);
                        }
                    }
                }
                Some(idx)
            })
            .collect();
    }

    /// The field index of a node's children, when at least eight of them
    /// test one dynamic field for whole values (see [`FieldIndex`]). Only
    /// a condition that is not negated and whose expression accepts a known
    /// set of whole values counts ([`Expr::exact_values`], lowered: a
    /// superset for the case-sensitive types), so a child left out of a
    /// value's list could not have matched an event with that value.
    fn field_index(&self, children: &[usize]) -> Option<FieldIndex> {
        let values_of = |c: usize| -> Vec<WholeValues> {
            let r = &self.list[self.nodes[c].rule];
            let mut out: Vec<WholeValues> = Vec::new();
            for (name, cond) in &r.fields {
                if cond.negate {
                    continue;
                }
                let Some(vals) = cond.expr.exact_values() else {
                    continue;
                };
                let name = name.to_ascii_lowercase();
                if out.iter().any(|(n, _)| *n == name) {
                    continue;
                }
                let vals = vals.iter().map(|v| v.to_ascii_lowercase()).collect();
                out.push((name, vals));
            }
            out
        };
        let per_child: Vec<_> = children.iter().map(|&c| values_of(c)).collect();
        let mut count: HashMap<&[u8], usize> = HashMap::new();
        for vals in &per_child {
            for (name, _) in vals {
                *count.entry(name.as_slice()).or_default() += 1;
            }
        }
        // Of the fields tested by at least eight children, the one whose
        // largest list of children to try is shortest (an event then tries
        // the fewest rules whatever its value); ties go to the field more
        // children test, then to the name.
        let mut candidates: Vec<(&[u8], usize)> =
            count.into_iter().filter(|&(_, n)| n >= 8).collect();
        candidates.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        // A value's list holds the children accepting it plus every child
        // that does not test the field, so counts give each list's length.
        let mut best: Option<(usize, &[u8])> = None;
        for (field, testing) in candidates {
            let mut per_value: HashMap<&[u8], usize> = HashMap::new();
            for vals in &per_child {
                if let Some((_, own)) = vals.iter().find(|(f, _)| f == field) {
                    let own: std::collections::BTreeSet<&[u8]> =
                        own.iter().map(Vec::as_slice).collect();
                    for v in own {
                        *per_value.entry(v).or_default() += 1;
                    }
                }
            }
            let others = children.len() - testing;
            let worst = others + per_value.values().copied().max().unwrap_or(0);
            if best.is_none_or(|(w, _)| worst < w) {
                best = Some((worst, field));
            }
        }
        best.map(|(_, field)| Self::field_index_on(field, children, &per_child))
    }

    /// The field index of `children` on `field`, given each child's
    /// whole-value fields (`per_child`, lowered).
    fn field_index_on(
        field: &[u8],
        children: &[usize],
        per_child: &[Vec<WholeValues>],
    ) -> FieldIndex {
        let mut idx = FieldIndex {
            field: field.to_vec(),
            ..FieldIndex::default()
        };
        let keys: std::collections::BTreeSet<Vec<u8>> = per_child
            .iter()
            .flat_map(|v| v.iter().filter(|(f, _)| *f == field))
            .flat_map(|(_, vals)| vals.iter().cloned())
            .collect();
        for (&c, vals) in children.iter().zip(per_child) {
            match vals.iter().find(|(f, _)| *f == field) {
                None => {
                    idx.other.push(c);
                    for k in &keys {
                        idx.by_value.entry(k.clone()).or_default().push(c);
                    }
                }
                Some((_, own)) => {
                    for k in own {
                        idx.by_value.entry(k.clone()).or_default().push(c);
                    }
                }
            }
        }
        // Children were pushed in order; values listed twice by one child
        // are pushed once per child anyway (the set above).
        for list in idx.by_value.values_mut() {
            list.dedup();
        }
        idx
    }

    /// The children of `node` worth trying for an event decoded by decoder
    /// id `decoder` (0: none) with the event's dynamic fields `field`
    /// (Wazuh's lookup).
    #[inline]
    pub fn children_for<'a>(
        &'a self,
        node: usize,
        decoder: u32,
        field: impl Fn(&[u8]) -> Option<&'a [u8]>,
    ) -> &'a [usize] {
        let Some(idx) = self.child_index.get(node).and_then(|i| i.as_ref()) else {
            return &self.nodes[node].children;
        };
        if let Some(f) = &idx.by_field {
            let Some(v) = field(&f.field) else {
                return &f.other;
            };
            if v.len() > FIELD_INDEX_MAX_VALUE {
                return &self.nodes[node].children;
            }
            let mut low = [0u8; FIELD_INDEX_MAX_VALUE];
            let low = &mut low[..v.len()];
            for (d, s) in low.iter_mut().zip(v) {
                *d = s.to_ascii_lowercase();
            }
            return f.by_value.get(&low[..]).unwrap_or(&f.other);
        }
        idx.by_decoder.get(&decoder).unwrap_or(&idx.generic)
    }
}

fn append_opt(slot: &mut Option<Vec<u8>>, c: &[u8]) {
    slot.get_or_insert_with(Vec::new).extend_from_slice(c);
}

fn check_negate(ctx: &mut Ctx, opt: &Node, id: u32) -> bool {
    match opt.attr("negate") {
        None => false,
        Some(v) if v.eq_ignore_ascii_case(b"yes") => true,
        Some(v) if v.eq_ignore_ascii_case(b"no") => false,
        Some(v) => {
            ctx.warn(
                opt.line,
                &opt.name_str(),
                format!(
                    "rule {id}: invalid negate value '{}' (treated as no)",
                    String::from_utf8_lossy(v)
                ),
            );
            false
        }
    }
}

/// The `.cdb` name Wazuh also accepts for a list.
fn cdb_name(name: &str) -> String {
    format!("{name}.cdb")
}

fn list_field(v: &[u8]) -> ListField {
    let l = v.to_ascii_lowercase();
    match l.as_slice() {
        b"srcip" => ListField::Static(Static::SrcIp),
        b"srcport" => ListField::Static(Static::SrcPort),
        b"dstip" => ListField::Static(Static::DstIp),
        b"dstport" => ListField::Static(Static::DstPort),
        b"user" => ListField::User,
        b"url" => ListField::Static(Static::Url),
        b"id" => ListField::Static(Static::Id),
        b"hostname" => ListField::Hostname,
        b"program_name" => ListField::ProgramName,
        b"status" => ListField::Static(Static::Status),
        b"action" => ListField::Static(Static::Action),
        b"protocol" => ListField::Static(Static::Protocol),
        b"system_name" => ListField::Static(Static::SystemName),
        b"data" => ListField::Static(Static::Data),
        b"extra_data" => ListField::Static(Static::ExtraData),
        _ => ListField::Dynamic(crate::util::first_word(v).to_vec()),
    }
}

/// `same_*` / `different_*` option names: (is_same, bit, sets
/// SAME_EXTRAINFO). Names Wazuh compares case-sensitively are matched
/// exactly; the others ignoring case.
fn same_diff_bits(el: &[u8]) -> Option<(bool, u32, bool)> {
    let exact: &[(&str, bool, u32, bool)] = &[
        ("same_id", true, FIELD_ID, true),
        ("same_url", true, FIELD_URL, true),
        ("same_data", true, FIELD_DATA, true),
        ("same_extra_data", true, FIELD_EXTRADATA, true),
        ("same_status", true, FIELD_STATUS, true),
        ("same_system_name", true, FIELD_SYSTEMNAME, true),
        ("same_srcgeoip", true, FIELD_SRCGEOIP, true),
        ("same_dstgeoip", true, FIELD_DSTGEOIP, true),
        ("different_srcip", false, FIELD_SRCIP, true),
        ("not_same_source_ip", false, FIELD_SRCIP, true),
        ("different_protocol", false, FIELD_PROTOCOL, true),
        ("different_action", false, FIELD_ACTION, true),
        ("different_id", false, FIELD_ID, true),
        ("not_same_id", false, FIELD_ID, true),
        ("different_url", false, FIELD_URL, true),
        ("different_data", false, FIELD_DATA, true),
        ("different_extra_data", false, FIELD_EXTRADATA, true),
        ("different_status", false, FIELD_STATUS, true),
        ("different_system_name", false, FIELD_SYSTEMNAME, true),
        ("different_srcgeoip", false, FIELD_SRCGEOIP, true),
        ("different_dstgeoip", false, FIELD_DSTGEOIP, true),
    ];
    let loose: &[(&str, bool, u32, bool)] = &[
        ("same_source_ip", true, FIELD_SRCIP, false),
        ("same_srcip", true, FIELD_SRCIP, false),
        ("same_dstip", true, FIELD_DSTIP, true),
        ("same_src_port", true, FIELD_SRCPORT, true),
        ("same_srcport", true, FIELD_SRCPORT, true),
        ("same_dst_port", true, FIELD_DSTPORT, true),
        ("same_dstport", true, FIELD_DSTPORT, true),
        ("same_protocol", true, FIELD_PROTOCOL, true),
        ("same_action", true, FIELD_ACTION, true),
        ("same_location", true, FIELD_LOCATION, true),
        ("same_srcuser", true, FIELD_SRCUSER, true),
        ("same_user", true, FIELD_USER, true),
        ("different_dstip", false, FIELD_DSTIP, true),
        ("different_src_port", false, FIELD_SRCPORT, true),
        ("different_srcport", false, FIELD_SRCPORT, true),
        ("different_dst_port", false, FIELD_DSTPORT, true),
        ("different_dstport", false, FIELD_DSTPORT, true),
        ("different_srcuser", false, FIELD_SRCUSER, true),
        ("different_user", false, FIELD_USER, true),
        ("not_same_user", false, FIELD_USER, true),
        ("different_location", false, FIELD_LOCATION, true),
    ];
    for (name, same, bit, extra) in exact {
        if el == name.as_bytes() {
            return Some((*same, *bit, *extra));
        }
    }
    for (name, same, bit, extra) in loose {
        if el.eq_ignore_ascii_case(name.as_bytes()) {
            return Some((*same, *bit, *extra));
        }
    }
    None
}
