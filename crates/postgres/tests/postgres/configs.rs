use eagate_postgres::{PgAccountRepository, PgConfigRepository, PgDeviceRepository};
use eagate_testkit::TestDatabase;

eagate_domain::config_repository_contract!(async {
    let db = TestDatabase::migrated().await;
    let pool = db.pool();
    (
        db,
        PgAccountRepository::new(pool.clone()),
        PgDeviceRepository::new(pool.clone()),
        PgConfigRepository::new(pool),
    )
});
