//! `GET /console/api/cluster`: in cluster mode (`core.type: jetstream`), the nodes and who
//! holds every shard's lease, as this node's watch of the cluster's lease bucket sees them
//! (`LogStore::cluster_nodes`, `StreamLog::lease_holders`), plus the leases this node holds
//! and the takeovers it made, from its own metrics (`hydrant_lease_owner`,
//! `hydrant_lease_takeovers_total`). The NATS servers are listed with their passwords masked.

use serde::Serialize;

use super::prom;
use super::Console;

/// The cluster as this node sees it.
#[derive(Debug, Serialize)]
pub struct ClusterView {
    /// `embedded` (one node, no cluster) or `jetstream`.
    pub core: &'static str,
    pub node: Option<String>,
    pub namespace: Option<String>,
    pub replicas: Option<u8>,
    pub lease_seconds: Option<u64>,
    pub servers: Vec<String>,
    /// Every node of the cluster, with how many leases it holds.
    pub nodes: Vec<NodeView>,
    /// Every delivery stream's shard leases and who holds them.
    pub all_leases: Vec<LeaseView>,
    pub leases: Vec<LeaseView>,
    pub takeovers: Vec<TakeoverView>,
}

/// A node of the cluster.
#[derive(Debug, PartialEq, Serialize)]
pub struct NodeView {
    pub id: String,
    /// Its heartbeat moved within the lease duration.
    pub alive: bool,
    pub silent_seconds: f64,
    pub started_ms: i64,
    pub takes_leases: bool,
    pub leases: usize,
}

/// A lease this node holds.
#[derive(Debug, PartialEq, Serialize)]
pub struct LeaseView {
    pub stream: String,
    pub consumer: String,
    pub shard: String,
    pub node: String,
}

/// Leases this node took, by how (`expired`, `released`, `free`...).
#[derive(Debug, PartialEq, Serialize)]
pub struct TakeoverView {
    pub stream: String,
    pub consumer: String,
    pub shard: String,
    pub how: String,
    pub count: u64,
}

pub fn cluster(console: &Console) -> ClusterView {
    let config = console.app.control.config();
    let core = &config.core;
    if core.kind != crate::config::CoreType::Jetstream {
        return ClusterView {
            core: "embedded",
            node: None,
            namespace: None,
            replicas: None,
            lease_seconds: None,
            servers: Vec::new(),
            nodes: Vec::new(),
            all_leases: Vec::new(),
            leases: Vec::new(),
            takeovers: Vec::new(),
        };
    }
    let (leases, takeovers) = from_metrics(&console.app.metrics.render());
    let mut all_leases = Vec::new();
    for stream in console.app.registry.all() {
        for holder in stream.log.lease_holders() {
            all_leases.push(LeaseView {
                stream: stream.name.clone(),
                consumer: holder.consumer,
                shard: holder.shard.0.to_string(),
                node: holder.owner.unwrap_or_default(),
            });
        }
    }
    let lease_ms = core.lease_seconds().saturating_mul(1000);
    let nodes = (console.app.control.log_store().cluster_nodes().into_iter())
        .map(|n| NodeView {
            leases: all_leases.iter().filter(|l| l.node == n.id).count(),
            alive: n.silent_ms < lease_ms,
            silent_seconds: n.silent_ms as f64 / 1000.0,
            started_ms: n.started_ms,
            takes_leases: n.takes_leases,
            id: n.id,
        })
        .collect();
    ClusterView {
        core: "jetstream",
        node: Some(crate::config::node_id(&config)),
        namespace: Some(core.namespace().to_string()),
        replicas: Some(core.replicas()),
        lease_seconds: Some(core.lease_seconds()),
        servers: (core.servers.iter())
            .map(|s| crate::config::redact_url_credentials(s).into_owned())
            .collect(),
        nodes,
        all_leases,
        leases,
        takeovers,
    }
}

fn from_metrics(text: &str) -> (Vec<LeaseView>, Vec<TakeoverView>) {
    let wanted = |n: &str| n == "hydrant_lease_owner" || n == "hydrant_lease_takeovers_total";
    let (mut leases, mut takeovers) = (Vec::new(), Vec::new());
    for s in prom::samples(text, wanted) {
        let label = |name: &str| s.label(name).unwrap_or_default().to_string();
        if s.name == "hydrant_lease_owner" {
            if s.value >= 1.0 {
                leases.push(LeaseView {
                    stream: label("stream"),
                    consumer: label("consumer"),
                    shard: label("shard"),
                    node: label("node"),
                });
            }
        } else if s.value > 0.0 {
            takeovers.push(TakeoverView {
                stream: label("stream"),
                consumer: label("consumer"),
                shard: label("shard"),
                how: label("how"),
                count: s.value as u64,
            });
        }
    }
    (leases, takeovers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_leases_and_takeovers_are_read_from_the_metrics() {
        let text = "\
hydrant_lease_owner{stream=\"s\",consumer=\"delivery\",shard=\"0\",node=\"a\"} 1
hydrant_lease_owner{stream=\"s\",consumer=\"delivery\",shard=\"1\",node=\"a\"} 0
hydrant_lease_takeovers_total{stream=\"s\",consumer=\"delivery\",shard=\"1\",how=\"expired\"} 2
";
        let (leases, takeovers) = from_metrics(text);
        assert_eq!(leases.len(), 1);
        assert_eq!(leases[0].shard, "0");
        assert_eq!(takeovers[0].how, "expired");
        assert_eq!(takeovers[0].count, 2);
    }
}
