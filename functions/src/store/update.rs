//! THE CONDITIONAL WRITE of a status change: a [`TransitionPlan`] from core,
//! turned into one UpdateItem whose condition is the same rule set
//! `TransitionPlan::apply` runs in memory (allowed source statuses, expected
//! version and target, deadlines, holds, redeliveries) and whose update sets
//! what `apply` sets. No I/O: `executions` sends it.

use super::errors::internal;
use super::layout::{
    number, CHANGED_BY, LAST_MESSAGE_AT, LAST_UPDATE_TOKEN, PREVIOUS_ATTEMPT, PREVIOUS_STATUS,
    TTL_ATTRIBUTE,
};
use super::{Item, StoreError};
use aws_sdk_dynamodb::types::AttributeValue;
use courier_core::{Actor, ExecutionStatus, TransitionPlan};
use serde_dynamo::aws_sdk_dynamodb_1 as dynamo;
use std::collections::HashMap;

/// An UpdateItem built from a transition plan: the same rules `plan.apply()`
/// runs in memory, as a condition and update expression.
pub(super) struct UpdateBuilder {
    set: Vec<String>,
    remove: Vec<String>,
    pub(super) condition: Vec<String>,
    pub(super) names: HashMap<String, String>,
    pub(super) values: Item,
}

