//! `callhook ui`, the local read-only web view, against a stack's tables on DynamoDB Local: the
//! binary serves on a free loopback port, the pages are read over HTTP (and, in the browser
//! test, rendered by headless Chromium), and a call whose payload carries HTML shows it as text.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use callhook_e2e::{SEED_CALLS, Stack, all_fixtures, endpoint, fixture};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_callhook");
const VOX_CALL: &str = "3079f46c-d141-4cd9-805f-69f212136b66";
const RETELL_CALL: &str = "call_5d2a8f0c3b7e41a9c6d4e2f1a8b3c790";
const ANSWERED: &str = "CA7f3b2c9e1d4a4f8b9c0d1e2f3a4b5c6d";
const MISSED: &str = "CA0a1b2c3d4e5f60718293a4b5c6d7e8f9";
const HOSTILE_CALL: &str = "hostile-3079f46c";
/// A call id with markup, quotes, a slash and a percent sign: escaped in the page, encoded in
/// links, and still found.
const ODD_CALL: &str = "odd<b>\"x'/%2F#1";
const SCRIPT: &str = "<script>alert(1)</script>";
const IMG: &str = "\"><img src=x onerror=alert(2)>";

/// A stack holding every seed call and one Vox call whose payload carries HTML.
async fn seeded() -> Stack {
    let mut stack = Stack::new().await;
    for (provider, name) in all_fixtures() {
        let reply = stack.send_fixture(provider, name).await;
        assert!(reply.status < 300, "{provider}/{name}: {reply:?}");
    }
    let body = String::from_utf8(fixture("vox", "v2_call_ended"))
        .unwrap()
        .replace(VOX_CALL, HOSTILE_CALL)
        .replace("안녕하세요. 무엇을 도와드릴까요?", SCRIPT)
        .replace("주문 상태를 확인하고 싶습니다.", &IMG.replace('"', "\\\""))
        .replace("\"crm\"", &format!("\"{}\"", IMG.replace('"', "\\\"")))
        .replace(
            "https://storage.googleapis.com/agentify/egress/audio_recording.ogg",
            "javascript:alert(3)",
        );
    let reply = stack.send("vox", body.as_bytes()).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let odd = String::from_utf8(fixture("vox", "v2_call_ended"))
        .unwrap()
        .replace(VOX_CALL, &ODD_CALL.replace('"', "\\\""));
    let reply = stack.send("vox", odd.as_bytes()).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    stack.drain().await;
    stack
}

/// `callhook ui` on the stack's tables, killed on drop.
struct Ui {
    child: Child,
    base: String,
}

