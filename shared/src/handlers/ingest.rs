//! `ingest`: `POST /webhooks/{provider}` behind API Gateway (HTTP API, payload v2).
//!
//! size → authenticate on the raw bytes → parse → one conditional put per canonical event →
//! `200 {"received": true, "duplicate": …}`. A 2xx is only ever sent after every write succeeded;
//! a storage failure, or storage not done within [`STORAGE_DEADLINE`], answers 503 so the sender
//! retries. Authenticated but unusable bodies are kept in quarantine and answered 400/422;
//! unauthenticated requests are never written.

use super::{STORAGE_DEADLINE, now_ms};
use crate::config::Config;
use crate::error::{Error, StorageKind};
use crate::intake::{Delivery, Intake, intake};
use crate::secrets::LiveConfig;
use crate::store::Store;
use lambda_http::http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;

/// Handles one request with a fixed configuration. Never fails: every outcome, errors included,
/// is an HTTP response.
pub async fn handle(config: &Config, store: &Store, request: Request) -> Response<Body> {
    serve(config, None, store, request).await
}

/// Handles one request with the configuration `live` keeps in step with the provider secret: a
/// request that fails verification is verified again if reading the secret anew changes it (see
/// [`crate::secrets`]).
pub async fn handle_live(
    live: &Arc<LiveConfig>,
    store: &Store,
    request: Request,
) -> Response<Body> {
    let (config, generation) = live.current();
    serve(&config, Some((live, generation)), store, request).await
}

