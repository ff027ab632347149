//! One replay as it is stored and shown: what it re-delivers (a stream's records of a time
//! range), where to (a new prefix, or another stream's destination), and how far it got.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Where a replay delivers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplayTarget {
    /// The stream's own destination, with this `Prefix` instead of its own.
    Prefix(String),
    /// Another stream's destination, through that stream's processing.
    Stream(String),
}

/// What an operator asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayRequest {
    pub stream: String,
    pub from_ms: i64,
    pub to_ms: i64,
    pub target: ReplayTarget,
}

impl ReplayRequest {
    /// The replay's id: the same request always gets the same id (and so the same consumer and
    /// the same objects), which is how running a replay twice writes nothing new.
    pub fn id(&self) -> String {
        let mut sha = Sha256::new();
        sha.update(b"hydrant/replay/v1\0");
        for part in [self.stream.as_bytes(), &self.from_ms.to_be_bytes(), &self.to_ms.to_be_bytes()]
        {
            sha.update((part.len() as u64).to_be_bytes());
            sha.update(part);
        }
        let (kind, value) = match &self.target {
            ReplayTarget::Prefix(p) => ("prefix", p),
            ReplayTarget::Stream(s) => ("stream", s),
        };
        sha.update(kind.as_bytes());
        sha.update((value.len() as u64).to_be_bytes());
        sha.update(value.as_bytes());
        let digest = sha.finalize();
        digest[..8].iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Where a replay is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReplayState {
    Running,
    Done,
    Failed,
}

/// A replay, as `<data_dir>/replays/<id>.json` keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayJob {
    pub id: String,
    pub stream: String,
    pub from_ms: i64,
    pub to_ms: i64,
    pub target: ReplayTarget,
    /// The version object names carry (the delivering definition's when the replay started).
    pub version: u64,
    pub state: ReplayState,
    pub started_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Records and bytes of the range delivered (counted by the run that finished it).
    #[serde(default)]
    pub records: u64,
    #[serde(default)]
    pub bytes: u64,
    /// The shards it read (set when it finished).
    #[serde(default)]
    pub shards: usize,
}

impl ReplayJob {
    /// The consumer the replay reads the stream's log as.
    pub fn consumer(&self) -> String {
        format!("replay-{}", self.id)
    }

    pub fn request(&self) -> ReplayRequest {
        ReplayRequest {
            stream: self.stream.clone(),
            from_ms: self.from_ms,
            to_ms: self.to_ms,
            target: self.target.clone(),
        }
    }
}

/// A replay and its progress, as the API and the console show it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayStatus {
    pub job: ReplayJob,
    pub records: u64,
    pub bytes: u64,
    pub shards_done: usize,
    pub shards_total: usize,
    /// 0 to 1.
    pub progress: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(target: ReplayTarget) -> ReplayRequest {
        ReplayRequest { stream: "clicks".into(), from_ms: 1, to_ms: 2, target }
    }

    #[test]
    fn the_same_request_has_the_same_id_and_any_change_another() {
        let a = request(ReplayTarget::Prefix("replay/".into()));
        assert_eq!(a.id(), a.clone().id());
        assert_eq!(a.id().len(), 16);
        let others = [
            ReplayRequest { to_ms: 3, ..a.clone() },
            ReplayRequest { from_ms: 0, ..a.clone() },
            ReplayRequest { stream: "click".into(), ..a.clone() },
            request(ReplayTarget::Stream("replay/".into())),
            request(ReplayTarget::Prefix("replay".into())),
        ];
        for other in others {
            assert_ne!(a.id(), other.id(), "{other:?}");
        }
    }
}
