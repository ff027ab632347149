//! What state a delivery stream is in, in words (never in colour alone), and how much trouble
//! that is: the overview puts the stream in the worst trouble on top.

use serde::Serialize;

use crate::registry::DeliveryStream;

/// A stream's state as the console names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    /// Takes records and delivers them.
    Active,
    /// Delivers, but records went to the error output.
    ActiveWithErrors,
    /// Being deleted (or removed from the config file): takes no more records.
    Deleting,
    /// The destination keeps failing: records wait in the log.
    DeliveryFailing,
    /// A delivery worker stopped on an error and is being restarted.
    WorkerDown,
    /// A shard's log refuses writes (producers get errors).
    LogRefusing,
}

impl Status {
    /// Higher is worse; the overview sorts on it.
    pub fn rank(self) -> u8 {
        match self {
            Status::Active => 0,
            Status::ActiveWithErrors => 1,
            Status::Deleting => 2,
            Status::DeliveryFailing => 3,
            Status::WorkerDown => 4,
            Status::LogRefusing => 5,
        }
    }
}

/// A delivery stream's health now: its status, the longest a shard has not moved, and the
/// last error (one line).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Health {
    pub status: Status,
    pub blocked_seconds: f64,
    pub last_error: Option<String>,
}

/// `stream`'s health; `error_records`: records it wrote to the error output so far.
pub fn health(stream: &DeliveryStream, error_records: f64) -> Health {
    let log = stream.log_problems();
    let delivery = stream.delivery_problems();
    let blocked_seconds =
        delivery.iter().map(|(_, _, p)| p.blocked_for.as_secs_f64()).fold(0.0, f64::max);
    let down = delivery.iter().any(|(_, _, p)| p.detail.starts_with("worker down"));
    let status = if let Some(problem) = log.first() {
        return Health {
            status: Status::LogRefusing,
            blocked_seconds,
            last_error: Some(format!("shard {}: {}", problem.shard, problem.reason)),
        };
    } else if stream.is_deleting() {
        Status::Deleting
    } else if down {
        Status::WorkerDown
    } else if !delivery.is_empty() {
        Status::DeliveryFailing
    } else if error_records > 0.0 {
        Status::ActiveWithErrors
    } else {
        Status::Active
    };
    let last_error = delivery
        .iter()
        .max_by(|a, b| a.2.blocked_for.cmp(&b.2.blocked_for))
        .map(|(consumer, shard, p)| format!("{consumer} shard {shard}: {}", p.detail));
    Health { status, blocked_seconds, last_error }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worse_states_rank_higher() {
        let order = [
            Status::Active,
            Status::ActiveWithErrors,
            Status::Deleting,
            Status::DeliveryFailing,
            Status::WorkerDown,
            Status::LogRefusing,
        ];
        assert!(order.windows(2).all(|w| w[0].rank() < w[1].rank()));
        assert_eq!(
            serde_json::to_string(&Status::DeliveryFailing).unwrap(),
            "\"DELIVERY_FAILING\""
        );
    }
}
