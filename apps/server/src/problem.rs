//! RFC 9457 problem details: the body of every error response.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use eagate_domain::ValidationErrors;
use serde::Serialize;

use crate::context::current_request_id;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// The problem types eagate answers with. The `type` member is
/// `urn:eagate:problem:<code>` and never changes for a given code; clients
/// branch on it (or on the identical `code` member), never on `title` or
/// `detail`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    ValidationFailed,
    MalformedBody,
    UnsupportedMediaType,
    PayloadTooLarge,
    NotFound,
    MethodNotAllowed,
    InvalidCredentials,
    InvalidToken,
    InvalidRefreshToken,
    WrongPassword,
    EmailTaken,
    UsernameTaken,
    MalformedQuery,
    MalformedId,
    DeviceNameTaken,
    DeviceLimitReached,
    /// Owner action on a revoked device (409).
    DeviceNotActive,
    /// Device authentication, protocol step 1: a signing header is missing
    /// or malformed.
    MalformedHeader,
    /// Step 2: the request's timestamp is too far from the server clock.
    ClockSkew,
    /// Step 3: unknown device or wrong signature (deliberately one type).
    InvalidSignature,
    /// Step 4: a correctly signed request from a revoked device.
    DeviceRevoked,
    /// Step 5: the nonce was already used.
    Replayed,
    /// A dependency is down; the request was refused rather than risked.
    ServiceUnavailable,
    /// An `Idempotency-Key` reused for a different request.
    IdempotencyKeyReused,
    /// A second acknowledgement with a different outcome.
    AckConflict,
    /// A write without `If-Match` (428).
    PreconditionRequired,
    /// `If-Match` names a version that is no longer current (412).
    PreconditionFailed,
    /// A bundle name and version the owner already has (409).
    BundleVersionTaken,
    /// Deleting a bundle a deployment uses (409).
    BundleInUse,
    /// A device report that does not follow the deployment state machine (409).
    InvalidTransition,
    /// Cancelling a deployment that already ended (409).
    DeploymentEnded,
    /// A `Range` that starts beyond the file (416).
    RangeNotSatisfiable,
    RateLimited,
    HeadersTooLarge,
    RequestTimeout,
    /// Readiness: a dependency is down.
    NotReady,
    /// A cross-origin request from an origin that is not allowed.
    CorsDenied,
    /// A path with percent-encoded unreserved characters, dot segments or
    /// empty segments: refused before routing, so that the router, the rate
    /// limits and authentication all see one spelling of every route.
    NonCanonicalPath,
    /// An API key without the scope the operation needs (403; the
    /// `scope` extension names it).
    MissingScope,
    /// An API key where only a password session will do (403).
    SessionRequired,
    /// An operation only administrators may perform (403).
    AdminRequired,
    /// An API key past its expiry (401).
    ApiKeyExpired,
    /// A revoked API key (401).
    ApiKeyRevoked,
    /// An API key used from an address off its allowlist (403).
    AddressNotAllowed,
    /// An owner's active API key already has the name (409).
    ApiKeyNameTaken,
    /// Rotating a revoked API key (409).
    ApiKeyNotActive,
    /// An administrator disabling their own account (409).
    CannotDisableSelf,
    /// The right password (or a valid refresh token) of an account an
    /// administrator disabled (403).
    AccountDisabled,
    /// An upload that would take the owner's stored bundles past
    /// `EAGATE_BUNDLE_STORAGE_MAX_BYTES_PER_ACCOUNT` (409).
    BundleStorageFull,
    /// Any other refused request (a response the framework made).
    BadRequest,
    Internal,
}

