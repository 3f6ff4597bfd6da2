//! ARTIFACTS: a string parameter may name an S3 object a device downloads
//! (a firmware image) with AWS IoT Jobs' placeholder,
//! `${aws:iot:s3-presigned-url-v2:https://s3.<region>.amazonaws.com/<bucket>/<key>}`
//! (or the older `${aws:iot:s3-presigned-url:…}`). The parameter is stored
//! as written; whenever the document goes to the device, each placeholder
//! is replaced by a presigned GET URL of a configured lifetime, so a device
//! always gets a URL that still works.
//!
//! This module finds, checks and substitutes placeholders; signing is the
//! functions' (`platform/presign.rs`). No I/O.

use crate::map::SortedMap;
use crate::value::TypedValue;

/// Parameters by name (`schema::Parameters`, named here without importing
/// the schema, which imports this module).
type Parameters = SortedMap<TypedValue>;

/// What every placeholder starts with (the generated JavaScript validators
/// ask core about strings that hold it).
pub const MARKER: &str = "${aws:iot:s3-presigned-url";

const PREFIXES: [&str; 2] = [
    "${aws:iot:s3-presigned-url-v2:",
    "${aws:iot:s3-presigned-url:",
];

/// An S3 object a placeholder names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct S3Object {
    pub bucket: String,
    /// As written in the URL (path segments percent-encoded or not).
    pub key: String,
    /// The region in the URL's host, if it names one.
    pub region: Option<String>,
}

/// A placeholder found in a string: its byte range and its object.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Found {
    start: usize,
    end: usize,
    object: S3Object,
}

/// The placeholders in `text`, in order; the first malformed one is an
/// error saying what is wrong with it.
fn find(text: &str) -> Result<Vec<Found>, &'static str> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some((start, prefix)) = PREFIXES
        .iter()
        .filter_map(|p| text[from..].find(p).map(|i| (from + i, *p)))
        .min_by_key(|(i, p)| (*i, usize::MAX - p.len()))
    {
        let body_start = start + prefix.len();
        let Some(len) = text[body_start..].find('}') else {
            return Err("an S3 placeholder has no closing }");
        };
        let object = parse_url(&text[body_start..body_start + len])?;
        let end = body_start + len + 1;
        found.push(Found { start, end, object });
        from = end;
    }
    Ok(found)
}

/// `https://s3[.<region>].amazonaws.com/<bucket>/<key>` (path style) or
/// `https://<bucket>.s3[.<region>].amazonaws.com/<key>` (virtual host).
fn parse_url(url: &str) -> Result<S3Object, &'static str> {
    const WANTED: &str = "an S3 placeholder holds https://s3.<region>.amazonaws.com/<bucket>/<key>";
    let rest = url.strip_prefix("https://").ok_or(WANTED)?;
    let (host, path) = rest.split_once('/').ok_or(WANTED)?;
    let host = host.strip_suffix(".amazonaws.com").ok_or(WANTED)?;
    let (bucket, key, region) = match host.split_once("s3") {
        // Path style: s3.amazonaws.com or s3.<region>.amazonaws.com.
        Some(("", region)) => {
            let (bucket, key) = path.split_once('/').ok_or(WANTED)?;
            (bucket, key, region)
        }
        // Virtual host: <bucket>.s3[.<region>].amazonaws.com.
        Some((bucket, region)) => (bucket.strip_suffix('.').ok_or(WANTED)?, path, region),
        None => return Err(WANTED),
    };
    let region = match region {
        "" => None,
        dotted => Some(
            dotted
                .strip_prefix('.')
                .filter(|r| {
                    !r.is_empty()
                        && r.bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                })
                .ok_or(WANTED)?
                .to_owned(),
        ),
    };
    let bucket_ok = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
    if !bucket_ok {
        return Err(
            "an S3 placeholder's bucket is 3-63 lowercase letters, digits, dots or hyphens",
        );
    }
    if key.is_empty() || key.len() > 1024 || key.contains(['?', '#']) {
        return Err("an S3 placeholder's key is 1-1024 bytes without ? or #");
    }
    Ok(S3Object {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        region,
    })
}

/// Whether every placeholder in `text` is well formed (a string parameter's
/// check, in the API and the WASM module alike).
pub fn check(text: &str) -> Result<(), &'static str> {
    find(text).map(drop)
}

