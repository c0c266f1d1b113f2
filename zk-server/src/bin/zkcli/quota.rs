//! setquota / listquota / delquota: the znodes zkCli writes under `/zookeeper/quota`
//! (`<path>/zookeeper_limits` and `zookeeper_stats`, in `StatsTrack`'s text form) and
//! the checks it makes first (no quota above or below an existing one).

use std::collections::BTreeMap;

use zk_client::{Acl, Client, CreateMode, Error};

use crate::commands::{visit_subtree, CliError};
use crate::parsing::{Flag, FlagSpec};
use crate::session::Session;

const QUOTA_ROOT: &str = "/zookeeper/quota";
const LIMITS: &str = "zookeeper_limits";
const STATS: &str = "zookeeper_stats";

/// Apache's `StatsTrack`: `count=..,bytes=..` and, when set, the hard limits after an
/// `=` that older parsers ignore (`count=5,bytes=-1=;byteHardLimit=-1;countHardLimit=-1`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatsTrack {
    values: BTreeMap<String, i64>,
}

impl StatsTrack {
    /// Parses the text of a limits or stats node (unknown pairs are kept).
    pub fn parse(text: &str) -> StatsTrack {
        let mut values = BTreeMap::new();
        for pair in text.split([',', ';']).filter(|p| !p.is_empty()) {
            let mut kv = pair.split('=');
            let key = kv.next().unwrap_or_default().to_string();
            let v = kv
                .next()
                .filter(|v| !v.is_empty())
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(-1);
            values.insert(key, v);
        }
        StatsTrack { values }
    }

    fn get(&self, k: &str) -> i64 {
        self.values.get(k).copied().unwrap_or(-1)
    }

    fn set(&mut self, k: &str, v: i64) {
        self.values.insert(k.to_string(), v);
    }
}

impl std::fmt::Display for StatsTrack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "count={},bytes={}", self.get("count"), self.get("bytes"))?;
        let rest: Vec<_> = self
            .values
            .iter()
            .filter(|(k, _)| *k != "count" && *k != "bytes")
            .collect();
        if !rest.is_empty() {
            f.write_str("=")?;
            for (k, v) in rest {
                write!(f, ";{k}={v}")?;
            }
        }
        Ok(())
    }
}

const SETQUOTA: FlagSpec = FlagSpec {
    flags: &[
        Flag {
            name: "n",
            has_arg: true,
            desc: "num soft quota",
        },
        Flag {
            name: "b",
            has_arg: true,
            desc: "bytes soft quota",
        },
        Flag {
            name: "N",
            has_arg: true,
            desc: "num hard quota",
        },
        Flag {
            name: "B",
            has_arg: true,
            desc: "bytes hard quota",
        },
    ],
    group: &["n", "b", "N", "B"],
    group_required: true,
};

const DELQUOTA: FlagSpec = FlagSpec {
    flags: &[
        Flag {
            name: "n",
            has_arg: false,
            desc: "num soft quota",
        },
        Flag {
            name: "b",
            has_arg: false,
            desc: "bytes soft quota",
        },
        Flag {
            name: "N",
            has_arg: false,
            desc: "num hard quota",
        },
        Flag {
            name: "B",
            has_arg: false,
            desc: "bytes hard quota",
        },
    ],
    group: &["n", "b", "N", "B"],
    group_required: false,
};

fn limits_path(path: &str) -> String {
    format!("{QUOTA_ROOT}{path}/{LIMITS}")
}

fn stats_path(path: &str) -> String {
    format!("{QUOTA_ROOT}{path}/{STATS}")
}

/// Java's `String.split("/")`: trailing empty parts dropped.
fn java_split(path: &str) -> Vec<&str> {
    let mut parts: Vec<&str> = path.split('/').collect();
    while parts.last() == Some(&"") {
        parts.pop();
    }
    parts
}

fn wrap(e: &Error, path: &str) -> CliError {
    CliError::wrap(e, path)
}

async fn read_track(c: &Client, path: &str) -> Result<StatsTrack, Error> {
    let (data, _) = c.get_data_opt(path, false).await?;
    Ok(StatsTrack::parse(&String::from_utf8_lossy(
        data.as_deref().unwrap_or_default(),
    )))
}

