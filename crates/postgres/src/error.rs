//! Translation of database failures into domain errors at the boundary.

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use eagate_domain::UnexpectedError;

use crate::pool::PoolError;

/// Anything that went wrong talking to PostgreSQL.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DbError {
    #[error("database pool: {0}")]
    Pool(#[from] PoolError),
    #[error("database query: {0}")]
    Query(#[from] DieselError),
}

impl DbError {
    /// The violated unique constraint's name, if this is a unique violation.
    pub(crate) fn unique_violation(&self) -> Option<&str> {
        match self {
            Self::Query(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info)) => {
                info.constraint_name()
            }
            _ => None,
        }
    }
}

impl DbError {
    /// Whether PostgreSQL is out of reach for now (down, restarting,
    /// failing over, or every pooled connection busy): a retry may succeed,
    /// so clients get 503, not 500.
    pub(crate) fn is_unavailable(&self) -> bool {
        use deadpool::managed::PoolError as P;
        match self {
            Self::Pool(P::Timeout(_) | P::Closed | P::Backend(_)) => true,
            Self::Pool(P::NoRuntimeSpecified | P::PostCreateHook(_)) => false,
            Self::Query(e) => query_unavailable(e),
        }
    }
}

/// Query failures that mean the connection or the server went away, not
/// that the query was wrong.
fn query_unavailable(error: &DieselError) -> bool {
    match error {
        DieselError::DatabaseError(
            DatabaseErrorKind::UnableToSendCommand
            | DatabaseErrorKind::ClosedConnection
            | DatabaseErrorKind::ReadOnlyTransaction
            | DatabaseErrorKind::SerializationFailure,
            _,
        )
        | DieselError::BrokenTransactionManager => true,
        // SQLSTATE 57P01-57P03 (shutdown, crash, starting up), class 08,
        // 57014 (statement timeout, cancelled), 55P03 (lock timeout) and
        // 40P01 (deadlock: one side is rolled back) arrive without a kind
        // of their own.
        DieselError::DatabaseError(DatabaseErrorKind::Unknown, info) => {
            let message = info.message();
            [
                "terminating connection",
                "the database system is",
                "connection to server",
                "server closed the connection",
                "cannot execute",
                "canceling statement due to",
                "could not obtain lock",
                "deadlock detected",
            ]
            .iter()
            .any(|m| message.starts_with(m))
        }
        _ => false,
    }
}

impl From<DbError> for UnexpectedError {
    fn from(error: DbError) -> Self {
        if error.is_unavailable() {
            UnexpectedError::unavailable(error)
        } else {
            UnexpectedError::new(error)
        }
    }
}

#[cfg(test)]
mod tests {
    use diesel::result::{DatabaseErrorKind, Error as DieselError};

    use super::query_unavailable;

    fn unknown(message: &str) -> DieselError {
        DieselError::DatabaseError(DatabaseErrorKind::Unknown, Box::new(message.to_owned()))
    }

    /// The messages are matched in English: PostgreSQL must run eagate's
    /// role with `lc_messages = 'C'` (docs/deployment.md), since only a
    /// superuser may set it and diesel gives no SQLSTATE for these. A
    /// translated message is not recognised (and would be a 500).
    #[test]
    fn messages_are_recognised_only_in_english() {
        assert!(query_unavailable(&unknown(
            "canceling statement due to statement timeout"
        )));
        for translated in [
            "Abbruch der Anweisung wegen Zeitüberschreitung",
            "annulation de la requête à cause du délai écoulé pour l'exécution de l'instruction",
            "Verklemmung (Deadlock) entdeckt",
        ] {
            assert!(!query_unavailable(&unknown(translated)), "{translated}");
        }
    }

    #[test]
    fn timeouts_cancellations_and_deadlocks_are_worth_a_retry() {
        for message in [
            "canceling statement due to statement timeout",
            "canceling statement due to lock timeout",
            "canceling statement due to user request",
            "could not obtain lock on relation \"signals\"",
            "deadlock detected",
            "terminating connection due to administrator command",
            "the database system is starting up",
        ] {
            assert!(query_unavailable(&unknown(message)), "{message}");
        }
    }

    #[test]
    fn a_wrong_query_is_not() {
        for message in [
            "syntax error at or near \"SELEC\"",
            "relation \"nope\" does not exist",
        ] {
            assert!(!query_unavailable(&unknown(message)), "{message}");
        }
    }
}
