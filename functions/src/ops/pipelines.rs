//! PIPELINES: create, get and list pipelines; start, get, list, cancel and
//! resume their runs, and list a run's target runs. I/O through the store
//! and the thing-group resolver; carrying a run out is `pipeline_runner`'s.

use super::{Courier, Listing};
use crate::error::ServiceError;
use crate::platform::ids;
use crate::platform::thing_groups::ThingGroups;
use crate::store::pipeline_store::{CreateRunOutcome, PipelineStore};
use crate::store::{PutOutcome, StoreError};
use courier_core::job::Targets;
use courier_core::json::Json;
use courier_core::pipeline::{CreatePipeline, Pipeline};
use courier_core::pipeline_run::{
    PipelineRun, RunCancel, RunStatus, StageCounts, StartRun, TargetRun, TargetStatus,
};
use courier_core::text::quote;
use courier_core::{
    CommandId, PipelineId, RunId, StatusReason, Timestamp, ValidationCode, ValidationErrors,
    Validator,
};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// `GET /pipelines/{id}/runs/{runId}`: the run, its counts per wave and
/// stage (in the record), and each stage's totals over the waves.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunView {
    #[serde(flatten)]
    pub run: PipelineRun,
    pub stages: Vec<StageView>,
}

/// One stage of a run: its name and its counts summed over the waves.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StageView {
    pub name: String,
    #[serde(flatten)]
    pub totals: StageCounts,
}

impl RunView {
    pub fn new(run: PipelineRun, pipeline: &Pipeline) -> Self {
        let stages = pipeline
            .stages
            .iter()
            .enumerate()
            .map(|(k, stage)| StageView {
                name: stage.name.to_string(),
                totals: run.stage_totals(k as u32),
            })
            .collect();
        Self { run, stages }
    }
}

fn pipeline_id_param(raw: &str) -> Result<PipelineId, ServiceError> {
    Ok(PipelineId::parse_at(raw, "pipelineId").map_err(ValidationErrors::from)?)
}

fn run_id_param(raw: &str) -> Result<RunId, ServiceError> {
    Ok(RunId::parse_at(raw, "runId").map_err(ValidationErrors::from)?)
}

fn run_not_found(id: &RunId) -> ServiceError {
    ServiceError::NotFound {
        what: "run",
        id: id.to_string(),
    }
}

impl<S: PipelineStore> Courier<S> {
    /// `POST /pipelines`. Returns the stored pipeline and whether it was
    /// created now (false: the same definition existed, a retry).
    pub async fn create_pipeline(
        &self,
        body: &Json,
        now: Timestamp,
    ) -> Result<(Pipeline, bool), ServiceError> {
        let mut validators: BTreeMap<CommandId, Arc<Validator>> = BTreeMap::new();
        for id in CreatePipeline::command_ids(body) {
            match self.validator(id.as_str()).await {
                Ok(validator) => {
                    validators.insert(id, validator);
                }
                // Reported by the parse, with the operation's path.
                Err(ServiceError::NotFound { .. }) => {}
                Err(other) => return Err(other),
            }
        }
        let request = CreatePipeline::parse(body, &|id| validators.get(id).map(|v| &**v))?;
        for (k, stage) in request.stages.iter().enumerate() {
            for (i, operation) in stage.operations.iter().enumerate() {
                let path = format!("stages[{k}].operations[{i}].parameters");
                self.check_artifacts(&operation.parameters, &path)?;
            }
        }
        let pipeline = request.into_pipeline(now);
        match self.store().put_pipeline(&pipeline).await? {
            PutOutcome::Created(created) => {
                tracing::info!(pipeline_id = %created.pipeline_id, "pipeline created");
                Ok((created, true))
            }
            PutOutcome::Existing(existing) => {
                let mut comparable = existing.clone();
                comparable.created_at = pipeline.created_at;
                if comparable == pipeline {
                    Ok((existing, false))
                } else {
                    Err(ServiceError::Conflict(format!(
                        "pipeline {} exists with a different definition; pipelines are immutable, create a new pipeline id",
                        existing.pipeline_id
                    )))
                }
            }
        }
    }

    /// `GET /pipelines/{id}`.
    pub async fn get_pipeline(&self, raw_id: &str) -> Result<Pipeline, ServiceError> {
        let id = pipeline_id_param(raw_id)?;
        self.store()
            .get_pipeline(&id)
            .await?
            .ok_or_else(|| ServiceError::NotFound {
                what: "pipeline",
                id: id.to_string(),
            })
    }

    /// `GET /pipelines`.
    pub async fn list_pipelines(
        &self,
        limit: Option<&str>,
        next_token: Option<&str>,
    ) -> Result<Listing<Pipeline>, ServiceError> {
        let scope = "pipelines";
        let page = self.page_request(scope, limit, next_token)?;
        let page = self.store().list_pipelines(page).await?;
        Ok(self.listing(scope, page))
    }

