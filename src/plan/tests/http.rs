//! `http:` and `admin_listen`.

use super::*;
use crate::config::HttpConfig;

#[test]
fn without_the_block_the_internet_safe_defaults_apply_and_admin_routes_stay_on_listen() {
    let config = parse_ok("");
    assert_eq!(config.http, HttpConfig::default());
    assert_eq!(config.http.header_timeout_seconds, 10);
    assert_eq!(config.http.min_body_bytes_per_second, 32 * 1024);
    assert_eq!(config.http.max_inflight_bytes_per_client, 32 << 20);
    assert_eq!(config.admin_listen, None);
}

#[test]
fn sizes_take_units_and_every_field_can_be_set() {
    let config = parse_ok(
        "admin_listen: 127.0.0.1:4574\nhttp:\n  header_timeout_seconds: 5\n  \
         idle_timeout_seconds: 30\n  body_timeout_seconds: 20\n  \
         min_body_bytes_per_second: 8KiB\n  max_connections_per_client: 0\n  \
         max_inflight_bytes_per_client: 64MiB\n",
    );
    let http = &config.http;
    assert_eq!((http.header_timeout_seconds, http.idle_timeout_seconds), (5, 30));
    assert_eq!((http.body_timeout_seconds, http.min_body_bytes_per_second), (20, 8192));
    assert_eq!(
        (http.max_connections_per_client, http.max_inflight_bytes_per_client),
        (0, 64 << 20)
    );
    assert_eq!(config.admin_listen, Some("127.0.0.1:4574".parse().unwrap()));
}

#[test]
fn bad_values_are_named_with_their_field() {
    assert_issue(
        "http: { header_timeout_seconds: 0 }\n",
        "http.header_timeout_seconds",
        &["1..=3600"],
    );
    assert_issue(
        "http: { idle_timeout_seconds: 7200 }\n",
        "http.idle_timeout_seconds",
        &["1..=3600"],
    );
    assert_issue("http: { body_timeout_seconds: 0 }\n", "http.body_timeout_seconds", &["1..=3600"]);
    assert_issue(
        "http: { min_body_bytes_per_second: 100 }\n",
        "http.min_body_bytes_per_second",
        &["1KiB"],
    );
    assert_issue(
        "http: { max_inflight_bytes_per_client: 1MiB }\n",
        "http.max_inflight_bytes_per_client",
        &["at least 8MiB"],
    );
    assert_issue("http: { idle_timeout: 5 }\n", "http.idle_timeout", &["idle_timeout_seconds"]);
    assert_issue(
        "listen: 127.0.0.1:4573\nadmin_listen: 127.0.0.1:4573\n",
        "admin_listen",
        &["port of its own"],
    );
    parse_ok("http: { max_inflight_bytes_per_client: 0 }\n"); // 0 turns the cap off
}
