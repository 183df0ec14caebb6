//! The API while its PostgreSQL database is out: quick 503 answers, and recovery after.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use sqlx::ConnectOptions;
use watchfloor_api::AppState;
use watchfloor_core::SlaPolicy;
use watchfloor_storage::{Role, SqlStore};

/// Runs `sql` as the cluster's superuser, on its `postgres` database.
async fn admin_sql(sql: &str) {
    let cluster = watchfloor_storage::test_cluster::cluster().unwrap();
    let options: sqlx::postgres::PgConnectOptions = cluster.url("postgres").parse().unwrap();
    let mut conn = options.connect().await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
        .execute(&mut conn)
        .await
        .unwrap();
}

/// Regression (during a PostgreSQL outage `/readyz` took 30 s to answer 503, and the API and
/// the login answered 500 `internal` after 30 s): they answer 503 `unavailable` within the
/// connection timeout, and work again once the database is back, with nothing lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_is_a_quick_503_and_recovery_is_clean() {
    let Some(url) = watchfloor_storage::test_cluster::fresh_database().await else {
        return;
    };
    let database = url.rsplit('/').next().unwrap().to_string();
    let store = Arc::new(SqlStore::open(&url).await.unwrap());
    let key = common::user_with_key(&store, "root", Role::Admin, &[]).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(watchfloor_api::serve(
        listener,
        AppState::new(store.clone(), SlaPolicy::default()),
        std::future::pending(),
    ));
    let http = reqwest::Client::new();
    let get = |path: &str, key: Option<&str>| {
        let mut req = http.get(format!("{base}{path}"));
        if let Some(key) = key {
            req = req.header("Authorization", key);
        }
        req.send()
    };
    assert_eq!(get("/readyz", None).await.unwrap().status(), 200);
    // The outage: no connection is allowed, and those open are cut.
    admin_sql(&format!(
        "ALTER DATABASE {database} ALLOW_CONNECTIONS false; \
         SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database}'"
    ))
    .await;
    for (path, key) in [("/readyz", None), ("/api/v1/incidents", Some(key.as_str()))] {
        let asked = Instant::now();
        let answer = get(path, key).await.unwrap();
        let took = asked.elapsed();
        assert_eq!(answer.status(), 503, "{path}");
        assert!(
            took < watchfloor_storage::ACQUIRE_TIMEOUT + Duration::from_secs(3),
            "{path} answered in {took:?}"
        );
        if key.is_some() {
            let body: Value = answer.json().await.unwrap();
            assert_eq!(body["code"], "unavailable", "{body}");
        }
    }
    // Back: ready again, and the data is there.
    admin_sql(&format!("ALTER DATABASE {database} ALLOW_CONNECTIONS true")).await;
    let started = Instant::now();
    loop {
        if get("/readyz", None).await.unwrap().status() == 200 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "not ready again"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let answer = get("/api/v1/me", Some(&key)).await.unwrap();
    assert_eq!(answer.status(), 200);
}
