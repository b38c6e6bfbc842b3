//! The agent console (`/console`) and the admin view (`/console/admin`): static pages, scripts
//! and a style sheet under `web/console/`, compiled into the binary. The pages hold no data;
//! their scripts sign in with a token and use the agent and admin API like any client.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::AppState;
use super::error::ApiError;

/// A compiled-in asset: its name under `/console/`, content type and bytes.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const ASSETS: &[Asset] = &[
    Asset {
        name: "shared.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../web/console/shared.js"),
    },
    Asset {
        name: "console.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../web/console/console.js"),
    },
    Asset {
        name: "admin.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../web/console/admin.js"),
    },
    Asset {
        name: "console.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../../web/console/console.css"),
    },
];

const CONSOLE_HTML: &str = include_str!("../../web/console/index.html");
const ADMIN_HTML: &str = include_str!("../../web/console/admin.html");

/// The pages load only their own scripts and styles; images may be blob URLs (attachments
/// fetched with the agent's token).
const PAGE_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
                        img-src 'self' blob: data:; connect-src 'self' ws: wss:; \
                        frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// The console's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/console", get(|| async { page(CONSOLE_HTML) }))
        .route("/console/", get(|| async { page(CONSOLE_HTML) }))
        .route("/console/admin", get(|| async { page(ADMIN_HTML) }))
        .route("/console/assets/{name}", get(asset))
}

fn page(html: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
            (header::CONTENT_SECURITY_POLICY, PAGE_CSP),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        html,
    )
        .into_response()
}

/// A strong validator of an asset's bytes.
fn etag(body: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(body.as_bytes());
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

/// A script or style sheet, revalidated by its ETag so a new build is picked up at once.
async fn asset(Path(name): Path<String>, headers: HeaderMap) -> Result<Response, ApiError> {
    let a = ASSETS
        .iter()
        .find(|a| a.name == name)
        .ok_or(ApiError::NotFound("asset"))?;
    let tag = etag(a.body);
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag));
    let cache = [
        (header::CACHE_CONTROL, "no-cache".to_string()),
        (header::ETAG, tag),
    ];
    if matches {
        return Ok((StatusCode::NOT_MODIFIED, cache).into_response());
    }
    Ok(([(header::CONTENT_TYPE, a.content_type)], cache, a.body).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_scripts_never_parse_markup() {
        for a in ASSETS.iter().filter(|a| a.name.ends_with(".js")) {
            for sink in [
                "innerHTML",
                "outerHTML",
                "insertAdjacentHTML",
                "document.write",
                "eval(",
                "new Function",
            ] {
                assert!(!a.body.contains(sink), "{} uses {sink}", a.name);
            }
        }
    }

    #[test]
    fn pages_load_only_assets_that_exist() {
        for html in [CONSOLE_HTML, ADMIN_HTML] {
            let mut rest = html;
            while let Some(at) = rest.find("/console/assets/") {
                let tail = &rest[at + "/console/assets/".len()..];
                let end = tail.find('"').expect("attribute closes");
                let name = &tail[..end];
                assert!(
                    ASSETS.iter().any(|a| a.name == name),
                    "{name} is not served"
                );
                rest = &tail[end..];
            }
        }
    }
}
