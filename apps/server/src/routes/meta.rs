//! Service metadata: the public keys that verify access tokens.

use actix_web::{HttpResponse, web};

use super::resource;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/.well-known/jwks.json").route(web::get().to(jwks)));
}

/// The JWK set with the Ed25519 public key access tokens are signed with,
/// so other services can verify them without calling eagate.
async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "public, max-age=300"))
        .json(&state.jwks)
}
