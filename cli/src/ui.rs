//! `callhook ui`: a local, read-only web view of the calls a stack stored, served on 127.0.0.1
//! over the same store queries as `calls list`, `calls show` and `events`. Server-rendered HTML
//! with an inline stylesheet and no script; every value shown passes through [`escape`], since
//! provider payloads are untrusted.

use crate::filter::FilterArgs;
use crate::output::{datetime, duration};
use crate::stack::StackArgs;
use crate::{Error, NotFound};
use callhook::provider::REGISTRY;
use callhook::record::CallRecord;
use callhook::store::{CallSummary, Store};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{ALLOW, CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'";
/// The port tried when none is given; a free one is taken if it is in use.
const DEFAULT_PORT: u16 = 3001;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Port to serve on (127.0.0.1 only). Default: 3001, or a free port if 3001 is taken.
    #[arg(long)]
    port: Option<u16>,
    /// Calls per page of the list.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=1000))]
    page_size: u32,
}

pub async fn run(args: Args, stack: &StackArgs) -> Result<(), Error> {
    let stack = stack.connect().await?;
    let listener = match args.port {
        Some(port) => bind(port).await?,
        None => match bind(DEFAULT_PORT).await {
            Ok(listener) => listener,
            Err(_) => bind(0).await?,
        },
    };
    let addr = listener.local_addr()?;
    let mut stdout = std::io::stdout();
    writeln!(
        stdout,
        "callhook ui: http://{addr}/ (read-only; Ctrl-C stops it)"
    )?;
    stdout.flush()?;
    let store = Arc::new(stack.store);
    tokio::select! {
        result = serve(listener, store, args.page_size as usize) => result?,
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(())
}

async fn bind(port: u16) -> Result<tokio::net::TcpListener, Error> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}").into())
}

/// Serves connections from `listener` until accepting fails.
pub async fn serve(
    listener: tokio::net::TcpListener,
    store: Arc<Store>,
    page_size: usize,
) -> std::io::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let store = store.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let store = store.clone();
                async move {
                    Ok::<_, std::convert::Infallible>(answer(&store, page_size, request).await)
                }
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

/// Escapes text for HTML text and double- or single-quoted attribute contexts.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes a path segment or query value (everything but unreserved characters).
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Decodes percent-encoding (and `+` as space when `plus`); invalid UTF-8 is replaced.
fn decode(text: &str, plus: bool) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(high), Some(low)) => {
                    out.push(high * 16 + low);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' if plus => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(digit: u8) -> Option<u8> {
    char::from(digit)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k, true), decode(v, true))
        })
        .collect()
}

async fn answer(
    store: &Store,
    page_size: usize,
    request: Request<Incoming>,
) -> Response<Full<Bytes>> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut response = page(
            StatusCode::METHOD_NOT_ALLOWED,
            "Method not allowed",
            "<p>This view is read-only: only GET is served.</p>".to_owned(),
        );
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    let path = request.uri().path().to_owned();
    let query = query_pairs(request.uri().query());
    let segments: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| decode(s, false))
        .collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let result = match segments.as_slice() {
        [] | ["calls"] => list(store, page_size, &query).await,
        ["calls", provider, id] => call(store, provider, id).await,
        ["calls", provider, id, "events", sk] => raw_event(store, provider, id, sk).await,
        _ => Err(NotFound(format!("nothing at {path}")).into()),
    };
    match result {
        Ok((title, body)) => page(StatusCode::OK, &title, body),
        Err(e) if e.is::<NotFound>() => page(
            StatusCode::NOT_FOUND,
            "Not found",
            format!("<p class=\"error\">{}</p>", escape(&e.to_string())),
        ),
        Err(e) if e.is::<BadRequest>() => page(
            StatusCode::BAD_REQUEST,
            "Bad request",
            format!("<p class=\"error\">{}</p>", escape(&e.to_string())),
        ),
        Err(e) => page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Error",
            format!("<p class=\"error\">{}</p>", escape(&e.to_string())),
        ),
    }
}

