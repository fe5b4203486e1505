//! Request extractors that answer with problem responses.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use eagate_domain::access::{Action, ApiKeyAuthError, ApiKeySecret, Denied, Principal, Requirement, Role};
use eagate_domain::account::{AuthenticatedUser, UserId};
use eagate_domain::audit::ClientInfo;
use eagate_domain::device::{AuthenticatedDevice, DeviceAuthError, DeviceRequest};
use eagate_domain::ratelimit::RateLimit;
use eagate_protocol::{HeaderProblem, HeaderSlot, SignedHeaders};
use futures_util::StreamExt as _;
use serde::de::DeserializeOwned;

use crate::errors::invalid_token;
use crate::problem::{ApiError, FieldProblem, ProblemKind};
use crate::state::AppState;

/// The largest JSON body accepted by a scope; set with `app_data`.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

impl Default for BodyLimit {
    fn default() -> Self {
        Self(16 * 1024)
    }
}

/// A JSON body: `Content-Type: application/json` required, uncompressed,
/// within the scope's [`BodyLimit`], and deserialised with the failing
/// field's path reported.
#[derive(Debug)]
pub struct Json<T>(pub T);

fn is_json(req: &HttpRequest) -> bool {
    let Some(value) = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Reads the whole body, refusing compressed bodies and anything over `limit`.
pub async fn read_body(req: &HttpRequest, payload: &mut Payload, limit: usize) -> Result<Vec<u8>, ApiError> {
    if req
        .headers()
        .get(header::CONTENT_ENCODING)
        .is_some_and(|v| !v.as_bytes().eq_ignore_ascii_case(b"identity"))
    {
        return Err(ApiError::new(
            ProblemKind::UnsupportedMediaType,
            "Compressed request bodies are not accepted; send the body without Content-Encoding.",
        ));
    }
    let too_large = || {
        ApiError::new(
            ProblemKind::PayloadTooLarge,
            format!("The request body exceeds the limit of {limit} bytes."),
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let timeout = crate::protect::body_timeout(req);
    let read = async {
        let mut body = Vec::with_capacity(declared.unwrap_or(0));
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|e| {
                ApiError::new(
                    ProblemKind::MalformedBody,
                    format!("Could not read the body: {e}"),
                )
            })?;
            if body.len() + chunk.len() > limit {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    };
    tokio::time::timeout(timeout, read).await.unwrap_or_else(|_| {
        Err(ApiError::new(
            ProblemKind::RequestTimeout,
            format!("The request body did not arrive within {} s.", timeout.as_secs()),
        ))
    })
}

/// Deserialises JSON, naming the failing field.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        json_problem(path, &e.into_inner())
    })?;
    de.end().map_err(|e| json_problem(".".to_owned(), &e))?;
    Ok(value)
}

fn json_problem(path: String, error: &serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    let message = without_values(&strip_position(&error.to_string()));
    let (field, code) = match error.classify() {
        Category::Data if path != "." => (path, "invalid_value"),
        Category::Data => ("(body)".to_owned(), "invalid_value"),
        Category::Syntax | Category::Eof | Category::Io => ("(body)".to_owned(), "syntax"),
    };
    ApiError::new(
        ProblemKind::MalformedBody,
        format!("The JSON body is invalid: {message}."),
    )
    .with_errors(vec![FieldProblem {
        field,
        code: code.to_owned(),
        message,
    }])
}

/// Request bodies are JSON objects. (serde would otherwise also accept a
/// struct written as an array of its fields.)
fn require_object(body: &[u8]) -> Result<(), ApiError> {
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') | None => Ok(()),
        Some(_) => Err(ApiError::new(
            ProblemKind::MalformedBody,
            "The JSON body is invalid: expected a JSON object.",
        )
        .with_errors(vec![FieldProblem {
            field: "(body)".to_owned(),
            code: "invalid_value".to_owned(),
            message: "expected a JSON object".to_owned(),
        }])),
    }
}