impl ProblemKind {
    pub const fn code(self) -> &'static str {
        match self {
            Self::ValidationFailed => "validation-failed",
            Self::MalformedBody => "malformed-body",
            Self::UnsupportedMediaType => "unsupported-media-type",
            Self::PayloadTooLarge => "payload-too-large",
            Self::NotFound => "not-found",
            Self::MethodNotAllowed => "method-not-allowed",
            Self::InvalidCredentials => "invalid-credentials",
            Self::InvalidToken => "invalid-token",
            Self::InvalidRefreshToken => "invalid-refresh-token",
            Self::WrongPassword => "wrong-password",
            Self::EmailTaken => "email-taken",
            Self::UsernameTaken => "username-taken",
            Self::MalformedQuery => "malformed-query",
            Self::MalformedId => "malformed-id",
            Self::DeviceNameTaken => "device-name-taken",
            Self::DeviceLimitReached => "device-limit-reached",
            Self::DeviceNotActive => "device-not-active",
            Self::MalformedHeader => "malformed-header",
            Self::ClockSkew => "clock-skew",
            Self::InvalidSignature => "invalid-signature",
            Self::DeviceRevoked => "device-revoked",
            Self::Replayed => "replayed",
            Self::ServiceUnavailable => "service-unavailable",
            Self::IdempotencyKeyReused => "idempotency-key-reused",
            Self::AckConflict => "ack-conflict",
            Self::PreconditionRequired => "precondition-required",
            Self::PreconditionFailed => "precondition-failed",
            Self::BundleVersionTaken => "bundle-version-taken",
            Self::BundleInUse => "bundle-in-use",
            Self::InvalidTransition => "invalid-transition",
            Self::DeploymentEnded => "deployment-ended",
            Self::RangeNotSatisfiable => "range-not-satisfiable",
            Self::RateLimited => "rate-limited",
            Self::HeadersTooLarge => "headers-too-large",
            Self::RequestTimeout => "request-timeout",
            Self::NotReady => "not-ready",
            Self::CorsDenied => "cors-denied",
            Self::NonCanonicalPath => "non-canonical-path",
            Self::MissingScope => "missing-scope",
            Self::SessionRequired => "session-required",
            Self::AdminRequired => "admin-required",
            Self::ApiKeyExpired => "api-key-expired",
            Self::ApiKeyRevoked => "api-key-revoked",
            Self::AddressNotAllowed => "address-not-allowed",
            Self::ApiKeyNameTaken => "api-key-name-taken",
            Self::ApiKeyNotActive => "api-key-not-active",
            Self::CannotDisableSelf => "cannot-disable-self",
            Self::AccountDisabled => "account-disabled",
            Self::BundleStorageFull => "bundle-storage-full",
            Self::BadRequest => "bad-request",
            Self::Internal => "internal-error",
        }
    }

    pub const fn status(self) -> StatusCode {
        match self {
            Self::ValidationFailed => StatusCode::UNPROCESSABLE_ENTITY,
            Self::MalformedBody
            | Self::MalformedQuery
            | Self::MalformedId
            | Self::MalformedHeader
            | Self::CorsDenied
            | Self::NonCanonicalPath
            | Self::BadRequest => StatusCode::BAD_REQUEST,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::InvalidCredentials
            | Self::InvalidToken
            | Self::InvalidRefreshToken
            | Self::ClockSkew
            | Self::InvalidSignature
            | Self::DeviceRevoked
            | Self::Replayed
            | Self::ApiKeyExpired
            | Self::ApiKeyRevoked => StatusCode::UNAUTHORIZED,
            Self::ServiceUnavailable | Self::NotReady => StatusCode::SERVICE_UNAVAILABLE,
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::WrongPassword
            | Self::MissingScope
            | Self::SessionRequired
            | Self::AdminRequired
            | Self::AddressNotAllowed
            | Self::AccountDisabled => StatusCode::FORBIDDEN,
            Self::EmailTaken
            | Self::UsernameTaken
            | Self::DeviceNameTaken
            | Self::DeviceLimitReached
            | Self::DeviceNotActive
            | Self::ApiKeyNameTaken
            | Self::ApiKeyNotActive
            | Self::CannotDisableSelf
            | Self::IdempotencyKeyReused
            | Self::AckConflict
            | Self::BundleVersionTaken
            | Self::BundleInUse
            | Self::BundleStorageFull
            | Self::InvalidTransition
            | Self::DeploymentEnded => StatusCode::CONFLICT,
            Self::RangeNotSatisfiable => StatusCode::RANGE_NOT_SATISFIABLE,
            Self::PreconditionRequired => StatusCode::PRECONDITION_REQUIRED,
            Self::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub const fn title(self) -> &'static str {
        match self {
            Self::ValidationFailed => "Validation failed",
            Self::MalformedBody => "Malformed request body",
            Self::UnsupportedMediaType => "Unsupported media type",
            Self::PayloadTooLarge => "Request body too large",
            Self::NotFound => "Not found",
            Self::MethodNotAllowed => "Method not allowed",
            Self::InvalidCredentials => "Invalid credentials",
            Self::InvalidToken => "Invalid or missing access token",
            Self::InvalidRefreshToken => "Invalid refresh token",
            Self::WrongPassword => "Wrong password",
            Self::EmailTaken => "Email already registered",
            Self::UsernameTaken => "Username taken",
            Self::MalformedQuery => "Malformed query string",
            Self::MalformedId => "Malformed id",
            Self::DeviceNameTaken => "Device name taken",
            Self::DeviceLimitReached => "Device limit reached",
            Self::DeviceNotActive => "Device is revoked",
            Self::MalformedHeader => "Missing or malformed signing header",
            Self::ClockSkew => "Clock skew too large",
            Self::InvalidSignature => "Invalid signature",
            Self::DeviceRevoked => "Device revoked",
            Self::Replayed => "Replayed request",
            Self::ServiceUnavailable => "Service unavailable",
            Self::IdempotencyKeyReused => "Idempotency key reused",
            Self::AckConflict => "Conflicting acknowledgement",
            Self::PreconditionRequired => "Precondition required",
            Self::PreconditionFailed => "Precondition failed",
            Self::BundleVersionTaken => "Bundle version exists",
            Self::BundleInUse => "Bundle in use",
            Self::InvalidTransition => "Invalid status transition",
            Self::DeploymentEnded => "Deployment ended",
            Self::RangeNotSatisfiable => "Range not satisfiable",
            Self::RateLimited => "Too many requests",
            Self::HeadersTooLarge => "Request headers too large",
            Self::RequestTimeout => "Request timeout",
            Self::NotReady => "Not ready",
            Self::CorsDenied => "Origin not allowed",
            Self::NonCanonicalPath => "Non-canonical path",
            Self::MissingScope => "Missing scope",
            Self::SessionRequired => "Password session required",
            Self::AdminRequired => "Administrator required",
            Self::ApiKeyExpired => "API key expired",
            Self::ApiKeyRevoked => "API key revoked",
            Self::AddressNotAllowed => "Address not allowed",
            Self::ApiKeyNameTaken => "API key name taken",
            Self::ApiKeyNotActive => "API key is revoked",
            Self::CannotDisableSelf => "Cannot disable one's own account",
            Self::AccountDisabled => "Account disabled",
            Self::BundleStorageFull => "Bundle storage full",
            Self::BadRequest => "Bad request",
            Self::Internal => "Internal server error",
        }
    }

    pub fn type_uri(self) -> String {
        format!("urn:eagate:problem:{}", self.code())
    }
}

