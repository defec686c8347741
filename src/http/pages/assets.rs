//! The pages' CSS, script and chime, compiled into the binary: `cargo run` needs no build step
//! and no CDN.

use actix_web::http::header;
use actix_web::{web, HttpResponse};

/// Assets change only with a new binary; a day of caching keeps a slow phone from fetching
/// them on every page.
const CACHE_CONTROL: &str = "public, max-age=86400";

/// (name, content type, bytes)
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "app.css",
        "text/css; charset=utf-8",
        include_bytes!("../../../static/app.css"),
    ),
    (
        "live.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../static/live.js"),
    ),
    (
        "chime.wav",
        "audio/wav",
        include_bytes!("../../../static/chime.wav"),
    ),
];

pub async fn asset(path: web::Path<String>) -> HttpResponse {
    match ASSETS.iter().find(|(name, _, _)| *name == path.as_str()) {
        Some((_, content_type, bytes)) => HttpResponse::Ok()
            .content_type(*content_type)
            .insert_header((header::CACHE_CONTROL, CACHE_CONTROL))
            .body(*bytes),
        None => HttpResponse::NotFound()
            .content_type("text/plain; charset=utf-8")
            .body("không có tệp này / no such file"),
    }
}
