//! PRESIGNED S3 URLS for artifacts (`courier_core::artifact`): SigV4 query
//! signing with the SDK's own signer (aws-sigv4) and the function's
//! credentials, computed without a network call. Which buckets may be
//! named, how long a URL lives, and (locally) where S3 is come from the
//! configuration. No I/O.

use aws_sdk_dynamodb::config::Credentials;
use aws_sigv4::http_request::{
    sign, PercentEncodingMode, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
    UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use courier_core::artifact::S3Object;
use courier_core::Timestamp;
use std::time::{Duration, SystemTime};

/// How artifact placeholders become URLs (`ARTIFACT_BUCKETS`,
/// `ARTIFACT_URL_SECONDS`, `ARTIFACT_ENDPOINT`).
#[derive(Debug, Clone)]
pub struct ArtifactSigner {
    /// The buckets placeholders may name (the function role may read them).
    pub buckets: Vec<String>,
    /// How long a URL works: 60 to 3600 seconds, as AWS IoT Jobs allows.
    pub lifetime: Duration,
    /// The region of a bucket whose placeholder names none.
    pub region: String,
    /// Locally: S3's URL (moto), path style; deployed: none.
    pub endpoint: Option<String>,
    pub credentials: Credentials,
}

/// Query values are encoded as SigV4 signs them: all but `A-Za-z0-9-._~`.
const QUERY_VALUE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

impl ArtifactSigner {
    pub fn allows(&self, bucket: &str) -> bool {
        self.buckets.iter().any(|b| b == bucket)
    }

    /// A GET URL for `object`, signed at `now`, valid for the lifetime.
    pub fn presign(&self, object: &S3Object, now: Timestamp) -> Result<String, String> {
        let region = object.region.as_deref().unwrap_or(&self.region);
        let url = match &self.endpoint {
            Some(endpoint) => format!(
                "{}/{}/{}",
                endpoint.trim_end_matches('/'),
                object.bucket,
                object.key
            ),
            // Virtual-hosted style, as AWS IoT Jobs' own presigned URLs are:
            // the AWS IoT Device Client recognises a document it was already
            // given by masking the signature of URLs of this form only, so a
            // path-style URL signed afresh made a repeated notify-next look
            // like a new job, and it ran the job again. A bucket with a dot
            // stays path-style (S3's TLS certificate covers one label).
            None if !object.bucket.contains('.') => format!(
                "https://{}.s3.{region}.amazonaws.com/{}",
                object.bucket, object.key
            ),
            None => format!(
                "https://s3.{region}.amazonaws.com/{}/{}",
                object.bucket, object.key
            ),
        };
        let mut settings = SigningSettings::default();
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(self.lifetime);
        // S3 signs the path as sent: encoded once, never normalized.
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        let identity = self.credentials.clone().into();
        let at = SystemTime::UNIX_EPOCH + Duration::from_millis(now.millis().max(0) as u64);
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(region)
            .name("s3")
            .time(at)
            .settings(settings)
            .build()
            .map_err(|e| e.to_string())?
            .into();
        let request = SignableRequest::new(
            "GET",
            url.as_str(),
            std::iter::empty(),
            SignableBody::UnsignedPayload,
        )
        .map_err(|e| e.to_string())?;
        let (instructions, _) = sign(request, &params)
            .map_err(|e| e.to_string())?
            .into_parts();
        let (_, query) = instructions.into_parts();
        let query: Vec<String> = query
            .iter()
            .map(|(k, v)| {
                format!(
                    "{k}={}",
                    percent_encoding::utf8_percent_encode(v, QUERY_VALUE)
                )
            })
            .collect();
        Ok(format!("{url}?{}", query.join("&")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer(endpoint: Option<&str>) -> ArtifactSigner {
        ArtifactSigner {
            buckets: vec!["fw-images".into()],
            lifetime: Duration::from_secs(900),
            region: "eu-west-1".into(),
            endpoint: endpoint.map(Into::into),
            credentials: Credentials::new("AKIDEXAMPLE", "secret", None, None, "test"),
        }
    }

    fn object(region: Option<&str>) -> S3Object {
        S3Object {
            bucket: "fw-images".into(),
            key: "v2/image.bin".into(),
            region: region.map(Into::into),
        }
    }

    #[test]
    fn a_url_names_the_object_the_lifetime_and_the_signer() {
        let url = signer(None)
            .presign(&object(None), Timestamp::from_secs(1_795_000_000))
            .unwrap();
        assert!(
            url.starts_with("https://fw-images.s3.eu-west-1.amazonaws.com/v2/image.bin?"),
            "{url}"
        );
        for part in [
            "X-Amz-Algorithm=AWS4-HMAC-SHA256",
            "X-Amz-Credential=AKIDEXAMPLE%2F20261118%2Feu-west-1%2Fs3%2Faws4_request",
            "X-Amz-Date=20261118T110640Z",
            "X-Amz-Expires=900",
            "X-Amz-SignedHeaders=host",
            "X-Amz-Signature=",
        ] {
            assert!(url.contains(part), "{part} in {url}");
        }
    }

    /// The same requests presigned by botocore (`S3SigV4QueryAuth`, the
    /// clock fixed at 2026-11-18T11:06:40Z): an independent implementation
    /// gives the same URLs, signatures included.
    #[test]
    fn the_url_is_the_one_botocore_signs() {
        let at = Timestamp::from_secs(1_795_000_000);
        let url = signer(None).presign(&object(None), at).unwrap();
        assert_eq!(
            url,
            "https://fw-images.s3.eu-west-1.amazonaws.com/v2/image.bin?X-Amz-Algorithm=AWS4-HMAC-SHA256\
             &X-Amz-Credential=AKIDEXAMPLE%2F20261118%2Feu-west-1%2Fs3%2Faws4_request\
             &X-Amz-Date=20261118T110640Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host\
             &X-Amz-Signature=1b27ba88e184ed7eba5f7f3b30128cbbd046239e9d24fd3077dfd4a6e210049b"
        );
        // A bucket with a dot: path style.
        let dotted = S3Object {
            bucket: "fw.images".into(),
            ..object(None)
        };
        let mut dotted_signer = signer(None);
        dotted_signer.buckets = vec!["fw.images".into()];
        let url = dotted_signer.presign(&dotted, at).unwrap();
        assert_eq!(
            url,
            "https://s3.eu-west-1.amazonaws.com/fw.images/v2/image.bin?X-Amz-Algorithm=AWS4-HMAC-SHA256\
             &X-Amz-Credential=AKIDEXAMPLE%2F20261118%2Feu-west-1%2Fs3%2Faws4_request\
             &X-Amz-Date=20261118T110640Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host\
             &X-Amz-Signature=563e027d3812c7af5719aa2634f161e5b3aff929cb5bcb61899c982ae228295a"
        );
    }

    #[test]
    fn a_placeholder_naming_a_region_is_signed_for_it_and_locally_for_the_endpoint() {
        let url = signer(Some("http://127.0.0.1:5011/"))
            .presign(
                &object(Some("us-east-2")),
                Timestamp::from_secs(1_795_000_000),
            )
            .unwrap();
        assert!(
            url.starts_with("http://127.0.0.1:5011/fw-images/v2/image.bin?"),
            "{url}"
        );
        assert!(url.contains("%2Fus-east-2%2Fs3%2F"), "{url}");
    }

    #[test]
    fn the_same_object_at_the_same_time_signs_the_same() {
        let at = Timestamp::from_secs(1_795_000_000);
        let s = signer(None);
        assert_eq!(s.presign(&object(None), at), s.presign(&object(None), at));
        assert_ne!(
            s.presign(&object(None), at),
            s.presign(&object(None), Timestamp::from_secs(1_795_000_001))
        );
    }
}
