//! `/api/v1/auth`: registration, login, tokens, the current user.

use actix_web::http::header;
use actix_web::{HttpResponse, delete, get, post, web};
use chrono::{DateTime, Utc};
use eagate_domain::account::{LoginAttempt, LoginError, RegisterError, Registration, TokenPair, User};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Problems;

use crate::extract::{Authorized, Client, Json, act};
use crate::problem::ApiError;
use crate::state::AppState;
use utoipa_actix_web::service_config::ServiceConfig;

pub fn configure(cfg: &mut ServiceConfig<'_>) {
    cfg.service(register)
        .service(login)
        .service(refresh)
        .service(logout)
        .service(me)
        .service(change_password)
        .service(delete_me);
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RegisterRequest {
    #[schema(format = "email", max_length = 254, example = "ann@example.com")]
    pub(crate) email: String,
    #[schema(
        min_length = 3,
        max_length = 32,
        pattern = "^[A-Za-z0-9_.-]{3,32}$",
        example = "ann_trader"
    )]
    pub(crate) username: String,
    #[schema(
        min_length = 12,
        max_length = 128,
        format = "password",
        example = "correct horse battery"
    )]
    pub(crate) password: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LoginRequest {
    #[schema(min_length = 1, max_length = 254, example = "ann_trader")]
    pub(crate) login: String,
    #[schema(min_length = 1, format = "password", example = "correct horse battery")]
    pub(crate) password: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RefreshRequest {
    #[schema(example = "eagr_AAYNJ3vHvm6oTVZASFirwBy7SR5DDOtRcYF2-hF3kKc")]
    pub(crate) refresh_token: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChangePasswordRequest {
    #[schema(min_length = 1, format = "password", example = "correct horse battery")]
    pub(crate) current_password: String,
    #[schema(
        min_length = 12,
        max_length = 128,
        format = "password",
        example = "an even better passphrase"
    )]
    pub(crate) new_password: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeleteAccountRequest {
    #[schema(min_length = 1, format = "password", example = "correct horse battery")]
    pub(crate) password: String,
}

/// A user as its owner sees it; never the password hash.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct UserResponse {
    id: Uuid,
    username: String,
    email: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<User> for UserResponse {
    fn from(u: User) -> Self {
        Self {
            id: u.id.as_uuid(),
            username: u.username.as_str().to_owned(),
            email: u.email.as_str().to_owned(),
            created_at: u.created_at,
            updated_at: u.updated_at,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct TokenResponse {
    access_token: String,
    token_type: &'static str,
    /// Seconds until the access token expires.
    expires_in: i64,
    refresh_token: String,
    /// Seconds until the refresh token expires (it also dies when used).
    refresh_expires_in: i64,
}

fn token_response(state: &AppState, pair: TokenPair) -> HttpResponse {
    let policy = state.accounts.policy();
    let body = TokenResponse {
        access_token: pair.access_token.expose().to_owned(),
        token_type: "Bearer",
        expires_in: policy.access_token_ttl.num_seconds(),
        refresh_token: pair.refresh_token.expose().to_owned(),
        refresh_expires_in: policy.refresh_token_ttl.num_seconds(),
    };
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(body)
}

/// Register an account
///
/// Creates an account. Log in afterwards to get tokens.
#[utoipa::path(
    operation_id = "registerUser",
    tag = "auth",
    request_body = RegisterRequest,
    responses((status = 201, description = "The new account", body = UserResponse), Problems),
    security(())
)]
#[post("/register")]
pub(crate) async fn register(
    state: web::Data<AppState>,
    client: Client,
    body: Json<RegisterRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let registration =
        Registration::parse(&body.email, &body.username, &body.password).map_err(RegisterError::Invalid)?;
    let user = state.accounts.register(registration, &client.0).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, "/api/v1/auth/me"))
        .json(UserResponse::from(user)))
}

