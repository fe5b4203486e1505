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

impl From<DbError> for UnexpectedError {
    fn from(error: DbError) -> Self {
        UnexpectedError::new(error)
    }
}
