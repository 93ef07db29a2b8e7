//! Which calls a command works on: `--provider`, `--agent`, `--number`, `--since`, `--until`,
//! `--status`, `--missed`. Calls are found through the calls table's indexes (by agent, by number,
//! else by time per provider); a scan is never needed.

use crate::Error;
use aws_sdk_dynamodb::types::AttributeValue;
use callhook::provider::REGISTRY;
use callhook::store::queries::{agent_key, number_key_of, time_key};
use callhook::store::{CallSummary, ListIndex, Store};
use std::collections::{HashMap, HashSet, VecDeque};

#[derive(Debug, Clone, Default, clap::Args)]
pub struct FilterArgs {
    /// Only this provider's calls.
    #[arg(long, value_parser = provider_names())]
    pub provider: Option<String>,
    /// Only calls handled by this agent id.
    #[arg(long, value_name = "ID")]
    pub agent: Option<String>,
    /// Only calls from or to this number, as the provider sent it (for example +14155550123).
    #[arg(long, value_name = "NUMBER")]
    pub number: Option<String>,
    /// Only calls started at or after this time: RFC 3339, a date (UTC), unix milliseconds, or an
    /// age such as 30m, 12h, 7d or 1h 30m.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub since: Option<i64>,
    /// Only calls started at or before this time (same forms as --since).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub until: Option<i64>,
    /// Only calls in this state.
    #[arg(long, value_parser = ["queued", "initiated", "ringing", "in_progress", "ended"])]
    pub status: Option<String>,
    /// Only inbound calls that ended unanswered.
    #[arg(long)]
    pub missed: bool,
}

pub fn provider_names() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(REGISTRY.iter().map(|p| p.name()))
}

impl FilterArgs {
    fn providers(&self) -> impl Iterator<Item = &'static str> + '_ {
        REGISTRY
            .iter()
            .map(|p| p.name())
            .filter(|name| self.provider.as_deref().is_none_or(|p| p == *name))
    }

    /// The index queries that together hold every matching call: by agent, by number, or by
    /// time — one query per provider and day of the window that has calls.
    async fn queries(&self, store: &Store) -> Result<Vec<(ListIndex, String)>, Error> {
        if let Some(agent) = &self.agent {
            return Ok(self
                .providers()
                .filter_map(|provider| agent_key(provider, agent))
                .map(|key| (ListIndex::Agent, key))
                .collect());
        }
        if let Some(number) = &self.number {
            let Some(key) = number_key_of(number, store.number_key()) else {
                return Ok(Vec::new());
            };
            return Ok(vec![(ListIndex::From, key.clone()), (ListIndex::To, key)]);
        }
        let (since, until) = self.range();
        let mut queries = Vec::new();
        for provider in self.providers() {
            for day in store.days(provider, since, until).await? {
                queries.push((ListIndex::Time, time_key(provider, &day)));
            }
        }
        Ok(queries)
    }

    fn range(&self) -> (i64, i64) {
        (self.since.unwrap_or(0), self.until.unwrap_or(i64::MAX))
    }

    /// Whether a call the index returned passes the filters the index did not apply.
    pub fn keeps(&self, item: &CallSummary) -> bool {
        let record = &item.record;
        self.provider
            .as_deref()
            .is_none_or(|p| record.provider == p)
            && self
                .agent
                .as_deref()
                .is_none_or(|a| record.agent.as_ref().and_then(|g| g.id.as_deref()) == Some(a))
            && self.number.as_deref().is_none_or(|n| {
                record.from_number.as_deref() == Some(n) || record.to_number.as_deref() == Some(n)
            })
            && self.status.as_deref().is_none_or(|s| {
                serde_json::to_value(record.status).is_ok_and(|v| v.as_str() == Some(s))
            })
            && (!self.missed || record.missed)
    }

    /// Every matching call, one at a time.
    pub async fn select<'a>(&'a self, store: &'a Store) -> Result<Selection<'a>, Error> {
        Ok(Selection {
            filter: self,
            store,
            queries: self.queries(store).await?.into(),
            start: None,
            page: VecDeque::new(),
            seen: HashSet::new(),
        })
    }

