//! PRESENCE in the table: a device's latest lifecycle event, one item per
//! thing beside its owner item (cross-tenant like the thing name, read only
//! for the tenant that owns the thing). Does I/O.

use super::dynamodb::DynamoStore;
use super::layout::{number, presence_key, string_attr};
use super::StoreError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnConsumedCapacity};
use courier_core::presence::Presence;
use courier_core::{ThingName, Timestamp};

impl DynamoStore {
    pub(super) async fn write_presence(
        &self,
        thing: &ThingName,
        presence: &Presence,
    ) -> Result<bool, StoreError> {
        // Lifecycle events may arrive out of order: only a newer one wins.
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(presence_key(thing)))
            .condition_expression("attribute_not_exists(since) OR since < :since")
            .expression_attribute_values(":since", number(presence.since.as_secs_f64()))
            .expression_attribute_values(":connected", AttributeValue::Bool(presence.connected))
            .return_consumed_capacity(ReturnConsumedCapacity::Total);
        request = match &presence.disconnect_reason {
            Some(reason) => request
                .update_expression(
                    "SET connected = :connected, since = :since, disconnectReason = :reason",
                )
                .expression_attribute_values(":reason", AttributeValue::S(reason.clone())),
            None => request.update_expression(
                "SET connected = :connected, since = :since REMOVE disconnectReason",
            ),
        };
        self.conditional_write(
            request
                .send()
                .await
                .map(|out| out.consumed_capacity().cloned()),
        )
    }

    pub(super) async fn read_presence(
        &self,
        thing: &ThingName,
    ) -> Result<Option<Presence>, StoreError> {
        let Some(item) = self.get(presence_key(thing), false).await? else {
            return Ok(None);
        };
        let since = match item.get("since") {
            Some(AttributeValue::N(n)) => n.parse::<f64>().ok().and_then(Timestamp::from_secs_f64),
            _ => None,
        };
        Ok(since.map(|since| Presence {
            connected: matches!(item.get("connected"), Some(AttributeValue::Bool(true))),
            since,
            disconnect_reason: string_attr(&item, "disconnectReason"),
        }))
    }
}
