//! TARGETS RESOLVED: a job's or a run's thing group or fleet-index query,
//! checked when it is created and read page by page when it fans out,
//! through the platform's [`ThingGroups`]. I/O through it only.

use crate::error::ServiceError;
use crate::platform::thing_groups::{GroupError, GroupPage, ThingGroups};
use courier_core::job::Targets;
use courier_core::job_run::JobTargets;
use courier_core::ValidationCode;

/// Refuses at creation what cannot resolve: an unknown thing group (404),
/// a query the fleet index refuses (400 at `targets.query`), rather than
/// run on nobody. An explicit list needs no check.
pub(crate) async fn check_targets<G: ThingGroups>(
    groups: &G,
    targets: &Targets,
) -> Result<(), ServiceError> {
    let checked = match targets {
        Targets::Things(_) => return Ok(()),
        Targets::ThingGroup { name, recursive } => groups.page(name, *recursive, None, 1).await,
        Targets::Query { query_string } => groups.search(query_string, None, 1).await,
    };
    match checked {
        Ok(_) => Ok(()),
        Err(GroupError::NotFound(group)) => Err(ServiceError::NotFound {
            what: "thing group",
            id: group,
        }),
        Err(GroupError::QueryRefused(message)) => Err(ServiceError::validation(
            "targets.query",
            ValidationCode::InvalidValue,
            message,
        )),
        Err(err @ GroupError::Unavailable { .. }) => {
            Err(ServiceError::Unavailable(err.to_string()))
        }
    }
}

/// One page (`count` at most) of a group's or a query's things after
/// `token`. A group deleted, or a query refused, since the targets were
/// checked gives an empty last page: nothing more to send.
pub(crate) async fn targets_page<G: ThingGroups>(
    groups: &G,
    targets: &JobTargets,
    token: Option<&str>,
    count: u32,
) -> Result<GroupPage, ServiceError> {
    let page = match targets {
        JobTargets::Things { .. } => {
            return Err(ServiceError::Internal(
                "an explicit target list is read from the table, not resolved".into(),
            ))
        }
        JobTargets::ThingGroup { name, recursive } => {
            groups.page(name, *recursive, token, count).await
        }
        JobTargets::Query { query_string } => groups.search(query_string, token, count).await,
    };
    match page {
        Ok(page) => Ok(page),
        Err(err @ (GroupError::NotFound(_) | GroupError::QueryRefused(_))) => {
            tracing::warn!(error = %err, "targets no longer resolve; nothing more to send");
            Ok(GroupPage {
                things: Vec::new(),
                next_token: None,
            })
        }
        Err(err @ GroupError::Unavailable { .. }) => {
            Err(ServiceError::Unavailable(err.to_string()))
        }
    }
}