    /// `POST /pipelines/{id}/runs`. Returns the run and whether it was
    /// created now (false: a retry with the same runId or clientToken).
    pub async fn start_run<G: ThingGroups>(
        &self,
        groups: &G,
        raw_pipeline: &str,
        body: &Json,
        now: Timestamp,
    ) -> Result<(RunView, bool), ServiceError> {
        let pipeline = self.get_pipeline(raw_pipeline).await?;
        let request = StartRun::parse(body, &pipeline, now)?;
        super::targets::check_targets(groups, &request.targets).await?;
        let hashed = serde_json::json!([
            pipeline.pipeline_id,
            request.targets,
            request.waves,
            request.gates,
            request.scheduling,
        ]);
        let request_hash = ids::fingerprint(hashed.to_string().as_bytes());
        let run_id = request
            .run_id
            .clone()
            .unwrap_or_else(|| ids::run_id(&pipeline.pipeline_id, request.client_token.as_ref()));
        let limits = self.run_limits;
        if let Targets::Things(things) = &request.targets {
            if things.len() as u64 > limits.max_targets {
                return Err(ServiceError::LimitExceeded(format!(
                    "a run has at most {} targets here, got {}; ask for a higher PIPELINE_MAX_TARGETS",
                    limits.max_targets,
                    things.len()
                )));
            }
        }
        let (mut run, things) = PipelineRun::new(request, run_id, &pipeline, now);
        run.max_targets = limits.max_targets;
        match self
            .store()
            .create_run(&run, things.as_deref(), &request_hash, limits.max_active_runs)
            .await?
        {
            CreateRunOutcome::LimitReached { active } => Err(ServiceError::LimitExceeded(format!(
                "{active} pipeline runs have not ended, the most this tenant may have (PIPELINE_MAX_ACTIVE_RUNS); cancel one or wait for one to end"
            ))),
            CreateRunOutcome::Created(run) => {
                tracing::info!(run_id = %run.run_id, pipeline_id = %run.pipeline_id, "run created");
                let mut run = run;
                run.counts = Vec::new();
                Ok((RunView::new(run, &pipeline), true))
            }
            CreateRunOutcome::Existing {
                run,
                same_request: true,
            } if run.pipeline_id == pipeline.pipeline_id => {
                let id = run.run_id.to_string();
                Ok((self.get_run(raw_pipeline, &id, now).await?, false))
            }
            CreateRunOutcome::Existing { run, .. } => Err(ServiceError::Conflict(format!(
                "run {} exists with a different request; use a new runId or clientToken",
                run.run_id
            ))),
        }
    }

    /// The run `raw_run` of pipeline `raw_pipeline`, with its counts.
    pub(crate) async fn load_run(
        &self,
        raw_pipeline: &str,
        raw_run: &str,
        now: Timestamp,
    ) -> Result<(Pipeline, PipelineRun), ServiceError> {
        let pipeline = self.get_pipeline(raw_pipeline).await?;
        let id = run_id_param(raw_run)?;
        match self
            .store()
            .get_run(&id, pipeline.stages.len(), now)
            .await?
        {
            Some(run) if run.pipeline_id == pipeline.pipeline_id => Ok((pipeline, run)),
            _ => Err(run_not_found(&id)),
        }
    }

    /// `GET /pipelines/{id}/runs/{runId}`.
    pub async fn get_run(
        &self,
        raw_pipeline: &str,
        raw_run: &str,
        now: Timestamp,
    ) -> Result<RunView, ServiceError> {
        let (pipeline, run) = self.load_run(raw_pipeline, raw_run, now).await?;
        Ok(RunView::new(run, &pipeline))
    }

    /// `GET /pipelines/{id}/runs`: newest first.
    pub async fn list_runs(
        &self,
        raw_pipeline: &str,
        limit: Option<&str>,
        next_token: Option<&str>,
        now: Timestamp,
    ) -> Result<Listing<PipelineRun>, ServiceError> {
        let pipeline = self.get_pipeline(raw_pipeline).await?;
        let scope = format!("runs?pipeline={}", pipeline.pipeline_id);
        let page = self.page_request(&scope, limit, next_token)?;
        let page = self
            .store()
            .list_runs(&pipeline.pipeline_id, page, now)
            .await?;
        Ok(self.listing(&scope, page))
    }