/// serde's type errors quote the value they got (`invalid type: string
/// "hunter2…", expected …`); the value may be a password in the wrong
/// place, so only its kind is kept.
fn without_values(message: &str) -> String {
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = message.strip_prefix(prefix)
            && let Some((got, expected)) = rest.split_once(", expected ")
        {
            let kind = got.split(['`', '"']).next().unwrap_or(got).trim();
            return format!("{prefix}{kind}, expected {expected}");
        }
    }
    message.to_owned()
}

/// serde_json appends " at line L column C"; keep the message readable.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

fn not_json(hint: &str) -> ApiError {
    ApiError::new(
        ProblemKind::UnsupportedMediaType,
        format!("Send the body as JSON with `Content-Type: application/json`{hint}."),
    )
}

/// A request's JSON body: content type checked, size limited, read once.
async fn json_bytes(req: &HttpRequest, payload: &mut Payload, hint: &str) -> Result<Vec<u8>, ApiError> {
    if !is_json(req) {
        return Err(not_json(hint));
    }
    let limit = req.app_data::<BodyLimit>().copied().unwrap_or_default().0;
    read_body(req, payload, limit).await
}

/// Parses a body that must be a JSON object.
pub(crate) fn parse_object<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    require_object(body)?;
    parse_json(body)
}

/// Parses an optional body: empty (or JSON `null`) means `T::default()`,
/// anything else must be a JSON object.
pub(crate) fn parse_optional_object<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T, ApiError> {
    if body.trim_ascii().is_empty() || body.trim_ascii() == b"null" {
        return Ok(T::default());
    }
    parse_object(body)
}

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let mut payload = payload.take();
        Box::pin(async move { parse_object(&json_bytes(&req, &mut payload, "").await?).map(Json) })
    }
}

/// A JSON body that may be left out entirely (no body, no Content-Type),
/// meaning `T::default()`.
#[derive(Debug)]
pub struct OptionalJson<T>(pub T);

impl<T: DeserializeOwned + Default + 'static> FromRequest for OptionalJson<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let empty = !req.headers().contains_key(header::CONTENT_TYPE)
            && req
                .headers()
                .get(header::CONTENT_LENGTH)
                .is_none_or(|v| v.as_bytes() == b"0");
        if empty {
            return Box::pin(async { Ok(Self(T::default())) });
        }
        let req = req.clone();
        let mut payload = payload.take();
        Box::pin(async move {
            let body = json_bytes(&req, &mut payload, ", or send no body").await?;
            parse_optional_object(&body).map(Self)
        })
    }
}

/// The caller's address and user agent, for the audit trail.
#[derive(Debug, Clone)]
pub struct Client(pub ClientInfo);

impl FromRequest for Client {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        std::future::ready(Ok(Self(client_info(req))))
    }
}

/// Parses an id from the path; a malformed one is a 400 naming the segment.
pub fn path_id(raw: &str, what: &str) -> Result<uuid::Uuid, ApiError> {
    uuid::Uuid::try_parse(raw).map_err(|_| {
        ApiError::new(
            ProblemKind::MalformedId,
            format!("The {what} id in the path is not a UUID."),
        )
        .with_errors(vec![FieldProblem {
            field: "id".to_owned(),
            code: "invalid".to_owned(),
            message: "must be a UUID such as 0192f5e4-7c1a-7b3e-9a51-3c2d4e5f6a7b".to_owned(),
        }])
    })
}

fn bearer_token(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| token.to_owned())
}

/// The caller's address (as the rate limits resolve it, honouring trusted
/// proxies) and user agent.
fn client_info(req: &HttpRequest) -> ClientInfo {
    let trusted = req
        .app_data::<web::Data<AppState>>()
        .map(|s| s.rate_limits.settings().trusted_proxies.clone())
        .unwrap_or_default();
    let ip = crate::protect::client_ip(req, &trusted);
    let user_agent = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok());
    ClientInfo::new(ip, user_agent)
}

/// An operation of the HTTP API, as a type: `Authorized<act::PublishSignal>`.
pub trait Act {
    const ACTION: Action;
}

