use eagate_postgres::{
    PgAccountRepository, PgAdminRepository, PgApiKeyRepository, PgDeviceRepository, PgSessionRepository,
    PgSignalRepository,
};
use eagate_testkit::TestDatabase;

eagate_domain::admin_repository_contract!(async {
    let db = TestDatabase::migrated().await;
    let pool = db.pool();
    (
        db,
        PgAccountRepository::new(pool.clone()),
        PgSessionRepository::new(pool.clone()),
        PgDeviceRepository::new(pool.clone()),
        PgSignalRepository::new(pool.clone()),
        PgApiKeyRepository::new(pool.clone()),
        PgAdminRepository::new(pool),
    )
});
