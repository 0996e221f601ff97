//! The DynamoDB store.
//!
//! One item per stored response, under a single partition key `key` (S). The item layout is
//! the [`codec`](crate::codec)'s. Reads never trust DynamoDB to have deleted expired items (it
//! does so only eventually, within days): the middleware judges freshness itself.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType, TableStatus, TimeToLiveSpecification, TimeToLiveStatus,
};
use aws_sdk_dynamodb::Client;
use aws_types::SdkConfig;

mod maintenance;

pub use maintenance::{EntrySummary, Expired, TableStats};

use crate::codec::{self, ItemFormat, KEY_ATTR, MAX_ITEM_SIZE, TTL_ATTR};
use crate::{BuildError, CacheKey, CacheStore, StoreError, StoredResponse};

/// A [`CacheStore`] backed by a DynamoDB table. Cheap to clone: clones share one SDK client.
///
/// ```no_run
/// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
/// use reqwest_dynamodb_cache::DynamoDbStore;
/// let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
/// let store = DynamoDbStore::builder()
///     .table_name("http_cache")
///     .ttl(false)
///     .build(&aws)
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct DynamoDbStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    client: Client,
    table: String,
    namespace: String,
    ttl: bool,
    format: ItemFormat,
    max_item_size: usize,
}

/// Configures a [`DynamoDbStore`]; from [`DynamoDbStore::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct DynamoDbStoreBuilder {
    table_name: String,
    ttl: bool,
    create_table: bool,
    format: ItemFormat,
    namespace: String,
    active_timeout: Duration,
    max_item_size: usize,
}

impl Default for DynamoDbStoreBuilder {
    fn default() -> Self {
        Self {
            table_name: "http_cache".into(),
            ttl: true,
            create_table: true,
            format: ItemFormat::Document,
            namespace: String::new(),
            active_timeout: Duration::from_secs(120),
            max_item_size: MAX_ITEM_SIZE,
        }
    }
}

impl DynamoDbStoreBuilder {
    /// The table's name. Default `"http_cache"`.
    pub fn table_name(mut self, name: impl Into<String>) -> Self {
        self.table_name = name.into();
        self
    }

    /// Whether items carry the `ttl` attribute (epoch seconds) that DynamoDB's Time to Live
    /// deletes them by, and whether `build` enables TTL on the table. Default `true`.
    /// With `false` no `ttl` attribute is written and no TTL call is made.
    pub fn ttl(mut self, ttl: bool) -> Self {
        self.ttl = ttl;
        self
    }

    /// Whether `build` checks the table, creates it when missing (PAY_PER_REQUEST, waited on
    /// until ACTIVE) and enables TTL. Default `true`. With `false`, `build` makes no
    /// control-plane call at all — for Lambda cold starts and IAM policies without
    /// `dynamodb:CreateTable` / `DescribeTable`; a missing table then shows as store faults.
    pub fn create_table(mut self, create: bool) -> Self {
        self.create_table = create;
        self
    }

    /// The item layout. Default [`ItemFormat::Document`], readable in the AWS console.
    pub fn format(mut self, format: ItemFormat) -> Self {
        self.format = format;
        self
    }

    /// A prefix for every key this store writes (`"{namespace}:{key}"`), so several
    /// applications can share one table without seeing each other's entries. Default: none.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// How long `build` waits for a table it created to become ACTIVE. Default 120 s.
    pub fn active_timeout(mut self, timeout: Duration) -> Self {
        self.active_timeout = timeout;
        self
    }

    /// The largest item written, in bytes by DynamoDB's rules. Default and maximum 409,600
    /// (DynamoDB's 400 KB limit).
    pub fn max_item_size(mut self, bytes: usize) -> Self {
        self.max_item_size = bytes.min(MAX_ITEM_SIZE);
        self
    }

    /// Builds the store with a new SDK client from `config`, then prepares the table (see
    /// [`create_table`](Self::create_table)).
    ///
    /// The client is the SDK's default for `config`: connections are reused, credentials are
    /// cached, throttling is retried in the SDK's standard mode (within the middleware's store
    /// timeout). Turning off stalled-stream protection, the one knob that looked like overhead
    /// for small answers, made no measurable difference (see BENCHMARKS.md), so nothing is
    /// changed. `build_with_client` takes a client exactly as you configured it.
    pub async fn build(self, config: &SdkConfig) -> Result<DynamoDbStore, BuildError> {
        self.build_with_client(Client::new(config)).await
    }

