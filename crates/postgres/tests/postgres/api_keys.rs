use eagate_postgres::{PgAccountRepository, PgApiKeyRepository, PgAuditLog};
use eagate_testkit::TestDatabase;

eagate_domain::api_key_repository_contract!(async {
    let db = TestDatabase::migrated().await;
    let pool = db.pool();
    (
        db,
        PgAccountRepository::new(pool.clone()),
        PgApiKeyRepository::new(pool.clone()),
        PgAuditLog::new(pool),
    )
});