    /// `GET /pipelines/{id}/runs/{runId}/targets`: the run's devices in
    /// thing-name order (status, limit, nextToken).
    pub async fn list_run_targets(
        &self,
        raw_pipeline: &str,
        raw_run: &str,
        status: Option<&str>,
        limit: Option<&str>,
        next_token: Option<&str>,
        now: Timestamp,
    ) -> Result<Listing<TargetRun>, ServiceError> {
        let (pipeline, run) = self.load_run(raw_pipeline, raw_run, now).await?;
        let status = match status {
            None | Some("") => None,
            Some(raw) => Some(TargetStatus::parse(raw).ok_or_else(|| {
                    ServiceError::validation(
                        "status",
                        ValidationCode::InvalidValue,
                        format!(
                            "{} is not a target status; one of PENDING, RUNNING, WAITING, SUCCEEDED, FAILED, TIMED_OUT, CANCELED, SKIPPED",
                            quote(raw)
                        ),
                    )
                })?),
        };
        let scope = format!(
            "targets?run={}&status={}",
            run.run_id,
            status.map_or("", TargetStatus::as_str)
        );
        let page = self.page_request(&scope, limit, next_token)?;
        // A device's record says PENDING or WAITING while it runs a stage
        // (its executions say where it is): those are read together and
        // told apart once shown.
        let stored_status = status.filter(|s| {
            !matches!(
                s,
                TargetStatus::Pending | TargetStatus::Running | TargetStatus::Waiting
            )
        });
        let mut page = self
            .store()
            .list_targets(&run.run_id, None, stored_status, page)
            .await?;
        let shown = self
            .present_targets(&run, &pipeline, std::mem::take(&mut page.items), now)
            .await?;
        page.items = shown
            .into_iter()
            .filter(|t| status.is_none_or(|s| t.status == s))
            .collect();
        Ok(self.listing(&scope, page))
    }

    /// `POST /pipelines/{id}/runs/{runId}/cancel` (`{"force": true}` also
    /// cancels started work).
    pub async fn cancel_run(
        &self,
        raw_pipeline: &str,
        raw_run: &str,
        body: &Json,
        caller: &str,
        now: Timestamp,
    ) -> Result<RunView, ServiceError> {
        let force = match body.get("force") {
            None | Some(Json::Null) => false,
            Some(Json::Bool(b)) => *b,
            Some(_) => {
                return Err(ServiceError::validation(
                    "force",
                    ValidationCode::WrongType,
                    "force is true or false",
                ))
            }
        };
        for _ in 0..5 {
            let (pipeline, run) = self.load_run(raw_pipeline, raw_run, now).await?;
            let status = match run.cancel_effect(force) {
                RunCancel::AlreadyCanceled => return Ok(RunView::new(run, &pipeline)),
                RunCancel::Ended => {
                    return Err(ServiceError::Conflict(format!(
                        "run {} has ended ({}); only a run that has not ended can be canceled",
                        run.run_id,
                        run.status.as_str()
                    )))
                }
                RunCancel::Canceled => RunStatus::Canceled,
                RunCancel::Canceling => RunStatus::Canceling,
            };
            let mut canceled = run.clone();
            canceled.finish(
                status,
                Some(reason("RUN_CANCELED", format!("canceled by {caller}"))),
                now,
            );
            canceled.canceled_by = Some(caller.to_owned());
            canceled.cancel_force = force;
            match self.save_run(&canceled, &run).await {
                Ok(()) => {
                    tracing::info!(run_id = %run.run_id, force, "run canceled");
                    return Ok(RunView::new(canceled, &pipeline));
                }
                Err(StoreError::Conflict(_)) => continue,
                Err(other) => return Err(other.into()),
            }
        }
        Err(ServiceError::Throttled(
            "the run kept changing while it was being canceled".into(),
        ))
    }

    /// `POST /pipelines/{id}/runs/{runId}/resume`: passes the gate a HELD
    /// run waits at, recorded with the caller.
    pub async fn resume_run(
        &self,
        raw_pipeline: &str,
        raw_run: &str,
        caller: &str,
        now: Timestamp,
    ) -> Result<RunView, ServiceError> {
        for _ in 0..5 {
            let (pipeline, run) = self.load_run(raw_pipeline, raw_run, now).await?;
            let mut resumed = run.clone();
            if !resumed.resume(caller, pipeline.stages.len(), now) {
                return Err(ServiceError::Conflict(format!(
                    "run {} is {}; only a HELD run can be resumed",
                    run.run_id,
                    run.status.as_str()
                )));
            }
            match self.store().put_run(&resumed, run.version).await {
                Ok(()) => {
                    tracing::info!(run_id = %run.run_id, by = caller, "run resumed");
                    return Ok(RunView::new(resumed, &pipeline));
                }
                Err(StoreError::Conflict(_)) => continue,
                Err(other) => return Err(other.into()),
            }
        }
        Err(ServiceError::Throttled(
            "the run kept changing while it was being resumed".into(),
        ))
    }
}

pub(crate) fn reason(code: &str, description: String) -> StatusReason {
    StatusReason {
        reason_code: code.to_owned(),
        reason_description: Some(description),
    }
}