/// One marker type per [`Action`], for [`Authorized`].
pub mod act {
    use eagate_domain::access::Action;

    macro_rules! acts {
        ($($name:ident),+ $(,)?) => {
            $(
                #[derive(Debug)]
                pub struct $name;
                impl super::Act for $name {
                    const ACTION: Action = Action::$name;
                }
            )+
        };
    }

    acts!(
        ListDevices,
        ReadDevice,
        RegisterDevice,
        RenameDevice,
        RotateDeviceSecret,
        RevokeDevice,
        LabelDevice,
        PublishSignal,
        CancelSignal,
        ListSignals,
        ReadSignal,
        ReadConfig,
        WriteConfig,
        WriteBundles,
        WriteDeployments,
        ReadAudit,
        ReadProfile,
        Logout,
        ManageApiKeys,
        ChangePassword,
        DeleteAccount,
        AdminListAccounts,
        AdminDisableAccount,
        AdminReadAudit,
        AdminFleetStats,
    );
}

/// Who is calling an owner route, once the policy allowed the operation.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The account acted on: the session's user or the key's owner.
    pub user_id: UserId,
    /// The password session, when the caller is one (never for a key).
    session: Option<AuthenticatedUser>,
    pub client: ClientInfo,
}

impl Caller {
    /// The password session behind the request. Operations that need one
    /// require [`Requirement::Session`](eagate_domain::access::Requirement),
    /// so the policy has already refused API keys.
    pub fn session(&self) -> Result<AuthenticatedUser, ApiError> {
        self.session.ok_or_else(|| Denied::SessionRequired.into())
    }
}

/// The caller of an owner route, authenticated by `Authorization: Bearer`
/// with an access token (a live password session) or an API key (checked
/// on every request: revocation, expiry, the address allowlist, then the
/// per-key rate limit), and allowed by the access policy to perform
/// `A::ACTION` — otherwise 401, or 403 naming the missing scope.
#[derive(Debug)]
pub struct Authorized<A>(pub Caller, PhantomData<A>);

