//! DynamoDB adapter of [`ManagerStore`]: a table of its own (`MANAGERS_TABLE`, key `pk`), so only
//! the admin functions can read admin password hashes.
//! * `MANAGER#<id>`: the manager row.
//! * `MANAGERNAME#<lowercase name>` → `manager_id`: the username reservation.
//! * `BOOTSTRAP` → `manager_id`: written with the first manager, so a bootstrap happens once.
//! * `COUNTER#manager` → `n`: the id counter.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType};
use aws_sdk_dynamodb::Client;

use super::dynamo::{
    dynamo_error, failed_conditions, get_by_pk, get_n, get_s, n, next_counter, put, s, transact, Item,
};
use super::ManagerStore;
use crate::error::{AppError, AppResult};
use crate::manager::{Manager, NewManager};
use crate::model::username_key;

#[derive(Clone)]
pub struct DynamoManagerStore {
    client: Client,
    table: String,
}

fn manager_pk(id: i64) -> String {
    format!("MANAGER#{id}")
}

fn name_pk(username: &str) -> String {
    format!("MANAGERNAME#{}", username_key(username))
}

fn manager_item(m: &Manager) -> Item {
    HashMap::from([
        ("pk".to_owned(), s(manager_pk(m.id))),
        ("id".to_owned(), n(m.id)),
        ("username".to_owned(), s(&m.username)),
        ("password".to_owned(), s(&m.password)),
        ("avatar".to_owned(), s(&m.avatar)),
        ("created_at".to_owned(), n(m.created_at)),
        ("updated_at".to_owned(), n(m.updated_at)),
    ])
}

fn manager_of(item: &Item) -> AppResult<Manager> {
    let corrupt = |field: &str| AppError::internal(format_args!("dynamodb: manager item without {field}"));
    Ok(Manager {
        id: get_n(item, "id").ok_or_else(|| corrupt("id"))?,
        username: get_s(item, "username").ok_or_else(|| corrupt("username"))?,
        password: get_s(item, "password").ok_or_else(|| corrupt("password"))?,
        avatar: get_s(item, "avatar").unwrap_or_default(),
        created_at: get_n(item, "created_at").unwrap_or(0),
        updated_at: get_n(item, "updated_at").unwrap_or(0),
    })
}

impl DynamoManagerStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoManagerStore { client, table: table.into() }
    }

    /// Creates the table when it does not exist (chat-local, tests); deployed stacks get it from
    /// template.yaml.
    pub async fn create_table_if_missing(&self) -> AppResult<()> {
        if self.client.describe_table().table_name(&self.table).send().await.is_ok() {
            return Ok(());
        }
        self.client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name("pk")
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .map_err(AppError::internal)?,
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name("pk")
                    .key_type(KeyType::Hash)
                    .build()
                    .map_err(AppError::internal)?,
            )
            .send()
            .await
            .map_err(|e| dynamo_error("CreateTable managers", e))?;
        Ok(())
    }

    async fn get_item(&self, pk: String) -> AppResult<Option<Item>> {
        get_by_pk(&self.client, &self.table, pk).await
    }
}

#[async_trait]
impl ManagerStore for DynamoManagerStore {
    async fn bootstrap(&self, manager: NewManager) -> AppResult<Option<Manager>> {
        // Cheap pre-check so restarts do not burn ids; the transaction is what guarantees it.
        if self.get_item("BOOTSTRAP".to_owned()).await?.is_some() {
            return Ok(None);
        }
        let id = next_counter(&self.client, &self.table, "manager").await?;
        let manager = manager.into_manager(id);
        let reference = |pk: String| HashMap::from([("pk".to_owned(), s(pk)), ("manager_id".to_owned(), n(id))]);
        let items = vec![
            put(&self.table, reference("BOOTSTRAP".to_owned()), "attribute_not_exists(pk)", None)?,
            put(&self.table, reference(name_pk(&manager.username)), "attribute_not_exists(pk)", None)?,
            put(&self.table, manager_item(&manager), "attribute_not_exists(pk)", None)?,
        ];
        match transact(&self.client, items).await {
            Ok(_) => Ok(Some(manager)),
            // Another bootstrap won (or the name is somehow taken): nothing was written.
            Err(e) if failed_conditions(&e).is_some_and(|f| f.contains(&true)) => Ok(None),
            Err(e) => Err(dynamo_error("TransactWriteItems bootstrap manager", e)),
        }
    }

    async fn get(&self, id: i64) -> AppResult<Option<Manager>> {
        self.get_item(manager_pk(id)).await?.map(|i| manager_of(&i)).transpose()
    }

    async fn find_by_username(&self, username: &str) -> AppResult<Option<Manager>> {
        match self.get_item(name_pk(username)).await?.and_then(|i| get_n(&i, "manager_id")) {
            Some(id) => self.get(id).await,
            None => Ok(None),
        }
    }

    async fn set_password(&self, id: i64, hash: &str, at: i64) -> AppResult<()> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(manager_pk(id)))
            .condition_expression("attribute_exists(pk)")
            .update_expression("SET #pw = :h, updated_at = :t")
            .expression_attribute_names("#pw", "password")
            .expression_attribute_values(":h", s(hash))
            .expression_attribute_values(":t", n(at))
            .send()
            .await
            .map_err(|e| dynamo_error("UpdateItem manager password", e))?;
        Ok(())
    }
}
