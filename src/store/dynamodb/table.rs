//! The table itself: checked (or created, PAY_PER_REQUEST, waited on until ACTIVE) and its TTL
//! turned on, once, when the store is built. `create_table(false)` makes none of these calls.

use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType, TableStatus,
    TimeToLiveSpecification, TimeToLiveStatus,
};

use super::builder::{control, unbuildable};
use super::DynamoDbStore;
use crate::codec::{KEY_ATTR, TTL_ATTR};
use crate::BuildError;

impl DynamoDbStore {
    pub(super) async fn prepare_table(&self, active_timeout: Duration) -> Result<(), BuildError> {
        let client = &self.inner.client;
        let table = &self.inner.table;
        let described = client.describe_table().table_name(table).send().await;
        let status = match described {
            Ok(out) => {
                let desc = out.table();
                check_key_schema(
                    table,
                    desc.map(|d| d.key_schema()).unwrap_or_default(),
                    desc.map(|d| d.attribute_definitions()).unwrap_or_default(),
                )?;
                desc.and_then(|d| d.table_status()).cloned()
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                self.create(table).await?;
                None
            }
            Err(e) => return Err(control("DescribeTable", table)(e)),
        };
        if status != Some(TableStatus::Active) {
            self.wait_active(active_timeout).await?;
        }
        if self.inner.ttl {
            self.enable_ttl().await?;
        }
        Ok(())
    }

    async fn create(&self, table: &str) -> Result<(), BuildError> {
        let created = self
            .inner
            .client
            .create_table()
            .table_name(table)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name(KEY_ATTR)
                    .key_type(KeyType::Hash)
                    .build()
                    .map_err(unbuildable("CreateTable", table))?,
            )
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(KEY_ATTR)
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .map_err(unbuildable("CreateTable", table))?,
            )
            .send()
            .await;
        match created {
            Ok(_) => {
                tracing::info!(table, "created DynamoDB table (PAY_PER_REQUEST)");
                Ok(())
            }
            // Another instance created it first: fine, it is checked when it is ACTIVE.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_in_use_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(control("CreateTable", table)(e)),
        }
    }

    async fn wait_active(&self, timeout: Duration) -> Result<(), BuildError> {
        let started = tokio::time::Instant::now();
        let mut delay = Duration::from_millis(50);
        loop {
            let out = self
                .inner
                .client
                .describe_table()
                .table_name(&self.inner.table)
                .send()
                .await
                .map_err(control("DescribeTable", &self.inner.table))?;
            let desc = out.table();
            if desc.and_then(|d| d.table_status()) == Some(&TableStatus::Active) {
                return check_key_schema(
                    &self.inner.table,
                    desc.map(|d| d.key_schema()).unwrap_or_default(),
                    desc.map(|d| d.attribute_definitions()).unwrap_or_default(),
                );
            }
            if started.elapsed() >= timeout {
                return Err(BuildError::NotActive {
                    table: self.inner.table.clone(),
                    waited: timeout,
                });
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(2));
        }
    }

    async fn enable_ttl(&self) -> Result<(), BuildError> {
        let client = &self.inner.client;
        let table = &self.inner.table;
        let out = client
            .describe_time_to_live()
            .table_name(table)
            .send()
            .await
            .map_err(control("DescribeTimeToLive", table))?;
        let desc = out.time_to_live_description();
        let status = desc.and_then(|d| d.time_to_live_status());
        match status {
            Some(TimeToLiveStatus::Enabled) | Some(TimeToLiveStatus::Enabling) => {
                let attr = desc.and_then(|d| d.attribute_name()).unwrap_or_default();
                if attr != TTL_ATTR {
                    tracing::warn!(
                        table,
                        attribute = attr,
                        "table's TTL is on another attribute; cache entries will not expire by `ttl`"
                    );
                }
                Ok(())
            }
            _ => {
                let spec = TimeToLiveSpecification::builder()
                    .enabled(true)
                    .attribute_name(TTL_ATTR)
                    .build()
                    .map_err(unbuildable("UpdateTimeToLive", table))?;
                client
                    .update_time_to_live()
                    .table_name(table)
                    .time_to_live_specification(spec)
                    .send()
                    .await
                    .map_err(control("UpdateTimeToLive", table))?;
                Ok(())
            }
        }
    }
}

fn check_key_schema(
    table: &str,
    keys: &[KeySchemaElement],
    attrs: &[AttributeDefinition],
) -> Result<(), BuildError> {
    let key_type = attrs
        .iter()
        .find(|a| a.attribute_name() == KEY_ATTR)
        .map(|a| a.attribute_type());
    let ok = keys.len() == 1
        && keys[0].attribute_name() == KEY_ATTR
        && keys[0].key_type() == &KeyType::Hash
        && key_type == Some(&ScalarAttributeType::S);
    if ok {
        return Ok(());
    }
    let found = keys
        .iter()
        .map(|k| {
            let ty = attrs
                .iter()
                .find(|a| a.attribute_name() == k.attribute_name())
                .map(|a| a.attribute_type().as_str())
                .unwrap_or("?");
            format!("{} {} ({ty})", k.attribute_name(), k.key_type().as_str())
        })
        .collect::<Vec<_>>()
        .join(", ");
    Err(BuildError::KeySchema {
        table: table.to_owned(),
        found: format!("[{found}]"),
    })
}