/// The objects a string value's well-formed placeholders name, in order.
pub fn objects_in(text: &str) -> Vec<S3Object> {
    find(text)
        .unwrap_or_default()
        .into_iter()
        .map(|f| f.object)
        .collect()
}

/// `parameters` with every placeholder replaced by `url(object)`, or `None`
/// when they hold none (most executions: nothing is copied).
pub fn substitute(
    parameters: &Parameters,
    url: &dyn Fn(&S3Object) -> String,
) -> Option<Parameters> {
    let holds = |v: &TypedValue| matches!(v, TypedValue::S(s) if s.contains(MARKER));
    if !parameters.values().any(holds) {
        return None;
    }
    let mut out = parameters.clone();
    out.retain(|_, value| {
        if let TypedValue::S(s) = value {
            if let Ok(found) = find(s) {
                let mut text = String::with_capacity(s.len());
                let mut at = 0;
                for f in &found {
                    text.push_str(&s[at..f.start]);
                    text.push_str(&url(&f.object));
                    at = f.end;
                }
                text.push_str(&s[at..]);
                *s = text;
            }
        }
        true
    });
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(bucket: &str, key: &str, region: Option<&str>) -> S3Object {
        S3Object {
            bucket: bucket.into(),
            key: key.into(),
            region: region.map(Into::into),
        }
    }

    #[test]
    fn path_and_virtual_host_styles_with_and_without_a_region() {
        for (url, expected) in [
            (
                "https://s3.amazonaws.com/fw1/v2/image.bin",
                object("fw1", "v2/image.bin", None),
            ),
            (
                "https://s3.eu-west-1.amazonaws.com/my.fw/image.bin",
                object("my.fw", "image.bin", Some("eu-west-1")),
            ),
            (
                "https://fw-images.s3.amazonaws.com/a/b",
                object("fw-images", "a/b", None),
            ),
            (
                "https://fw-images.s3.us-east-2.amazonaws.com/a",
                object("fw-images", "a", Some("us-east-2")),
            ),
        ] {
            assert_eq!(parse_url(url), Ok(expected), "{url}");
        }
    }

    #[test]
    fn malformed_placeholders_are_refused_with_what_is_wrong() {
        for text in [
            "${aws:iot:s3-presigned-url:https://s3.amazonaws.com/fw1/image.bin",
            "${aws:iot:s3-presigned-url-v2:http://s3.amazonaws.com/fw1/image.bin}",
            "${aws:iot:s3-presigned-url-v2:https://example.com/fw/image.bin}",
            "${aws:iot:s3-presigned-url-v2:https://s3.amazonaws.com/fw1}",
            "${aws:iot:s3-presigned-url-v2:https://s3.amazonaws.com/UPPER/image.bin}",
            "${aws:iot:s3-presigned-url-v2:https://s3.amazonaws.com/fw1/a?versionId=1}",
        ] {
            assert!(check(text).is_err(), "{text}");
        }
        assert_eq!(check("no placeholder at all"), Ok(()));
        assert_eq!(check("a ${var} of another kind"), Ok(()));
    }

    #[test]
    fn every_placeholder_in_a_value_is_replaced_and_the_rest_kept() {
        let mut parameters = Parameters::default();
        parameters.insert(
            "url".into(),
            TypedValue::S("get ${aws:iot:s3-presigned-url-v2:https://s3.amazonaws.com/fw1/a.bin} then ${aws:iot:s3-presigned-url:https://s3.amazonaws.com/fw1/b.bin}!".into()),
        );
        parameters.insert("rate".into(), TypedValue::I(5));
        let Some(TypedValue::S(text)) = parameters.get("url") else {
            unreachable!()
        };
        assert_eq!(
            objects_in(text),
            [object("fw1", "a.bin", None), object("fw1", "b.bin", None)]
        );
        let out = substitute(&parameters, &|o: &S3Object| format!("<{}>", o.key)).unwrap();
        assert_eq!(
            out.get("url"),
            Some(&TypedValue::S("get <a.bin> then <b.bin>!".into()))
        );
        assert_eq!(out.get("rate"), Some(&TypedValue::I(5)));
        parameters.remove("url");
        assert_eq!(
            substitute(&parameters, &|_: &S3Object| unreachable!()),
            None
        );
    }
}