impl<A: Act + 'static> FromRequest for Authorized<A> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = bearer_token(req);
        let client = client_info(req);
        Box::pin(async move {
            let state = state.ok_or_else(|| ApiError::internal("application state missing"))?;
            let token = token.ok_or_else(invalid_token)?;
            let (principal, session) = if ApiKeySecret::looks_like(&token) {
                let principal = state
                    .api_keys
                    .authenticate(&token, client.ip, &client)
                    .await
                    .inspect_err(|e| {
                        let outcome = match e {
                            ApiKeyAuthError::Invalid => "invalid",
                            ApiKeyAuthError::Expired => "expired",
                            ApiKeyAuthError::Revoked => "revoked",
                            ApiKeyAuthError::AddressNotAllowed => "address_not_allowed",
                            ApiKeyAuthError::Unexpected(_) => "error",
                        };
                        metrics::counter!("api_key_auth_total", "outcome" => outcome).increment(1);
                    })?;
                if let Some(key) = principal.api_key() {
                    tracing::Span::current().record("api_key_id", tracing::field::display(key));
                    let limit = RateLimit::per_minute(state.rate_limits.settings().api_key_per_minute);
                    state.rate_limits.check(&format!("apikey:{key}"), limit).await?;
                }
                metrics::counter!("api_key_auth_total", "outcome" => "ok").increment(1);
                (principal, None)
            } else {
                let who = state.accounts.authenticate(&token).await?;
                // Only administrator operations depend on the role: owner
                // requests do not pay for reading it.
                let role = match A::ACTION.requirement() {
                    Requirement::Admin => state.admin.role_of(who.user_id).await?,
                    Requirement::Scope(_) | Requirement::Session => Role::Owner,
                };
                let principal = Principal::Session {
                    user: who.user_id,
                    role,
                };
                (principal, Some(who))
            };
            let user_id = principal.user_id();
            tracing::Span::current().record("user_id", tracing::field::display(user_id));
            state.api_keys.authorize(&principal, A::ACTION, &client).await?;
            Ok(Self(
                Caller {
                    user_id,
                    session,
                    client,
                },
                PhantomData,
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        count: u32,
    }

    fn field_of(body: &str) -> String {
        let e = parse_json::<Body>(body.as_bytes()).unwrap_err();
        assert_eq!(e.kind(), ProblemKind::MalformedBody);
        format!("{e:?}")
    }

    #[test]
    fn json_errors_never_repeat_the_value() {
        let e = parse_json::<Body>(br#"{"name":"hunter2-secret","count":"also-secret"}"#).unwrap_err();
        let e = format!("{e:?}");
        assert!(!e.contains("also-secret"), "{e}");
        assert!(e.contains("invalid type: string, expected u32"), "{e}");
        let e = format!(
            "{:?}",
            parse_json::<Body>(br#"{"name":12345678901234,"count":1}"#).unwrap_err()
        );
        assert!(
            !e.contains("12345678901234") && e.contains("invalid type: integer, expected"),
            "{e}"
        );
    }

    /// Found by crates/fuzzing/tests/documented_ranges.rs: serde_json's
    /// default float parser may be one ULP off, so `1000.0000000000001`
    /// was read as `1000.0` and passed `maximum: 1000`. With
    /// `float_roundtrip` every number is read exactly as sent.
    #[test]
    fn numbers_are_read_exactly_as_sent() {
        #[derive(Debug, serde::Deserialize)]
        struct Number {
            x: f64,
        }
        for x in [
            1000.0000000000001_f64,
            1000.0_f64.next_up(),
            1.0851,
            1e15_f64.next_up(),
            5e-324,
        ] {
            let body = format!(r#"{{"x":{x}}}"#);
            let read = parse_json::<Number>(body.as_bytes()).unwrap().x;
            assert_eq!(read.to_bits(), x.to_bits(), "{body}");
        }
    }

    #[test]
    fn json_errors_name_the_field() {
        assert!(field_of(r#"{"name":"x","count":"7"}"#).contains("field: \"count\""));
        assert!(field_of(r#"{"name":"x"}"#).contains("missing field `count`"));
        assert!(field_of(r#"{"name":"x","count":1,"extra":true}"#).contains("unknown field `extra`"));
        assert!(field_of(r#"{"name":"x","count":1} trailing"#).contains("trailing characters"));
        assert!(field_of("").contains("EOF"));
        assert!(field_of("[1,2]").contains("invalid type"));
        assert!(parse_json::<Body>(br#"{"name":"x","count":1}"#).is_ok());
    }
}

/// A device request that passed protocol-v1 authentication, with its body
/// (read once: the signature covers it).
#[derive(Debug)]
pub struct SignedDevice {
    pub device: AuthenticatedDevice,
    body: Vec<u8>,
    json: bool,
}

impl SignedDevice {
    /// The body as JSON (`Content-Type: application/json`, an object).
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        if !self.json {
            return Err(not_json(""));
        }
        parse_object(&self.body)
    }
}

fn header_slot<'a>(req: &'a HttpRequest, name: impl header::AsHeaderName) -> HeaderSlot<'a> {
    let mut values = req.headers().get_all(name);
    match (values.next(), values.next()) {
        (None, _) => HeaderSlot::Missing,
        (Some(_), Some(_)) => HeaderSlot::Repeated,
        (Some(v), None) => v.to_str().map_or(HeaderSlot::Unreadable, HeaderSlot::Present),
    }
}

/// An optional header that may be sent at most once, as visible ASCII
/// (`Idempotency-Key`, `If-Match`): its value, or a 400 naming the header.
pub(crate) fn optional_header(req: &HttpRequest, name: &'static str) -> Result<Option<String>, ApiError> {
    let invalid = |message: &str| {
        ApiError::new(ProblemKind::MalformedHeader, format!("{name} {message}.")).with_errors(vec![
            FieldProblem {
                field: name.to_owned(),
                code: "malformed".to_owned(),
                message: message.to_owned(),
            },
        ])
    };
    match header_slot(req, name) {
        HeaderSlot::Missing => Ok(None),
        HeaderSlot::Repeated => Err(invalid("is sent more than once")),
        HeaderSlot::Unreadable => Err(invalid("must be visible ASCII")),
        HeaderSlot::Present(v) => Ok(Some(v.to_owned())),
    }
}

/// Protocol step 1: the four signing headers, present once and well-formed.
fn signed_headers(req: &HttpRequest) -> Result<SignedHeaders, ApiError> {
    // Header names made once, not parsed from text on every request.
    const DEVICE_ID: header::HeaderName = header::HeaderName::from_static(eagate_protocol::DEVICE_ID_HEADER);
    const TIMESTAMP: header::HeaderName = header::HeaderName::from_static(eagate_protocol::TIMESTAMP_HEADER);
    const NONCE: header::HeaderName = header::HeaderName::from_static(eagate_protocol::NONCE_HEADER);
    const SIGNATURE: header::HeaderName = header::HeaderName::from_static(eagate_protocol::SIGNATURE_HEADER);
    SignedHeaders::parse(
        header_slot(req, &DEVICE_ID),
        header_slot(req, &TIMESTAMP),
        header_slot(req, &NONCE),
        header_slot(req, &SIGNATURE),
    )
    .map_err(|e| {
        let code = match e.problem {
            HeaderProblem::Missing => "missing",
            HeaderProblem::Repeated => "repeated",
            HeaderProblem::Malformed(_) => "malformed",
        };
        ApiError::new(ProblemKind::MalformedHeader, format!("{e}.")).with_errors(vec![FieldProblem {
            field: e.header.to_owned(),
            code: code.to_owned(),
            message: e.to_string(),
        }])
    })
}

impl FromRequest for SignedDevice {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let mut payload = payload.take();
        Box::pin(async move {
            let state = req
                .app_data::<web::Data<AppState>>()
                .cloned()
                .ok_or_else(|| ApiError::internal("application state missing"))?;
            let headers = signed_headers(&req).inspect_err(|e| {
                metrics::counter!("device_auth_total", "outcome" => e.kind().code()).increment(1);
            })?;
            let refused = |e: DeviceAuthError| {
                let error = ApiError::from(e);
                metrics::counter!("device_auth_total", "outcome" => error.kind().code()).increment(1);
                error
            };
            // The clock skew and the address's failure budget come before
            // the body: a spent budget costs no body read (nor a lookup).
            let trusted = &state.rate_limits.settings().trusted_proxies;
            let attempt = state
                .device_auth
                .precheck(&headers, crate::protect::client_ip(&req, trusted))
                .await
                .map_err(refused)?;
            let limit = req.app_data::<BodyLimit>().copied().unwrap_or_default().0;
            // A request that declares no body (most GETs) has none to read.
            let bodiless = !req.headers().contains_key(header::CONTENT_LENGTH)
                && !req.headers().contains_key(header::TRANSFER_ENCODING);
            let body = if bodiless {
                Vec::new()
            } else {
                read_body(&req, &mut payload, limit).await?
            };
            let body_hash = if body.is_empty() {
                std::borrow::Cow::Borrowed(eagate_protocol::EMPTY_BODY_SHA256_HEX)
            } else {
                std::borrow::Cow::Owned(eagate_protocol::body_sha256_hex(&body))
            };
            // The path and query exactly as on the request line.
            let request = DeviceRequest {
                method: req.method().as_str(),
                path: req.uri().path(),
                query: req.uri().query().unwrap_or(""),
                headers: &headers,
                body_sha256_hex: &body_hash,
            };
            let device = state
                .device_auth
                .authenticate(&request, attempt)
                .await
                .map_err(refused)?;
            crate::metrics::hot().device_auth_ok.increment(1);
            tracing::Span::current().record("device_id", tracing::field::display(device.id));
            actix_web::HttpMessage::extensions_mut(&req).insert(crate::gateway::LoggedDevice(device.id));
            Ok(Self {
                device,
                json: is_json(&req),
                body,
            })
        })
    }
}
