//! `api_streams:`: where delivery streams created through the API may deliver.
//!
//! A stream defined in the config file goes wherever the operator wrote. A stream created (or
//! changed) by an API client would otherwise make the server connect wherever the client asks:
//! to a database or an admin port on the server's own network (server-side request forgery),
//! with the credentials of an object store it was never meant to use. So API streams may use
//! only the object stores and reach only the hosts listed here:
//!
//! ```yaml
//! api_streams:
//!   object_stores: [default, minio]        # default: [default]
//!   hosts:                                 # default: none
//!     - hooks.example.com                  # any port
//!     - "*.search.example.com:443"         # any subdomain, port 443 only
//!     - 10.0.0.5:5432
//!     - "[fd00::5]:9200"
//! ```
//!
//! Hosts are matched as written in the stream (after URL normalisation: lowercase, IPv4 in
//! dotted form), not by the addresses they resolve to.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// What API streams may use (`api_streams:`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiStreamsConfig {
    /// Object stores (names under `object_stores`) a stream created through the API may name
    /// in `hydrant.object_store`. Default: `[default]`.
    #[serde(default = "default_object_stores")]
    pub object_stores: Vec<String>,
    /// Hosts a stream created through the API may deliver to: the host of an HTTP endpoint
    /// `Url`, a search `ClusterEndpoint` or a warehouse `ClusterJDBCURL`. Each entry is a host
    /// name or IP address, optionally with `:port` (any port without): `hooks.example.com`,
    /// `*.example.com` (any subdomain), `10.0.0.5:5432`, `[fd00::5]:9200`, or `*` (any host:
    /// only when every API client is trusted). Default: none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
}

fn default_object_stores() -> Vec<String> {
    vec![super::defaults::OBJECT_STORE_NAME.to_owned()]
}

impl Default for ApiStreamsConfig {
    fn default() -> Self {
        Self { object_stores: default_object_stores(), hosts: Vec::new() }
    }
}

impl ApiStreamsConfig {
    /// Whether API streams may use the object store `name`.
    pub fn allows_store(&self, name: &str) -> bool {
        self.object_stores.iter().any(|s| s == name)
    }

    /// Whether API streams may connect to `host` (a name or an IP address, without brackets)
    /// on `port`. Entries that do not parse allow nothing (validation reports them).
    pub fn allows_host(&self, host: &str, port: u16) -> bool {
        self.hosts.iter().filter_map(|h| HostPattern::parse(h).ok()).any(|p| p.matches(host, port))
    }
}

/// One entry of `api_streams.hosts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    host: HostMatch,
    /// `None`: any port.
    port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostMatch {
    /// `*`.
    Any,
    /// `*.example.com`: stored as `.example.com`.
    Subdomains(String),
    /// A host name, lowercase, without a trailing dot.
    Name(String),
    Ip(IpAddr),
}

impl HostPattern {
    /// Parses `host`, `host:port`, `*.domain[:port]`, `[v6]`, `[v6]:port` or `*`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let example = "write a host name or address with an optional port, e.g. \
                       hooks.example.com, *.example.com, 10.0.0.5:5432 or [fd00::5]:9200";
        let t = text.trim();
        if t.is_empty() {
            return Err(format!("is empty; {example}"));
        }
        if t.contains("://") || t.contains('/') {
            return Err(format!("{text:?} is a URL; give only its host (and port): {example}"));
        }
        let (host, port) = if let Some(rest) = t.strip_prefix('[') {
            let (v6, after) =
                rest.split_once(']').ok_or_else(|| format!("{text:?}: unclosed [; {example}"))?;
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or_else(|| format!("{text:?}: {example}"))?),
            };
            let ip: std::net::Ipv6Addr =
                v6.parse().map_err(|_| format!("{text:?}: {v6:?} is not an IPv6 address"))?;
            (HostMatch::Ip(IpAddr::V6(ip)), port)
        } else {
            if t.parse::<std::net::Ipv6Addr>().is_ok() {
                return Err(format!("{text:?}: write an IPv6 address in brackets, e.g. [{t}]"));
            }
            let (host, port) = match t.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (t, None),
            };
            (Self::host(host).map_err(|m| format!("{text:?}: {m}; {example}"))?, port)
        };
        let port = match port {
            None => None,
            Some(p) => Some(
                p.parse::<u16>()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| format!("{text:?}: port {p:?} is not a number in 1..=65535"))?,
            ),
        };
        Ok(Self { host, port })
    }

    fn host(text: &str) -> Result<HostMatch, String> {
        let name = text.trim_end_matches('.').to_ascii_lowercase();
        if name == "*" {
            return Ok(HostMatch::Any);
        }
        if let Ok(ip) = name.parse::<IpAddr>() {
            return Ok(HostMatch::Ip(ip));
        }
        let (wild, domain) = match name.strip_prefix("*.") {
            Some(domain) => (true, domain),
            None => (false, name.as_str()),
        };
        let valid = !domain.is_empty()
            && domain.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            });
        if !valid {
            return Err("not a host name (a `*` may only stand for a whole first label, as in \
                        *.example.com)"
                .into());
        }
        Ok(if wild { HostMatch::Subdomains(format!(".{domain}")) } else { HostMatch::Name(name) })
    }

    /// Whether `host` (a name or an IP address without brackets) on `port` is allowed.
    pub fn matches(&self, host: &str, port: u16) -> bool {
        if self.port.is_some_and(|p| p != port) {
            return false;
        }
        let name = host.trim_end_matches('.').to_ascii_lowercase();
        let ip = name.parse::<IpAddr>().ok();
        match &self.host {
            HostMatch::Any => true,
            HostMatch::Ip(allowed) => ip.is_some_and(|ip| canonical(ip) == canonical(*allowed)),
            HostMatch::Name(allowed) => ip.is_none() && name == *allowed,
            HostMatch::Subdomains(suffix) => {
                ip.is_none() && name.len() > suffix.len() && name.ends_with(suffix.as_str())
            }
        }
    }
}

