//! Fresh databases for tests: a temporary SQLite file, or a new database in the PostgreSQL
//! cluster named by `TANDEM_TEST_POSTGRES_URL`, and [`on_both_backends!`](crate::on_both_backends)
//! to run one test body on each.

/// Which storage backend a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A fresh, empty database for one test.
pub struct TestDb {
    pub backend: Backend,
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    /// A new database, or `None` for PostgreSQL when `TANDEM_TEST_POSTGRES_URL` is not set.
    pub async fn new(backend: Backend) -> Option<TestDb> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}", dir.path().join("tandem.db").display());
                Some(TestDb {
                    backend,
                    url,
                    _dir: Some(dir),
                })
            }
            Backend::Postgres => {
                let admin_url = std::env::var("TANDEM_TEST_POSTGRES_URL").ok()?;
                let name = format!("tandem_test_{}", uuid::Uuid::now_v7().simple());
                let (client, connection) =
                    tokio_postgres::connect(&admin_url, tokio_postgres::NoTls)
                        .await
                        .unwrap();
                tokio::spawn(connection);
                client
                    .batch_execute(&format!("CREATE DATABASE {name}"))
                    .await
                    .unwrap();
                let mut url = url::Url::parse(&admin_url).unwrap();
                url.set_path(&name);
                Some(TestDb {
                    backend,
                    url: url.to_string(),
                    _dir: None,
                })
            }
        }
    }
}

/// Runs each listed `async fn name(db: TestDb)` as `sqlite::name` and `postgres::name`; the
/// PostgreSQL variants pass trivially (with a note) when `TANDEM_TEST_POSTGRES_URL` is unset.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = $crate::db::TestDb::new($crate::db::Backend::Sqlite).await.unwrap();
                    super::$name(db).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    match $crate::db::TestDb::new($crate::db::Backend::Postgres).await {
                        Some(db) => super::$name(db).await,
                        None => eprintln!("skipped: TANDEM_TEST_POSTGRES_URL is not set"),
                    }
                }
            )*
        }
    };
}