/// `setquota -n|-b|-N|-B val path`.
pub async fn setquota(s: &mut Session, words: &[String]) -> Result<(), CliError> {
    let p = SETQUOTA.parse(words).map_err(CliError::new)?;
    if p.args.len() < 2 {
        return Err(CliError::new(crate::commands::usage_of("setquota")));
    }
    let path = p.args[1].clone();
    if path.starts_with(QUOTA_ROOT) {
        eprintln!("cannot set a quota under the path: {QUOTA_ROOT}");
        return Ok(());
    }
    let mut quota = StatsTrack::default();
    for k in ["count", "bytes", "countHardLimit", "byteHardLimit"] {
        quota.set(k, -1);
    }
    for (flag, key, min) in [
        ("n", "count", 1),
        ("b", "bytes", 0),
        ("N", "countHardLimit", 1),
        ("B", "byteHardLimit", 0),
    ] {
        let Some(v) = p.value(flag) else { continue };
        let parsed = if min == 1 {
            v.parse::<i32>().map(i64::from).ok()
        } else {
            v.parse::<i64>().ok()
        };
        let Some(n) = parsed else {
            eprintln!("NumberFormatException happens when parsing the option value");
            return Ok(());
        };
        if n < min {
            if min == 1 {
                eprintln!("the num quota must be greater than zero");
            } else {
                eprintln!("the bytes quota must be greater than or equal to zero");
            }
            return Ok(());
        }
        quota.set(key, n);
    }
    crate::parsing::validate_path(&path).map_err(CliError::new)?;
    let c = s.ready(&path).await?;
    create_quota(&c, &path, &quota).await
}

async fn create_quota(c: &Client, path: &str, quota: &StatsTrack) -> Result<(), CliError> {
    if c.exists(path, false)
        .await
        .map_err(|e| wrap(&e, path))?
        .is_none()
    {
        return Err(CliError::new(format!("{path} does not exist.")));
    }
    // No quota on a node below...
    let own = format!("{QUOTA_ROOT}{path}");
    let below: std::rc::Rc<std::cell::RefCell<Option<String>>> = Default::default();
    // A missing quota subtree is fine: nothing below has a quota.
    let _ = visit_subtree(c, &own, false, &mut |node| {
        let c = c.clone();
        let own = own.clone();
        let found = below.clone();
        async move {
            if found.borrow().is_some() || node == own {
                return;
            }
            if let Ok(kids) = c.get_children(&node, false).await {
                if kids.iter().any(|k| k == LIMITS) {
                    *found.borrow_mut() = Some(node[QUOTA_ROOT.len()..].to_string());
                }
            }
        }
    })
    .await;
    let below = below.borrow().clone();
    if let Some(child) = below {
        return Err(CliError::new(format!(
            "{path} has a child {child} which has a quota"
        )));
    }
    // ...nor above.
    let parts = java_split(path);
    let mut q = QUOTA_ROOT.to_string();
    for part in parts.iter().skip(1).take(parts.len().saturating_sub(2)) {
        q.push('/');
        q.push_str(part);
        let kids = match c.get_children(&q, false).await {
            Ok(k) => k,
            Err(Error::NoNode { .. }) => break,
            Err(e) => return Err(wrap(&e, &q)),
        };
        if kids.is_empty() {
            break;
        }
        if q != own && kids.iter().any(|k| k == LIMITS) {
            return Err(CliError::new(format!(
                "{path} has a parent {} which has a quota",
                &q[QUOTA_ROOT.len()..]
            )));
        }
    }
    let open = Acl::open_unsafe();
    let mk = |p: String| {
        let c = c.clone();
        let open = open.clone();
        async move {
            match c
                .create_opt(&p, None, &open, CreateMode::Persistent, None)
                .await
            {
                Ok(_) | Err(Error::NodeExists { .. }) => Ok(()),
                Err(e) => Err(wrap(&e, &p)),
            }
        }
    };
    if c.exists(QUOTA_ROOT, false)
        .await
        .map_err(|e| wrap(&e, QUOTA_ROOT))?
        .is_none()
    {
        mk("/zookeeper".into()).await?;
        mk(QUOTA_ROOT.into()).await?;
    }
    let mut q = QUOTA_ROOT.to_string();
    for part in parts.iter().skip(1) {
        q.push('/');
        q.push_str(part);
        if c.exists(&q, false)
            .await
            .map_err(|e| wrap(&e, &q))?
            .is_none()
        {
            mk(q.clone()).await?;
        }
    }
    let stat_node = format!("{q}/{STATS}");
    let limit_node = format!("{q}/{LIMITS}");
    let exists = c
        .exists(&limit_node, false)
        .await
        .map_err(|e| wrap(&e, &limit_node))?;
    if exists.is_none() {
        let text = quota.to_string();
        c.create_opt(
            &limit_node,
            Some(text.as_bytes()),
            &open,
            CreateMode::Persistent,
            None,
        )
        .await
        .map_err(|e| wrap(&e, &limit_node))?;
        c.create_opt(
            &stat_node,
            Some(b"count=0,bytes=0"),
            &open,
            CreateMode::Persistent,
            None,
        )
        .await
        .map_err(|e| wrap(&e, &stat_node))?;
        let limits = read_track(c, &limit_node)
            .await
            .map_err(|e| wrap(&e, &limit_node))?;
        let stats = read_track(c, &stat_node)
            .await
            .map_err(|e| wrap(&e, &stat_node))?;
        warn_below_usage(&limits, &stats);
    } else {
        let mut limits = read_track(c, &limit_node)
            .await
            .map_err(|e| wrap(&e, &limit_node))?;
        for k in ["count", "bytes", "countHardLimit", "byteHardLimit"] {
            if quota.get(k) > -1 {
                limits.set(k, quota.get(k));
            }
        }
        let stats = read_track(c, &stat_node)
            .await
            .map_err(|e| wrap(&e, &stat_node))?;
        warn_below_usage(&limits, &stats);
        c.set_data(&limit_node, limits.to_string().as_bytes(), None)
            .await
            .map_err(|e| wrap(&e, &limit_node))?;
    }
    Ok(())
}