/// Log in
///
/// Exchanges a username or email and its password for an access token and a refresh token. The right password of an account an administrator disabled gets 403 `account-disabled` and no tokens (audited as `login.refused`).
#[utoipa::path(
    operation_id = "login",
    tag = "auth",
    request_body = LoginRequest,
    responses((status = 200, description = "A token pair", body = TokenResponse), Problems),
    security(())
)]
#[post("/login")]
pub(crate) async fn login(
    state: web::Data<AppState>,
    client: Client,
    body: Json<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    let attempt = LoginAttempt::parse(&body.0.login, &body.0.password).map_err(LoginError::Invalid)?;
    let result = state.accounts.login(attempt, &client.0).await;
    let outcome = match &result {
        Ok(_) => "succeeded",
        Err(LoginError::InvalidCredentials) => "failed",
        Err(LoginError::TooManyAttempts(_)) => "rate_limited",
        Err(LoginError::AccountDisabled) => "refused",
        Err(LoginError::Invalid(_) | LoginError::Unexpected(_)) => "error",
    };
    metrics::counter!("logins_total", "outcome" => outcome).increment(1);
    let (_, pair) = result?;
    Ok(token_response(&state, pair))
}

/// Refresh the tokens
///
/// Exchanges a refresh token for a new token pair. The presented refresh token is spent: reusing it ends the session. A disabled account's refresh token gets 403 `account-disabled` (and is not spent).
#[utoipa::path(
    operation_id = "refreshTokens",
    tag = "auth",
    request_body = RefreshRequest,
    responses((status = 200, description = "A new token pair; the presented refresh token is spent", body = TokenResponse), Problems),
    security(())
)]
#[post("/refresh")]
pub(crate) async fn refresh(
    state: web::Data<AppState>,
    body: Json<RefreshRequest>,
) -> Result<HttpResponse, ApiError> {
    let pair = state.accounts.refresh(&body.0.refresh_token).await?;
    Ok(token_response(&state, pair))
}

/// Log out
///
/// Ends the session the access token belongs to; its refresh token stops working.
#[utoipa::path(
    operation_id = "logout",
    tag = "auth",
    responses((status = 204, description = "The session ended"), Problems),
    security(("bearer" = []))
)]
#[post("/logout")]
pub(crate) async fn logout(
    state: web::Data<AppState>,
    who: Authorized<act::Logout>,
) -> Result<HttpResponse, ApiError> {
    state.accounts.logout(who.0.session()?).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Get the current user
#[utoipa::path(
    operation_id = "getCurrentUser",
    tag = "auth",
    responses((status = 200, description = "The current user", body = UserResponse), Problems),
    security(("bearer" = []))
)]
#[get("/me")]
pub(crate) async fn me(
    state: web::Data<AppState>,
    who: Authorized<act::ReadProfile>,
) -> Result<HttpResponse, ApiError> {
    let user = state.accounts.current_user(who.0.session()?).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(UserResponse::from(user)))
}

/// Change the password
///
/// Every session ends, including the caller's: log in again with the new password.
#[utoipa::path(
    operation_id = "changePassword",
    tag = "auth",
    request_body = ChangePasswordRequest,
    responses((status = 204, description = "Changed; every session ended"), Problems),
    security(("bearer" = []))
)]
#[post("/password")]
pub(crate) async fn change_password(
    state: web::Data<AppState>,
    who: Authorized<act::ChangePassword>,
    client: Client,
    body: Json<ChangePasswordRequest>,
) -> Result<HttpResponse, ApiError> {
    state
        .accounts
        .change_password(
            who.0.session()?,
            &body.0.current_password,
            &body.0.new_password,
            &client.0,
        )
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Delete the account
///
/// Deletes the account and everything it owns (devices, signals, sessions). Requires the password.
#[utoipa::path(
    operation_id = "deleteAccount",
    tag = "auth",
    request_body = DeleteAccountRequest,
    responses((status = 204, description = "The account and everything it owned are deleted"), Problems),
    security(("bearer" = []))
)]
#[delete("/me")]
pub(crate) async fn delete_me(
    state: web::Data<AppState>,
    who: Authorized<act::DeleteAccount>,
    client: Client,
    body: Json<DeleteAccountRequest>,
) -> Result<HttpResponse, ApiError> {
    state
        .accounts
        .delete_account(who.0.session()?, &body.0.password, &client.0)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
