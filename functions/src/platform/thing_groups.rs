//! Resolving a job's or a run's targets to thing names: the [`ThingGroups`]
//! trait the runners are generic over, and its implementation on the AWS IoT
//! control plane — a thing group (`ListThingsInThingGroup`, paginated,
//! optionally recursive) or a fleet-index query (`SearchIndex` on
//! `AWS_Things`, paginated). Does I/O.
//!
//! Locally the same code talks to moto's server (PyPI `moto[server]`), which
//! serves the IoT control plane; the SDK's own `AWS_ENDPOINT_URL_IOT`
//! variable points it there.

use courier_core::ThingName;
use std::future::Future;

/// One page of a group's things and the token of the next page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupPage {
    pub things: Vec<ThingName>,
    pub next_token: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum GroupError {
    #[error("thing group {} does not exist", courier_core::text::quote(.0))]
    NotFound(String),
    /// Worth retrying (throttled, unreachable).
    #[error("listing thing group {} failed: {message}", courier_core::text::quote(.group))]
    Unavailable { group: String, message: String },
    /// The fleet index refused the query (its syntax), or fleet indexing is
    /// not enabled: the caller's to fix.
    #[error("{0}")]
    QueryRefused(String),
}

pub trait ThingGroups: Send + Sync {
    fn page(
        &self,
        group: &str,
        recursive: bool,
        token: Option<&str>,
        max: u32,
    ) -> impl Future<Output = Result<GroupPage, GroupError>> + Send;

    /// One page of the things a fleet-index query finds.
    fn search(
        &self,
        query: &str,
        token: Option<&str>,
        max: u32,
    ) -> impl Future<Output = Result<GroupPage, GroupError>> + Send;
}

/// The AWS IoT control plane.
#[derive(Debug, Clone)]
pub struct IotThingGroups {
    client: aws_sdk_iot::Client,
}

impl IotThingGroups {
    pub fn new(client: aws_sdk_iot::Client) -> Self {
        Self { client }
    }
}

impl ThingGroups for IotThingGroups {
    async fn page(
        &self,
        group: &str,
        recursive: bool,
        token: Option<&str>,
        max: u32,
    ) -> Result<GroupPage, GroupError> {
        let out = self
            .client
            .list_things_in_thing_group()
            .thing_group_name(group)
            .recursive(recursive)
            .set_next_token(token.map(str::to_owned))
            .max_results(i32::try_from(max.clamp(1, 250)).unwrap_or(250))
            .send()
            .await
            .map_err(|e| {
                if e.as_service_error()
                    .is_some_and(aws_sdk_iot::operation::list_things_in_thing_group::ListThingsInThingGroupError::is_resource_not_found_exception)
                {
                    GroupError::NotFound(group.to_owned())
                } else {
                    GroupError::Unavailable {
                        group: group.to_owned(),
                        message: aws_sdk_iot::error::DisplayErrorContext(&e).to_string(),
                    }
                }
            })?;
        let mut things = Vec::with_capacity(out.things().len());
        for raw in out.things() {
            match ThingName::parse(raw) {
                Ok(name) => things.push(name),
                // IoT's own names always parse; skip rather than stall a job.
                Err(err) => {
                    tracing::warn!(thing = %raw, error = %err, "unusable thing name skipped")
                }
            }
        }
        Ok(GroupPage {
            things,
            next_token: out.next_token.filter(|t| !t.is_empty()),
        })
    }

    async fn search(
        &self,
        query: &str,
        token: Option<&str>,
        max: u32,
    ) -> Result<GroupPage, GroupError> {
        use aws_sdk_iot::error::ProvideErrorMetadata;
        use aws_sdk_iot::operation::search_index::SearchIndexError;
        let out = self
            .client
            .search_index()
            .index_name("AWS_Things")
            .query_string(query)
            .set_next_token(token.map(str::to_owned))
            .max_results(i32::try_from(max.clamp(1, 500)).unwrap_or(500))
            .send()
            .await
            .map_err(|e| {
                let message = aws_sdk_iot::error::DisplayErrorContext(&e).to_string();
                match e.as_service_error() {
                    // The caller sees the service's own sentence (its error
                    // context holds the SDK's debug output and request id).
                    Some(
                        refused @ (SearchIndexError::InvalidQueryException(_)
                        | SearchIndexError::InvalidRequestException(_)),
                    ) => GroupError::QueryRefused(format!(
                        "the fleet index refused the query: {}",
                        refused.message().unwrap_or("it is not a valid query")
                    )),
                    Some(SearchIndexError::ResourceNotFoundException(_)) => GroupError::QueryRefused(
                        "fleet indexing of things is not enabled in this account and region (AWS IoT UpdateIndexingConfiguration)".into(),
                    ),
                    _ => GroupError::Unavailable {
                        group: format!("query {}", courier_core::text::quote(query)),
                        message,
                    },
                }
            })?;
        let mut things = Vec::with_capacity(out.things().len());
        for thing in out.things() {
            match thing.thing_name().map(ThingName::parse) {
                Some(Ok(name)) => things.push(name),
                Some(Err(err)) => {
                    tracing::warn!(error = %err, "unusable thing name skipped")
                }
                None => {}
            }
        }
        Ok(GroupPage {
            things,
            next_token: out.next_token.filter(|t| !t.is_empty()),
        })
    }
}
