//! WHAT A DEVICE IS TOLD (AWS IoT Jobs): `notify`, the pending list, after
//! a change to it (unless the deployment turned it off), and `notify-next`
//! only when the device's next execution is not the one it was last told.
//! What it was told is kept on the thing's owner item, where every
//! publisher (the api's direct delivery, the dispatcher, the device path,
//! the sweeper) reads it and records it with a conditional write; a
//! publisher whose publish fails forgets it, so the next one tells the
//! device again. I/O through the store only; the callers publish.

use super::Courier;
use crate::error::ServiceError;
use crate::platform::presign::ArtifactSigner;
use crate::platform::publisher::{Message, OptionalMessages};
use crate::store::{Store, ToldNext};
use courier_core::protocol::{self, TopicRoot};
use courier_core::{CommandExecution, ThingName, Timestamp};

impl<S: Store> Courier<S> {
    /// `notify`, and `notify-next` when the device's next execution is not
    /// the one it was last told (AWS publishes NextJobExecutionChanged only
    /// then). What it was told is recorded before the messages are
    /// published; a caller whose publish fails calls `forget_told_next`.
    pub(crate) async fn notifications(
        &self,
        root: &TopicRoot,
        thing: &ThingName,
        now: Timestamp,
    ) -> Result<Vec<Message>, ServiceError> {
        let (pending, told) = self.notification_reads(thing, now).await?;
        self.notifications_from(root, thing, now, &pending, told)
            .await
    }

    /// What notifications are made of: the device's pending list and what it
    /// was last told, two independent reads made at once (one round trip
    /// instead of two on every notification's path).
    pub(super) async fn notification_reads(
        &self,
        thing: &ThingName,
        now: Timestamp,
    ) -> Result<(Vec<CommandExecution>, ToldNext), ServiceError> {
        let told = async { Ok::<_, ServiceError>(self.store.told_next(thing).await?) };
        tokio::try_join!(self.pending(thing, now), told)
    }

    /// [`Self::notifications`] from its reads: `notify-next` only if the
    /// next execution is news and this caller is the one that records it.
    async fn notifications_from(
        &self,
        root: &TopicRoot,
        thing: &ThingName,
        now: Timestamp,
        pending: &[CommandExecution],
        told: ToldNext,
    ) -> Result<Vec<Message>, ServiceError> {
        let (mut out, news) = notification_messages(
            root,
            thing,
            now,
            pending,
            &told,
            self.artifacts.as_deref(),
            self.optional,
        );
        if let Some(next) = news {
            if !self.tell_next_after(thing, &next, told).await? {
                // Another publisher told it first: notify-next (last) goes.
                out.pop();
            }
        }
        Ok(out)
    }

    /// Records that `thing` is told `next`, unless that is what it was last
    /// told. True when it is news (publish it). Every publisher records it
    /// on the same item with a conditional write, so two that race agree.
    pub(crate) async fn tell_next(
        &self,
        thing: &ThingName,
        next: &str,
    ) -> Result<bool, ServiceError> {
        let told = self.store.told_next(thing).await?;
        self.tell_next_after(thing, next, told).await
    }

    /// [`Self::tell_next`] from what the device was told as already read.
    async fn tell_next_after(
        &self,
        thing: &ThingName,
        next: &str,
        mut told: ToldNext,
    ) -> Result<bool, ServiceError> {
        for attempt in 0..5 {
            if attempt > 0 {
                told = self.store.told_next(thing).await?;
            }
            if !protocol::next_is_news(told.next.as_deref(), next) {
                return Ok(false);
            }
            if self
                .store
                .record_told_next(thing, &told, Some(next))
                .await?
            {
                return Ok(true);
            }
        }
        // Still contended (or nothing to record on): tell it anyway; a
        // duplicate notify-next is harmless, a missing one is not.
        Ok(true)
    }

    /// After a publish failed: forget what `thing` was told, so that the
    /// next publisher tells it its next execution again; `unless` it is
    /// that (the same news from two publishers reached the device whichever
    /// came last: forgetting it would tell the device its next change twice).
    pub async fn forget_told_next(
        &self,
        thing: &ThingName,
        unless: Option<&str>,
    ) -> Result<(), ServiceError> {
        for _ in 0..5 {
            let told = self.store.told_next(thing).await?;
            let keep = told.next.is_none() || told.next.as_deref() == unless;
            if keep || self.store.record_told_next(thing, &told, None).await? {
                return Ok(());
            }
        }
        Ok(())
    }
}

/// `pending` (a device's pending list as read) with `known` (the same
/// device's execution as just written) in its place: replaced if listed,
/// inserted in creation order if it is pending and the index has not shown
/// it yet, dropped if it no longer is.
pub(super) fn with_known(
    mut pending: Vec<CommandExecution>,
    known: &CommandExecution,
    now: Timestamp,
) -> Vec<CommandExecution> {
    pending.retain(|e| e.execution_id != known.execution_id);
    let is_pending = known.protocol.is_jobs()
        && !known.status.is_terminal()
        && !known.is_held(now)
        && known.overdue(now).is_none();
    if is_pending {
        let key = |e: &CommandExecution| (e.created_at, e.execution_id.to_string());
        let at = pending.partition_point(|e| key(e) < key(known));
        pending.insert(at, known.clone());
    }
    pending
}

/// `notify` with the pending list (unless turned off), and `notify-next`
/// (last) when the next execution is not what the device was `told`; with
/// that next execution's identity when it is news (to record).
pub(super) fn notification_messages(
    root: &TopicRoot,
    thing: &ThingName,
    now: Timestamp,
    pending: &[CommandExecution],
    told: &ToldNext,
    signer: Option<&ArtifactSigner>,
    optional: OptionalMessages,
) -> (Vec<Message>, Option<String>) {
    let mut out: Vec<Message> = list_notification(root, thing, now, pending, optional)
        .into_iter()
        .collect();
    let next = protocol::next_pending(pending);
    let identity = protocol::next_identity(next);
    if !protocol::next_is_news(told.next.as_deref(), &identity) {
        return (out, None);
    }
    out.push(next_notification(root, thing, now, next, signer));
    (out, Some(identity))
}

/// `notify` with the pending list, unless the deployment turned it off.
pub(super) fn list_notification(
    root: &TopicRoot,
    thing: &ThingName,
    now: Timestamp,
    pending: &[CommandExecution],
    optional: OptionalMessages,
) -> Option<Message> {
    optional.list_notifications.then(|| {
        Message::new(
            root.notify_topic(thing),
            protocol::jobs_changed(pending, now),
        )
    })
}

/// `notify-next` naming `next` (none: nothing is pending). What it is told
/// carries presigned URLs, signed now.
pub(super) fn next_notification(
    root: &TopicRoot,
    thing: &ThingName,
    now: Timestamp,
    next: Option<&CommandExecution>,
    signer: Option<&ArtifactSigner>,
) -> Message {
    Message::new(
        root.notify_next_topic(thing),
        protocol::next_changed(
            next.map(|n| super::artifacts::for_device(signer, n, now))
                .as_deref(),
            now,
        ),
    )
}
