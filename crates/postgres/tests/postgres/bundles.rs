use eagate_postgres::{PgAccountRepository, PgBundleStore, PgDeploymentRepository, PgDeviceRepository};
use eagate_testkit::TestDatabase;

eagate_domain::bundle_store_contract!(async {
    let db = TestDatabase::migrated().await;
    let pool = db.pool();
    (
        db,
        PgAccountRepository::new(pool.clone()),
        PgDeviceRepository::new(pool.clone()),
        PgBundleStore::new(pool.clone()),
        PgDeploymentRepository::new(pool),
    )
});

eagate_domain::deployment_repository_contract!(async {
    let db = TestDatabase::migrated().await;
    let pool = db.pool();
    (
        db,
        PgAccountRepository::new(pool.clone()),
        PgDeviceRepository::new(pool.clone()),
        PgBundleStore::new(pool.clone()),
        PgDeploymentRepository::new(pool),
    )
});
