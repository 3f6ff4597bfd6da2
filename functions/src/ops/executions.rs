//! EXECUTIONS: start one on a device, get it, list a device's or a
//! command's, cancel it. I/O through the store; deadlines passed on the way
//! are enforced through `delivery`.

use super::Courier;
use super::Listing;
use crate::error::ServiceError;
use crate::platform::ids;
use crate::store::{
    CreateOutcome, Deleted, ExecutionQuery, ExecutionsOf, KeyedCreate, RequestHash, Store,
    StoreError, TimeFilter, TimeOf, TransitionOutcome,
};
use courier_core::dedupe::{self, Dedupe};
use courier_core::json::Json;
use courier_core::retry::RetryPolicy;
use courier_core::text::quote;
use courier_core::{
    CancelExecution, CommandExecution, CommandId, ExecutionId, ExecutionStatus, StartExecution,
    ThingName, Timestamp, TransitionError, TransitionPlan, ValidationCode, ValidationErrors,
};

/// Filters and paging of `GET /executions`, as strings from the query.
#[derive(Debug, Clone, Default)]
pub struct ListExecutions {
    pub target: Option<String>,
    pub command_id: Option<String>,
    /// AWS IoT's way of naming them: `arn:…:thing/{name}`, `arn:…:command/{id}`.
    pub target_arn: Option<String>,
    pub command_arn: Option<String>,
    pub status: Option<String>,
    /// `ASCENDING` (oldest first) or `DESCENDING` (the default).
    pub sort_order: Option<String>,
    /// Epoch seconds or `YYYY-MM-DDTHH:MM` (UTC); started or completed, not both.
    pub started_after: Option<String>,
    pub started_before: Option<String>,
    pub completed_after: Option<String>,
    pub completed_before: Option<String>,
    pub limit: Option<String>,
    pub next_token: Option<String>,
}

/// The name after `:{kind}/` in an AWS IoT ARN (`arn:aws:iot:…:thing/dev-1`).
fn arn_name<'a>(arn: &'a str, kind: &str) -> Option<&'a str> {
    let (head, name) = arn.split_once(&format!(":{kind}/"))?;
    (head.starts_with("arn:") && !name.is_empty()).then_some(name)
}

/// The stable description of a listing a nextToken is sealed for (never
/// `Debug` output: renaming a type must not invalidate live tokens).
fn listing_scope(query: &ExecutionQuery) -> String {
    let of = match &query.of {
        ExecutionsOf::Target(thing) => format!("target={thing}"),
        ExecutionsOf::Command(command) => format!("commandId={command}"),
    };
    let status = query.status.map_or("", ExecutionStatus::as_str);
    // Defaults add nothing, so tokens of plain listings stay what they were.
    let order = if query.oldest_first {
        "&sortOrder=ASCENDING"
    } else {
        ""
    };
    let time = query.time.map_or_else(String::new, |t| {
        let which = match t.of {
            TimeOf::Started => "started",
            TimeOf::Completed => "completed",
        };
        let ms = |at: Option<Timestamp>| at.map_or_else(String::new, |at| at.millis().to_string());
        format!("&{which}={}..{}", ms(t.after), ms(t.before))
    });
    format!("executions?{of}&status={status}{order}{time}")
}

/// The started or completed time filter of a listing (AWS: one of the two).
fn list_time_filter(params: &ListExecutions, errors: &mut ValidationErrors) -> Option<TimeFilter> {
    let mut time = |raw: &Option<String>, field: &str| -> Option<Timestamp> {
        let raw = raw.as_ref()?;
        let at = Timestamp::parse_text(raw);
        if at.is_none() {
            errors.add(
                field,
                ValidationCode::InvalidValue,
                format!(
                    "{} is not a time: use epoch seconds or YYYY-MM-DDTHH:MM (UTC)",
                    quote(raw)
                ),
            );
        }
        at
    };
    let started = (
        time(&params.started_after, "startedAfter"),
        time(&params.started_before, "startedBefore"),
    );
    let completed = (
        time(&params.completed_after, "completedAfter"),
        time(&params.completed_before, "completedBefore"),
    );
    let filter = |of, (after, before): (Option<Timestamp>, Option<Timestamp>)| {
        (after.is_some() || before.is_some()).then_some(TimeFilter { of, after, before })
    };
    match (
        filter(TimeOf::Started, started),
        filter(TimeOf::Completed, completed),
    ) {
        (Some(_), Some(_)) => {
            errors.add(
                "completedAfter",
                ValidationCode::InvalidValue,
                "filter by the started time or by the completed time, not both",
            );
            None
        }
        (started, completed) => started.or(completed),
    }
}