/// An IPv4-mapped IPv6 address (`::ffff:10.0.0.5`) is the IPv4 address it maps.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allows(patterns: &[&str], host: &str, port: u16) -> bool {
        let config = ApiStreamsConfig {
            object_stores: Vec::new(),
            hosts: patterns.iter().map(|p| p.to_string()).collect(),
        };
        config.allows_host(host, port)
    }

    #[test]
    fn no_host_is_allowed_by_default() {
        let config = ApiStreamsConfig::default();
        assert!(!config.allows_host("127.0.0.1", 80));
        assert!(!config.allows_host("example.com", 443));
        assert_eq!(config.object_stores, ["default"]);
        assert!(config.allows_store("default") && !config.allows_store("minio"));
    }

    #[test]
    fn names_match_exactly_and_case_insensitively_on_any_port_unless_one_is_given() {
        assert!(allows(&["hooks.example.com"], "hooks.example.com", 443));
        assert!(allows(&["Hooks.Example.com."], "HOOKS.example.COM", 8080));
        assert!(!allows(&["hooks.example.com"], "evil-hooks.example.com", 443));
        assert!(!allows(&["hooks.example.com"], "hooks.example.com.evil.net", 443));
        assert!(allows(&["hooks.example.com:443"], "hooks.example.com", 443));
        assert!(!allows(&["hooks.example.com:443"], "hooks.example.com", 80));
    }

    #[test]
    fn a_wildcard_matches_subdomains_only() {
        assert!(allows(&["*.example.com"], "a.example.com", 1));
        assert!(allows(&["*.example.com"], "a.b.example.com", 1));
        assert!(!allows(&["*.example.com"], "example.com", 1));
        assert!(!allows(&["*.example.com"], "aexample.com", 1));
        assert!(!allows(&["*.example.com:9200"], "a.example.com", 9300));
        assert!(allows(&["*"], "anything.at.all", 5));
        assert!(allows(&["*"], "10.1.2.3", 5));
    }

    #[test]
    fn addresses_match_as_addresses() {
        assert!(allows(&["10.0.0.5"], "10.0.0.5", 5432));
        assert!(allows(&["10.0.0.5:5432"], "10.0.0.5", 5432));
        assert!(!allows(&["10.0.0.5:5432"], "10.0.0.6", 5432));
        assert!(allows(&["[::1]:9200"], "::1", 9200));
        assert!(allows(&["[0:0::1]"], "::1", 1));
        assert!(allows(&["10.0.0.5"], "::ffff:10.0.0.5", 1));
        // A wildcard for names never lets an address through.
        assert!(!allows(&["*.0.0.5"], "10.0.0.5", 1));
    }

    #[test]
    fn bad_patterns_are_refused_with_the_fix() {
        for (text, needle) in [
            ("", "is empty"),
            ("https://hooks.example.com", "is a URL"),
            ("hooks.example.com/path", "is a URL"),
            ("a.*.example.com", "not a host name"),
            ("*example.com", "not a host name"),
            ("host:0", "not a number"),
            ("host:99999", "not a number"),
            ("host:", "not a number"),
            ("[::1", "unclosed"),
            ("[nope]", "not an IPv6 address"),
            ("::1", "in brackets"),
            ("a..b", "not a host name"),
        ] {
            let e = HostPattern::parse(text).unwrap_err();
            assert!(e.contains(needle), "{text:?}: {e}");
        }
    }
}
