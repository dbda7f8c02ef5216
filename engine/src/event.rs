//! The event record (Wazuh's `Eventinfo`): what pre-decoding and decoding
//! produce and what rules are matched against.
//!
//! All decoded text lives in one byte buffer owned by the event; fields are
//! ranges into it. Processing one event reuses the buffers of the previous
//! one, so the hot path allocates nothing once warmed up. An event that must
//! be kept for correlation is copied into a [`Stored`] record.

/// The static fields, in the order Wazuh uses for `same_*`/`different_*`
/// bit masks (`field_offset` in eventinfo.c).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Static {
    SrcIp = 0,
    Id = 1,
    DstIp = 2,
    SrcPort = 3,
    DstPort = 4,
    SrcUser = 5,
    DstUser = 6,
    Protocol = 7,
    Action = 8,
    Url = 9,
    Data = 10,
    ExtraData = 11,
    Status = 12,
    SystemName = 13,
}

/// Number of [`Static`] fields.
pub const N_STATIC: usize = 14;

impl Static {
    pub const ALL: [Static; N_STATIC] = [
        Static::SrcIp,
        Static::Id,
        Static::DstIp,
        Static::SrcPort,
        Static::DstPort,
        Static::SrcUser,
        Static::DstUser,
        Static::Protocol,
        Static::Action,
        Static::Url,
        Static::Data,
        Static::ExtraData,
        Static::Status,
        Static::SystemName,
    ];
}

/// A byte range in [`Event::buf`].
pub type Span = (u32, u32);

/// One dynamic field.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    pub key: Span,
    pub value: Span,
}

/// The event being processed.
#[derive(Debug, Clone, Default)]
pub struct Event {
    /// Text storage for everything below.
    pub buf: Vec<u8>,
    /// The message as received (`full_log`).
    pub full_log: Span,
    /// The message after the syslog header (`log`).
    pub log: Span,
    pub location: Span,
    pub agent_id: Span,
    pub hostname: Span,
    pub program_name: Option<Span>,
    /// The header timestamp text (`predecoder.timestamp`).
    pub dec_timestamp: Option<Span>,
    pub statics: [Option<Span>; N_STATIC],
    pub fields: Vec<Field>,
    /// Open-addressing index of `fields` by ASCII-lowercased key: field
    /// index + 1, 0 for an empty slot; its length is a power of two at
    /// least twice the number of fields. Kept by [`Event::add_field`].
    slots: Vec<u32>,
    /// Decoder that decoded the event (`None`: no decoder matched).
    pub decoder: Option<u32>,
    /// Where the decoder offsets point (`log_after_parent`,
    /// `log_after_prematch`) as offsets into `log`; `None` is Wazuh's NULL.
    pub after_parent: Option<usize>,
    pub after_prematch: Option<usize>,
    /// The JSON decoder could not parse the event: byte offset (in the
    /// decoded text) and reason. Wazuh then decodes no fields, silently.
    pub json_error: Option<(usize, &'static str)>,
    /// Arrival (or event) time, seconds and nanoseconds since the epoch.
    pub time_secs: i64,
    pub time_nanos: u32,
}

impl Event {
    /// Bytes of heap the event holds (its buffers' capacities).
    pub fn heap_bytes(&self) -> usize {
        self.buf.capacity()
            + self.fields.capacity() * std::mem::size_of::<Field>()
            + self.slots.capacity() * 4
    }

    /// Empties the event, keeping its buffers.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.full_log = (0, 0);
        self.log = (0, 0);
        self.location = (0, 0);
        self.agent_id = (0, 0);
        self.hostname = (0, 0);
        self.program_name = None;
        self.dec_timestamp = None;
        self.statics = [None; N_STATIC];
        self.fields.clear();
        self.slots.fill(0);
        self.decoder = None;
        self.after_parent = None;
        self.after_prematch = None;
        self.json_error = None;
    }

    /// Appends text to the buffer and returns its span.
    #[inline]
    pub fn push(&mut self, s: &[u8]) -> Span {
        let a = self.buf.len() as u32;
        self.buf.extend_from_slice(s);
        (a, self.buf.len() as u32)
    }

    #[inline]
    pub fn text(&self, s: Span) -> &[u8] {
        &self.buf[s.0 as usize..s.1 as usize]
    }

    pub fn full_log(&self) -> &[u8] {
        self.text(self.full_log)
    }

    pub fn log(&self) -> &[u8] {
        self.text(self.log)
    }

    pub fn location(&self) -> &[u8] {
        self.text(self.location)
    }

    pub fn hostname(&self) -> &[u8] {
        self.text(self.hostname)
    }