async fn serve(
    config: &Config,
    live: Option<(&Arc<LiveConfig>, u64)>,
    store: &Store,
    request: Request,
) -> Response<Body> {
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
    // API Gateway's raw path (what the sender addressed), else the URI's (the local server's).
    let path = match request.raw_http_path() {
        "" => request.uri().path(),
        raw => raw,
    };
    let target = match request.uri().query() {
        Some(query) if !query.is_empty() => format!("{path}?{query}"),
        _ => path.to_owned(),
    };
    let delivery = Delivery {
        method: request.method().as_str(),
        provider: &provider,
        headers: request.headers(),
        query_token: token.as_deref(),
        target: Some(&target),
        body,
        received_at_ms: now_ms(),
    };
    let mut admitted = intake(config, &delivery);
    if let (Err(Error::Unauthorized(_)), Some((live, generation))) = (&admitted, live) {
        // Signed with a secret added since this environment last read it?
        if let Some(fresh) = live.after_failure(generation).await {
            admitted = intake(&fresh, &delivery);
        }
    }
    let (response, call_id, types, outcome) = match admitted {
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
            match within_deadline(
                started,
                store.put_quarantine(provider, &error, &body, delivery.received_at_ms),
            )
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
            if let Some(event) = events.iter().find(|e| {
                crate::provider::lookup(name).is_some_and(|p| p.expects_answer(&e.provider_event))
            }) {
                // Stored, and answered as any webhook is: but the sender waited for an answer
                // (an assistant, a tool result) that callhook never gives.
                tracing::error!(
                    provider = name,
                    event = %event.provider_event,
                    "configuration error: this event asks its server for an answer; callhook \
                     must not be the assistant or tool server (point only status and report \
                     messages at callhook)"
                );
            }
            let types = events
                .iter()
                .map(|e| e.event_type.as_str())
                .collect::<Vec<_>>()
                .join(",");
            match within_deadline(started, store.put_delivery(&events, &body)).await {
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
                    let response = match within_deadline(
                        started,
                        store.put_quarantine(name, &error, &body, delivery.received_at_ms),
                    )
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

/// `writes`, cut off [`STORAGE_DEADLINE`] after the request came in. Each storage call has that
/// budget too, but a webhook of several events makes several calls, and the sender's patience is
/// for the whole request.
async fn within_deadline<T>(
    started: Instant,
    writes: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    let deadline = tokio::time::Instant::from_std(started + STORAGE_DEADLINE);
    tokio::time::timeout_at(deadline, writes)
        .await
        .unwrap_or_else(|_| {
            Err(Error::storage(
                StorageKind::Transient,
                format!(
                    "no answer within the {} s storage deadline",
                    STORAGE_DEADLINE.as_secs()
                ),
            ))
        })
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

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_runtime_api::client::http::{
        HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
    };
    use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
    use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
    use aws_smithy_runtime_api::http::{Response as HttpResponse, StatusCode as HttpStatus};
    use aws_smithy_types::body::SdkBody;
    use lambda_http::aws_lambda_events::query_map::QueryMap;
    use std::collections::HashMap;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    /// DynamoDB's HTTP side, in process: every put succeeds, `delay` after it was sent.
    #[derive(Debug, Clone)]
    struct SlowStorage {
        delay: Duration,
        writes: Arc<AtomicUsize>,
    }

    impl HttpConnector for SlowStorage {
        fn call(&self, _request: HttpRequest) -> HttpConnectorFuture {
            let storage = self.clone();
            HttpConnectorFuture::new(async move {
                tokio::time::sleep(storage.delay).await;
                storage.writes.fetch_add(1, Ordering::SeqCst);
                let mut response =
                    HttpResponse::new(HttpStatus::try_from(200).unwrap(), SdkBody::from("{}"));
                response
                    .headers_mut()
                    .insert("content-type", "application/x-amz-json-1.0");
                Ok(response)
            })
        }
    }

    impl HttpClient for SlowStorage {
        fn http_connector(
            &self,
            _settings: &HttpConnectorSettings,
            _components: &RuntimeComponents,
        ) -> SharedHttpConnector {
            SharedHttpConnector::new(self.clone())
        }
    }

    /// Delivers a Synthflow completion (two events sharing their body: the body manifest's read,
    /// the body and its manifest, then the two events, five requests) to storage that takes
    /// `delay` per request, with the functions' SDK configuration. Returns the status and the
    /// requests answered.
    async fn deliver_two_events(delay: Duration) -> (u16, usize) {
        let config =
            Config::from_vars([("CALLHOOK_SYNTHFLOW_TOKENS".to_owned(), "tok".to_owned())])
                .unwrap();
        let storage = SlowStorage {
            delay,
            writes: Arc::default(),
        };
        let sdk = super::super::sdk_config_for(Some("http://storage.invalid")).await;
        let client = aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(&sdk)
                .http_client(storage.clone())
                .build(),
        );
        let store = Store::new(client, &config);
        let body = include_bytes!("../../../tests/fixtures/synthflow/completed.json");
        let param =
            |k: &str, v: &str| QueryMap::from(HashMap::from([(k.to_owned(), vec![v.to_owned()])]));
        let request = lambda_http::http::Request::builder()
            .method("POST")
            .uri("/webhooks/synthflow?token=tok")
            .body(Body::Binary(body.to_vec()))
            .unwrap()
            .with_query_string_parameters(param("token", "tok"))
            .with_path_parameters(param("provider", "synthflow"));
        let response = handle(&config, &store, request).await;
        (
            response.status().as_u16(),
            storage.writes.load(Ordering::SeqCst),
        )
    }

    // GIVEN storage that takes 3 s per request: each is within the SDK's timeout, together they
    // are not within the sender's patience.
    // WHEN a webhook of two events comes in
    // THEN the first request is waited for (not cut short and sent again), and the webhook is
    // answered 503 at the deadline instead of 200 after 15 s.
    #[tokio::test(start_paused = true)]
    async fn writes_that_outlast_the_deadline_are_answered_503() {
        let (status, writes) = deliver_two_events(Duration::from_secs(3)).await;
        assert_eq!(status, 503);
        assert_eq!(writes, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn slow_writes_within_the_deadline_are_stored() {
        let (status, requests) = deliver_two_events(Duration::from_millis(700)).await;
        assert_eq!(status, 200);
        assert_eq!(requests, 5);
    }
}
