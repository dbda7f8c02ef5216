//! Decoders: the `<decoder>` XML files, the decoder tree, and decoding an
//! event (Wazuh's `ReadDecodeXML`, `OS_AddOSDecoder` and `DecodeEvent`),
//! including the JSON decoder plugin.
//!
//! Two root lists exist: decoders with a `<program_name>` and decoders
//! without. An event with a pre-decoded program name is only tried against
//! the first list, any other event only against the second. Within a list
//! the first root whose program name and prematch match wins; its children
//! are then tried in order. A child without `use_own_name` reports its
//! parent's name and id, which is what `decoded_as` compares.

use std::collections::HashMap;

use crate::cjson::{self, Doc, Kind};
use crate::event::{Event, Static};
use crate::expr::{Expr, ExprType};
use crate::xml::Node;
use crate::{Category, LoadError, Severity};

/// Maximum dynamic fields per event (`analysisd.decoder_order_size`).
pub const MAX_FIELDS: usize = 256;

/// Offsets (`offset="..."` attribute).
const AFTER_PARENT: u8 = 1;
const AFTER_PREMATCH: u8 = 2;
const AFTER_PREVREGEX: u8 = 4;

/// Built-in decoder names rules may use in `<decoded_as>` (Wazuh registers
/// them for its internal modules).
pub const INTERNAL_DECODERS: &[&str] = &[
    "rootcheck",
    "syscheck_integrity_changed",
    "syscheck_new_entry",
    "syscheck_deleted",
    "syscheck_registry_key_modified",
    "syscheck_registry_key_added",
    "syscheck_registry_key_deleted",
    "syscheck_registry_value_modified",
    "syscheck_registry_value_added",
    "syscheck_registry_value_deleted",
    "hostinfo_new",
    "hostinfo_modified",
    "syscollector",
    "ciscat",
    "windows_eventchannel",
    "sca",
];

/// How a captured value is stored (`<order>`).
#[derive(Debug, Clone)]
pub enum OrderItem {
    Static(Static),
    Dynamic(Vec<u8>),
}

