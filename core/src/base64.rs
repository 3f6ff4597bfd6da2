//! Base64 for BIN values (RFC 4648, standard alphabet, padded): the only
//! form AWS IoT commands use. Decoding accepts exactly the canonical
//! encoding of some bytes, so every value has one text and a browser and
//! the server agree on which texts are valid. Written out (rather than the
//! `base64` crate) so its messages are Courier's and the browser build stays
//! small. Pure, no I/O.

use crate::text::quote;

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// `bytes` as padded standard base64.
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The bytes `text` encodes, or why it is not canonical padded base64
/// (the message names the first offending character, counting from 1).
pub fn decode(text: &str) -> Result<Vec<u8>, String> {
    let chars: Vec<char> = text.chars().collect();
    let padding = chars.iter().rev().take_while(|c| **c == '=').count();
    let mut values = Vec::with_capacity(chars.len());
    for (i, c) in chars.iter().enumerate() {
        match ALPHABET.iter().position(|a| u32::from(*a) == u32::from(*c)) {
            Some(v) => values.push(v as u32),
            None if *c == '=' && i >= chars.len() - padding && padding <= 2 => values.push(0),
            None => {
                let what = if *c == '=' {
                    " is padding before the end (at most two \"=\" end the text)"
                } else {
                    " is not a base64 character"
                };
                return Err(crate::text::msg![
                    quote(&c.to_string()),
                    " at character ",
                    i + 1,
                    what
                ]);
            }
        }
    }
    if chars.len() % 4 != 0 {
        return Err(crate::text::msg![
            "its length (",
            chars.len(),
            " characters) is not a multiple of 4; pad it with \"=\""
        ]);
    }
    let mut out = Vec::with_capacity(chars.len() / 4 * 3);
    for group in values.chunks(4) {
        let n = group.iter().fold(0, |n, v| (n << 6) | v);
        out.extend_from_slice(&[(n >> 16) as u8, (n >> 8) as u8, n as u8]);
    }
    // Padding drops the last one or two bytes; the bits they hold must be
    // zero, or two texts would mean the same bytes.
    let kept = out.len() - padding;
    if out[kept..].iter().any(|b| *b != 0) {
        return Err(crate::text::msg![
            "the character before the padding has bits no byte uses (not the canonical encoding)"
        ]);
    }
    out.truncate(kept);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::{decode, encode};

    #[test]
    fn round_trips_every_length() {
        for len in 0..40 {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            assert_eq!(decode(&encode(&bytes)).as_deref(), Ok(bytes.as_slice()));
        }
        assert_eq!(encode(b"hi"), "aGk=");
        assert_eq!(encode(&[0, 1, 2]), "AAEC");
    }

    #[test]
    fn refuses_what_is_not_canonical_padded_base64() {
        for (text, why) in [
            ("%%%%", "\"%\" at character 1 is not a base64 character"),
            ("aGk", "its length (3 characters) is not a multiple of 4"),
            ("a=k=", "\"=\" at character 2 is padding before the end"),
            ("aGl=", "not the canonical encoding"),
            ("aQ==", ""),
            ("aR==", "not the canonical encoding"),
            ("a===", "\"=\" at character 2"),
            ("aGk=\n", "\"=\" at character 4 is padding before the end"),
            ("YWJj-A==", "\"-\" at character 5"),
        ] {
            match decode(text) {
                Ok(_) => assert_eq!(why, "", "{text} decoded"),
                Err(e) => assert!(!why.is_empty() && e.contains(why), "{text}: {e}"),
            }
        }
    }

    proptest::proptest! {
        /// The `base64` crate's strict standard engine agrees on every text.
        #[test]
        fn agrees_with_the_base64_crate(text in "[A-Za-z0-9+/=]{0,12}", bytes in proptest::collection::vec(0u8.., 0..20)) {
            use base64::Engine as _;
            let theirs = base64::engine::general_purpose::STANDARD.decode(&text).ok();
            proptest::prop_assert_eq!(decode(&text).ok(), theirs);
            proptest::prop_assert_eq!(encode(&bytes), base64::engine::general_purpose::STANDARD.encode(&bytes));
        }
    }
}
