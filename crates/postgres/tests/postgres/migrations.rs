use diesel::QueryableByName;
use diesel::sql_types::Text;
use diesel_async::RunQueryDsl;
use eagate_postgres::migrate;
use eagate_testkit::TestDatabase;

#[derive(QueryableByName, Debug, PartialEq, Eq)]
struct Line {
    #[diesel(sql_type = Text)]
    line: String,
}

/// A canonical description of the public schema: columns, constraints and
/// indexes, sorted.
async fn schema_of(db: &TestDatabase) -> Vec<String> {
    let mut conn = db.connect().await;
    let sql = r"
        SELECT format('column %s.%s %s null=%s default=%s', table_name, column_name, data_type,
                      is_nullable, coalesce(column_default, '')) AS line
          FROM information_schema.columns
         WHERE table_schema = 'public' AND table_name <> '__diesel_schema_migrations'
        UNION ALL
        SELECT format('constraint %s %s %s', conrelid::regclass, conname, pg_get_constraintdef(oid))
          FROM pg_constraint
         WHERE connamespace = 'public'::regnamespace
           AND conrelid::regclass::text <> '__diesel_schema_migrations'
        UNION ALL
        SELECT format('index %s', indexdef)
          FROM pg_indexes
         WHERE schemaname = 'public' AND tablename <> '__diesel_schema_migrations'
        ORDER BY 1";
    diesel::sql_query(sql)
        .load::<Line>(&mut conn)
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.line)
        .collect()
}

#[tokio::test]
async fn migrations_round_trip_to_the_same_schema() {
    let db = TestDatabase::empty().await;
    let applied = migrate::run_pending(db.url()).await.unwrap();
    assert!(!applied.is_empty());
    let once = schema_of(&db).await;
    assert!(
        once.iter().any(|l| l.starts_with("column users.email")),
        "{once:#?}"
    );

    let reverted = migrate::revert_all(db.url()).await.unwrap();
    assert_eq!(reverted.len(), applied.len());
    assert!(
        schema_of(&db).await.is_empty(),
        "down migrations left objects behind"
    );

    migrate::run_pending(db.url()).await.unwrap();
    assert_eq!(schema_of(&db).await, once);
    assert!(migrate::is_up_to_date(db.url()).await.unwrap());
}

#[tokio::test]
async fn status_and_revert_last() {
    let db = TestDatabase::empty().await;
    let before = migrate::status(db.url()).await.unwrap();
    assert!(before.iter().all(|m| !m.applied));
    assert!(!migrate::is_up_to_date(db.url()).await.unwrap());
    assert_eq!(migrate::revert_last(db.url()).await.unwrap(), None);

    let applied = migrate::run_pending(db.url()).await.unwrap();
    let after = migrate::status(db.url()).await.unwrap();
    assert!(after.iter().all(|m| m.applied));
    // `migrate up`, `migrate status` and `migrate down` name migrations alike.
    let names: Vec<String> = after.iter().map(|m| m.name.clone()).collect();
    assert_eq!(applied, names);
    assert!(
        names[0].ends_with("_create_accounts"),
        "named by directory: {names:?}"
    );
    let last = after.last().unwrap().name.clone();
    assert_eq!(migrate::revert_last(db.url()).await.unwrap(), Some(last));
    assert!(!migrate::is_up_to_date(db.url()).await.unwrap());
}