/// Plugin decoders (`<plugin_decoder>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plugin {
    Json,
    /// Accepted for compatibility; decodes nothing (Wazuh's OSSEC alert,
    /// PF, Symantec and SonicWall plugins are not implemented).
    Unsupported,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NullMode {
    String,
    Discard,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArrayMode {
    Array,
    Csv,
}

/// One `<decoder>`.
#[derive(Debug, Clone)]
pub struct Decoder {
    /// Reported name: the parent's name for children without
    /// `use_own_name`.
    pub name: Vec<u8>,
    /// Name as written in the file.
    pub own_name: Vec<u8>,
    pub id: u32,
    pub parent: Option<Vec<u8>>,
    pub program_name: Option<Expr>,
    pub prematch: Option<Expr>,
    prematch_offset: u8,
    pub regex: Option<Expr>,
    regex_offset: u8,
    pub order: Vec<OrderItem>,
    pub plugin: Option<Plugin>,
    plugin_offset: u8,
    pub category: Category,
    pub use_own_name: bool,
    /// Part of a multi-regex chain: continue with the next sibling.
    pub get_next: bool,
    pub fts: Vec<Vec<u8>>,
    pub ftscomment: Option<Vec<u8>>,
    pub accumulate: bool,
    pub null_mode: NullMode,
    pub array_mode: ArrayMode,
    pub file: String,
    pub line: u32,
}

#[derive(Debug, Clone, Default)]
struct DNode {
    decoder: usize,
    children: Vec<usize>,
}

/// All decoders and the two root lists.
#[derive(Debug, Clone, Default)]
pub struct Decoders {
    pub list: Vec<Decoder>,
    nodes: Vec<DNode>,
    roots_pn: Vec<usize>,
    roots_nopn: Vec<usize>,
    names: HashMap<Vec<u8>, u32>,
}

/// Scratch space reused across events.
#[derive(Debug, Default, Clone)]
pub struct DecodeScratch {
    doc: Doc,
    key: Vec<u8>,
    val: Vec<u8>,
    log: Vec<u8>,
}

impl Decoders {
    pub fn new() -> Decoders {
        Decoders::default()
    }

    fn name_id(&mut self, name: &[u8]) -> u32 {
        let next = self.names.len() as u32 + 1;
        *self.names.entry(name.to_vec()).or_insert(next)
    }

    /// Id of a decoder name (for `<decoded_as>`), including the built-in ones.
    pub fn id_of(&self, name: &[u8]) -> Option<u32> {
        self.names.get(name).copied()
    }

    /// The name behind a `<decoded_as>` id.
    pub fn name_of(&self, id: u32) -> Option<&[u8]> {
        self.names
            .iter()
            .find(|(_, &v)| v == id)
            .map(|(k, _)| k.as_slice())
    }

    /// Loads one decoder file. On error nothing of the file is kept.
    pub fn load_file(&mut self, file: &str, text: &[u8], errors: &mut Vec<LoadError>) -> bool {
        let err = |line: u32, element: &str, message: String| LoadError {
            file: file.to_string(),
            line,
            element: element.to_string(),
            message,
            severity: Severity::Error,
        };
        let roots = match crate::xml::parse(text) {
            Ok(r) => r,
            Err(e) => {
                errors.push(err(e.line, "", e.message));
                return false;
            }
        };
        let snapshot = self.clone();
        for node in &roots {
            if let Err(e) = self.load_decoder(file, node) {
                errors.push(e);
                *self = snapshot;
                return false;
            }
        }
        let _ = err;
        true
    }

    fn load_decoder(&mut self, file: &str, node: &Node) -> Result<(), LoadError> {
        let err = |line: u32, element: &str, message: String| LoadError {
            file: file.to_string(),
            line,
            element: element.to_string(),
            message,
            severity: Severity::Error,
        };
        if !node.is("decoder") {
            return Err(err(
                node.line,
                &node.name_str(),
                format!(
                    "invalid element '{}': only <decoder> is allowed here",
                    node.name_str()
                ),
            ));
        }
        let name = match node.attrs.first() {
            Some((k, v)) if k.eq_ignore_ascii_case(b"name") => v.clone(),
            _ => {
                return Err(err(
                    node.line,
                    "decoder",
                    "a <decoder> needs a name attribute first".into(),
                ))
            }
        };
        if node.attrs.len() > 1 && !node.attrs[1].0.eq_ignore_ascii_case(b"status") {
            return Err(err(
                node.line,
                "decoder",
                "only name and status attributes are allowed".into(),
            ));
        }
        if node.attrs.len() > 2 {
            return Err(err(
                node.line,
                "decoder",
                "only name and status attributes are allowed".into(),
            ));
        }
        let dname = String::from_utf8_lossy(&name).into_owned();
        let mut d = Decoder {
            name: name.clone(),
            own_name: name.clone(),
            id: 0,
            parent: None,
            program_name: None,
            prematch: None,
            prematch_offset: 0,
            regex: None,
            regex_offset: 0,
            order: Vec::new(),
            plugin: None,
            plugin_offset: 0,
            category: Category::Syslog,
            use_own_name: false,
            get_next: false,
            fts: Vec::new(),
            ftscomment: None,
            accumulate: false,
            null_mode: NullMode::String,
            array_mode: ArrayMode::Array,
            file: file.to_string(),
            line: node.line,
        };
        self.name_id(&name);
        let mut regex_str: Option<Vec<u8>> = None;
        let mut prematch_str: Option<Vec<u8>> = None;
        let mut pname_str: Option<Vec<u8>> = None;
        let mut regex_type = ExprType::OsRegex;
        let mut prematch_type = ExprType::OsRegex;
        let mut pname_type = ExprType::OsMatch;
        let append = |slot: &mut Option<Vec<u8>>, content: &[u8], line: u32, el: &str| {
            let total = slot.as_ref().map(|s| s.len()).unwrap_or(0) + content.len();
            if total >= 1024 {
                return Err(err(
                    line,
                    el,
                    format!("decoder '{dname}': <{el}> longer than 1024 bytes"),
                ));
            }
            slot.get_or_insert_with(Vec::new).extend_from_slice(content);
            Ok(())
        };
        let offset_of = |el: &Node| -> Result<u8, ()> {
            match el.attr("offset") {
                None => Ok(0),
                Some(v) if v.eq_ignore_ascii_case(b"after_parent") => Ok(AFTER_PARENT),
                Some(v) if v.eq_ignore_ascii_case(b"after_prematch") => Ok(AFTER_PREMATCH),
                Some(v) if v.eq_ignore_ascii_case(b"after_regex") => Ok(AFTER_PREVREGEX),
                Some(_) => Err(()),
            }
        };
        for el in &node.children {
            let en = el.name_str();
            let line = el.line;
            if el.is("parent") {
                append(&mut d.parent, &el.content, line, "parent")?;
            } else if el.is("regex") || el.is("prematch") {
                // Both take an offset (first occurrence only) and an
                // osregex/pcre2 type, and concatenate when repeated.
                let is_regex = el.is("regex");
                let (text, offset, ty) = if is_regex {
                    (&mut regex_str, &mut d.regex_offset, &mut regex_type)
                } else {
                    (
                        &mut prematch_str,
                        &mut d.prematch_offset,
                        &mut prematch_type,
                    )
                };
                let off: u8 = offset_of(el).unwrap_or_default();
                if text.is_some() && off != 0 {
                    return Err(err(
                        line,
                        &en,
                        format!("decoder '{dname}': only the first <{en}> may have an offset"),
                    ));
                }
                if off != 0 {
                    *offset = off;
                }
                *ty = match el.attr("type").and_then(ExprType::parse) {
                    Some(t @ (ExprType::OsRegex | ExprType::Pcre2)) => t,
                    _ => ExprType::OsRegex,
                };
                append(
                    text,
                    &el.content,
                    line,
                    if is_regex { "regex" } else { "prematch" },
                )?;
            } else if el.is("program_name") {
                pname_type = match el.attr("type") {
                    None => ExprType::OsMatch,
                    Some(t) => ExprType::parse(t).unwrap_or(ExprType::OsMatch),
                };
                append(&mut pname_str, &el.content, line, "program_name")?;
            } else if el.is("ftscomment") {
                append(&mut d.ftscomment, &el.content, line, "ftscomment")?;
            } else if el.is("use_own_name") {
                if el.content == b"true" {
                    d.use_own_name = true;
                }
            } else if el.is("plugin_decoder") {
                d.plugin = Some(match el.content.as_slice() {
                    b"JSON_Decoder" => Plugin::Json,
                    b"OSSECAlert_Decoder"
                    | b"PF_Decoder"
                    | b"SymantecWS_Decoder"
                    | b"SonicWall_Decoder" => Plugin::Unsupported,
                    other => {
                        return Err(err(
                            line,
                            &en,
                            format!(
                                "unknown plugin decoder '{}'",
                                String::from_utf8_lossy(other)
                            ),
                        ))
                    }
                });
                d.plugin_offset = offset_of(el)
                    .map_err(|()| err(line, &en, format!("decoder '{dname}': invalid offset")))?;
            } else if el.is("json_null_field") {
                d.null_mode = if el.content.eq_ignore_ascii_case(b"discard") {
                    NullMode::Discard
                } else {
                    NullMode::String
                };
            } else if el.is("json_array_structure") {
                d.array_mode = if el.content.eq_ignore_ascii_case(b"csv") {
                    ArrayMode::Csv
                } else {
                    ArrayMode::Array
                };
            } else if el.name == b"type" {
                d.category = match el.content.as_slice() {
                    b"firewall" => Category::Firewall,
                    b"ids" => Category::Ids,
                    b"web-log" => Category::WebLog,
                    b"syslog" => Category::Syslog,
                    b"squid" => Category::Squid,
                    b"windows" => Category::Windows,
                    b"host-information" => Category::HostInfo,
                    b"ossec" => Category::Ossec,
                    other => {
                        return Err(err(
                            line,
                            &en,
                            format!("invalid decoder type '{}'", String::from_utf8_lossy(other)),
                        ))
                    }
                };
            } else if el.is("order") {
                if el.content.iter().filter(|&&c| c == b',').count() >= MAX_FIELDS {
                    return Err(err(line, &en, "order has too many fields".into()));
                }
                for raw in el.content.split(|&c| c == b',') {
                    let word = first_word(raw);
                    if word.is_empty() {
                        return Err(err(
                            line,
                            &en,
                            format!("decoder '{dname}': empty field in <order>"),
                        ));
                    }
                    d.order.push(match word {
                        b"dstuser" | b"user" => OrderItem::Static(Static::DstUser),
                        b"srcuser" => OrderItem::Static(Static::SrcUser),
                        b"srcip" => OrderItem::Static(Static::SrcIp),
                        b"dstip" => OrderItem::Static(Static::DstIp),
                        b"srcport" => OrderItem::Static(Static::SrcPort),
                        b"dstport" => OrderItem::Static(Static::DstPort),
                        b"protocol" => OrderItem::Static(Static::Protocol),
                        b"action" => OrderItem::Static(Static::Action),
                        b"id" => OrderItem::Static(Static::Id),
                        b"url" => OrderItem::Static(Static::Url),
                        b"data" => OrderItem::Static(Static::Data),
                        b"extra_data" => OrderItem::Static(Static::ExtraData),
                        b"status" => OrderItem::Static(Static::Status),
                        b"system_name" => OrderItem::Static(Static::SystemName),
                        other => OrderItem::Dynamic(other.to_vec()),
                    });
                }
            } else if el.is("accumulate") {
                d.accumulate = true;
            } else if el.is("fts") {
                for raw in el.content.split(|&c| c == b',') {
                    let word = first_word(raw);
                    if word.is_empty() {
                        return Err(err(
                            line,
                            &en,
                            format!("decoder '{dname}': empty field in <fts>"),
                        ));
                    }
                    let known = matches!(
                        word,
                        b"dstuser"
                            | b"user"
                            | b"srcuser"
                            | b"srcip"
                            | b"dstip"
                            | b"id"
                            | b"location"
                            | b"data"
                            | b"extra_data"
                            | b"system_name"
                            | b"name"
                    );
                    if !known
                        && !d.order.iter().any(
                            |o| matches!(o, OrderItem::Dynamic(n) if n.eq_ignore_ascii_case(word)),
                        )
                    {
                        return Err(err(
                            line,
                            &en,
                            format!(
                                "decoder '{dname}': field '{}' in <fts> is not in <order>",
                                String::from_utf8_lossy(word)
                            ),
                        ));
                    }
                    d.fts.push(word.to_vec());
                }
            } else {
                return Err(err(
                    line,
                    &en,
                    format!("invalid element '{en}' in decoder '{dname}'"),
                ));
            }
        }
        let line = node.line;
        if prematch_str.is_none() && d.parent.is_none() && pname_str.is_none() {
            return Err(err(
                line,
                "decoder",
                format!("decoder '{dname}' needs a <prematch> or a <program_name>"),
            ));
        }
        if (regex_str.is_none() && (!d.fts.is_empty() || !d.order.is_empty()))
            || (regex_str.is_some() && d.order.is_empty())
        {
            return Err(err(
                line,
                "decoder",
                format!("decoder '{dname}': <regex> and <order> go together"),
            ));
        }
        if d.regex_offset & AFTER_PARENT != 0 && d.parent.is_none() {
            return Err(err(
                line,
                "regex",
                format!("decoder '{dname}': offset after_parent needs a <parent>"),
            ));
        }
        if d.regex_offset & AFTER_PREMATCH != 0 {
            if d.parent.is_none() {
                d.regex_offset = AFTER_PARENT;
            } else if prematch_str.is_none() {
                return Err(err(
                    line,
                    "regex",
                    format!("decoder '{dname}': offset after_prematch needs a <prematch>"),
                ));
            }
        }
        if d.regex_offset & AFTER_PREVREGEX != 0 && (d.parent.is_none() || regex_str.is_none()) {
            return Err(err(
                line,
                "regex",
                format!("decoder '{dname}': offset after_regex needs a <parent>"),
            ));
        }
        if d.prematch_offset != 0 && (d.prematch_offset & AFTER_PARENT == 0 || d.parent.is_none()) {
            return Err(err(
                line,
                "prematch",
                format!(
                    "decoder '{dname}': a <prematch> offset must be after_parent, with a <parent>"
                ),
            ));
        }
        if d.plugin_offset & AFTER_PARENT != 0 && d.parent.is_none() {
            return Err(err(
                line,
                "plugin_decoder",
                format!("decoder '{dname}': offset after_parent needs a <parent>"),
            ));
        }
        if d.plugin_offset & AFTER_PREMATCH != 0 && prematch_str.is_none() {
            return Err(err(
                line,
                "plugin_decoder",
                format!("decoder '{dname}': offset after_prematch needs a <prematch>"),
            ));
        }
        let compile = |text: &Option<Vec<u8>>, ty: ExprType, captures: bool, el: &str| {
            text.as_ref()
                .map(|p| {
                    Expr::compile(ty, p, captures).map_err(|e| {
                        let p = String::from_utf8_lossy(p);
                        err(line, el, format!("decoder '{dname}': bad {el} '{p}': {e}"))
                    })
                })
                .transpose()
        };
        d.prematch = compile(&prematch_str, prematch_type, false, "prematch")?;
        d.program_name = compile(&pname_str, pname_type, false, "program_name")?;
        d.regex = compile(&regex_str, regex_type, true, "regex")?;
        if d.plugin.is_some() && (d.regex.is_some() || !d.order.is_empty()) {
            return Err(err(
                line,
                "plugin_decoder",
                format!("decoder '{dname}': a plugin decoder cannot have <regex> or <order>"),
            ));
        }
        self.add(d).map_err(|m| err(line, "decoder", m))
    }

    /// `OS_AddOSDecoder`: attach to the parent(s) or append to a root list.
    fn add(&mut self, d: Decoder) -> Result<(), String> {
        let idx = self.list.len();
        let has_pn = d.program_name.is_some();
        let parent = d.parent.clone();
        self.list.push(d);
        if let Some(parent) = parent {
            let mut added = false;
            let roots: Vec<usize> = self
                .roots_pn
                .iter()
                .chain(self.roots_nopn.iter())
                .copied()
                .collect();
            for r in roots {
                if self.list[self.nodes[r].decoder].own_name == parent {
                    self.add_child(r, idx)?;
                    added = true;
                }
            }
            if !added {
                return Err(format!(
                    "parent decoder '{}' not found",
                    String::from_utf8_lossy(&parent)
                ));
            }
        } else {
            if self.list[idx].regex_offset & AFTER_PREVREGEX != 0 {
                return Err("offset after_regex needs a parent".into());
            }
            self.nodes.push(DNode {
                decoder: idx,
                children: Vec::new(),
            });
            let n = self.nodes.len() - 1;
            if has_pn {
                self.roots_pn.push(n);
            } else {
                self.roots_nopn.push(n);
            }
        }
        Ok(())
    }

    fn add_child(&mut self, root: usize, idx: usize) -> Result<(), String> {
        let name = self.list[idx].own_name.clone();
        let mut after_prev_ok = false;
        let children = self.nodes[root].children.clone();
        if !children.is_empty() {
            for c in &children {
                let cd = self.nodes[*c].decoder;
                if self.list[cd].own_name == name {
                    let (has_pre_or_regex, has_regex_or_plugin) = {
                        let e = &self.list[cd];
                        (
                            e.prematch.is_some() || e.regex.is_some(),
                            e.regex.is_some() || e.plugin.is_some(),
                        )
                    };
                    let new = &self.list[idx];
                    if has_pre_or_regex && new.regex_offset != 0 {
                        after_prev_ok = true;
                    }
                    if new.prematch.is_some() {
                        return Err(format!(
                            "decoder '{}': a multi-regex decoder cannot have a <prematch>",
                            String::from_utf8_lossy(&name)
                        ));
                    }
                    if !new.fts.is_empty() {
                        return Err(format!(
                            "decoder '{}': a multi-regex decoder cannot have <fts>",
                            String::from_utf8_lossy(&name)
                        ));
                    }
                    if has_regex_or_plugin && (new.regex.is_some() || new.plugin.is_some()) {
                        self.list[cd].get_next = true;
                    } else {
                        return Err(format!(
                            "decoder '{}' is defined twice without a <regex>",
                            String::from_utf8_lossy(&name)
                        ));
                    }
                }
            }
            if !after_prev_ok && self.list[idx].regex_offset & AFTER_PREVREGEX != 0 {
                return Err(format!(
                    "decoder '{}': offset after_regex needs an earlier decoder of the same name",
                    String::from_utf8_lossy(&name)
                ));
            }
        } else if self.list[idx].regex_offset & AFTER_PREVREGEX != 0 {
            return Err(format!(
                "decoder '{}': offset after_regex needs an earlier decoder of the same name",
                String::from_utf8_lossy(&name)
            ));
        }
        self.nodes.push(DNode {
            decoder: idx,
            children: Vec::new(),
        });
        let n = self.nodes.len() - 1;
        self.nodes[root].children.push(n);
        Ok(())
    }

    /// After all files: register the built-in names and give every decoder
    /// its id (children share their parent's unless `use_own_name`).
    pub fn finish(&mut self) {
        for n in INTERNAL_DECODERS {
            self.name_id(n.as_bytes());
        }
        let roots: Vec<usize> = self
            .roots_nopn
            .iter()
            .chain(self.roots_pn.iter())
            .copied()
            .collect();
        for r in roots {
            let rd = self.nodes[r].decoder;
            let rname = self.list[rd].own_name.clone();
            let rid = self.name_id(&rname);
            self.list[rd].id = rid;
            self.list[rd].name = rname.clone();
            for c in self.nodes[r].children.clone() {
                let cd = self.nodes[c].decoder;
                if self.list[cd].use_own_name {
                    let own = self.list[cd].own_name.clone();
                    self.list[cd].id = self.name_id(&own);
                    self.list[cd].name = own;
                } else {
                    self.list[cd].id = rid;
                    self.list[cd].name = rname.clone();
                }
            }
        }
    }

    /// Number of decoders loaded.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// `DecodeEvent`.
    pub fn decode(&self, ev: &mut Event, scratch: &mut DecodeScratch) {
        // Work on a copy of the log text: decoding appends to `ev.buf`.
        scratch.log.clear();
        scratch.log.extend_from_slice(ev.log());
        let log = std::mem::take(&mut scratch.log);
        self.decode_log(ev, scratch, &log);
        scratch.log = log;
    }

    fn decode_log(&self, ev: &mut Event, scratch: &mut DecodeScratch, log: &[u8]) {
        let roots = if ev.program_name.is_some() {
            &self.roots_pn
        } else {
            &self.roots_nopn
        };
        let pname: Option<Vec<u8>> = ev.program_name().map(|p| p.to_vec());
        for (ri, &r) in roots.iter().enumerate() {
            let node = &self.nodes[r];
            let d = &self.list[node.decoder];
            let mut pmatch: Option<usize> = None;
            if let Some(p) = &pname {
                match &d.program_name {
                    Some(e) if e.is_match(p) => {}
                    _ => continue,
                }
                pmatch = Some(0);
            }
            if let Some(pre) = &d.prematch {
                match pre.find(log) {
                    Some(f) => pmatch = Some(f.after),
                    None => continue,
                }
            }
            ev.decoder = Some(node.decoder as u32);
            ev.after_prematch = pmatch;

            // Pick the child (or the root itself when it has none).
            let (list, mut pos, cmatch): (&[usize], usize, Option<usize>) =
                if node.children.is_empty() {
                    // Wazuh continues along the root list itself here.
                    (&roots[..], ri, None)
                } else {
                    let kids = &node.children;
                    let mut i = 0;
                    let mut picked = None;
                    while i < kids.len() {
                        let cd = &self.list[self.nodes[kids[i]].decoder];
                        if let Some(pre) = &cd.prematch {
                            let subject = if cd.prematch_offset & AFTER_PARENT != 0 {
                                pmatch
                            } else {
                                Some(0)
                            };
                            if let Some(off) = subject {
                                if let Some(f) = pre.find(&log[off.min(log.len())..]) {
                                    let c = off + f.after;
                                    ev.decoder = Some(self.nodes[kids[i]].decoder as u32);
                                    ev.after_parent = pmatch;
                                    ev.after_prematch = Some(c);
                                    picked = Some((i, Some(c)));
                                    break;
                                }
                            }
                        } else {
                            picked = Some((i, pmatch));
                            break;
                        }
                        if cd.get_next {
                            while i < kids.len() && self.list[self.nodes[kids[i]].decoder].get_next
                            {
                                i += 1;
                            }
                            if i >= kids.len() {
                                return;
                            }
                        }
                        i += 1;
                    }
                    match picked {
                        Some((i, c)) => (&kids[..], i, c),
                        None => return,
                    }
                };
            let mut regex_prev: Option<usize> = None;
            loop {
                let Some(&nidx) = list.get(pos) else { return };
                let cur = &self.list[self.nodes[nidx].decoder];
                if let Some(plugin) = cur.plugin {
                    // The plugin reads its offset and JSON options from the
                    // event's decoder (`lf->decoder_info`), which is still the
                    // parent when the child was picked without a prematch.
                    let info = &self.list[ev.decoder.expect("set above") as usize];
                    let input = match info.plugin_offset {
                        0 => Some(0),
                        AFTER_PARENT => ev.after_parent,
                        AFTER_PREMATCH => ev.after_prematch,
                        _ => None,
                    };
                    if let (Plugin::Json, Some(off)) = (plugin, input) {
                        json_decode(ev, scratch, &log[off.min(log.len())..], info);
                    }
                } else if let Some(re) = &cur.regex {
                    let llog = if cur.regex_offset != 0 {
                        if cur.regex_offset & AFTER_PARENT != 0 {
                            pmatch
                        } else if cur.regex_offset & AFTER_PREMATCH != 0 {
                            cmatch
                        } else if cur.regex_offset & AFTER_PREVREGEX != 0 {
                            regex_prev.or(cmatch)
                        } else {
                            None
                        }
                    } else {
                        Some(0)
                    };
                    let found = llog.and_then(|o| {
                        let o = o.min(log.len());
                        re.find(&log[o..]).map(|f| (o, f))
                    });
                    let Some((o, f)) = found else {
                        if cur.get_next {
                            pos += 1;
                            continue;
                        }
                        return;
                    };
                    regex_prev = Some(o + f.after);
                    if ev.fields.len() >= MAX_FIELDS {
                        return;
                    }
                    for (i, &(a, b)) in f.captures.iter().enumerate() {
                        let value = &log[o + a..o + b];
                        match cur.order.get(i) {
                            Some(OrderItem::Static(s)) => ev.set(*s, value),
                            Some(OrderItem::Dynamic(k)) => ev.add_field(k, value),
                            None => {}
                        }
                    }
                } else {
                    return;
                }
                if cur.get_next {
                    pos += 1;
                } else {
                    return;
                }
            }
        }
    }

    /// The decoder that decoded the event.
    pub fn get(&self, idx: u32) -> &Decoder {
        &self.list[idx as usize]
    }
}

fn first_word(raw: &[u8]) -> &[u8] {
    let start = raw.iter().position(|&c| c != b' ').unwrap_or(raw.len());
    let rest = &raw[start..];
    let end = rest.iter().position(|&c| c == b' ').unwrap_or(rest.len());
    &rest[..end]
}

/// Wazuh's JSON decoder plugin over `input`.
pub fn json_decode(ev: &mut Event, scratch: &mut DecodeScratch, input: &[u8], d: &Decoder) {
    let mut doc = std::mem::take(&mut scratch.doc);
    if doc.parse(input).is_some() {
        if matches!(doc.node(0).kind, Kind::Object) {
            scratch.key.clear();
            walk(ev, scratch, &doc, 0, false, d);
        }
    } else {
        ev.json_error = doc.error;
    }
    scratch.doc = doc;
}

fn walk(ev: &mut Event, sc: &mut DecodeScratch, doc: &Doc, obj: u32, nested: bool, d: &Decoder) {
    let prefix_len = sc.key.len();
    for c in doc.children(obj) {
        let node = *doc.node(c);
        sc.key.truncate(prefix_len);
        if nested {
            sc.key.push(b'.');
        }
        if let Some(k) = node.key {
            sc.key.extend_from_slice(doc.str_at(k));
        }
        match node.kind {
            Kind::String(a, b) => {
                let key = std::mem::take(&mut sc.key);
                fill(ev, &key, doc.str_at((a, b)));
                sc.key = key;
            }
            Kind::Number(f, i) => {
                sc.val.clear();
                cjson::decoder_number(f, i, &mut sc.val);
                let (key, val) = (std::mem::take(&mut sc.key), std::mem::take(&mut sc.val));
                fill(ev, &key, &val);
                sc.key = key;
                sc.val = val;
            }
            Kind::True | Kind::False => {
                let key = std::mem::take(&mut sc.key);
                fill(
                    ev,
                    &key,
                    if node.kind == Kind::True {
                        b"true"
                    } else {
                        b"false"
                    },
                );
                sc.key = key;
            }
            Kind::Null => {
                if d.null_mode == NullMode::String {
                    let key = std::mem::take(&mut sc.key);
                    fill(ev, &key, b"null");
                    sc.key = key;
                }
            }
            Kind::Array => {
                sc.val.clear();
                match d.array_mode {
                    ArrayMode::Array => doc.print(c, true, &mut sc.val),
                    ArrayMode::Csv => csv_array(doc, c, &mut sc.val),
                }
                if !sc.val.is_empty() {
                    let (key, val) = (std::mem::take(&mut sc.key), std::mem::take(&mut sc.val));
                    fill(ev, &key, &val);
                    sc.key = key;
                    sc.val = val;
                }
            }
            Kind::Object => {
                walk(ev, sc, doc, c, true, d);
            }
        }
    }
    sc.key.truncate(prefix_len);
}

fn csv_array(doc: &Doc, arr: u32, out: &mut Vec<u8>) {
    const MAXSTR: usize = 65536;
    let items: Vec<u32> = doc.children(arr).collect();
    for (idx, &c) in items.iter().enumerate() {
        match doc.node(c).kind {
            Kind::String(a, b) => out.extend_from_slice(doc.str_at((a, b))),
            Kind::Number(f, i) => cjson::decoder_number(f, i, out),
            Kind::Null => out.extend_from_slice(b"null"),
            Kind::True => out.extend_from_slice(b"true"),
            Kind::False => out.extend_from_slice(b"false"),
            _ => continue,
        }
        if out.len() >= MAXSTR {
            out.clear();
            return;
        }
        if out.len() + 1 >= MAXSTR {
            out.clear();
            return;
        }
        if idx + 1 < items.len() {
            out.push(b',');
        }
    }
}

/// Wazuh's `fillData`: top-level names that are static fields, the rest
/// dynamic.
fn fill(ev: &mut Event, key: &[u8], value: &[u8]) {
    let st = match key {
        b"srcip" => Some(Static::SrcIp),
        b"dstip" => Some(Static::DstIp),
        b"dstport" => Some(Static::DstPort),
        b"srcport" => Some(Static::SrcPort),
        b"protocol" => Some(Static::Protocol),
        b"action" => Some(Static::Action),
        b"srcuser" => Some(Static::SrcUser),
        b"dstuser" => Some(Static::DstUser),
        b"user" if ev.get(Static::DstUser).is_none_or(|v| v.is_empty()) => Some(Static::DstUser),
        b"id" => Some(Static::Id),
        b"status" => Some(Static::Status),
        b"url" => Some(Static::Url),
        b"data" => Some(Static::Data),
        b"extra_data" => Some(Static::ExtraData),
        b"systemname" => Some(Static::SystemName),
        _ => None,
    };
    if let Some(s) = st {
        ev.set(s, value);
        return;
    }
    if ev.fields.len() >= MAX_FIELDS {
        return;
    }
    ev.add_field(key, value);
}
