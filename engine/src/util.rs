//! Small byte-string helpers shared by the loaders.

/// The first space-delimited word of `raw` (Wazuh trims list items this way:
/// skip leading spaces, cut at the next space).
pub fn first_word(raw: &[u8]) -> &[u8] {
    let start = raw.iter().position(|&c| c != b' ').unwrap_or(raw.len());
    let rest = &raw[start..];
    let end = rest.iter().position(|&c| c == b' ').unwrap_or(rest.len());
    &rest[..end]
}