#[derive(Debug)]
struct BadRequest(String);

impl std::fmt::Display for BadRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadRequest {}

const STYLE: &str = "\
body{font:15px/1.45 system-ui,sans-serif;margin:0;color:#1d2329;background:#f6f7f9}\
header{background:#1d2329;color:#fff;padding:.6em 1.5em}header a{color:#fff;text-decoration:none;font-weight:600}\
main{padding:1em 1.5em}h1{font-size:1.5em;margin:.3em 0 .6em}h2{font-size:1.15em}\
.columns{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1.2fr);gap:1.5em}\
.columns h2:first-child{margin-top:0}.scroll{overflow-x:auto}.nowrap{white-space:nowrap}\
table{border-collapse:collapse;width:100%;background:#fff}\
th,td{text-align:left;padding:.35em .6em;font-size:14px;border-bottom:1px solid #e3e6ea;vertical-align:top}\
th{background:#eef0f3;font-weight:600;font-size:13px}\
td.mono,.mono{font-family:ui-monospace,monospace;font-size:13px}\
form.filters{display:flex;flex-wrap:wrap;gap:.5em;align-items:end;margin-bottom:1em}\
form.filters label{display:flex;flex-direction:column;font-size:12px;color:#555}\
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.2em 1em;background:#fff;padding:1em}\
dl.facts dt{color:#555}dl.facts dd{margin:0;overflow-wrap:anywhere}\
.chat{display:flex;flex-direction:column;gap:.5em;background:#fff;padding:1em}\
.turn{max-width:80%;padding:.5em .8em;border-radius:10px;white-space:pre-wrap}\
.turn .role{display:block;font-size:11px;color:#666;text-transform:uppercase}\
.turn.agent{align-self:flex-start;background:#e8eefc}\
.turn.user{align-self:flex-end;background:#e3f5e1}\
.turn.other{align-self:center;background:#f1f1f1;font-size:13px}\
pre{background:#fff;padding:1em;overflow:auto;white-space:pre-wrap;word-break:break-all}\
.error{color:#a40000}.missed{color:#a40000;font-weight:600}\
nav.pager{margin:1em 0}";

