//! `ingest`: `POST /webhooks/{provider}` behind API Gateway (HTTP API, payload v2).
//!
//! size → authenticate on the raw bytes → parse → one conditional put per canonical event →
//! `200 {"received": true, "duplicate": …}`. A 2xx is only ever sent after every write succeeded;
//! a storage failure answers 503 so the sender retries. Authenticated but unusable bodies are kept
//! in quarantine and answered 400/422; unauthenticated requests are never written.

use super::now_ms;
use crate::config::Config;
use crate::error::{Error, StorageKind};
use crate::intake::{Delivery, Intake, intake};
use crate::store::Store;
use lambda_http::http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::json;
use std::time::Instant;

/// Handles one request. Never fails: every outcome, errors included, is an HTTP response.
pub async fn handle(config: &Config, store: &Store, request: Request) -> Response<Body> {
    let started = Instant::now();
    let provider = provider_segment(&request);
    let token = request
        .query_string_parameters_ref()
        .and_then(|q| q.first("token").map(str::to_owned));
    let body: &[u8] = match request.body() {
        Body::Empty => &[],
        Body::Text(text) => text.as_bytes(),
        Body::Binary(bytes) => bytes,
        _ => &[],
    };
    let delivery = Delivery {
        method: request.method().as_str(),
        provider: &provider,
        headers: request.headers(),
        query_token: token.as_deref(),
        body,
        received_at_ms: now_ms(),
    };
    let (response, call_id, types, outcome) = match intake(config, &delivery) {
        Err(error) => (
            error_response(&error),
            String::new(),
            String::new(),
            error.code(),
        ),
        Ok(Intake::Quarantine {
            provider,
            error,
            body,
        }) => {
            match store
                .put_quarantine(provider, &error, &body, delivery.received_at_ms)
                .await
            {
                Ok(_) => (
                    error_response(&error),
                    String::new(),
                    String::new(),
                    "quarantined",
                ),
                Err(storage) => {
                    tracing::error!(error = %storage, "quarantine write failed");
                    (
                        error_response(&storage),
                        String::new(),
                        String::new(),
                        storage.code(),
                    )
                }
            }
        }
        Ok(Intake::Events {
            provider: name,
            events,
            body,
        }) => {
            let call_id = events
                .first()
                .map(|e| e.call_id.clone())
                .unwrap_or_default();
            let types = events
                .iter()
                .map(|e| e.event_type.as_str())
                .collect::<Vec<_>>()
                .join(",");
            match store.put_delivery(&events, &body).await {
                Ok(stored) => {
                    let duplicate = stored.iter().all(|s| s.duplicate);
                    let body = json!({
                        "received": true,
                        "duplicate": duplicate,
                        "events": stored.iter().map(|s| json!({
                            "type": s.event_type.as_str(),
                            "dedupe_key": s.dedupe_key,
                            "duplicate": s.duplicate,
                        })).collect::<Vec<_>>(),
                    });
                    let outcome = if duplicate { "duplicate" } else { "stored" };
                    (
                        json_response(StatusCode::OK, body.to_string()),
                        call_id,
                        types,
                        outcome,
                    )
                }
                Err(error) if error.storage_kind() == Some(StorageKind::Rejected) => {
                    // DynamoDB refuses these items and always will: a 5xx would have the sender
                    // retry for days. Keep the body where a person can see it, and say so.
                    tracing::error!(error = %error, "event write rejected");
                    let refused = Error::Unusable(
                        "The event cannot be stored as sent; it is kept in quarantine.".into(),
                    );
                    let response = match store
                        .put_quarantine(name, &error, &body, delivery.received_at_ms)
                        .await
                    {
                        Ok(_) => error_response(&refused),
                        Err(storage) => error_response(&storage),
                    };
                    (response, call_id, types, "rejected")
                }
                Err(error) => {
                    tracing::error!(error = %error, "event write failed");
                    (error_response(&error), call_id, types, error.code())
                }
            }
        }
    };
    tracing::info!(
        provider = %provider,
        call_id = %call_id,
        types = %types,
        outcome,
        status = response.status().as_u16(),
        latency_ms = started.elapsed().as_secs_f64() * 1000.0,
        "webhook"
    );
    response
}

/// The `{provider}` path parameter (API Gateway fills it; the local server too), falling back to
/// the last segment of `/webhooks/{provider}`.
fn provider_segment(request: &Request) -> String {
    if let Some(p) = request
        .path_parameters_ref()
        .and_then(|p| p.first("provider"))
    {
        return p.to_owned();
    }
    let path = request.raw_http_path();
    path.strip_prefix("/webhooks/")
        .unwrap_or_default()
        .trim_end_matches('/')
        .to_owned()
}

pub fn error_response(error: &Error) -> Response<Body> {
    let status = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = json_response(status, error.body());
    if status == StatusCode::METHOD_NOT_ALLOWED {
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
    }
    response
}

fn json_response(status: StatusCode, body: String) -> Response<Body> {
    let mut response = Response::new(Body::Text(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