    /// Builds the store on an existing SDK client, then prepares the table.
    ///
    /// # Errors
    /// A table whose key schema is not a single partition key `key` (S) is
    /// [`BuildError::KeySchema`]; control-plane failures are [`BuildError::Service`].
    pub async fn build_with_client(self, client: Client) -> Result<DynamoDbStore, BuildError> {
        let store = DynamoDbStore {
            inner: Arc::new(Inner {
                client,
                table: self.table_name,
                namespace: self.namespace,
                ttl: self.ttl,
                format: self.format,
                max_item_size: self.max_item_size,
            }),
        };
        if self.create_table {
            store.prepare_table(self.active_timeout).await?;
        }
        Ok(store)
    }
}

fn service<E>(operation: &'static str) -> impl FnOnce(SdkError<E>) -> BuildError
where
    E: std::error::Error + Send + Sync + 'static,
{
    move |e| BuildError::Service {
        operation,
        source: format!("{}", DisplayErrorContext(&e)).into(),
    }
}

impl DynamoDbStore {
    /// A builder with every option at its default.
    pub fn builder() -> DynamoDbStoreBuilder {
        DynamoDbStoreBuilder::default()
    }

    /// The SDK client this store uses.
    pub fn client(&self) -> &Client {
        &self.inner.client
    }

    /// The table's name.
    pub fn table_name(&self) -> &str {
        &self.inner.table
    }

    /// A GetItem of `key`'s item, ready to send.
    fn get_item(
        &self,
        key: &CacheKey,
    ) -> aws_sdk_dynamodb::operation::get_item::builders::GetItemFluentBuilder {
        self.inner
            .client
            .get_item()
            .table_name(&self.inner.table)
            .key(KEY_ATTR, AttributeValue::S(self.item_key(key)))
    }

    /// The partition key value this store uses for `key` (namespace applied).
    pub fn item_key(&self, key: &CacheKey) -> String {
        if self.inner.namespace.is_empty() {
            key.as_str().to_owned()
        } else {
            format!("{}:{}", self.inner.namespace, key.as_str())
        }
    }

    async fn prepare_table(&self, active_timeout: Duration) -> Result<(), BuildError> {
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
            Err(e) => return Err(service("DescribeTable")(e)),
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
        let invalid = |e: aws_sdk_dynamodb::error::BuildError| BuildError::Service {
            operation: "CreateTable",
            source: Box::new(e),
        };
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
                    .map_err(invalid)?,
            )
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(KEY_ATTR)
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .map_err(invalid)?,
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
            Err(e) => Err(service("CreateTable")(e)),
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
                .map_err(service("DescribeTable"))?;
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
            .map_err(service("DescribeTimeToLive"))?;
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
                    .map_err(|e| BuildError::Service {
                        operation: "UpdateTimeToLive",
                        source: Box::new(e),
                    })?;
                client
                    .update_time_to_live()
                    .table_name(table)
                    .time_to_live_specification(spec)
                    .send()
                    .await
                    .map_err(service("UpdateTimeToLive"))?;
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

#[async_trait]
impl CacheStore for DynamoDbStore {
    async fn get(&self, key: &CacheKey) -> Result<Option<StoredResponse>, StoreError> {
        let out = self
            .get_item(key)
            .send()
            .await
            .map_err(|e| StoreError::service(DisplayErrorContext(e).to_string()))?;
        match out.item {
            Some(item) => codec::decode(item).map(Some),
            None => Ok(None),
        }
    }

    async fn put(&self, key: &CacheKey, response: &StoredResponse) -> Result<(), StoreError> {
        let item = codec::encode(
            &self.item_key(key),
            response,
            self.inner.format,
            self.inner.ttl,
        );
        // `encode` states the item's size in it; counting again would walk the item twice.
        let size = codec::encoded_size(&item);
        let limit = self.inner.max_item_size;
        if size > limit {
            return Err(StoreError::ItemTooLarge { size, limit });
        }
        let result = self
            .inner
            .client
            .put_item()
            .table_name(&self.inner.table)
            .set_item(Some(item))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // The server's own verdict on size, should our count ever disagree with it.
            Err(e)
                if e.as_service_error().is_some_and(|s| {
                    s.code() == Some("ValidationException")
                        && s.message().is_some_and(|m| m.contains("size"))
                }) =>
            {
                Err(StoreError::ItemTooLarge { size, limit })
            }
            Err(e) => Err(StoreError::service(DisplayErrorContext(e).to_string())),
        }
    }

    async fn delete(&self, key: &CacheKey) -> Result<(), StoreError> {
        self.inner
            .client
            .delete_item()
            .table_name(&self.inner.table)
            .key(KEY_ATTR, AttributeValue::S(self.item_key(key)))
            .send()
            .await
            .map_err(|e| StoreError::service(DisplayErrorContext(e).to_string()))?;
        Ok(())
    }
}
