//! `/api/v1/auth`: registration, login, tokens, the current user.

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use eagate_domain::account::{LoginAttempt, LoginError, RegisterError, Registration, TokenPair, User};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::resource;
use eagate_domain::ratelimit::RateLimit;
use sha2::Digest as _;

use crate::extract::{Authenticated, Client, Json};
use crate::problem::ApiError;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/register", "POST").route(web::post().to(register)))
        .service(resource("/login", "POST").route(web::post().to(login)))
        .service(resource("/refresh", "POST").route(web::post().to(refresh)))
        .service(resource("/logout", "POST").route(web::post().to(logout)))
        .service(resource("/password", "POST").route(web::post().to(change_password)))
        .service(
            resource("/me", "GET, DELETE")
                .route(web::get().to(me))
                .route(web::delete().to(delete_me)),
        );
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RegisterRequest {
    #[schema(format = "email", max_length = 254, example = "ann@example.com")]
    email: String,
    #[schema(
        min_length = 3,
        max_length = 32,
        pattern = "^[A-Za-z0-9_.-]{3,32}$",
        example = "ann_trader"
    )]
    username: String,
    #[schema(
        min_length = 12,
        max_length = 128,
        format = "password",
        example = "correct horse battery"
    )]
    password: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LoginRequest {
    #[schema(min_length = 1, max_length = 254, example = "ann_trader")]
    login: String,
    #[schema(min_length = 1, format = "password", example = "correct horse battery")]
    password: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RefreshRequest {
    #[schema(example = "eagr_AAYNJ3vHvm6oTVZASFirwBy7SR5DDOtRcYF2-hF3kKc")]
    refresh_token: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChangePasswordRequest {
    #[schema(min_length = 1, format = "password", example = "correct horse battery")]
    current_password: String,
    #[schema(
        min_length = 12,
        max_length = 128,
        format = "password",
        example = "an even better passphrase"
    )]
    new_password: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeleteAccountRequest {
    #[schema(min_length = 1, format = "password", example = "correct horse battery")]
    password: String,
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

#[utoipa::path(
    post,
    path = "/api/v1/auth/register",
    tag = "auth",
    request_body = RegisterRequest,
    responses((status = 201, description = "The new account", body = UserResponse), (status = "4XX", description = "A problem: see its `type`", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = "5XX", description = "Server or dependency failure", body = crate::openapi::Problem, content_type = "application/problem+json"))
)]
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

#[utoipa::path(
    post,
    path = "/api/v1/auth/login",
    tag = "auth",
    request_body = LoginRequest,
    responses((status = 200, description = "A token pair", body = TokenResponse), (status = "4XX", description = "A problem: see its `type`", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = "5XX", description = "Server or dependency failure", body = crate::openapi::Problem, content_type = "application/problem+json"))
)]
pub(crate) async fn login(
    state: web::Data<AppState>,
    client: Client,
    body: Json<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    let attempt = LoginAttempt::parse(&body.0.login, &body.0.password).map_err(LoginError::Invalid)?;
    // Failed logins are counted per account: a burst slows that account
    // down for at most a minute; the owner is never locked out for long.
    let limits = &state.rate_limits;
    let per_account = RateLimit::per_minute(limits.settings().login_failures_per_account_per_minute);
    // Keyed by a digest: the login text may be a password typed in the
    // wrong field, and must not sit in the counter store.
    let login_digest = sha2::Sha256::digest(body.0.login.trim().to_lowercase().as_bytes());
    let account_key = format!("login-failures:{}", eagate_protocol::hex(&login_digest));
    if let Err(limited) = limits.exhausted(&account_key, per_account).await {
        metrics::counter!("logins_total", "outcome" => "rate_limited").increment(1);
        return Err(limited);
    }
    match state.accounts.login(attempt, &client.0).await {
        Ok((_, pair)) => {
            metrics::counter!("logins_total", "outcome" => "succeeded").increment(1);
            Ok(token_response(&state, pair))
        }
        Err(e) => {
            if matches!(e, LoginError::InvalidCredentials) {
                metrics::counter!("logins_total", "outcome" => "failed").increment(1);
                // Counting may itself answer 429; the failure is what matters.
                let _ = limits.check(&account_key, per_account).await;
            }
            Err(e.into())
        }
    }
}

#[utoipa::path(
    post,
    path = "/api/v1/auth/refresh",
    tag = "auth",
    request_body = RefreshRequest,
    responses((status = 200, description = "A new token pair; the presented refresh token is spent", body = TokenResponse), (status = "4XX", description = "A problem: see its `type`", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = "5XX", description = "Server or dependency failure", body = crate::openapi::Problem, content_type = "application/problem+json"))
)]
pub(crate) async fn refresh(
    state: web::Data<AppState>,
    body: Json<RefreshRequest>,
) -> Result<HttpResponse, ApiError> {
    let pair = state.accounts.refresh(&body.0.refresh_token).await?;
    Ok(token_response(&state, pair))
}

#[utoipa::path(
    post,
    path = "/api/v1/auth/logout",
    tag = "auth",
    responses((status = 204, description = "The session ended"), (status = "4XX", description = "A problem: see its `type`", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = "5XX", description = "Server or dependency failure", body = crate::openapi::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub(crate) async fn logout(state: web::Data<AppState>, who: Authenticated) -> Result<HttpResponse, ApiError> {
    state.accounts.logout(who.0).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(
    get,
    path = "/api/v1/auth/me",
    tag = "auth",
    responses((status = 200, description = "The current user", body = UserResponse), (status = "4XX", description = "A problem: see its `type`", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = "5XX", description = "Server or dependency failure", body = crate::openapi::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub(crate) async fn me(state: web::Data<AppState>, who: Authenticated) -> Result<HttpResponse, ApiError> {
    let user = state.accounts.current_user(who.0).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(UserResponse::from(user)))
}

#[utoipa::path(
    post,
    path = "/api/v1/auth/password",
    tag = "auth",
    request_body = ChangePasswordRequest,
    responses((status = 204, description = "Changed; every session ended"), (status = "4XX", description = "A problem: see its `type`", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = "5XX", description = "Server or dependency failure", body = crate::openapi::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub(crate) async fn change_password(
    state: web::Data<AppState>,
    who: Authenticated,
    client: Client,
    body: Json<ChangePasswordRequest>,
) -> Result<HttpResponse, ApiError> {
    state
        .accounts
        .change_password(who.0, &body.0.current_password, &body.0.new_password, &client.0)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(
    delete,
    path = "/api/v1/auth/me",
    tag = "auth",
    request_body = DeleteAccountRequest,
    responses((status = 204, description = "The account and everything it owned are deleted"), (status = "4XX", description = "A problem: see its `type`", body = crate::openapi::Problem, content_type = "application/problem+json"), (status = "5XX", description = "Server or dependency failure", body = crate::openapi::Problem, content_type = "application/problem+json")),
    security(("bearer" = []))
)]
pub(crate) async fn delete_me(
    state: web::Data<AppState>,
    who: Authenticated,
    client: Client,
    body: Json<DeleteAccountRequest>,
) -> Result<HttpResponse, ApiError> {
    state
        .accounts
        .delete_account(who.0, &body.0.password, &client.0)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