/// One failing input field.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FieldProblem {
    /// The field's name, a JSON path such as `device_ids[3]`, or a header
    /// such as `X-Nonce`.
    #[schema(example = "username")]
    pub field: String,
    #[schema(example = "too_short")]
    pub code: String,
    #[schema(example = "must be at least 3 characters")]
    pub message: String,
}

// What is sent is what the OpenAPI document describes: this one type.
/// An RFC 9457 problem: the body of every error response
/// (`application/problem+json`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem<'a> {
    /// `urn:eagate:problem:<code>`; branch on this (or `code`), never on `title`.
    #[serde(rename = "type")]
    #[schema(example = "urn:eagate:problem:validation-failed")]
    type_: String,
    /// The stable code: validation-failed, malformed-body, malformed-query,
    /// malformed-id, malformed-header, unsupported-media-type,
    /// payload-too-large, headers-too-large, request-timeout, not-found,
    /// method-not-allowed, invalid-credentials, invalid-token,
    /// invalid-refresh-token, wrong-password, email-taken, username-taken,
    /// device-name-taken, device-limit-reached, device-not-active,
    /// idempotency-key-reused, ack-conflict, precondition-required,
    /// precondition-failed, bundle-version-taken, bundle-in-use,
    /// invalid-transition, deployment-ended, range-not-satisfiable,
    /// rate-limited, cors-denied,
    /// clock-skew, invalid-signature, device-revoked, replayed,
    /// service-unavailable, not-ready, non-canonical-path, missing-scope,
    /// session-required, admin-required, api-key-expired, api-key-revoked,
    /// address-not-allowed, api-key-name-taken, api-key-not-active,
    /// cannot-disable-self, account-disabled, bundle-storage-full,
    /// bad-request, internal-error.
    #[schema(example = "validation-failed")]
    code: &'static str,
    #[schema(example = "Validation failed")]
    title: &'static str,
    /// The HTTP status code.
    #[schema(example = 422)]
    status: u16,
    /// What was wrong, for humans.
    #[schema(example = "Some fields are invalid: username.")]
    detail: &'a str,
    /// `urn:eagate:request:<request id>` (also in `X-Request-Id`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    instance: Option<String>,
    /// For validation and header problems: every failing field.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    #[schema(value_type = Option<Vec<FieldProblem>>, nullable = false)]
    errors: &'a [FieldProblem],
    /// Members some problem types add (RFC 9457 extensions).
    #[serde(flatten)]
    #[schema(schema_with = problem_extensions)]
    extensions: &'a serde_json::Map<String, serde_json::Value>,
}