impl UpdateBuilder {
    pub(super) fn from_plan(plan: &TransitionPlan, dedupe_token: &str) -> Result<Self, StoreError> {
        let mut b = Self {
            set: Vec::new(),
            remove: Vec::new(),
            condition: Vec::new(),
            names: HashMap::new(),
            values: Item::new(),
        };
        b.names.insert("#status".into(), "status".into());
        b.values
            .insert(":to".into(), AttributeValue::S(plan.to.as_str().into()));
        b.values
            .insert(":now".into(), number(plan.now.as_secs_f64()));
        b.values
            .insert(":one".into(), AttributeValue::N("1".into()));
        b.values
            .insert(":token".into(), AttributeValue::S(dedupe_token.into()));

        // Condition: exists, not expired, a status the table allows from, the
        // expected version and target, and not a redelivery of the last update.
        b.condition.push("attribute_exists(pk)".into());
        b.condition.push("timeToLive > :now".into());
        let mut from = Vec::new();
        for (i, status) in plan.allowed_from.iter().enumerate() {
            let key = format!(":from{i}");
            b.values
                .insert(key.clone(), AttributeValue::S(status.as_str().into()));
            from.push(key);
        }
        b.condition
            .push(format!("#status IN ({})", from.join(", ")));
        if let Some(expected) = plan.expected_version {
            b.values
                .insert(":expected".into(), AttributeValue::N(expected.to_string()));
            b.condition.push("version = :expected".into());
        }
        if let Some(target) = &plan.expected_target {
            b.values
                .insert(":target".into(), AttributeValue::S(target.to_string()));
            b.condition.push("target = :target".into());
        }
        if let Some(protocol) = plan.expected_protocol {
            // A Jobs-protocol item has no `protocol` attribute (the default
            // is not written).
            b.names.insert("#protocol".into(), "protocol".into());
            b.values.insert(
                ":protocol".into(),
                AttributeValue::S(protocol.as_str().into()),
            );
            b.condition.push(if protocol.is_jobs() {
                "(attribute_not_exists(#protocol) OR #protocol = :protocol)".into()
            } else {
                "#protocol = :protocol".into()
            });
        }
        b.names
            .insert("#lastToken".into(), LAST_UPDATE_TOKEN.into());
        b.condition
            .push("(attribute_not_exists(#lastToken) OR #lastToken <> :token)".into());
        if let Some(at) = plan.message_at {
            // Not older than the last device message applied; the same
            // message again is caught by the token above.
            b.names
                .insert("#lastMessageAt".into(), LAST_MESSAGE_AT.into());
            b.values.insert(
                ":messageAt".into(),
                AttributeValue::N(at.millis().to_string()),
            );
            b.condition.push(
                "(attribute_not_exists(#lastMessageAt) OR #lastMessageAt <= :messageAt)".into(),
            );
            b.set.push("#lastMessageAt = :messageAt".into());
        }
        if let Some(number) = plan.expected_execution_number {
            b.values
                .insert(":attempt".into(), AttributeValue::N(number.to_string()));
            b.condition.push("executionNumber = :attempt".into());
        }
        if plan.respects_hold() || plan.enforce_deadlines {
            b.values.insert(
                ":queued".into(),
                AttributeValue::S(ExecutionStatus::Queued.as_str().into()),
            );
        }
        if plan.respects_hold() {
            b.condition.push(
                "(#status <> :queued OR attribute_not_exists(notBefore) OR notBefore <= :now)"
                    .into(),
            );
        }
        if plan.enforce_deadlines {
            // The same deadlines as `CommandExecution::expiry`, read from the
            // item itself.
            b.values.insert(
                ":sent".into(),
                AttributeValue::S(ExecutionStatus::Sent.as_str().into()),
            );
            b.values.insert(
                ":inProgress".into(),
                AttributeValue::S(ExecutionStatus::InProgress.as_str().into()),
            );
            b.condition.push("completeBy > :now".into());
            b.condition.push("(NOT (#status IN (:queued, :sent)) OR attribute_not_exists(deliverBy) OR deliverBy > :now)".into());
            b.condition.push("(#status <> :inProgress OR attribute_not_exists(stepDeadline) OR stepDeadline > :now)".into());
        }

        // The right-hand side reads the value before this update.
        b.names
            .insert("#previousStatus".into(), PREVIOUS_STATUS.into());
        b.set.push("#previousStatus = #status".into());
        // The attempt before, only when this change starts a new one (the
        // stream's readers count attempts from it); otherwise removed, which
        // keeps an item that changes often under a 1 KB write.
        b.names
            .insert("#previousAttempt".into(), PREVIOUS_ATTEMPT.into());
        if plan.new_attempt.is_some() {
            b.set.push("#previousAttempt = executionNumber".into());
        } else {
            b.remove.push("#previousAttempt".into());
        }
        b.set.push("#status = :to".into());
        b.set.push("lastUpdatedAt = :now".into());
        b.set.push("version = version + :one".into());
        b.set.push("#lastToken = :token".into());
        b.set_or_remove("statusReason", plan.status_reason.as_ref())?;
        // `None` keeps details and result; an empty map removes them (the
        // record omits empty maps, so the item does too).
        if let Some(details) = &plan.status_details {
            b.set_or_remove("statusDetails", Some(details).filter(|d| !d.is_empty()))?;
        }
        if let Some(result) = &plan.result {
            b.set_or_remove("result", Some(result).filter(|r| !r.is_empty()))?;
        }
        if let Some(attempt) = plan.new_attempt {
            // A new attempt starts afresh (as `TransitionPlan::apply` does).
            b.set
                .push("executionNumber = executionNumber + :one".into());
            b.set_or_remove("deliverBy", attempt.deliver_by.as_ref())?;
            b.remove.push("startedAt".into());
            if plan.status_details.is_none() {
                b.remove.push("#statusDetails".into());
                b.names
                    .insert("#statusDetails".into(), "statusDetails".into());
            }
            if plan.result.is_none() {
                b.remove.push("#result".into());
                b.names.insert("#result".into(), "result".into());
            }
        } else if plan.starts() {
            b.set
                .push("startedAt = if_not_exists(startedAt, :now)".into());
        }
        if plan.to != ExecutionStatus::InProgress {
            b.remove.push("stepDeadline".into());
        } else if let Some(minutes) = plan.step_timeout_in_minutes {
            let deadline = plan.now.plus_secs(i64::from(minutes) * 60);
            b.values
                .insert(":stepDeadline".into(), number(deadline.as_secs_f64()));
            b.set.push("stepDeadline = :stepDeadline".into());
        }
        if let Some(at) = plan.hold_until {
            b.values
                .insert(":holdUntil".into(), number(at.as_secs_f64()));
            b.set.push("notBefore = :holdUntil".into());
        }
        if let Some(by) = &plan.canceled_by {
            b.values
                .insert(":canceledBy".into(), AttributeValue::S(by.clone()));
            b.set.push("canceledBy = :canceledBy".into());
        }
        if let Some(successor) = &plan.superseded_by {
            b.values.insert(
                ":supersededBy".into(),
                AttributeValue::S(successor.to_string()),
            );
            b.set.push("supersededBy = :supersededBy".into());
        }
        if let Some(late) = &plan.late_result {
            b.set_or_remove("lateResult", Some(late))?;
        }
        if plan.defer {
            b.values
                .insert(":zero".into(), AttributeValue::N("0".into()));
            b.set
                .push("deferCount = if_not_exists(deferCount, :zero) + :one".into());
            b.set.push("lastDeferredAt = :now".into());
        }
        // Audit: who made the change, when it was delivered, when the device
        // first answered (the same as `TransitionPlan::apply`).
        b.values
            .insert(":changedBy".into(), AttributeValue::S(plan.changed_by()));
        b.set.push("lastUpdatedBy = :changedBy".into());
        b.names.insert(
            "#changedByStatus".into(),
            format!("{CHANGED_BY}.{}", plan.to.as_str()),
        );
        b.set.push("#changedByStatus = :changedBy".into());
        if plan.to == ExecutionStatus::Sent && plan.actor == Actor::System {
            b.set.push("sentAt = :now".into());
        }
        if plan.actor == Actor::Device {
            b.set.push("sentAt = if_not_exists(sentAt, :now)".into());
            b.set
                .push("acknowledgedAt = if_not_exists(acknowledgedAt, :now)".into());
        }
        if plan.completes() {
            // TTL moves to completion + the execution's own retention, computed
            // by DynamoDB from the item so the write needs no read.
            b.names.insert("#ttl".into(), TTL_ATTRIBUTE.into());
            b.values.insert(
                ":nowSecs".into(),
                AttributeValue::N(plan.now.epoch_secs().to_string()),
            );
            b.set.push("completedAt = :now".into());
            b.set.push("timeToLive = retentionSeconds + :now".into());
            b.set.push("#ttl = retentionSeconds + :nowSecs".into());
            for key in ["gsi3pk", "gsi3sk", "gsi4pk", "gsi4sk"] {
                b.remove.push(key.into());
            }
        }
        Ok(b)
    }

    /// SETs `attribute` to `value`, or REMOVEs it when there is none.
    fn set_or_remove<T: serde::Serialize>(
        &mut self,
        attribute: &str,
        value: Option<&T>,
    ) -> Result<(), StoreError> {
        let name = format!("#{attribute}");
        self.names.insert(name.clone(), attribute.to_owned());
        match value {
            Some(value) => {
                let placeholder = format!(":{attribute}");
                self.values.insert(
                    placeholder.clone(),
                    dynamo::to_attribute_value(value).map_err(internal)?,
                );
                self.set.push(format!("{name} = {placeholder}"));
            }
            None => self.remove.push(name),
        }
        Ok(())
    }

    pub(super) fn expression(&self) -> String {
        let mut expression = format!("SET {}", self.set.join(", "));
        if !self.remove.is_empty() {
            expression.push_str(&format!(" REMOVE {}", self.remove.join(", ")));
        }
        expression
    }
}
