//! FAILURES of the DynamoDB calls, classified: throttled and unavailable
//! (worth retrying) apart from the rest, the item a failed condition
//! returned, and the backoff between retries. No I/O besides the backoff's
//! sleep.

use super::Item;
use super::StoreError;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};

pub(super) fn is_conditional_failure<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    err.as_service_error().and_then(ProvideErrorMetadata::code)
        == Some("ConditionalCheckFailedException")
}

/// The item a failed condition returned (ReturnValuesOnConditionCheckFailure).
pub(super) fn conditional_failure_item<E, R>(err: &SdkError<E, R>) -> Option<Item>
where
    E: ConditionalFailure,
{
    err.as_service_error()
        .and_then(ConditionalFailure::old_item)
}

pub(super) trait ConditionalFailure {
    fn old_item(&self) -> Option<Item>;
}

macro_rules! conditional_failure {
    ($($error:ty),*) => {$(
        impl ConditionalFailure for $error {
            fn old_item(&self) -> Option<Item> {
                match self {
                    Self::ConditionalCheckFailedException(e) => e.item().cloned(),
                    _ => None,
                }
            }
        }
    )*};
}
conditional_failure!(
    aws_sdk_dynamodb::operation::put_item::PutItemError,
    aws_sdk_dynamodb::operation::update_item::UpdateItemError,
    aws_sdk_dynamodb::operation::delete_item::DeleteItemError
);

/// Sorts an SDK failure into retryable (throttled, unavailable) or not.
pub(super) fn classify<E, R>(err: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    let text = aws_sdk_dynamodb::error::DisplayErrorContext(&err).to_string();
    match &err {
        SdkError::ServiceError(service) => match service.err().code() {
            Some(
                "ProvisionedThroughputExceededException"
                | "ThrottlingException"
                | "RequestLimitExceeded",
            ) => StoreError::Throttled(text),
            Some("InternalServerError" | "ServiceUnavailable") => StoreError::Unavailable(text),
            _ => StoreError::Internal(text),
        },
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            StoreError::Unavailable(text)
        }
        _ => StoreError::Internal(text),
    }
}

pub(super) fn internal(err: impl std::fmt::Display) -> StoreError {
    StoreError::Internal(err.to_string())
}

/// Exponential backoff with full jitter: 25 ms × 2^attempt, capped at 1 s.
pub(super) async fn backoff(attempt: u32) {
    let cap = 25u64.saturating_mul(1 << attempt.min(6)).min(1000);
    let mut byte = [0u8; 2];
    let jitter = match getrandom::getrandom(&mut byte) {
        Ok(()) => u64::from(u16::from_le_bytes(byte)) % cap.max(1),
        Err(_) => cap / 2,
    };
    tokio::time::sleep(std::time::Duration::from_millis(jitter)).await;
}
