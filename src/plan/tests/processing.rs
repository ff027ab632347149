//! The transform's sandbox.

use super::*;

#[test]
fn a_transform_sandbox_out_of_range_is_refused_with_its_path() {
    assert_issue(
        &stream("", "hydrant: { transform: { memory_mib: 0 } }"),
        "delivery_streams[0].hydrant.transform.memory_mib",
        &["must be 1 to 4096, got 0"],
    );
    assert_issue(
        &stream("", "hydrant: { transform: { memory_mib: 8192 } }"),
        "delivery_streams[0].hydrant.transform.memory_mib",
        &["got 8192"],
    );
    assert_issue(
        &stream("", "hydrant: { transform: { fuel: 0 } }"),
        "delivery_streams[0].hydrant.transform.fuel",
        &["at least 1"],
    );
}
