//! Opaque, tamper-checked pagination tokens. A token seals a store cursor with
//! the query it belongs to under an HMAC-SHA256 key, so a caller can neither
//! forge a start key nor replay a token against another query. No I/O.

use crate::store::Cursor;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

#[derive(Clone)]
pub struct PageTokens {
    key: Vec<u8>,
}

impl std::fmt::Debug for PageTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PageTokens { key: <redacted> }")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("nextToken is malformed, was tampered with, or belongs to another query")]
pub struct BadToken;

impl PageTokens {
    pub fn new(key: impl Into<Vec<u8>>) -> Self {
        Self { key: key.into() }
    }

    fn mac(&self, scope: &str, payload: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        mac.update(scope.as_bytes());
        mac.update(&[0]);
        mac.update(payload);
        mac
    }

    /// Seals `cursor` for the query described by `scope`.
    pub fn seal(&self, scope: &str, cursor: &Cursor) -> String {
        let payload = serde_json::to_vec(cursor).unwrap_or_default();
        let tag = self.mac(scope, &payload).finalize().into_bytes();
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&payload),
            URL_SAFE_NO_PAD.encode(tag)
        )
    }

    /// Opens a token sealed for the same `scope`.
    pub fn open(&self, scope: &str, token: &str) -> Result<Cursor, BadToken> {
        let (payload, tag) = token.split_once('.').ok_or(BadToken)?;
        let payload = URL_SAFE_NO_PAD.decode(payload).map_err(|_| BadToken)?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| BadToken)?;
        self.mac(scope, &payload)
            .verify_slice(&tag)
            .map_err(|_| BadToken)?;
        serde_json::from_slice(&payload).map_err(|_| BadToken)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_open_only_for_their_scope_and_untouched() {
        let tokens = PageTokens::new(b"k".to_vec());
        let cursor: Cursor = [("pk".to_string(), "EXEC#1".to_string())].into();
        let token = tokens.seal("a", &cursor);
        assert_eq!(tokens.open("a", &token), Ok(cursor));
        assert_eq!(tokens.open("b", &token), Err(BadToken));
        let mut forged = token.clone();
        forged.insert(0, 'x');
        assert_eq!(tokens.open("a", &forged), Err(BadToken));
        assert_eq!(
            PageTokens::new(b"other".to_vec()).open("a", &token),
            Err(BadToken)
        );
        assert_eq!(tokens.open("a", "garbage"), Err(BadToken));
    }
}