/// The extension members a problem may carry, by problem type.
fn problem_extensions() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    let integer = |description: &str| {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                utoipa::openapi::KnownFormat::Int64,
            )))
            .description(Some(description))
    };
    ObjectBuilder::new()
        .property("server_time", integer("`clock-skew`: the server's Unix time."))
        .property(
            "retry_after",
            integer("`rate-limited`: seconds until a retry may succeed (also in `Retry-After`).")
                .minimum(Some(0)),
        )
        .property(
            "unknown_device_ids",
            utoipa::openapi::schema::ArrayBuilder::new()
                .items(ObjectBuilder::new().schema_type(Type::String).format(Some(
                    utoipa::openapi::SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::Uuid),
                )))
                .description(Some(
                    "`validation-failed` on publish: targeted ids that are not the caller's active devices.",
                )),
        )
        .property(
            "outcome",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .description(Some("`ack-conflict`: the outcome acknowledged first.")),
        )
        .property(
            "current_status",
            ObjectBuilder::new().schema_type(Type::String).description(Some(
                "`invalid-transition`: the device's status in the deployment.",
            )),
        )
        .property(
            "state",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .description(Some("`deployment-ended`: how the deployment ended.")),
        )
        .property(
            "scope",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .description(Some("`missing-scope`: the scope the API key lacks.")),
        )
        .property(
            "checks",
            ObjectBuilder::new()
                .schema_type(Type::Object)
                .additional_properties(Some(ObjectBuilder::new().schema_type(Type::String)))
                .description(Some("`not-ready`: each dependency and `ok` or what failed.")),
        )
        .build()
}

/// What a 503 for an unavailable dependency suggests as `Retry-After`.
pub const RETRY_AFTER_UNAVAILABLE_SECONDS: u64 = 2;

