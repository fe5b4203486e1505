use chrono::{DateTime, Utc};
use diesel::prelude::*;
use eagate_domain::account::PasswordHash;
use eagate_domain::account::{
    Email, NewRefreshToken, NewUser, RevocationReason, Session, SessionId, User, UserCredentials, UserId,
    Username,
};
use uuid::Uuid;

use crate::schema::{refresh_tokens, sessions, users};

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = users, check_for_backend(diesel::pg::Pg))]
pub(crate) struct UserRow {
    pub id: Uuid,
    pub username: String,
    pub email: String,
    pub password_hash: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl UserRow {
    pub fn into_user(self) -> User {
        self.into_credentials().user
    }

    pub fn into_credentials(self) -> UserCredentials {
        UserCredentials {
            user: User {
                id: UserId::from_uuid(self.id),
                username: Username::from_trusted(self.username),
                email: Email::from_trusted(self.email),
                created_at: self.created_at,
                updated_at: self.updated_at,
            },
            password_hash: PasswordHash::new(self.password_hash),
            disabled: false,
        }
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = users)]
pub(crate) struct NewUserRow<'a> {
    pub id: Uuid,
    pub username: &'a str,
    pub email: &'a str,
    pub password_hash: &'a str,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl<'a> From<&'a NewUser> for NewUserRow<'a> {
    fn from(u: &'a NewUser) -> Self {
        Self {
            id: u.id.as_uuid(),
            username: u.username.as_str(),
            email: u.email.as_str(),
            password_hash: u.password_hash.as_str(),
            created_at: u.created_at,
            updated_at: u.created_at,
        }
    }
}

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = sessions, check_for_backend(diesel::pg::Pg))]
pub(crate) struct SessionRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<SessionRow> for Session {
    fn from(row: SessionRow) -> Self {
        Self {
            id: SessionId::from_uuid(row.id),
            user_id: UserId::from_uuid(row.user_id),
            created_at: row.created_at,
            revoked_at: row.revoked_at,
        }
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = sessions)]
pub(crate) struct NewSessionRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub revoked_reason: Option<&'static str>,
}

impl From<&Session> for NewSessionRow {
    fn from(s: &Session) -> Self {
        Self {
            id: s.id.as_uuid(),
            user_id: s.user_id.as_uuid(),
            created_at: s.created_at,
            revoked_at: s.revoked_at,
            // A session stored already revoked has no better reason to give.
            revoked_reason: s.revoked_at.map(|_| RevocationReason::Logout.as_str()),
        }
    }
}

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = refresh_tokens, check_for_backend(diesel::pg::Pg))]
pub(crate) struct RefreshTokenRow {
    pub expires_at: DateTime<Utc>,
    pub rotated_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = refresh_tokens)]
pub(crate) struct NewRefreshTokenRow<'a> {
    pub token_hash: &'a [u8],
    pub session_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl<'a> From<&'a NewRefreshToken> for NewRefreshTokenRow<'a> {
    fn from(t: &'a NewRefreshToken) -> Self {
        Self {
            token_hash: t.hash.as_bytes(),
            session_id: t.session_id.as_uuid(),
            created_at: t.created_at,
            expires_at: t.expires_at,
        }
    }
}
