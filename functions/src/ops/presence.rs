//! PRESENCE: a device's lifecycle events (AWS IoT's `$aws/events/presence/
//! connected|disconnected/{clientId}`), recorded, and on a (re)connection
//! its pending work told at once, so an offline device gets its queue when
//! it comes back rather than on a timer. I/O through the store; the caller
//! (`entry::device_events`) publishes the messages.

use super::delivery::on_jobs_list;
use super::notifications::{list_notification, next_notification};
use super::Courier;
use crate::error::ServiceError;
use crate::platform::publisher::Message;
use crate::store::Store;
use courier_core::json::Json;
use courier_core::presence::{self, PresenceError, PresenceEvent};
use courier_core::protocol::{self, TopicRoot};
use courier_core::{CommandExecution, ExecutionStatus, ThingName, Timestamp};

impl<S: Store> Courier<S> {
    /// A lifecycle event on `topic`, if it is one (`None`: it is not):
    /// recorded, and on a connection the messages that tell the device its
    /// pending work.
    pub async fn presence_message(
        &self,
        root: &TopicRoot,
        topic: &str,
        payload: &[u8],
        now: Timestamp,
    ) -> Option<Result<Vec<Message>, ServiceError>> {
        let json = serde_json::from_slice::<Json>(payload).unwrap_or(Json::Null);
        let event = match presence::parse_event(topic, &json, now) {
            Ok(event) => event,
            Err(PresenceError::NotPresence) => return None,
            Err(PresenceError::Unusable(why)) => {
                tracing::info!(%topic, %why, "lifecycle event ignored");
                return Some(Ok(Vec::new()));
            }
        };
        Some(self.on_presence(root, &event, now).await)
    }

    async fn on_presence(
        &self,
        root: &TopicRoot,
        event: &PresenceEvent,
        now: Timestamp,
    ) -> Result<Vec<Message>, ServiceError> {
        let thing = &event.thing;
        let recorded = self.store().record_presence(thing, &event.presence).await?;
        tracing::info!(%thing, connected = event.presence.connected, recorded, "lifecycle event");
        if !recorded || !event.presence.connected {
            return Ok(Vec::new());
        }
        // Its executions live in the tenant that owns the thing; nobody's
        // thing has nothing pending.
        match self.store().thing_owner(thing).await? {
            Some(owner) => {
                self.for_tenant(&owner)
                    .pending_work_messages(root, thing, now)
                    .await
            }
            None => Ok(Vec::new()),
        }
    }

    /// What a device that (re)connects is told, whatever it was told before
    /// (it may have missed it while away). AWS IoT Jobs: its pending list
    /// (`notify`) and next execution (`notify-next`). AWS IoT commands: the
    /// request of each execution delivered and not answered yet, again.
    async fn pending_work_messages(
        &self,
        root: &TopicRoot,
        thing: &ThingName,
        now: Timestamp,
    ) -> Result<Vec<Message>, ServiceError> {
        let mut out = Vec::new();
        // One read of the pending index serves both protocols.
        let all = self.store().pending_executions(thing, now).await?;
        let jobs: Vec<CommandExecution> = all
            .iter()
            .filter(|e| on_jobs_list(e, now))
            .cloned()
            .collect();
        if !jobs.is_empty() {
            let next = protocol::next_pending(&jobs);
            // Recorded, so the dispatcher's next pass does not repeat it.
            self.tell_next(thing, &protocol::next_identity(next))
                .await?;
            out.extend(list_notification(root, thing, now, &jobs, self.optional));
            // Its document's artifact URLs are presigned now, as on every
            // path that tells a device its next execution.
            out.push(next_notification(
                root,
                thing,
                now,
                next,
                self.artifacts.as_deref(),
            ));
        }
        let sent = all.iter().filter(|e| {
            !e.protocol.is_jobs() && e.status == ExecutionStatus::Sent && e.overdue(now).is_none()
        });
        for execution in sent {
            out.push(self.command_request(execution, now).await?);
        }
        Ok(out)
    }
}