/// The problem type of a response, left in its extensions for the request
/// log.
#[derive(Debug, Clone, Copy)]
pub struct LoggedProblem(pub &'static str);

/// An error response. Built from domain errors by exhaustive `From` impls in
/// [`crate::errors`]; 5xx causes are logged here, once, and never sent.
#[derive(Debug)]
pub struct ApiError {
    kind: ProblemKind,
    detail: String,
    errors: Vec<FieldProblem>,
    /// Extra members of the problem object (RFC 9457 extensions).
    extensions: serde_json::Map<String, serde_json::Value>,
    headers: Vec<(header::HeaderName, HeaderValue)>,
    cause: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl ApiError {
    pub fn new(kind: ProblemKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
            errors: Vec::new(),
            extensions: serde_json::Map::new(),
            headers: Vec::new(),
            cause: None,
        }
    }

    /// A 500 whose cause is logged but not shown.
    pub fn internal(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self {
            cause: Some(cause.into()),
            ..Self::new(
                ProblemKind::Internal,
                "The server failed to handle this request; it has been logged.",
            )
        }
    }

    /// Adds an extension member to the problem body.
    pub fn with_extension(mut self, name: &str, value: serde_json::Value) -> Self {
        self.extensions.insert(name.to_owned(), value);
        self
    }

    /// Adds a response header.
    pub fn with_header(mut self, name: header::HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    /// A 503 whose cause is logged but not shown.
    pub fn unavailable(
        detail: impl Into<String>,
        cause: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self {
            cause: Some(cause.into()),
            ..Self::new(ProblemKind::ServiceUnavailable, detail)
        }
    }

    /// A 503 for a dependency that is down or overloaded for now (the
    /// database, Redis): says when to retry, logs the cause, shows none.
    pub fn dependency_unavailable(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::unavailable(
            "A service eagate depends on is temporarily unavailable; retry shortly.",
            cause,
        )
        .with_extension("retry_after", serde_json::json!(RETRY_AFTER_UNAVAILABLE_SECONDS))
        .with_header(
            header::RETRY_AFTER,
            HeaderValue::from(RETRY_AFTER_UNAVAILABLE_SECONDS),
        )
    }

    pub fn with_errors(mut self, errors: Vec<FieldProblem>) -> Self {
        self.errors = errors;
        self
    }

    pub fn validation(errors: &ValidationErrors) -> Self {
        let fields: Vec<&str> = errors.errors().iter().map(|e| e.field).collect();
        Self::new(
            ProblemKind::ValidationFailed,
            format!("Some fields are invalid: {}.", fields.join(", ")),
        )
        .with_errors(
            errors
                .errors()
                .iter()
                .map(|e| FieldProblem {
                    field: e.field.to_owned(),
                    code: e.code.to_owned(),
                    message: e.message.clone(),
                })
                .collect(),
        )
    }

    pub fn kind(&self) -> ProblemKind {
        self.kind
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind.code(), self.detail)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.kind.status()
    }

    fn error_response(&self) -> HttpResponse {
        if let Some(cause) = &self.cause {
            let mut chain = cause.to_string();
            let mut source = cause.source();
            while let Some(s) = source {
                chain.push_str(": ");
                chain.push_str(&s.to_string());
                source = s.source();
            }
            let request_id = current_request_id();
            tracing::error!(error = %chain, request_id = request_id.as_deref(), "request failed");
        }
        let mut response = render(self.kind, &self.detail, &self.errors, &self.extensions);
        for (name, value) in &self.headers {
            response.headers_mut().insert(name.clone(), value.clone());
        }
        response
    }
}

/// Renders a problem response.
pub fn problem_response(kind: ProblemKind, detail: &str, errors: &[FieldProblem]) -> HttpResponse {
    render(kind, detail, errors, &serde_json::Map::new())
}

fn render(
    kind: ProblemKind,
    detail: &str,
    errors: &[FieldProblem],
    extensions: &serde_json::Map<String, serde_json::Value>,
) -> HttpResponse {
    let body = Problem {
        type_: kind.type_uri(),
        code: kind.code(),
        title: kind.title(),
        status: kind.status().as_u16(),
        detail,
        instance: current_request_id().map(|id| format!("urn:eagate:request:{id}")),
        errors,
        extensions,
    };
    let mut response = HttpResponse::build(kind.status());
    response.insert_header((header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON)));
    response.insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")));
    if matches!(kind, ProblemKind::InvalidToken) {
        response.insert_header((
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"eagate\", error=\"invalid_token\""),
        ));
    }
    let mut response = response.json(body);
    // `json` sets application/json; restore the problem media type.
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    response.extensions_mut().insert(LoggedProblem(kind.code()));
    response
}

/// Turns error responses that the framework or a third-party middleware
/// produced (plain text, empty) into problem responses, keeping their
/// status and meaningful headers.
pub fn problem_for_framework_errors<B>(
    res: actix_web::dev::ServiceResponse<B>,
) -> actix_web::Result<actix_web::middleware::ErrorHandlerResponse<B>> {
    use actix_web::middleware::ErrorHandlerResponse;
    let is_problem = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == PROBLEM_JSON.as_bytes());
    if is_problem {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let status = res.status();
    let origin = res.request().headers().contains_key(header::ORIGIN);
    let kind = match status.as_u16() {
        400 if origin => ProblemKind::CorsDenied,
        404 => ProblemKind::NotFound,
        405 => ProblemKind::MethodNotAllowed,
        408 => ProblemKind::RequestTimeout,
        413 => ProblemKind::PayloadTooLarge,
        415 => ProblemKind::UnsupportedMediaType,
        431 => ProblemKind::HeadersTooLarge,
        500.. => ProblemKind::Internal,
        _ => ProblemKind::BadRequest,
    };
    let detail = match kind {
        ProblemKind::CorsDenied => "This origin may not call the API from a browser.",
        ProblemKind::Internal => "The server failed to handle this request; it has been logged.",
        _ => "The request was refused.",
    };
    let (req, old) = res.into_parts();
    let mut new = render(kind, detail, &[], &serde_json::Map::new());
    *new.status_mut() = status;
    for name in [header::ALLOW, header::RETRY_AFTER, header::VARY] {
        if let Some(v) = old.headers().get(&name) {
            new.headers_mut().insert(name, v.clone());
        }
    }
    Ok(ErrorHandlerResponse::Response(
        actix_web::dev::ServiceResponse::new(req, new).map_into_right_body(),
    ))
}
