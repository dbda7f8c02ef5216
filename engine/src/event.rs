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
        self.buf.capacity() + self.fields.capacity() * std::mem::size_of::<Field>()
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
    /// ASCII case (Wazuh's `FindField`).
    #[inline]
    pub fn field(&self, name: &[u8]) -> Option<&[u8]> {
        let (Some(&first), Some(&last)) = (name.first(), name.last()) else {
            return self
                .fields
                .iter()
                .find(|f| f.key.0 == f.key.1)
                .map(|f| self.text(f.value));
        };
        let (first, last) = (first.to_ascii_lowercase(), last.to_ascii_lowercase());
        for f in &self.fields {
            if (f.key.1 - f.key.0) as usize != name.len() {
                continue;
            }
            let k = self.text(f.key);
            // Cheap rejections before the full comparison: dotted keys
            // usually share their first bytes but not their last.
            if k[k.len() - 1].to_ascii_lowercase() != last || k[0].to_ascii_lowercase() != first {
                continue;
            }
            if k.eq_ignore_ascii_case(name) {
                return Some(self.text(f.value));
            }
        }
        None
    }

    /// Adds a dynamic field (callers enforce the field limit).
    pub fn add_field(&mut self, key: &[u8], value: &[u8]) {
        let key = self.push(key);
        let value = self.push(value);
        self.fields.push(Field { key, value });
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