fn page(status: StatusCode, title: &str, body: String) -> Response<Full<Bytes>> {
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>{} · callhook</title><style>{STYLE}</style></head>\
         <body><header><a href=\"/calls\">callhook</a></header><main>{body}</main></body></html>\n",
        escape(title)
    );
    let mut response = Response::new(Full::new(Bytes::from(html)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert("content-security-policy", HeaderValue::from_static(CSP));
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    response
}

/// The list's filters from the query string, as `calls list` takes them from flags.
fn filter_of(query: &[(String, String)]) -> Result<FilterArgs, Error> {
    let mut filter = FilterArgs::default();
    let value = |name: &str| {
        query
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    if let Some(provider) = value("provider") {
        if !REGISTRY.iter().any(|p| p.name() == provider) {
            return Err(BadRequest(format!("no provider `{provider}`")).into());
        }
        filter.provider = Some(provider);
    }
    filter.agent = value("agent");
    filter.number = value("number");
    for (name, slot) in [("since", &mut filter.since), ("until", &mut filter.until)] {
        if let Some(text) = value(name) {
            *slot = Some(
                crate::filter::parse_time(&text).map_err(|e| BadRequest(format!("{name}: {e}")))?,
            );
        }
    }
    if let Some(status) = value("status") {
        if !STATUSES.contains(&status.as_str()) {
            return Err(BadRequest(format!("no status `{status}`")).into());
        }
        filter.status = Some(status);
    }
    filter.missed = value("missed").is_some_and(|v| v != "0" && v != "false");
    Ok(filter)
}

const STATUSES: [&str; 5] = ["queued", "initiated", "ringing", "in_progress", "ended"];

/// Where a page of the list starts: after the call `(sort_at, pk)` of the previous page.
fn cursor_of(query: &[(String, String)]) -> Result<Option<(i64, String)>, Error> {
    let Some((_, text)) = query.iter().rev().find(|(k, _)| k == "after") else {
        return Ok(None);
    };
    let (at, pk) = text
        .split_once(':')
        .and_then(|(at, pk)| Some((at.parse::<i64>().ok()?, pk.to_owned())))
        .ok_or_else(|| BadRequest("a malformed page cursor".to_owned()))?;
    Ok(Some((at, pk)))
}

/// One page of matching calls, newest first, after `cursor`; and whether more follow.
async fn calls_page(
    store: &Store,
    filter: &FilterArgs,
    cursor: Option<&(i64, String)>,
    size: usize,
) -> Result<(Vec<CallSummary>, bool), Error> {
    let mut filter = filter.clone();
    if let Some((at, _)) = cursor {
        filter.until = Some(filter.until.map_or(*at, |u| u.min(*at)));
    }
    // Calls at the cursor's own time that were on earlier pages come back too: ask for more
    // until a page and one more are left after them, or the store has no more.
    let mut want = size + 1;
    loop {
        let found = filter.newest(store, want).await?;
        let exhausted = found.len() < want;
        let after: Vec<CallSummary> = found
            .into_iter()
            .filter(|c| match cursor {
                Some((at, pk)) => c.sort_at < *at || (c.sort_at == *at && c.pk > *pk),
                None => true,
            })
            .collect();
        if after.len() > size || exhausted {
            let more = after.len() > size;
            let mut after = after;
            after.truncate(size);
            return Ok((after, more));
        }
        want *= 2;
    }
}

async fn list(
    store: &Store,
    page_size: usize,
    query: &[(String, String)],
) -> Result<(String, String), Error> {
    let filter = filter_of(query)?;
    let cursor = cursor_of(query)?;
    let (calls, more) = calls_page(store, &filter, cursor.as_ref(), page_size).await?;
    let raw = |name: &str| {
        query
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let mut out =
        String::from("<h1>Calls</h1><form class=\"filters\" method=\"get\" action=\"/calls\">");
    let mut select = |name: &str, options: &[&str]| {
        let chosen = raw(name);
        let _ = write!(
            out,
            "<label>{name}<select name=\"{name}\"><option value=\"\">any</option>"
        );
        for option in options {
            let selected = if *option == chosen { " selected" } else { "" };
            let _ = write!(
                out,
                "<option value=\"{0}\"{selected}>{0}</option>",
                escape(option)
            );
        }
        out.push_str("</select></label>");
    };
    let providers: Vec<&str> = REGISTRY.iter().map(|p| p.name()).collect();
    select("provider", &providers);
    select("status", &STATUSES);
    for (name, hint) in [
        ("agent", "agent id"),
        ("number", "+14155550123"),
        ("since", "24h, 2026-11-21"),
        ("until", "RFC 3339, ms"),
    ] {
        let _ = write!(
            out,
            "<label>{name}<input name=\"{name}\" value=\"{}\" placeholder=\"{}\"></label>",
            escape(&raw(name)),
            escape(hint)
        );
    }
    let checked = if filter.missed { " checked" } else { "" };
    let _ = write!(
        out,
        "<label>missed<input type=\"checkbox\" name=\"missed\" value=\"1\"{checked}></label>\
         <button type=\"submit\">Filter</button> <a href=\"/calls\">clear</a></form>"
    );
    if calls.is_empty() {
        out.push_str("<p class=\"empty\">No calls match.</p>");
    } else {
        out.push_str(
            "<div class=\"scroll\"><table class=\"calls\"><thead><tr><th>started (UTC)</th><th>provider</th>\
             <th>call id</th><th>direction</th><th>from</th><th>to</th><th>status</th>\
             <th>outcome</th><th>duration</th><th>agent</th></tr></thead><tbody>",
        );
        for item in &calls {
            let r = &item.record;
            let mut outcome = escape(&dash(r.outcome.as_deref()));
            if r.missed {
                outcome.push_str(" <span class=\"missed\">missed</span>");
            }
            let _ = write!(
                out,
                "<tr class=\"call\"><td class=\"mono nowrap\">{}</td><td>{}</td>\
                 <td class=\"mono\"><a href=\"{}\">{}</a></td><td>{}</td><td class=\"mono\">{}</td>\
                 <td class=\"mono\">{}</td><td>{}</td><td>{outcome}</td><td>{}</td><td class=\"mono\">{}</td></tr>",
                escape(&datetime(r.started_at.or(r.ended_at).or(r.first_event_at))),
                escape(&r.provider),
                escape(&call_href(&r.provider, &r.call_id)),
                escape(&r.call_id),
                escape(&dash(r.direction.as_deref())),
                escape(&dash(r.from_number.as_deref())),
                escape(&dash(r.to_number.as_deref())),
                escape(&crate::calls::status(r)),
                escape(&duration(r.duration_ms)),
                escape(&dash(r.agent.as_ref().and_then(|a| a.id.as_deref()))),
            );
        }
        out.push_str("</tbody></table></div>");
    }
    if let (true, Some(last)) = (more, calls.last()) {
        let mut next: Vec<String> = query
            .iter()
            .filter(|(k, v)| k != "after" && !v.is_empty())
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        next.push(format!(
            "after={}",
            encode(&format!("{}:{}", last.sort_at, last.pk))
        ));
        let _ = write!(
            out,
            "<nav class=\"pager\"><a rel=\"next\" class=\"next\" href=\"{}\">Next page →</a></nav>",
            escape(&format!("/calls?{}", next.join("&")))
        );
    }
    Ok(("Calls".to_owned(), out))
}

fn call_href(provider: &str, id: &str) -> String {
    format!("/calls/{}/{}", encode(provider), encode(id))
}

fn dash(value: Option<&str>) -> String {
    match value {
        Some(v) if !v.trim().is_empty() => v.to_owned(),
        _ => "-".to_owned(),
    }
}

fn plain(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn known_provider(provider: &str) -> Result<(), Error> {
    if REGISTRY.iter().any(|p| p.name() == provider) {
        Ok(())
    } else {
        Err(NotFound(format!("no provider `{provider}`")).into())
    }
}

async fn call(store: &Store, provider: &str, id: &str) -> Result<(String, String), Error> {
    known_provider(provider)?;
    let record = store
        .load_call(provider, id)
        .await?
        .ok_or_else(|| NotFound(format!("no {provider} call {id}")))?;
    let r = &record;
    let mut out = format!(
        "<h1>{} call <span class=\"mono\">{}</span></h1><div class=\"columns\"><section>\
         <dl class=\"facts\">",
        escape(&r.provider),
        escape(&r.call_id)
    );
    let mut fact = |name: &str, html: String| {
        let _ = write!(out, "<dt>{}</dt><dd>{html}</dd>", escape(name));
    };
    let mut state = escape(&crate::calls::status(r));
    if let Some(outcome) = &r.outcome {
        let _ = write!(state, ", {}", escape(outcome));
    }
    if r.missed {
        state.push_str(" <span class=\"missed\">missed</span>");
    }
    fact("status", state);
    for (name, value) in [
        ("direction", r.direction.as_deref()),
        ("from", r.from_number.as_deref()),
        ("to", r.to_number.as_deref()),
        ("end reason", r.end_reason.as_deref()),
    ] {
        if let Some(v) = value.filter(|v| !v.trim().is_empty()) {
            fact(name, escape(v));
        }
    }
    if let Some(agent) = &r.agent {
        let mut text = escape(&dash(agent.id.as_deref()));
        if let Some(version) = &agent.version {
            let _ = write!(text, " ({})", escape(version));
        }
        fact("agent", text);
    }
    for (name, ms) in [("started", r.started_at), ("ended", r.ended_at)] {
        if ms.is_some() {
            fact(name, format!("{} UTC", escape(&datetime(ms))));
        }
    }
    fact("duration", escape(&duration(r.duration_ms)));
    if let Some(cost) = &r.cost {
        fact(
            "cost",
            format!(
                "{} {}",
                escape(&cost.amount.to_string()),
                escape(&cost.unit)
            ),
        );
    }
    if let Some(url) = &r.recording_url {
        fact("recording", link(url));
    }
    if r.sensitive_data_opt_out == Some(true) {
        fact(
            "opted out",
            "the caller opted out of data storage".to_owned(),
        );
    }
    out.push_str("</dl>");
    if let Some(analysis) = r.analysis.as_ref().filter(|a| !a.is_empty()) {
        out.push_str("<h2>Analysis</h2><dl class=\"facts analysis\">");
        if let Some(summary) = &analysis.summary {
            let _ = write!(
                out,
                "<dt>summary</dt><dd class=\"summary\">{}</dd>",
                escape(summary)
            );
        }
        if let Some(sentiment) = &analysis.sentiment {
            let _ = write!(out, "<dt>sentiment</dt><dd>{}</dd>", escape(sentiment));
        }
        for item in &analysis.data {
            let _ = write!(
                out,
                "<dt>{} <small>({})</small></dt><dd>{}</dd>",
                escape(&item.name),
                escape(&item.kind),
                escape(&plain(&item.value))
            );
        }
        out.push_str("</dl>");
    }
    let _ = write!(
        out,
        "</section><section><h2>Conversation ({} turns)</h2><div class=\"chat\">",
        r.transcript.len()
    );
    for turn in &r.transcript {
        let side = match turn.role.as_ref() {
            "agent" | "assistant" | "bot" => "agent",
            "user" | "caller" | "customer" | "human" => "user",
            _ => "other",
        };
        let _ = write!(
            out,
            "<div class=\"turn {side}\"><span class=\"role\">{}</span>{}</div>",
            escape(&turn.role),
            escape(&turn.content)
        );
    }
    if r.transcript.is_empty() {
        out.push_str("<p class=\"empty\">No conversation stored.</p>");
    }
    out.push_str("</div></section></div>");
    for (name, value) in [
        ("Dynamic variables", r.dynamic_variables.as_ref()),
        ("Metadata", r.metadata.as_ref()),
        ("Lead", r.lead.as_ref()),
    ] {
        if let Some(map) = value.filter(|m| !m.is_empty()) {
            let _ = write!(out, "<h2>{name}</h2><dl class=\"facts\">");
            for (key, value) in map {
                let _ = write!(
                    out,
                    "<dt>{}</dt><dd>{}</dd>",
                    escape(key),
                    escape(&plain(value))
                );
            }
            out.push_str("</dl>");
        }
    }
    out.push_str(&events_table(store, r).await?);
    Ok((format!("{} call {}", r.provider, r.call_id), out))
}

/// A recording URL as a link when it is http(s), else as text.
fn link(url: &str) -> String {
    let lower = url.trim_start().to_ascii_lowercase();
    if lower.starts_with("https://") || lower.starts_with("http://") {
        format!(
            "<a href=\"{0}\" rel=\"noopener noreferrer\">{0}</a>",
            escape(url.trim_start())
        )
    } else {
        escape(url)
    }
}

async fn events_table(store: &Store, r: &CallRecord) -> Result<String, Error> {
    let key =
        callhook::event::record_key(&r.provider, callhook::EventType::CallStarted, &r.call_id);
    let items = store.event_headers(&key).await?;
    let mut out = format!(
        "<h2>Events ({})</h2><table class=\"events\"><thead><tr><th>received (UTC)</th>\
         <th>type</th><th>provider event</th><th>occurred (UTC)</th><th>bytes</th>\
         <th>dedupe key</th><th>raw body</th></tr></thead><tbody>",
        items.len()
    );
    for item in &items {
        let size = store.body_size(item).await.map(|b| b.to_string());
        let _ = write!(
            out,
            "<tr class=\"event\"><td class=\"mono\">{}</td><td>{}</td><td>{}</td>\
             <td class=\"mono\">{}</td><td>{}</td><td class=\"mono\">{}</td>\
             <td><a href=\"{}\">view</a></td></tr>",
            escape(&datetime(Some(item.received_at))),
            escape(&item.kind),
            escape(&dash(Some(&item.provider_event))),
            escape(&datetime(item.occurred_at)),
            escape(&size.unwrap_or_else(|e| format!("unreadable: {e}"))),
            escape(&item.dedupe_key),
            escape(&format!(
                "{}/events/{}",
                call_href(&r.provider, &r.call_id),
                encode(&item.sk)
            )),
        );
    }
    out.push_str("</tbody></table>");
    Ok(out)
}

async fn raw_event(
    store: &Store,
    provider: &str,
    id: &str,
    sk: &str,
) -> Result<(String, String), Error> {
    known_provider(provider)?;
    let key = callhook::event::record_key(provider, callhook::EventType::CallStarted, id);
    let item = match sk.starts_with("ev#") {
        true => store.get_event(&key, sk).await?,
        false => None,
    }
    .ok_or_else(|| NotFound(format!("no event {sk} of {provider} call {id}")))?;
    let body = store.load_body(&item).await?;
    let text = String::from_utf8_lossy(&body);
    let pretty = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok());
    let mut out = format!(
        "<h1>{} event of <a href=\"{}\">{} call <span class=\"mono\">{}</span></a></h1>\
         <dl class=\"facts\"><dt>received</dt><dd>{} UTC</dd><dt>provider event</dt><dd>{}</dd>\
         <dt>dedupe key</dt><dd class=\"mono\">{}</dd><dt>bytes</dt><dd>{}</dd></dl>",
        escape(&item.kind),
        escape(&call_href(provider, id)),
        escape(provider),
        escape(id),
        escape(&datetime(Some(item.received_at))),
        escape(&dash(Some(&item.provider_event))),
        escape(&item.dedupe_key),
        body.len()
    );
    let _ = write!(
        out,
        "<h2>Raw body, as received</h2><pre class=\"raw\">{}</pre>",
        escape(&text)
    );
    if let Some(pretty) = pretty.filter(|p| p.as_str() != text.as_ref()) {
        let _ = write!(
            out,
            "<h2>Indented</h2><pre class=\"pretty\">{}</pre>",
            escape(&pretty)
        );
    }
    Ok((format!("{} event of {provider} call {id}", item.kind), out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_text_and_attribute_contexts() {
        assert_eq!(
            escape("<script>alert(1)</script>"),
            "&lt;script&gt;alert(1)&lt;/script&gt;"
        );
        assert_eq!(
            escape("\"><img src=x onerror='a&b'>"),
            "&quot;&gt;&lt;img src=x onerror=&#39;a&amp;b&#39;&gt;"
        );
    }

    #[test]
    fn only_http_urls_become_links() {
        assert!(link("https://r.example/a.wav").starts_with("<a href="));
        assert!(!link("javascript:alert(1)").contains("<a"));
        assert!(!link("data:text/html,x").contains("<a"));
    }

    #[test]
    fn percent_coding_round_trips() {
        for text in ["ev#0001#a b", "conv_1", "é/?&=+%"] {
            assert_eq!(decode(&encode(text), false), text);
        }
        assert_eq!(decode("a+b%2", true), "a b%2");
    }
}