/// What makes a retried start "the same request" (the same clientToken with
/// a different one answers 409): every field of the request but the token,
/// as parsed, so an omitted default and the default written out are the same.
fn request_hash(command_id: &str, start: &StartExecution) -> RequestHash {
    // A request without a policy, or with the older onTimeout/maxAttempts
    // spelling, hashes as it did before policies existed, so a retry across
    // the upgrade still matches; any other policy is hashed whole.
    let (on_timeout, max_attempts) = match &start.retry_policy {
        None => (serde_json::json!("TIME_OUT"), serde_json::json!(1)),
        Some(p) if *p == RetryPolicy::on_timeout(p.max_attempts) => (
            serde_json::json!("RETRY"),
            serde_json::json!(p.max_attempts),
        ),
        Some(p) => (serde_json::json!(p), serde_json::Value::Null),
    };
    let mut hashed = serde_json::json!([
        "v2",
        command_id,
        start.target,
        start.parameters,
        start.execution_timeout_seconds,
        start.time_to_live,
        start.not_before,
        start.delivery_timeout_seconds,
        on_timeout,
        max_attempts,
    ]);
    // Only a keyed request hashes its key, so others keep their hash.
    if let (Some(key), Some(list)) = (&start.dedupe_key, hashed.as_array_mut()) {
        list.push(serde_json::json!([key, start.supersede, start.force]));
    }
    let current = ids::fingerprint(hashed.to_string().as_bytes());
    // 0.1.0's formula: a retry of a request that release stored still
    // matches it after an upgrade.
    let earlier = ids::fingerprint(
        serde_json::json!([
            command_id,
            start.target,
            start.parameters,
            start.execution_timeout_seconds,
            start.time_to_live,
        ])
        .to_string()
        .as_bytes(),
    );
    RequestHash {
        current,
        earlier: Some(earlier),
    }
}

impl<S: Store> Courier<S> {
    /// `POST /commands/{commandId}/executions` by `caller` (recorded as
    /// `createdBy`). Returns the execution and whether it was created now
    /// (false: an idempotent retry).
    pub async fn start_execution(
        &self,
        command_id: &str,
        body: &Json,
        caller: &str,
        now: Timestamp,
    ) -> Result<(CommandExecution, bool), ServiceError> {
        self.start_execution_as(command_id, body, caller, None, now)
            .await
    }

    /// [`Self::start_execution`] for a caller who may not cancel: a
    /// request that would supersede (cancel) a pending execution is refused
    /// with `cancel_denied` (the API passes its missing-scope error).
    pub async fn start_execution_as(
        &self,
        command_id: &str,
        body: &Json,
        caller: &str,
        cancel_denied: Option<ServiceError>,
        now: Timestamp,
    ) -> Result<(CommandExecution, bool), ServiceError> {
        let validator = self.validator(command_id).await?;
        let start = StartExecution::parse(body, &validator, now)?;
        let request_hash = request_hash(validator.definition().command_id.as_str(), &start);
        let id = match &start.client_token {
            Some(token) => ids::execution_id_for_token(token),
            None => ids::random_execution_id(),
        };
        let (supersede, force) = (start.supersede, start.force);
        let execution = start.into_execution(id, &validator, caller, now);
        self.check_artifacts(&execution.parameters, "parameters")?;
        // A thing belongs to the first tenant that targets it; to every other
        // tenant it does not exist.
        let ours = self
            .store
            .claim_things(std::slice::from_ref(&execution.target))
            .await?;
        if ours.first() != Some(&true) {
            return Err(ServiceError::NotFound {
                what: "thing",
                id: execution.target.to_string(),
            });
        }
        if execution.dedupe_key.is_some() {
            return self
                .start_keyed(
                    execution,
                    &request_hash,
                    (supersede, force),
                    (caller, cancel_denied),
                    now,
                )
                .await;
        }
        match self.store.create_execution(&execution, &request_hash).await? {
            CreateOutcome::Created(created) => {
                tracing::info!(execution_id = %created.execution_id, command_id = %created.command_id, target = %created.target, "execution created");
                Ok((created, true))
            }
            CreateOutcome::Existing { execution, same_request: true } => Ok((execution, false)),
            CreateOutcome::Existing { .. } => Err(ServiceError::Conflict(
                "clientToken was already used for a different request; use a new token for a new execution".into(),
            )),
        }
    }

