//! A provider secret rotated while webhooks keep coming, through the real ingest handler and
//! DynamoDB Local: the secret is held in memory (the stand-in for Secrets Manager; the deploy
//! rehearsal rotates a real one in the emulator), read by ingest's `LiveConfig` as in Lambda.
//!
//! The procedure is the README's: add the next secret beside the old one, wait the re-read
//! interval, have the sender sign with the new one, remove the old one. No webhook signed with
//! either is refused while both are in the secret; after the removal, the old one is refused
//! within one refresh period.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use callhook::config::Config;
use callhook::handlers::ingest;
use callhook::secrets::{LiveConfig, SecretSource};
use callhook_e2e::{Stack, api_gateway_event, fixture, sign};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const REFRESH: Duration = Duration::from_millis(600);
const MIN_REFETCH: Duration = Duration::from_millis(300);

/// Sends one ClawOps webhook signed with `secret` through `live`; its status.
async fn send(live: &Arc<LiveConfig>, stack: &Stack, secret: &str) -> u16 {
    let signer =
        Config::from_vars([("CALLHOOK_CLAWOPS_SECRETS".to_owned(), secret.to_owned())]).unwrap();
    let body = fixture("clawops", "call_initiated");
    let (headers, _) = sign(&signer, "clawops", &body);
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let event = api_gateway_event("POST", "clawops", &headers, None, &body, false);
    let request = lambda_http::request::from_str(&event.to_string()).unwrap();
    ingest::handle_live(live, &stack.store, request)
        .await
        .status()
        .as_u16()
}

/// `senders` concurrent senders, each signing with its secret of `secrets` in turn, for `period`:
/// every status they got, with the secret it was signed with.
async fn traffic(
    live: &Arc<LiveConfig>,
    stack: &Arc<Stack>,
    secrets: &[&'static str],
    period: Duration,
) -> Vec<(&'static str, u16)> {
    let until = Instant::now() + period;
    let mut senders = Vec::new();
    for sender in 0..6 {
        let (live, stack, secrets) = (Arc::clone(live), Arc::clone(stack), secrets.to_vec());
        senders.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut turn = sender;
            while Instant::now() < until {
                let secret = secrets[turn % secrets.len()];
                seen.push((secret, send(&live, &stack, secret).await));
                turn += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            seen
        }));
    }
    let mut all = Vec::new();
    for sender in senders {
        all.extend(sender.await.unwrap());
    }
    all
}

fn refused(statuses: &[(&str, u16)]) -> Vec<(String, u16)> {
    statuses
        .iter()
        .filter(|(_, status)| *status != 200)
        .map(|(secret, status)| ((*secret).to_owned(), *status))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_rotated_under_traffic_refuses_no_webhook_signed_with_either() {
    let stack = Arc::new(Stack::new().await);
    let base: Vec<(String, String)> = stack
        .vars
        .iter()
        .filter(|(k, _)| !k.starts_with("CALLHOOK_CLAWOPS_"))
        .cloned()
        .collect();
    let secret = Arc::new(Mutex::new(
        r#"{"CALLHOOK_CLAWOPS_SECRETS": ["old"]}"#.to_owned(),
    ));
    let live = Arc::new(
        LiveConfig::load(base, SecretSource::Memory(Arc::clone(&secret)))
            .await
            .unwrap()
            .with_intervals(REFRESH, MIN_REFETCH),
    );

    let before = traffic(&live, &stack, &["old"], Duration::from_millis(400)).await;
    assert!(!before.is_empty() && refused(&before).is_empty());
    assert_eq!(send(&live, &stack, "new").await, 401, "not yet added");

    // Step 1: the next secret beside the old one; step 2: wait the re-read interval.
    *secret.lock().unwrap() = r#"{"CALLHOOK_CLAWOPS_SECRETS": ["old", "new"]}"#.into();
    tokio::time::sleep(MIN_REFETCH).await;
    // Step 3: the sender switches, while deliveries signed with the old one still arrive.
    let overlap = traffic(&live, &stack, &["old", "new"], REFRESH * 2).await;
    assert!(overlap.iter().any(|(s, _)| *s == "new"));
    assert_eq!(refused(&overlap), [], "refused during the overlap");

    // Step 4: the old one removed. Webhooks signed with the new one are never refused; the old
    // one is refused once a refresh period has passed.
    *secret.lock().unwrap() = r#"{"CALLHOOK_CLAWOPS_SECRETS": "new"}"#.into();
    let after = traffic(&live, &stack, &["new"], REFRESH * 2).await;
    assert_eq!(refused(&after), [], "refused after the removal");
    assert_eq!(send(&live, &stack, "old").await, 401, "the removed secret");
    assert_eq!(send(&live, &stack, "new").await, 200);

    // Every delivery answered 2xx was stored (the same webhook each time: one event).
    assert_eq!(stack.event_items().await.len(), 1);
}
