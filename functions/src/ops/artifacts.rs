//! ARTIFACTS: S3 placeholders in string parameters
//! (`courier_core::artifact`). At creation a placeholder must name a bucket
//! Courier may sign for (`ARTIFACT_BUCKETS`); whenever a document goes to a
//! device (notify-next, start-next, describe, update replies, the commands
//! protocol's request) it gets a copy of the execution whose placeholders
//! are presigned GET URLs, signed at that moment. The stored record keeps
//! the placeholder. No I/O (signing is local).

use super::Courier;
use crate::error::ServiceError;
use crate::platform::presign::ArtifactSigner;
use courier_core::artifact::{self, S3Object};
use courier_core::schema::Parameters;
use courier_core::text::quote;
use courier_core::value::TypedValue;
use courier_core::{CommandExecution, Timestamp, ValidationCode, ValidationErrors};
use std::borrow::Cow;

impl<S> Courier<S> {
    /// Every placeholder in `parameters` (at `path`, e.g. `parameters`)
    /// names a bucket this deployment signs for.
    pub(crate) fn check_artifacts(
        &self,
        parameters: &Parameters,
        path: &str,
    ) -> Result<(), ServiceError> {
        let mut errors = ValidationErrors::new();
        for (name, value) in parameters.iter() {
            let TypedValue::S(text) = value else { continue };
            for object in artifact::objects_in(text) {
                let allowed = self
                    .artifacts
                    .as_ref()
                    .is_some_and(|signer| signer.allows(&object.bucket));
                if !allowed {
                    errors.add(
                        format!("{path}.{name}"),
                        ValidationCode::InvalidValue,
                        format!(
                            "bucket {} is not an artifact bucket of this deployment (ARTIFACT_BUCKETS)",
                            quote(&object.bucket)
                        ),
                    );
                }
            }
        }
        Ok(errors.into_result(())?)
    }

    /// `execution` as a device is to see it at `now`: its placeholders
    /// replaced by presigned URLs (the record itself when it has none).
    pub(crate) fn for_device<'a>(
        &self,
        execution: &'a CommandExecution,
        now: Timestamp,
    ) -> Cow<'a, CommandExecution> {
        for_device(self.artifacts.as_deref(), execution, now)
    }
}

/// [`Courier::for_device`] for callers that hold only the signer.
pub(crate) fn for_device<'a>(
    signer: Option<&ArtifactSigner>,
    execution: &'a CommandExecution,
    now: Timestamp,
) -> Cow<'a, CommandExecution> {
    let Some(signer) = signer else {
        return Cow::Borrowed(execution);
    };
    let url = |object: &S3Object| match signer.presign(object, now) {
        Ok(url) => url,
        Err(why) => {
            // The object was checked at creation, so this is a bug: the
            // device gets the bare s3:// address (its download fails
            // visibly) and the log says why.
            tracing::error!(bucket = %object.bucket, key = %object.key, %why, "presigning an artifact failed");
            format!("s3://{}/{}", object.bucket, object.key)
        }
    };
    match artifact::substitute(&execution.parameters, &url) {
        None => Cow::Borrowed(execution),
        Some(parameters) => {
            let mut copy = execution.clone();
            copy.parameters = parameters;
            Cow::Owned(copy)
        }
    }
}