    /// A start with a `dedupeKey` (see `courier_core::dedupe`): returns the
    /// execution pending under the key for the same request, refuses a
    /// different one (409) or supersedes it. Race-free: each try writes
    /// only if the key's guard still names what was read; a lost race
    /// reads again.
    async fn start_keyed(
        &self,
        mut execution: CommandExecution,
        request_hash: &RequestHash,
        (supersede, force): (bool, bool),
        (caller, cancel_denied): (&str, Option<ServiceError>),
        now: Timestamp,
    ) -> Result<(CommandExecution, bool), ServiceError> {
        const TRIES: u32 = 5;
        let key = execution
            .dedupe_key
            .clone()
            .ok_or_else(|| ServiceError::Internal("start_keyed without a dedupeKey".into()))?;
        for _ in 0..TRIES {
            let holder = self.store.dedupe_holder(&execution.target, &key).await?;
            let pending = match &holder {
                Some(id) => self
                    .store
                    .get_execution(id, now)
                    .await?
                    .filter(|e| !e.status.is_terminal() && e.overdue(now).is_none()),
                None => None,
            };
            let plan = match &pending {
                None => None,
                Some(pending) => match dedupe::decide(pending, &execution, supersede, force) {
                    Dedupe::ReturnPending => return Ok((pending.clone(), false)),
                    Dedupe::Conflict(why) => return Err(ServiceError::Conflict(why)),
                    Dedupe::Supersede => {
                        // Superseding cancels: it needs the right to.
                        if let Some(denied) = cancel_denied {
                            return Err(denied);
                        }
                        Some(TransitionPlan::supersede(
                            pending,
                            &execution.execution_id,
                            caller,
                            force,
                            now,
                        ))
                    }
                },
            };
            execution.supersedes = plan.as_ref().and(holder.clone());
            let superseding = holder.as_ref().zip(plan.as_ref());
            match self
                .store
                .create_keyed(&execution, request_hash, holder.as_ref(), superseding)
                .await?
            {
                KeyedCreate::Created => {
                    tracing::info!(execution_id = %execution.execution_id, dedupe_key = %key, supersedes = ?execution.supersedes, "keyed execution created");
                    return Ok((execution, true));
                }
                KeyedCreate::Existing {
                    execution,
                    same_request: true,
                } => return Ok((*execution, false)),
                KeyedCreate::Existing { .. } => {
                    return Err(ServiceError::Conflict(
                        "clientToken was already used for a different request; use a new token for a new execution".into(),
                    ))
                }
                KeyedCreate::Raced => continue,
            }
        }
        Err(ServiceError::Throttled(format!(
            "dedupeKey {key} is being changed by concurrent requests; retry"
        )))
    }

    pub async fn get_execution(
        &self,
        raw_id: &str,
        now: Timestamp,
    ) -> Result<CommandExecution, ServiceError> {
        let id = ExecutionId::parse_at(raw_id, "executionId").map_err(ValidationErrors::from)?;
        self.store
            .get_execution(&id, now)
            .await?
            .map(|e| e.observed(now))
            .ok_or_else(|| ServiceError::NotFound {
                what: "execution",
                id: id.to_string(),
            })
    }

    /// `GET /executions?target=|commandId=&status=&limit=&nextToken=`.
    pub async fn list_executions(
        &self,
        params: &ListExecutions,
        now: Timestamp,
    ) -> Result<Listing<CommandExecution>, ServiceError> {
        let mut errors = ValidationErrors::new();
        let mut by_arn = |arn: &Option<String>, kind: &str, field: &str| -> Option<String> {
            let arn = arn.as_ref()?;
            let name = arn_name(arn, kind).map(str::to_owned);
            if name.is_none() {
                errors.add(
                    field,
                    ValidationCode::InvalidValue,
                    format!(
                        "{} is not an AWS IoT {kind} ARN (arn:aws:iot:REGION:ACCOUNT:{kind}/NAME)",
                        quote(arn)
                    ),
                );
            }
            name
        };
        let target =
            by_arn(&params.target_arn, "thing", "targetArn").or_else(|| params.target.clone());
        let command_id = by_arn(&params.command_arn, "command", "commandArn")
            .or_else(|| params.command_id.clone());
        let time = list_time_filter(params, &mut errors);
        let oldest_first = match params.sort_order.as_deref() {
            None | Some("DESCENDING") => false,
            Some("ASCENDING") => true,
            Some(other) => {
                errors.add(
                    "sortOrder",
                    ValidationCode::InvalidValue,
                    format!(
                        "{} is not a sort order; use ASCENDING or DESCENDING",
                        quote(other)
                    ),
                );
                false
            }
        };
        let of = match (&target, &command_id) {
            (Some(t), None) => errors
                .collect(ThingName::parse_at(t, "target"))
                .map(ExecutionsOf::Target),
            (None, Some(c)) => errors
                .collect(CommandId::parse_at(c, "commandId"))
                .map(ExecutionsOf::Command),
            (Some(_), Some(_)) | (None, None) => {
                errors.add(
                    "target",
                    ValidationCode::MissingRequired,
                    "give exactly one of target or commandId",
                );
                None
            }
        };
        let status = match params.status.as_deref() {
            None => None,
            Some(raw) => {
                let parsed = ExecutionStatus::parse(raw);
                if parsed.is_none() {
                    let all: Vec<&str> = ExecutionStatus::ALL.iter().map(|s| s.as_str()).collect();
                    errors.add(
                        "status",
                        ValidationCode::InvalidValue,
                        format!(
                            "{} is not a status; use one of {}",
                            quote(raw),
                            all.join(", ")
                        ),
                    );
                }
                parsed
            }
        };
        let Some(of) = of else {
            return Err(errors.into());
        };
        if !errors.is_empty() {
            return Err(errors.into());
        }
        let query = ExecutionQuery {
            of,
            status,
            oldest_first,
            time,
        };
        let scope = listing_scope(&query);
        let page = self.page_request(
            &scope,
            params.limit.as_deref(),
            params.next_token.as_deref(),
        )?;
        // A thing is another tenant's, or nobody's, alike: not found (no
        // existence oracle). So is a command this tenant does not have.
        match &query.of {
            ExecutionsOf::Target(thing) => self.require_own_thing(thing).await?,
            ExecutionsOf::Command(command) => {
                self.validator(command.as_str()).await?;
            }
        }
        let mut page = self.store.list_executions(&query, page, now).await?;
        for e in &mut page.items {
            *e = e.observed(now);
        }
        self.redact_all(&mut page.items).await;
        Ok(self.listing(&scope, page))
    }

