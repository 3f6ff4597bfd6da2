//! JOBS: create, get, list and cancel a job (one command to a fleet), and
//! list its executions. I/O through the store and the thing-group resolver;
//! carrying a job out is `job_runner`'s.

use super::{Courier, Listing};
use crate::error::ServiceError;
use crate::platform::ids;
use crate::platform::thing_groups::ThingGroups;
use crate::store::{CreateJobOutcome, JobStore, StoreError};
use courier_core::job_run::CancelSweep;
use courier_core::json::Json;
use courier_core::text::quote;
use courier_core::{
    CancelJob, ClientToken, CommandExecution, CreateJob, ExecutionStatus, Job, JobId,
    JobStatistics, JobStatus, Timestamp, ValidationCode, ValidationErrors,
};
use serde::Serialize;

/// `GET /jobs/{jobId}`: the job and its statistics.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobView {
    #[serde(flatten)]
    pub job: Job,
    pub statistics: JobStatistics,
}

impl JobView {
    /// A completed job shows its recounted statistics, a running one the
    /// live counters.
    pub fn new(job: Job, live: JobStatistics) -> Self {
        let statistics = job.final_statistics.clone().unwrap_or(live);
        Self { job, statistics }
    }
}

pub(super) fn job_id_param(raw: &str) -> Result<JobId, ServiceError> {
    Ok(JobId::parse_at(raw, "jobId").map_err(ValidationErrors::from)?)
}

pub(super) fn not_found(id: &JobId) -> ServiceError {
    ServiceError::NotFound {
        what: "job",
        id: id.to_string(),
    }
}

impl<S: JobStore> Courier<S> {
    /// `POST /jobs`. Returns the job and whether it was created now (false:
    /// an idempotent retry with the same jobId or clientToken).
    pub async fn create_job<G: ThingGroups>(
        &self,
        groups: &G,
        body: &Json,
        now: Timestamp,
    ) -> Result<(JobView, bool), ServiceError> {
        let command_id = match body.get("commandId") {
            Some(Json::String(id)) => id.clone(),
            _ => {
                return Err(ServiceError::validation(
                    "commandId",
                    ValidationCode::MissingRequired,
                    "commandId (the command every target runs) is required",
                ))
            }
        };
        let validator = self.validator(&command_id).await?;
        let request = CreateJob::parse(body, &validator, now)?;
        self.check_artifacts(&request.parameters, "parameters")?;
        let client_token = match body.get("clientToken") {
            Some(Json::String(t)) => {
                Some(ClientToken::parse_at(t, "clientToken").map_err(ValidationErrors::from)?)
            }
            _ => None,
        };
        super::targets::check_targets(groups, &request.targets).await?;
        let mut hashed = serde_json::json!([
            command_id,
            request.parameters,
            request.targets,
            request.rollout,
            request.abort,
            request.retry,
            request.scheduling,
        ]);
        // Only a job that names a retryPolicy hashes it, so a request from
        // before policies existed keeps its hash.
        if let (Some(policy), Some(list)) = (&request.retry_policy, hashed.as_array_mut()) {
            list.push(serde_json::json!(policy));
        }
        let request_hash = ids::fingerprint(hashed.to_string().as_bytes());
        let job_id = request
            .job_id
            .clone()
            .unwrap_or_else(|| ids::job_id(client_token.as_ref()));
        let (job, targets) = request.into_job(job_id, validator.definition(), client_token, now);
        match self
            .store()
            .create_job(&job, targets.as_deref(), &request_hash)
            .await?
        {
            CreateJobOutcome::Created(job) => {
                tracing::info!(job_id = %job.job_id, command_id = %job.command_id, targets = ?job.targets, "job created");
                Ok((
                    JobView {
                        job,
                        statistics: JobStatistics::default(),
                    },
                    true,
                ))
            }
            CreateJobOutcome::Existing {
                job,
                same_request: true,
            } if job.time_to_live > now => Ok((self.get_job(job.job_id.as_str(), now).await?, false)),
            CreateJobOutcome::Existing { job, same_request: true } => Err(ServiceError::Conflict(format!(
                "job {} has ended and expired, and its record is not removed yet; use a new jobId or clientToken",
                job.job_id
            ))),
            CreateJobOutcome::Existing { job, .. } => Err(ServiceError::Conflict(format!(
                "job {} exists with a different request; use a new jobId or clientToken",
                job.job_id
            ))),
        }
    }