fn warn_below_usage(q: &StatsTrack, s: &StatsTrack) {
    let below = |limit: i64, used: i64| limit > -1 && limit < used;
    if below(q.get("count"), s.get("count")) || below(q.get("countHardLimit"), s.get("count")) {
        println!(
            "[Warning]: the count quota you create is less than the existing count:{}",
            s.get("count")
        );
    }
    if below(q.get("bytes"), s.get("bytes")) || below(q.get("byteHardLimit"), s.get("bytes")) {
        println!(
            "[Warning]: the bytes quota you create is less than the existing bytes:{}",
            s.get("bytes")
        );
    }
}

/// `listquota path`.
pub async fn listquota(s: &mut Session, words: &[String]) -> Result<(), CliError> {
    let p = crate::parsing::FlagSpec {
        flags: &[],
        group: &[],
        group_required: false,
    }
    .parse(words)
    .map_err(CliError::new)?;
    if p.args.len() < 2 {
        return Err(CliError::new(crate::commands::usage_of("listquota")));
    }
    let path = &p.args[1];
    let limits = limits_path(path);
    eprintln!("absolute path is {limits}");
    crate::parsing::validate_path(&limits).map_err(CliError::new)?;
    let c = s.ready(&limits).await?;
    let result = async {
        let l = read_track(&c, &limits).await?;
        let st = read_track(&c, &stats_path(path)).await?;
        Ok::<_, Error>((l, st))
    }
    .await;
    match result {
        Ok((l, st)) => {
            println!("Output quota for {path} {l}");
            println!("Output stat for {path} {st}");
            Ok(())
        }
        Err(Error::NoNode { .. }) => {
            eprintln!("quota for {path} does not exist.");
            Ok(())
        }
        Err(e) => Err(wrap(&e, &limits)),
    }
}

/// `delquota [-n|-b|-N|-B] path`.
pub async fn delquota(s: &mut Session, words: &[String]) -> Result<(), CliError> {
    let p = DELQUOTA.parse(words).map_err(CliError::new)?;
    if p.args.len() < 2 {
        return Err(CliError::new(crate::commands::usage_of("delquota")));
    }
    let path = p.args[1].clone();
    let limits = limits_path(&path);
    crate::parsing::validate_path(&limits).map_err(CliError::new)?;
    let c = s.ready(&limits).await?;
    match del_quota(&c, &path, &p).await {
        Ok(()) => Ok(()),
        Err(Error::NoNode { .. }) => {
            eprintln!("quota for {path} does not exist.");
            Ok(())
        }
        Err(e) => Err(wrap(&e, &limits)),
    }
}

async fn del_quota(c: &Client, path: &str, p: &crate::parsing::Parsed) -> Result<(), Error> {
    let parent = format!("{QUOTA_ROOT}{path}");
    let limits = limits_path(path);
    if c.exists(&limits, false).await?.is_none() {
        println!("Quota does not exist for {path}");
        return Ok(());
    }
    let mut track = read_track(c, &limits).await?;
    let flags = [
        ("n", "count"),
        ("b", "bytes"),
        ("N", "countHardLimit"),
        ("B", "byteHardLimit"),
    ];
    if !flags.iter().any(|(f, _)| p.has(f)) {
        for kid in c.get_children(&parent, false).await? {
            c.delete(&format!("{parent}/{kid}"), None).await?;
        }
        // Remove the now empty quota nodes up to the first one with other children.
        let mut node = parent;
        while node != QUOTA_ROOT {
            if !c.get_children(&node, false).await?.is_empty() {
                break;
            }
            c.delete(&node, None).await?;
            node.truncate(node.rfind('/').unwrap_or(0));
        }
    } else {
        for (f, key) in flags {
            if p.has(f) {
                track.set(key, -1);
            }
        }
        c.set_data(&limits, track.to_string().as_bytes(), None)
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_track_text_as_apache() {
        let mut q = StatsTrack::default();
        for k in ["count", "bytes", "countHardLimit", "byteHardLimit"] {
            q.set(k, -1);
        }
        q.set("count", 5);
        let text = q.to_string();
        assert_eq!(text, "count=5,bytes=-1=;byteHardLimit=-1;countHardLimit=-1");
        assert_eq!(StatsTrack::parse(&text), q);
        assert_eq!(
            StatsTrack::parse("count=3,bytes=11").to_string(),
            "count=3,bytes=11"
        );
    }
}