    /// `DELETE /executions/{id}` (AWS IoT commands' DeleteCommandExecution):
    /// removes an execution that has ended, before its retention would. One
    /// that is still running, or that belongs to a job (whose statistics and
    /// history depend on it), is refused with a 409 that says which.
    pub async fn delete_execution(&self, raw_id: &str, now: Timestamp) -> Result<(), ServiceError> {
        let id = ExecutionId::parse_at(raw_id, "executionId").map_err(ValidationErrors::from)?;
        match self.store.delete_execution(&id, now).await? {
            Deleted::Deleted => {
                tracing::info!(execution_id = %id, "execution deleted");
                Ok(())
            }
            Deleted::NotFound => Err(ServiceError::NotFound {
                what: "execution",
                id: id.to_string(),
            }),
            Deleted::Refused(current) => Err(ServiceError::Conflict(match &current.job_id {
                Some(job) => format!(
                    "execution {id} belongs to job {job}, whose statistics and history depend on it; it expires with the job's retention"
                ),
                None => format!(
                    "execution {id} is {}; only an execution that has ended can be deleted (cancel it first)",
                    current.status.as_str()
                ),
            })),
        }
    }

    /// `POST /executions/{id}/cancel` by an operator (`caller` is who, for
    /// the record). Work the device has started needs `"force": true`; the
    /// device hears of the cancel from the dispatcher (table stream).
    /// Cancelling an already cancelled execution returns it unchanged (safe
    /// to retry).
    pub async fn cancel_execution(
        &self,
        raw_id: &str,
        body: &Json,
        caller: &str,
        now: Timestamp,
        request_id: &str,
    ) -> Result<CommandExecution, ServiceError> {
        let id = ExecutionId::parse_at(raw_id, "executionId").map_err(ValidationErrors::from)?;
        let CancelExecution { update, force } = CancelExecution::parse(body)?;
        let token = update
            .client_token
            .as_ref()
            .map_or_else(|| request_id.to_owned(), ToString::to_string);
        let plan = TransitionPlan::cancel(update, caller, force, now);
        // At most twice: a cancel that finds a passed deadline enforces it
        // first; if that re-queued the execution as a new attempt, the cancel
        // applies to that attempt.
        for _ in 0..2 {
            match self.store.apply_transition(&id, &plan, &token).await {
                Ok(
                    TransitionOutcome::Applied { execution: e, .. }
                    | TransitionOutcome::Duplicate(e),
                ) => {
                    tracing::info!(execution_id = %e.execution_id, "execution canceled");
                    return Ok(e);
                }
                Err(StoreError::Rejected {
                    error:
                        TransitionError::TerminalStateReached {
                            status: ExecutionStatus::Canceled,
                        },
                    current,
                }) => return Ok(*current),
                Err(StoreError::Rejected {
                    error: TransitionError::DeadlinePassed { .. },
                    current,
                }) => {
                    let expired = self.expire_overdue(&current, None, now).await?;
                    if expired.status.is_terminal() {
                        return Err(ServiceError::Transition {
                            error: TransitionError::TerminalStateReached {
                                status: expired.status,
                            },
                            current: Some(Box::new(expired)),
                        });
                    }
                }
                Err(other) => return Err(ServiceError::for_execution(other, &id)),
            }
        }
        Err(ServiceError::Throttled(format!(
            "execution {id} kept changing while it was being canceled"
        )))
    }
}
