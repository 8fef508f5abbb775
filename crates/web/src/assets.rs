//! The page's assets, embedded in the binary (no CDN, no external request):
//! served under names that carry their content's hash, so they are cached
//! for good and a new build is fetched at once.

use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

struct Asset {
    stem: &'static str,
    ext: &'static str,
    mime: &'static str,
    body: &'static [u8],
}

const ASSETS: [Asset; 3] = [
    Asset {
        stem: "sauve",
        ext: "css",
        mime: "text/css; charset=utf-8",
        body: include_bytes!("../assets/sauve.css"),
    },
    Asset {
        stem: "sauve",
        ext: "js",
        mime: "text/javascript; charset=utf-8",
        body: include_bytes!("../assets/sauve.js"),
    },
    Asset {
        stem: "sauve",
        ext: "svg",
        mime: "image/svg+xml",
        body: include_bytes!("../assets/sauve.svg"),
    },
];

/// `sauve-<hash>.css` and its siblings, computed once.
fn names() -> &'static [String; 3] {
    static NAMES: OnceLock<[String; 3]> = OnceLock::new();
    NAMES.get_or_init(|| {
        ASSETS.each_ref().map(|a| {
            let hash = blake3::hash(a.body).to_hex();
            format!("{}-{}.{}", a.stem, &hash.as_str()[..12], a.ext)
        })
    })
}

/// The URL of the stylesheet.
pub(crate) fn css() -> String {
    format!("/assets/{}", names()[0])
}

/// The URL of the script.
pub(crate) fn js() -> String {
    format!("/assets/{}", names()[1])
}

/// The URL of the icon.
pub(crate) fn icon() -> String {
    format!("/assets/{}", names()[2])
}

/// `GET /assets/{name}`: cached for a year, immutable (the name changes
/// with the content).
pub(crate) async fn serve(Path(name): Path<String>) -> Response {
    match names().iter().position(|n| *n == name) {
        Some(i) => (
            [
                (header::CONTENT_TYPE, ASSETS[i].mime),
                (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
            ],
            ASSETS[i].body,
        )
            .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            [(header::CACHE_CONTROL, "no-store")],
            "no such asset\n",
        )
            .into_response(),
    }
}