    /// `GET /jobs/{jobId}`.
    pub async fn get_job(&self, raw_id: &str, now: Timestamp) -> Result<JobView, ServiceError> {
        let id = job_id_param(raw_id)?;
        let (job, live) = self
            .store()
            .get_job(&id, now)
            .await?
            .ok_or_else(|| not_found(&id))?;
        Ok(JobView::new(job, live))
    }

    /// `GET /jobs`, newest first.
    pub async fn list_jobs(
        &self,
        limit: Option<&str>,
        next_token: Option<&str>,
        now: Timestamp,
    ) -> Result<Listing<Job>, ServiceError> {
        let scope = "jobs";
        let page = self.page_request(scope, limit, next_token)?;
        let mut page = self.store().list_jobs(page, now).await?;
        for job in &mut page.items {
            job.redacted_parameters = self.redact(&job.command_id, &mut job.parameters).await;
        }
        Ok(self.listing(scope, page))
    }

    /// `GET /jobs/{jobId}/executions?status=&limit=&nextToken=`. A status
    /// filter keeps the page's matches (pages may come back short; follow
    /// `nextToken`).
    pub async fn list_job_executions(
        &self,
        raw_id: &str,
        status: Option<&str>,
        limit: Option<&str>,
        next_token: Option<&str>,
        now: Timestamp,
    ) -> Result<Listing<CommandExecution>, ServiceError> {
        let id = job_id_param(raw_id)?;
        let status = match status {
            None => None,
            Some(raw) => Some(ExecutionStatus::parse(raw).ok_or_else(|| {
                let all: Vec<&str> = ExecutionStatus::ALL.iter().map(|s| s.as_str()).collect();
                ServiceError::validation(
                    "status",
                    ValidationCode::InvalidValue,
                    format!(
                        "{} is not a status; use one of {}",
                        quote(raw),
                        all.join(", ")
                    ),
                )
            })?),
        };
        // Stable text, never `Debug`: live tokens outlive a renamed type.
        let scope = format!(
            "jobs/{id}/executions?status={}",
            status.map_or("", ExecutionStatus::as_str)
        );
        let page = self.page_request(&scope, limit, next_token)?;
        if self.store().get_job(&id, now).await?.is_none() {
            return Err(not_found(&id));
        }
        let mut page = self.store().job_executions(&id, page, now).await?;
        page.items = page
            .items
            .into_iter()
            .map(|e| e.observed(now))
            .filter(|e| status.is_none_or(|s| e.status == s))
            .collect();
        self.redact_all(&mut page.items).await;
        Ok(self.listing(&scope, page))
    }

    /// `POST /jobs/{jobId}/cancel` `{force?, reasonCode?, comment?}`: the job
    /// becomes CANCELED and its executions that have not ended are canceled
    /// in the background (IN_PROGRESS ones only with `force`). Canceling a
    /// canceled job returns it (safe to retry); an ended one is refused.
    pub async fn cancel_job(
        &self,
        raw_id: &str,
        body: &Json,
        caller: &str,
        now: Timestamp,
    ) -> Result<JobView, ServiceError> {
        let id = job_id_param(raw_id)?;
        let CancelJob { force, reason } = CancelJob::parse(body)?;
        for _ in 0..5 {
            let (job, statistics) = self
                .store()
                .get_job(&id, now)
                .await?
                .ok_or_else(|| not_found(&id))?;
            match job.status {
                JobStatus::Canceled => return Ok(JobView::new(job, statistics)),
                JobStatus::Completed | JobStatus::Aborted => {
                    return Err(ServiceError::JobEnded {
                        id: id.to_string(),
                        status: job.status,
                    })
                }
                JobStatus::Scheduled | JobStatus::InProgress => {}
            }
            let mut canceled = job.finish(
                JobStatus::Canceled,
                Some(reason.clone()),
                Some(CancelSweep {
                    force,
                    ..CancelSweep::default()
                }),
                now,
            );
            canceled.canceled_by = Some(caller.to_owned());
            match self.store().put_job(&canceled, job.version).await {
                Ok(()) => {
                    tracing::info!(job_id = %id, force, "job canceled");
                    return Ok(JobView {
                        job: canceled,
                        statistics,
                    });
                }
                Err(StoreError::Conflict(_)) => continue,
                Err(other) => return Err(other.into()),
            }
        }
        Err(ServiceError::Throttled(format!(
            "job {id} kept changing while it was being canceled"
        )))
    }
}
