//! The local HTTP server: `POST /webhooks/{provider}` on loopback, each request turned into the
//! API Gateway request the Lambda gets and answered by the very same ingest handler. `callhook
//! dev` serves it; the reliability suites send to it over real HTTP.

use callhook::config::Config;
use callhook::handlers::ingest;
use callhook::store::Store;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use lambda_http::RequestExt;
use lambda_http::aws_lambda_events::query_map::QueryMap;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;

/// Serves connections from `listener` until the task is dropped or accepting fails.
pub async fn serve(
    listener: tokio::net::TcpListener,
    config: Arc<Config>,
    store: Store,
) -> std::io::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        // Answers are small: send them now, not after the peer's delayed ACK.
        let _ = stream.set_nodelay(true);
        let (config, store) = (config.clone(), store.clone());
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let (config, store) = (config.clone(), store.clone());
                async move { Ok::<_, std::convert::Infallible>(route(&config, &store, request).await) }
            });
            if let Err(error) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%error, "connection closed");
            }
        });
    }
}

/// Turns a local HTTP request into the API Gateway request the Lambda gets, and back.
async fn route(
    config: &Config,
    store: &Store,
    request: hyper::Request<Incoming>,
) -> hyper::Response<Full<Bytes>> {
    let path = request.uri().path().to_owned();
    let Some(provider) = path
        .strip_prefix("/webhooks/")
        .map(|p| p.trim_end_matches('/').to_owned())
    else {
        return plain(
            404,
            json!({"error": "not_found", "message": "Webhooks are served at /webhooks/{provider}."}),
        );
    };
    let query: QueryMap = request
        .uri()
        .query()
        .unwrap_or_default()
        .parse()
        .unwrap_or_default();
    let (mut parts, body) = request.into_parts();
    // What API Gateway tells the function of the scheme the sender used (a URL-signing provider
    // signs it): plain HTTP here.
    parts
        .headers
        .entry("x-forwarded-proto")
        .or_insert(hyper::header::HeaderValue::from_static("http"));
    // Read at most one byte past the limit: enough for ingest to answer 413.
    let body = match Limited::new(body, config.max_body_bytes + 1)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            let error = callhook::Error::PayloadTooLarge {
                size: config.max_body_bytes + 1,
                limit: config.max_body_bytes,
            };
            return convert(ingest::error_response(&error));
        }
    };
    let mut lambda_request =
        lambda_http::Request::from_parts(parts, lambda_http::Body::Binary(body.to_vec()));
    let mut path_parameters = HashMap::new();
    path_parameters.insert("provider".to_owned(), vec![provider]);
    lambda_request = lambda_request
        .with_query_string_parameters(query)
        .with_path_parameters(QueryMap::from(path_parameters));
    convert(ingest::handle(config, store, lambda_request).await)
}

fn convert(response: lambda_http::Response<lambda_http::Body>) -> hyper::Response<Full<Bytes>> {
    let (parts, body) = response.into_parts();
    let bytes = match body {
        lambda_http::Body::Text(text) => Bytes::from(text),
        lambda_http::Body::Binary(bytes) => Bytes::from(bytes),
        _ => Bytes::new(),
    };
    hyper::Response::from_parts(parts, Full::new(bytes))
}

fn plain(status: u16, body: serde_json::Value) -> hyper::Response<Full<Bytes>> {
    let mut response = hyper::Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::NOT_FOUND);
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}