    pub fn agent_id(&self) -> &[u8] {
        self.text(self.agent_id)
    }

    pub fn program_name(&self) -> Option<&[u8]> {
        self.program_name.map(|s| self.text(s))
    }

    pub fn get(&self, f: Static) -> Option<&[u8]> {
        self.statics[f as usize].map(|s| self.text(s))
    }

    pub fn set(&mut self, f: Static, value: &[u8]) {
        let s = self.push(value);
        self.statics[f as usize] = Some(s);
    }

    /// Dynamic field lookup: first field whose key equals `name` ignoring
    /// ASCII case (Wazuh's `FindField`), through the key index.
    #[inline]
    pub fn field(&self, name: &[u8]) -> Option<&[u8]> {
        if self.fields.is_empty() {
            return None;
        }
        self.probe(name, key_hash(name))
    }

    /// [`Event::field`] with `key_hash(name)` already known (a name
    /// looked up in many events, as a correlation search does).
    #[inline]
    pub fn field_hashed(&self, name: &[u8], hash: u32) -> Option<&[u8]> {
        if self.fields.is_empty() {
            return None;
        }
        self.probe(name, hash)
    }

    /// The key index lookup itself (the index is non-empty).
    #[inline]
    fn probe(&self, name: &[u8], hash: u32) -> Option<&[u8]> {
        let mask = self.slots.len() - 1;
        let mut at = hash as usize & mask;
        loop {
            let slot = self.slots[at];
            if slot == 0 {
                return None;
            }
            let f = &self.fields[slot as usize - 1];
            if (f.key.1 - f.key.0) as usize == name.len() && same_key(self.text(f.key), name) {
                return Some(self.text(f.value));
            }
            at = (at + 1) & mask;
        }
    }

    /// Puts field `i` in the key index, growing it when half full. With
    /// linear probing and no removals, the first of equal keys is met
    /// first on lookup.
    fn index_field(&mut self, i: usize) {
        if (self.fields.len()) * 2 > self.slots.len() {
            let n = (self.fields.len() * 2).next_power_of_two().max(64);
            self.slots.clear();
            self.slots.resize(n, 0);
            for j in 0..self.fields.len() {
                self.place(j);
            }
            return;
        }
        self.place(i);
    }

    fn place(&mut self, i: usize) {
        let f = self.fields[i];
        let mask = self.slots.len() - 1;
        let mut at = key_hash(self.text(f.key)) as usize & mask;
        while self.slots[at] != 0 {
            at = (at + 1) & mask;
        }
        self.slots[at] = (i + 1) as u32;
    }

    /// Adds a dynamic field (callers enforce the field limit).
    pub fn add_field(&mut self, key: &[u8], value: &[u8]) {
        let key = self.push(key);
        let value = self.push(value);
        self.fields.push(Field { key, value });
        self.index_field(self.fields.len() - 1);
    }

    pub fn field_key(&self, f: &Field) -> &[u8] {
        self.text(f.key)
    }

    pub fn field_value(&self, f: &Field) -> &[u8] {
        self.text(f.value)
    }
}

/// What correlation keeps of a past event: everything a later
/// `same_*`/`different_*` test, `previous_output` or the decoder-type check
/// can look at.
#[derive(Debug, Clone)]
pub struct Stored {
    pub ev: Event,
    /// Decoder type (category) of the stored event.
    pub decoder_type: u8,
    /// Arrival time in seconds (Wazuh's `generate_time`).
    pub time: i64,
    /// Level mark set when the event took part in a correlation match.
    pub matched: i32,
}

/// A hash of the key that ignores ASCII case: eight bytes at a time, each
/// byte with bit 0x20 set (which folds 'A'..'Z' onto 'a'..'z' and a few
/// punctuation pairs onto each other: only the hash, never the comparison,
/// sees that).
#[inline]
pub fn key_hash(key: &[u8]) -> u32 {
    const FOLD: u64 = 0x2020_2020_2020_2020;
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut h: u64 = key.len() as u64;
    let mut chunks = key.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes(c.try_into().expect("8 bytes")) | FOLD;
        h = (h.rotate_left(5) ^ w).wrapping_mul(K);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut b = [0u8; 8];
        b[..rest.len()].copy_from_slice(rest);
        h = (h.rotate_left(5) ^ (u64::from_le_bytes(b) | FOLD)).wrapping_mul(K);
    }
    (h >> 32) as u32
}

/// Equal ignoring ASCII case, trying plain equality first (keys are
/// nearly always written as the rules write them).
#[inline]
fn same_key(a: &[u8], b: &[u8]) -> bool {
    a == b || a.eq_ignore_ascii_case(b)
}