impl Ui {
    fn start(stack: &Stack, page_size: u32) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut command = Command::new(BIN);
        for (key, _) in std::env::vars() {
            if key.starts_with("CALLHOOK_") || key.starts_with("AWS_") {
                command.env_remove(key);
            }
        }
        let mut child = command
            .args(["ui", "--port", &port.to_string()])
            .args(["--page-size", &page_size.to_string()])
            .env("CALLHOOK_EVENTS_TABLE", &stack.config.events_table)
            .env("CALLHOOK_CALLS_TABLE", &stack.config.calls_table)
            .env("CALLHOOK_DYNAMODB_ENDPOINT", endpoint())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let expected = format!("http://127.0.0.1:{port}/");
        if !line.contains(&expected) {
            let _ = child.kill();
            let mut stderr = String::new();
            let _ = child.stderr.take().unwrap().read_to_string(&mut stderr);
            panic!("`callhook ui` printed {line:?}, not its URL; stderr: {stderr}");
        }
        Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for Ui {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Page {
    status: u16,
    headers: String,
    body: String,
}

impl Page {
    fn header(&self, name: &str) -> Option<String> {
        self.headers.lines().find_map(|line| {
            let (k, v) = line.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    }
}

/// One HTTP/1.1 request to the ui, read to the end.
fn request(ui: &Ui, method: &str, path: &str) -> Page {
    let addr = ui.base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let raw = String::from_utf8(raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let (status_line, headers) = head.split_once("\r\n").unwrap_or((head, ""));
    Page {
        status: status_line.split(' ').nth(1).unwrap().parse().unwrap(),
        headers: headers.to_owned(),
        body: body.to_owned(),
    }
}

fn get(ui: &Ui, path: &str) -> Page {
    let page = request(ui, "GET", path);
    assert_eq!(page.status, 200, "GET {path}: {}", page.body);
    page
}

/// The call ids of a list page's rows, in order.
fn rows(html: &str) -> Vec<String> {
    html.split("<tr class=\"call\">")
        .skip(1)
        .map(|row| {
            let link = row.split("<a href=\"/calls/").nth(1).unwrap();
            let text = link.split('>').nth(1).unwrap();
            text.split('<').next().unwrap().to_owned()
        })
        .collect()
}

/// The `href` of the list page's next-page link, unescaped.
fn next_link(html: &str) -> Option<String> {
    let rest = html.split("rel=\"next\" class=\"next\" href=\"").nth(1)?;
    Some(rest.split('"').next()?.replace("&amp;", "&"))
}

/// Links to raw events on a call page.
fn event_links(html: &str) -> Vec<String> {
    html.split("<a href=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .filter(|href| href.contains("/events/"))
        .map(str::to_owned)
        .collect()
}

fn assert_inert(html: &str) {
    assert!(!html.contains("<script"), "a script element:\n{html}");
    assert!(!html.contains("<img"), "an img element:\n{html}");
    assert!(!html.contains("href=\"javascript:"), "a javascript: link");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ui_lists_filters_pages_and_shows_calls_with_payload_html_as_text() {
    let stack = seeded().await;
    let ui = Ui::start(&stack, 5);

    // The list: newest first, five a page, every call once across the next-page links.
    let first = get(&ui, "/");
    assert_eq!(
        first.header("content-security-policy").as_deref(),
        Some("default-src 'none'; style-src 'unsafe-inline'; img-src 'self'")
    );
    assert_eq!(
        first.header("x-content-type-options").as_deref(),
        Some("nosniff")
    );
    assert!(
        first
            .header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    let mut seen = rows(&first.body);
    assert_eq!(seen.len(), 5);
    let mut next = next_link(&first.body);
    let mut pages = 1;
    while let Some(href) = next {
        let page = get(&ui, &href);
        let ids = rows(&page.body);
        assert!(!ids.is_empty() && ids.len() <= 5, "{href}: {ids:?}");
        seen.extend(ids);
        next = next_link(&page.body);
        pages += 1;
    }
    let mut expected: Vec<String> = SEED_CALLS.iter().map(|(_, id, _)| id.to_string()).collect();
    expected.push(HOSTILE_CALL.to_owned());
    expected.push("odd&lt;b&gt;&quot;x&#39;/%2F#1".to_owned());
    let mut sorted = seen.clone();
    sorted.sort();
    expected.sort();
    assert_eq!(sorted, expected, "every call once over {pages} pages");
    assert_eq!(pages, 3);
    let odd = get(&ui, "/calls?provider=vox");
    assert_inert(&odd.body);
    let href = odd
        .body
        .split("<a href=\"")
        .filter_map(|rest| rest.split('"').next())
        .find(|href| href.starts_with("/calls/vox/odd"))
        .unwrap()
        .to_owned();
    assert_eq!(href, "/calls/vox/odd%3Cb%3E%22x%27%2F%252F%231");
    let odd = get(&ui, &href);
    assert!(odd.body.contains("odd&lt;b&gt;&quot;x&#39;/%2F#1"));
    assert!(!event_links(&odd.body).is_empty());
    for link in event_links(&odd.body) {
        get(&ui, &link);
    }

    // Filters, as `calls list` takes them.
    let missed = get(&ui, "/calls?provider=clawops&missed=1");
    assert_eq!(rows(&missed.body), [MISSED]);
    let clawops = rows(&get(&ui, "/calls?provider=clawops").body);
    assert_eq!(clawops.len(), 2);
    assert!(clawops.contains(&ANSWERED.to_owned()));
    let ended = get(&ui, "/calls?provider=vox&status=ended&until=2030-01-01");
    assert!(rows(&ended.body).contains(&VOX_CALL.to_owned()));
    let none = get(&ui, "/calls?provider=vox&since=2099-01-01");
    assert!(rows(&none.body).is_empty());
    assert!(none.body.contains("No calls match."));
    assert_eq!(request(&ui, "GET", "/calls?since=yesterday").status, 400);
    assert_eq!(request(&ui, "GET", "/calls?provider=nope").status, 400);

    // A call: facts, recording link, the conversation as a chat, its events.
    let call = get(&ui, &format!("/calls/vox/{VOX_CALL}"));
    assert!(call.body.contains(
        "<a href=\"https://storage.googleapis.com/agentify/egress/audio_recording.ogg\""
    ));
    assert!(call.body.contains(
        "<div class=\"turn agent\"><span class=\"role\">agent</span>안녕하세요. 무엇을 도와드릴까요?</div>"
    ));
    assert!(call.body.contains(
        "<div class=\"turn user\"><span class=\"role\">user</span>주문 상태를 확인하고 싶습니다.</div>"
    ));
    assert!(call.body.contains("user_hangup"));
    let links = event_links(&call.body);
    assert!(links.len() >= 3, "{links:?}");
    assert!(links[0].contains("/events/ev%23"), "{links:?}");
    assert_eq!(
        call.body.matches("<tr class=\"event\">").count(),
        links.len()
    );

    // A raw event: the body as received, in a <pre>.
    let raw = get(&ui, &links[0]);
    assert!(raw.body.contains("<pre class=\"raw\">"));
    assert!(raw.body.contains(&format!("&quot;{VOX_CALL}&quot;")));

    // Payload HTML is text everywhere.
    let hostile = get(&ui, &format!("/calls/vox/{HOSTILE_CALL}"));
    assert_inert(&hostile.body);
    assert!(
        hostile
            .body
            .contains("&lt;script&gt;alert(1)&lt;/script&gt;")
    );
    assert!(
        hostile
            .body
            .contains("&quot;&gt;&lt;img src=x onerror=alert(2)&gt;")
    );
    assert!(hostile.body.contains("<dd>javascript:alert(3)</dd>"));
    for link in event_links(&hostile.body) {
        let raw = get(&ui, &link);
        assert_inert(&raw.body);
        assert!(raw.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    }
    assert_inert(&get(&ui, "/calls?provider=vox").body);

    // Read-only, and nothing but the pages.
    for method in ["POST", "PUT", "DELETE", "PATCH"] {
        let page = request(&ui, method, "/calls");
        assert_eq!(page.status, 405, "{method}");
        assert_eq!(page.header("allow").as_deref(), Some("GET, HEAD"));
    }
    assert_eq!(request(&ui, "GET", "/calls/vox/no-such-call").status, 404);
    assert_eq!(request(&ui, "GET", "/calls/nope/x").status, 404);
    assert_eq!(
        request(
            &ui,
            "GET",
            &format!("/calls/vox/{VOX_CALL}/events/ev%23nope")
        )
        .status,
        404
    );
    assert_eq!(request(&ui, "GET", "/elsewhere").status, 404);
}

/// Chromium, or a failure saying how to install it.
fn chromium() -> PathBuf {
    let name = std::env::var("CALLHOOK_CHROMIUM").unwrap_or_else(|_| "chromium".to_owned());
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(&name))
            .find(|path| path.is_file())
    });
    let found =
        found.or_else(|| Some(PathBuf::from(&name)).filter(|p| p.is_absolute() && p.is_file()));
    found.unwrap_or_else(|| {
        panic!(
            "headless Chromium (`{name}`) is not installed: run scripts/chromium.sh (it installs \
             Debian's chromium package; needs root), or set CALLHOOK_CHROMIUM to its path"
        )
    })
}

fn screenshot_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("ui-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The DOM Chromium built for `url`, and a screenshot of it as `<name>.png`.
fn render(browser: &Path, profile: &Path, url: &str, name: &str) -> String {
    let run = |extra: &[String]| {
        let out = Command::new(browser)
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--hide-scrollbars",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(extra)
            .arg(url)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "chromium on {url}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let dom = run(&["--dump-dom".to_owned()]);
    let shot = screenshot_dir().join(format!("{name}.png"));
    let _ = std::fs::remove_file(&shot);
    run(&[
        format!("--screenshot={}", shot.display()),
        "--window-size=1280,900".to_owned(),
    ]);
    assert!(
        std::fs::metadata(&shot).is_ok_and(|m| m.len() > 0),
        "no screenshot at {}",
        shot.display()
    );
    dom
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_renders_every_page_and_payload_script_stays_inert_text() {
    let browser = chromium();
    let stack = seeded().await;
    let ui = Ui::start(&stack, 50);
    let profile = tempdir("chromium-profile");

    let list = render(&browser, &profile, &format!("{}/calls", ui.base), "list");
    let ids = rows(&list);
    assert_eq!(ids.len(), SEED_CALLS.len() + 2, "{list}");

    let filtered = render(
        &browser,
        &profile,
        &format!("{}/calls?provider=clawops&missed=1", ui.base),
        "list-filtered",
    );
    assert_eq!(rows(&filtered), [MISSED]);

    let call = render(
        &browser,
        &profile,
        &format!("{}/calls/retell/{RETELL_CALL}", ui.base),
        "call",
    );
    assert!(call.contains("Thanks for calling Mission Dental"), "{call}");
    assert!(call.contains("Dana moved her Thursday cleaning"), "{call}");
    assert_eq!(call.matches("class=\"turn agent\"").count(), 3);
    assert_eq!(call.matches("class=\"turn user\"").count(), 2);
    let vox = render(
        &browser,
        &profile,
        &format!("{}/calls/vox/{VOX_CALL}", ui.base),
        "call-vox",
    );
    assert!(vox.contains("안녕하세요. 무엇을 도와드릴까요?"), "{vox}");
    assert_eq!(vox.matches("class=\"turn agent\"").count(), 1);
    assert_eq!(vox.matches("class=\"turn user\"").count(), 1);
    let link = event_links(&vox).into_iter().next().unwrap();
    let raw = render(
        &browser,
        &profile,
        &format!("{}{link}", ui.base),
        "raw-event",
    );
    assert!(raw.contains("<pre class=\"raw\">"), "{raw}");
    assert!(raw.contains(VOX_CALL));

    // The browser parsed the hostile payload into text: no script or img element exists, and
    // the text is there as written.
    let hostile = render(
        &browser,
        &profile,
        &format!("{}/calls/vox/{HOSTILE_CALL}", ui.base),
        "call-hostile",
    );
    assert_inert(&hostile);
    assert!(
        hostile.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{hostile}"
    );
    assert!(
        hostile.contains("\"&gt;&lt;img src=x onerror=alert(2)&gt;"),
        "{hostile}"
    );
    let _ = std::fs::remove_dir_all(&profile);
}

fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("callhook-ui-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
