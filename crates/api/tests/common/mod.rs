//! What the API's test files share: users with keys.

use watchfloor_api::auth;
use watchfloor_storage::prelude::*;
use watchfloor_storage::{Role, SqlStore};

/// Makes a user (password `pw`) with an API key, and returns the key.
pub async fn user_with_key(store: &SqlStore, name: &str, role: Role, orgs: &[&str]) -> String {
    let orgs: Vec<String> = orgs.iter().map(|o| o.to_string()).collect();
    let hash = auth::hash_password("pw").unwrap();
    store.create_user(name, role, &orgs, &hash).await.unwrap();
    let key = auth::random_secret().unwrap();
    store
        .add_api_key(name, &auth::key_hash(&key))
        .await
        .unwrap();
    key
}
