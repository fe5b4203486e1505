//! EA bundles: owners upload (`POST /api/v1/bundles`, the file as the raw
//! body), list, read and delete them; devices download the bundles
//! deployed to them (`GET /api/v1/device/bundles/{id}`), resumable with
//! `Range`.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, delete, get, post, web};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use eagate_domain::bundle::{
    Bundle, BundleId, ByteRange, CHUNK_BYTES, RangeAnswer, Sha256Hex, UploadError, parse_range,
};
use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

use super::Problems;
use crate::extract::{Authorized, Client, SignedDevice, act, path_id};
use crate::problem::{ApiError, ProblemKind};
use crate::state::AppState;
use utoipa_actix_web::service_config::ServiceConfig;

/// `/api/v1/bundles`.
pub fn configure(cfg: &mut ServiceConfig<'_>) {
    cfg.service(upload_bundle)
        .service(list)
        .service(get_one)
        .service(remove);
}

/// `/api/v1/device/bundles/{id}` (registered in the device scope).
pub fn configure_device(cfg: &mut ServiceConfig<'_>) {
    cfg.service(download);
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct UploadQuery {
    /// 1 to 64 ASCII letters, digits, `.`, `_`, `-`, starting with a letter or digit.
    #[param(example = "TrendFollower")]
    pub(crate) name: Option<String>,
    /// A semantic version (semver.org), e.g. `1.4.2` or `2.0.0-rc.1`.
    #[param(example = "1.4.2")]
    pub(crate) version: Option<String>,
    /// Release notes, at most 4096 characters (URL-encoded).
    #[param(example = "Tighter stops on gold.")]
    pub(crate) notes: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct BundleResponse {
    id: Uuid,
    #[schema(example = "TrendFollower")]
    name: String,
    #[schema(example = "1.4.2")]
    version: String,
    notes: String,
    /// The file's size in bytes.
    #[schema(example = 183_296)]
    size: u64,
    /// The file's SHA-256, 64 hex digits (also its `ETag` on download).
    #[schema(example = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")]
    sha256: String,
    created_at: DateTime<Utc>,
}

impl From<&Bundle> for BundleResponse {
    fn from(b: &Bundle) -> Self {
        Self {
            id: b.id.as_uuid(),
            name: b.name.as_str().to_owned(),
            version: b.version.as_str().to_owned(),
            notes: b.notes.as_str().to_owned(),
            size: b.size,
            sha256: b.sha256.as_str().to_owned(),
            created_at: b.created_at,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct BundleList {
    items: Vec<BundleResponse>,
    next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct BundleListQuery {
    /// Bundles per page.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100, default = 50, example = 50)]
    pub(crate) limit: Option<String>,
    /// `next_cursor` of the previous page.
    pub(crate) cursor: Option<String>,
}

fn bundle_id(raw: &str) -> Result<BundleId, ApiError> {
    Ok(BundleId::from_uuid(path_id(raw, "bundle")?))
}

/// Reads the body into the upload, hashing it on the way, 256 KiB per
/// stored chunk: never more than a chunk and one network read in memory.
async fn stream_into(
    state: &AppState,
    req: &HttpRequest,
    payload: &mut web::Payload,
    upload: &mut eagate_domain::bundle::Upload,
) -> Result<Sha256Hex, ApiError> {
    let idle = crate::protect::body_timeout(req);
    let limit = crate::protect::upload_timeout(req);
    let deadline = tokio::time::Instant::now() + limit;
    let too_slow = || {
        ApiError::new(
            ProblemKind::RequestTimeout,
            format!(
                "The upload did not finish within {} s; nothing of it was kept.",
                limit.as_secs()
            ),
        )
    };
    let max = state.bundles.policy().max_bytes;
    let mut hasher = Sha256::new();
    let mut buffer: Vec<u8> = Vec::with_capacity(CHUNK_BYTES);
    loop {
        // A stalled body and one trickling in past the whole-upload
        // deadline both end here.
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return Err(too_slow());
        }
        let next = match tokio::time::timeout(idle.min(left), payload.next()).await {
            Ok(next) => next,
            Err(_) if idle >= left => return Err(too_slow()),
            Err(_) => {
                return Err(ApiError::new(
                    ProblemKind::RequestTimeout,
                    format!("The upload stalled for {} s.", idle.as_secs()),
                ));
            }
        };
        let Some(bytes) = next else { break };
        let bytes = bytes.map_err(|e| {
            ApiError::new(
                ProblemKind::MalformedBody,
                format!("Could not read the body: {e}"),
            )
        })?;
        if upload.written() + (buffer.len() + bytes.len()) as u64 > max {
            return Err(UploadError::TooLarge { max }.into());
        }
        hasher.update(&bytes);
        buffer.extend_from_slice(&bytes);
        while buffer.len() >= CHUNK_BYTES {
            let rest = buffer.split_off(CHUNK_BYTES);
            state.bundles.append(upload, &buffer).await?;
            buffer = rest;
        }
    }
    state.bundles.append(upload, &buffer).await?;
    Ok(Sha256Hex::from_bytes(&hasher.finalize().into()))
}

/// Upload a bundle
///
/// The request body is the file itself (any content type, e.g. `application/octet-stream`; not compressed), at most `EAGATE_BUNDLE_MAX_BYTES` (20 MiB by default, else 413 `payload-too-large`); all of the account's bundles, uploads in progress included, may take `EAGATE_BUNDLE_STORAGE_MAX_BYTES_PER_ACCOUNT` (1 GiB by default): an upload that would go past it is 409 `bundle-storage-full` (its `max_bytes` and `stored_bytes` members say how far), before the body is read when `Content-Length` says so, else as soon as it crosses it, and nothing of it is kept. The whole upload must finish within `EAGATE_BUNDLE_UPLOAD_TIMEOUT_SECONDS` (600 s by default), else 408 `request-timeout` and nothing is kept. Name, version and release notes go in the query string: `curl --data-binary @EA.ex5 "$BASE/api/v1/bundles?name=TrendFollower&version=1.4.2"`. The server computes size and SHA-256 while storing the file. Audited.
#[utoipa::path(
    operation_id = "uploadBundle",
    tag = "bundles",
    params(UploadQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The file"),
    responses((status = 201, description = "The stored bundle", body = BundleResponse, headers(("Location" = String, description = "The bundle's URL"))), Problems),
    security(("bearer" = []), ("api_key" = ["bundles:write"]))
)]
#[post("")]
pub(crate) async fn upload_bundle(
    req: HttpRequest,
    state: web::Data<AppState>,
    who: Authorized<act::WriteBundles>,
    client: Client,
    query: web::Query<UploadQuery>,
    mut payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    if req
        .headers()
        .get(header::CONTENT_ENCODING)
        .is_some_and(|v| !v.as_bytes().eq_ignore_ascii_case(b"identity"))
    {
        return Err(ApiError::new(
            ProblemKind::UnsupportedMediaType,
            "Compressed request bodies are not accepted; send the file without Content-Encoding.",
        ));
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let q = query.into_inner();
    let mut upload = state
        .bundles
        .begin_upload(
            who.0.user_id,
            q.name.as_deref(),
            q.version.as_deref(),
            q.notes.as_deref(),
            declared,
        )
        .await?;
    match stream_into(&state, &req, &mut payload, &mut upload).await {
        Ok(sha256) => {
            let bundle = state.bundles.complete(upload, &sha256, &client.0).await?;
            Ok(HttpResponse::Created()
                .insert_header((header::LOCATION, format!("/api/v1/bundles/{}", bundle.id)))
                .json(BundleResponse::from(&bundle)))
        }
        Err(e) => {
            if let Err(cleanup) = state.bundles.abandon(upload).await {
                tracing::warn!(error = %cleanup, "could not drop a failed upload");
            }
            Err(e)
        }
    }
}

/// List bundles
///
/// The caller's bundles, newest first, one page at a time.
#[utoipa::path(
    operation_id = "listBundles",
    tag = "bundles",
    params(BundleListQuery),
    responses((status = 200, description = "The caller's bundles, newest first", body = BundleList), Problems),
    security(("bearer" = []), ("api_key" = ["bundles:write"]))
)]
#[get("")]
pub(crate) async fn list(
    state: web::Data<AppState>,
    who: Authorized<act::WriteBundles>,
    query: web::Query<BundleListQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = state
        .bundles
        .list(who.0.user_id, query.limit.as_deref(), query.cursor.as_deref())
        .await?;
    Ok(HttpResponse::Ok().json(BundleList {
        next_cursor: page.next.map(|c| c.to_string()),
        items: page.items.iter().map(BundleResponse::from).collect(),
    }))
}

/// Get a bundle
///
/// One of the caller's bundles (its metadata).
#[utoipa::path(
    operation_id = "getBundle",
    tag = "bundles",
    params(("id" = uuid::Uuid, Path, description = "The bundle's id")),
    responses((status = 200, description = "The bundle", body = BundleResponse), Problems),
    security(("bearer" = []), ("api_key" = ["bundles:write"]))
)]
#[get("/{id}")]
pub(crate) async fn get_one(
    state: web::Data<AppState>,
    who: Authorized<act::WriteBundles>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let bundle = state.bundles.get(who.0.user_id, bundle_id(&id)?).await?;
    Ok(HttpResponse::Ok().json(BundleResponse::from(&bundle)))
}

/// Delete a bundle
///
/// Deletes the bundle and its file. A bundle a deployment uses is kept (409 `bundle-in-use`). Audited.
#[utoipa::path(
    operation_id = "deleteBundle",
    tag = "bundles",
    params(("id" = uuid::Uuid, Path, description = "The bundle's id")),
    responses((status = 204, description = "Deleted"), Problems),
    security(("bearer" = []), ("api_key" = ["bundles:write"]))
)]
#[delete("/{id}")]
pub(crate) async fn remove(
    state: web::Data<AppState>,
    who: Authorized<act::WriteBundles>,
    client: Client,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state
        .bundles
        .delete(who.0.user_id, bundle_id(&id)?, &client.0)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The bytes of `range` of the bundle, read a chunk at a time as the client
/// takes them.
fn body(
    state: web::Data<AppState>,
    id: BundleId,
    range: ByteRange,
) -> impl futures_util::Stream<Item = Result<web::Bytes, actix_web::Error>> {
    futures_util::stream::unfold(Some(range.first), move |next| {
        let state = state.clone();
        async move {
            let at = next?;
            if at > range.last {
                return None;
            }
            let want = (range.last - at + 1).min(CHUNK_BYTES as u64) as u32;
            match state.bundles.read(id, at, want).await {
                Ok(bytes) if bytes.is_empty() => Some((
                    Err(ApiError::internal("the bundle's file ended early").into()),
                    None,
                )),
                Ok(bytes) => {
                    let after = at + bytes.len() as u64;
                    Some((Ok(web::Bytes::from(bytes)), Some(after)))
                }
                Err(e) => Some((Err(ApiError::from(e).into()), None)),
            }
        }
    })
}

/// Download a deployed bundle
///
/// The file of a bundle a deployment sent to this device (else 404). `ETag` is the file's SHA-256 (quoted hex); `Repr-Digest` (RFC 9530) and `X-Eagate-Sha256` carry it too, so the EA can verify what it saved. Resume with `Range: bytes=<first>-` (one range; 206 with `Content-Range`, 416 beyond the end); `If-Range` with the `ETag` makes sure the ranges belong to the same file.
#[utoipa::path(
    operation_id = "downloadBundle",
    tag = "device",
    params(
        ("id" = uuid::Uuid, Path, description = "The bundle's id (from GET /api/v1/device/deployment)"),
        ("Range" = Option<String>, Header, description = "`bytes=<first>-[<last>]` or `bytes=-<suffix>`"),
        ("If-Range" = Option<String>, Header, description = "The `ETag`: serve the range only if the file is still this one"),
    ),
    responses(
        (status = 200, description = "The whole file", content_type = "application/octet-stream", body = Vec<u8>, headers(
            ("ETag" = String, description = "The SHA-256, quoted hex"),
            ("Repr-Digest" = String, description = "`sha-256=:<base64>:` of the whole file"),
            ("X-Eagate-Sha256" = String, description = "The SHA-256 of the whole file, hex"),
            ("Accept-Ranges" = String, description = "`bytes`"),
        )),
        (status = 206, description = "The requested range", content_type = "application/octet-stream", body = Vec<u8>, headers(
            ("Content-Range" = String, description = "`bytes <first>-<last>/<size>`"),
            ("ETag" = String, description = "The SHA-256, quoted hex"),
        )),
        Problems
    ),
    security(("device_id" = [], "device_timestamp" = [], "device_nonce" = [], "device_signature" = []))
)]
#[get("/bundles/{id}")]
pub(crate) async fn download(
    req: HttpRequest,
    state: web::Data<AppState>,
    signed: SignedDevice,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let bundle = state
        .bundles
        .for_device(signed.device.id, bundle_id(&id)?)
        .await?;
    let etag = format!("\"{}\"", bundle.sha256.as_str());
    let single = |name: header::HeaderName| {
        let mut values = req.headers().get_all(name);
        match (values.next(), values.next()) {
            (Some(v), None) => v.to_str().ok(),
            _ => None,
        }
    };
    // A Range for another version of the file is answered with all of it.
    let same_file = single(header::IF_RANGE).is_none_or(|tag| tag.trim() == etag);
    let range_header = if same_file { single(header::RANGE) } else { None };
    let size = bundle.size;
    let answer = parse_range(range_header, size);
    let mut response = match answer {
        RangeAnswer::Unsatisfiable => {
            return Err(ApiError::new(
                ProblemKind::RangeNotSatisfiable,
                format!("The range starts beyond the file's {size} bytes."),
            )
            .with_header(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&format!("bytes */{size}"))
                    .unwrap_or(HeaderValue::from_static("bytes */0")),
            ));
        }
        RangeAnswer::Full => HttpResponse::Ok(),
        RangeAnswer::Partial(r) => {
            let mut partial = HttpResponse::PartialContent();
            partial.insert_header((
                header::CONTENT_RANGE,
                format!("bytes {}-{}/{size}", r.first, r.last),
            ));
            partial
        }
    };
    let range = match answer {
        RangeAnswer::Partial(r) => r,
        _ => ByteRange {
            first: 0,
            last: size.saturating_sub(1),
        },
    };
    let digest = base64::engine::general_purpose::STANDARD.encode(bundle.sha256.to_bytes());
    metrics::counter!("bundle_downloads_total", "range" => if matches!(answer, RangeAnswer::Partial(_)) { "partial" } else { "full" }).increment(1);
    Ok(response
        .content_type("application/octet-stream")
        .insert_header((header::ETAG, etag))
        .insert_header((header::ACCEPT_RANGES, "bytes"))
        .insert_header(("Repr-Digest", format!("sha-256=:{digest}:")))
        .insert_header(("X-Eagate-Sha256", bundle.sha256.as_str().to_owned()))
        .insert_header((header::CACHE_CONTROL, "private, no-transform"))
        .no_chunking(range.len())
        .streaming(body(state.clone(), bundle.id, range)))
}