    /// The newest `limit` matching calls, newest first.
    pub async fn newest(&self, store: &Store, limit: usize) -> Result<Vec<CallSummary>, Error> {
        // Each index query is newest first, so the newest `limit` overall are among the first
        // `limit` of each. Days come newest first: once `limit` calls are found, older days of
        // the same provider cannot hold newer ones.
        let mut found: Vec<CallSummary> = Vec::new();
        let mut full: HashSet<&'static str> = HashSet::new();
        for query in self.queries(store).await? {
            let provider = REGISTRY
                .iter()
                .map(|p| p.name())
                .find(|p| query.1.starts_with(&format!("{p}#")))
                .unwrap_or_default();
            if query.0 == ListIndex::Time && full.contains(provider) {
                continue;
            }
            let mut selection = Selection {
                filter: self,
                store,
                queries: VecDeque::from([query.clone()]),
                start: None,
                page: VecDeque::new(),
                seen: HashSet::new(),
            };
            let mut taken = 0;
            while taken < limit {
                let Some(item) = selection.next().await? else {
                    break;
                };
                if !found.iter().any(|f| f.pk == item.pk) {
                    found.push(item);
                    taken += 1;
                }
            }
            if query.0 == ListIndex::Time
                && found
                    .iter()
                    .filter(|f| f.record.provider == provider)
                    .count()
                    >= limit
            {
                full.insert(provider);
            }
        }
        found.sort_by(|a, b| b.sort_at.cmp(&a.sort_at).then_with(|| a.pk.cmp(&b.pk)));
        found.truncate(limit);
        Ok(found)
    }
}

/// The calls a filter selects, read page by page from the indexes as they are asked for.
pub struct Selection<'a> {
    filter: &'a FilterArgs,
    store: &'a Store,
    queries: VecDeque<(ListIndex, String)>,
    /// Where the current query's next page starts.
    start: Option<HashMap<String, AttributeValue>>,
    page: VecDeque<CallSummary>,
    /// Calls already handed out: a call from and to the same number is in two queries.
    seen: HashSet<String>,
}

impl Selection<'_> {
    pub async fn next(&mut self) -> Result<Option<CallSummary>, Error> {
        let range = self.filter.range();
        loop {
            while let Some(item) = self.page.pop_front() {
                if self.filter.keeps(&item) && self.seen.insert(item.pk.clone()) {
                    return Ok(Some(item));
                }
            }
            let Some((index, key)) = self.queries.front().cloned() else {
                return Ok(None);
            };
            let (items, next) = self
                .store
                .calls_page(index, &key, range, self.start.take())
                .await?;
            self.page.extend(items);
            match next {
                Some(start) => self.start = Some(start),
                None => {
                    self.queries.pop_front();
                }
            }
        }
    }
}

/// A point in time from the command line, as unix ms: unix milliseconds, an age before now
/// (`humantime`'s durations: `30m`, `24h`, `7d`, `1h 30m`, `2weeks`), a date (UTC) or RFC 3339.
pub fn parse_time(text: &str) -> Result<i64, String> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse()
            .map_err(|_| "the number is too large".to_owned());
    }
    if let Ok(age) = humantime::parse_duration(text) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let at = now.saturating_sub(age).as_millis();
        return i64::try_from(at).map_err(|_| "the age is too large".to_owned());
    }
    let iso = if text.len() == 10 {
        format!("{text}T00:00:00Z")
    } else {
        text.to_owned()
    };
    callhook::timefmt::iso8601_to_ms(&iso).ok_or_else(|| {
        format!(
            "`{text}` is not a time: use RFC 3339 (2026-11-21T09:30:00Z), a date (2026-11-21), \
             unix milliseconds, or an age (30m, 12h, 7d, 1h 30m)"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_in_every_documented_form() {
        assert_eq!(parse_time("1700000000123"), Ok(1_700_000_000_123));
        assert_eq!(parse_time("2023-11-14T22:13:20Z"), Ok(1_700_000_000_000));
        assert_eq!(parse_time("2023-11-14"), Ok(1_699_920_000_000));
        let age = parse_time("2h").unwrap();
        let expected = parse_time("0s").unwrap() - 7_200_000;
        assert!((age - expected).abs() < 1_000);
        let combined = parse_time("1h 30m").unwrap();
        assert!((combined - (parse_time("0s").unwrap() - 5_400_000)).abs() < 1_000);
        let week = parse_time("7d").unwrap();
        assert!((week - (parse_time("0s").unwrap() - 604_800_000)).abs() < 1_000);
        assert!(parse_time("yesterday").is_err());
        assert!(parse_time("5 parsecs").is_err());
        assert!(parse_time("").is_err());
    }
}
