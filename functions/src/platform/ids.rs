//! IDS: execution and job ids, random or derived from what the caller sent
//! (randomness lives here, not in core), and request fingerprints. Does no
//! I/O beyond reading the OS random source.

use courier_core::{ClientToken, DeviceProtocol, ExecutionId, JobId, PipelineId, RunId, ThingName};
use sha2::{Digest, Sha256};

/// A fresh random id, UUID v4 text form.
pub fn random_execution_id() -> ExecutionId {
    let mut bytes = [0u8; 16];
    // The OS random source does not fail on Lambda or Linux; if it ever did,
    // a time-and-address fallback still gives a unique-enough id.
    if getrandom::getrandom(&mut bytes).is_err() {
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let fallback = format!("{since_epoch}{:p}", &bytes);
        bytes.copy_from_slice(&Sha256::digest(fallback.as_bytes())[..16]);
    }
    uuid_text(bytes, 4)
}

/// The id for a create carrying `token`: derived from the token, so a retry
/// lands on the same item and the conditional put finds it (UUID v8 form).
pub fn execution_id_for_token(token: &ClientToken) -> ExecutionId {
    derived_id(&format!("courier/execution/{token}"))
}

/// An id derived from `seed` (UUID v8 form from its SHA-256).
fn derived_id(seed: &str) -> ExecutionId {
    let digest = Sha256::digest(seed.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid_text(bytes, 8)
}

/// A job's execution for `thing`: derived from both, so a fan-out chunk
/// written twice lands on the same items (UUID v8 form).
pub fn job_execution_id(job: &JobId, thing: &ThingName) -> ExecutionId {
    derived_id(&format!("courier/job/{job}/{thing}"))
}

/// A job id for a create carrying `token` (a retry finds the same job), else
/// a random one.
pub fn job_id(token: Option<&ClientToken>) -> JobId {
    let id = match token {
        Some(token) => derived_id(&format!("courier/job/{token}")),
        None => random_execution_id(),
    };
    JobId::parse(id.as_str()).expect("a UUID is a valid job id")
}

/// A run id for a start carrying `token` (a retry finds the same run),
/// else a random one.
pub fn run_id(pipeline: &PipelineId, token: Option<&ClientToken>) -> RunId {
    let id = match token {
        Some(token) => derived_id(&format!("courier/run/{pipeline}/{token}")),
        None => random_execution_id(),
    };
    RunId::parse(id.as_str()).expect("a UUID is a valid run id")
}

/// The execution of a run's operation (`stage`, `operation`) for `thing`:
/// derived from all four, so a redelivered step lands on the same item.
///
/// A Jobs-protocol operation's id is its 128 bits in URL-safe base64, 22
/// characters (a valid AWS IoT jobId in its MQTT topics): the item and its
/// index entries hold the id six times while the execution runs, and these
/// 14 bytes less each keep a run's execution (which also carries its run
/// and operation) within DynamoDB's 1 KB write unit, as a single
/// execution is. A commands-protocol operation keeps the UUID form AWS IoT
/// commands devices are given.
pub fn run_execution_id(
    run: &RunId,
    thing: &ThingName,
    stage: u32,
    operation: u32,
    protocol: DeviceProtocol,
) -> ExecutionId {
    let seed = format!("courier/run/{run}/{thing}/{stage}/{operation}");
    match protocol {
        DeviceProtocol::Commands => derived_id(&seed),
        DeviceProtocol::Jobs => {
            let digest = Sha256::digest(seed.as_bytes());
            let text = url_safe_base64(&digest[..16]);
            ExecutionId::parse(&text).expect("URL-safe base64 is a valid execution id")
        }
    }
}

/// `bytes` in URL-safe base64 without padding (letters, digits, '-', '_').
fn url_safe_base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

fn uuid_text(mut bytes: [u8; 16], version: u8) -> ExecutionId {
    bytes[6] = (bytes[6] & 0x0f) | (version << 4);
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let text = format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    );
    ExecutionId::parse(&text).expect("a UUID is a valid execution id")
}

/// SHA-256 of `data`, hex: request fingerprints.
pub fn fingerprint(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_safe_base64_matches_the_rfc_4648_vectors() {
        // RFC 4648 §10, in the URL-safe alphabet without padding.
        for (input, expected) in [
            ("", ""),
            ("f", "Zg"),
            ("fo", "Zm8"),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg"),
            ("fooba", "Zm9vYmE"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(url_safe_base64(input.as_bytes()), expected);
        }
        assert_eq!(url_safe_base64(&[0xfb, 0xff]), "-_8");
    }

    #[test]
    fn a_jobs_operation_id_is_22_characters_and_a_commands_one_a_uuid() {
        let run = RunId::parse("r-1").unwrap();
        let thing = ThingName::parse("dev-1").unwrap();
        let jobs = run_execution_id(&run, &thing, 1, 2, DeviceProtocol::Jobs);
        assert_eq!(jobs.as_str().len(), 22);
        assert_eq!(
            jobs,
            run_execution_id(&run, &thing, 1, 2, DeviceProtocol::Jobs)
        );
        assert_ne!(
            jobs,
            run_execution_id(&run, &thing, 1, 3, DeviceProtocol::Jobs)
        );
        let commands = run_execution_id(&run, &thing, 1, 2, DeviceProtocol::Commands);
        assert_eq!(commands.as_str().len(), 36);
    }

    #[test]
    fn token_ids_are_stable_and_random_ids_differ() {
        let token = ClientToken::parse("retry-me").unwrap();
        assert_eq!(
            execution_id_for_token(&token),
            execution_id_for_token(&token)
        );
        assert_ne!(random_execution_id(), random_execution_id());
        assert_eq!(random_execution_id().as_str().len(), 36);
    }
}
