//! The stack behind real HTTP: the local server (`callhook_local::server`, what `callhook dev`
//! serves) on a free loopback port, in this process, and a client that signs as the providers do.

use crate::{Reply, Stack};
use callhook::config::Config;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use std::sync::Arc;

#[allow(missing_debug_implementations)]
pub struct HttpStack {
    pub stack: Stack,
    sender: Sender,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// A client of the server, signing with the stack's configuration; cheap to clone.
#[derive(Clone)]
#[allow(missing_debug_implementations)]
pub struct Sender {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    config: Arc<Config>,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl HttpStack {
    pub async fn start(stack: Stack) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let config = Arc::new(Config::from_vars(stack.vars.clone()).unwrap());
        let server = tokio::spawn(callhook_local::server::serve(
            listener,
            config.clone(),
            stack.store.clone(),
        ));
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(64)
            .build(connector);
        Self {
            stack,
            sender: Sender {
                base,
                config,
                client,
            },
            server,
        }
    }

    pub fn sender(&self) -> Sender {
        self.sender.clone()
    }

    pub async fn post(&self, provider: &str, body: &[u8]) -> Result<Reply, String> {
        self.sender.post(provider, body).await
    }

    pub async fn send(
        &self,
        method: &str,
        path_and_query: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<Reply, String> {
        self.sender
            .send(method, path_and_query, headers, body)
            .await
    }
}

impl Drop for HttpStack {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Sender {
    /// Delivers `body` signed as `provider` signs.
    pub async fn post(&self, provider: &str, body: &[u8]) -> Result<Reply, String> {
        let (headers, token) = crate::sign(&self.config, provider, body);
        let mut path = format!("/webhooks/{provider}");
        if let Some(token) = token {
            path.push_str(&format!("?token={token}"));
        }
        let headers: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        self.send("POST", &path, &headers, body.to_vec()).await
    }

    /// Any request: `Err` when there was no HTTP answer at all.
    pub async fn send(
        &self,
        method: &str,
        path_and_query: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<Reply, String> {
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(format!("{}{path_and_query}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| e.to_string())?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| format!("{e:?}"))?;
        let status = response.status().as_u16();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        Ok(Reply { status, body })
    }
}
