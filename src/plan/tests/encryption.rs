//! Server-side encryption and the log's encryption at rest.

use super::*;

#[test]
fn server_side_encryption_needs_an_s3_store() {
    let kms = stream(
        "EncryptionConfiguration: { KMSEncryptionConfig: { AWSKMSKeyARN: \"arn:aws:kms:us-east-1:123456789012:key/k\" } }",
        "",
    );
    let found = issues(&kms);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].path, "delivery_streams[0].hydrant.object_store");
    assert!(found[0].message.contains("needs an s3 object store"), "{}", found[0].message);
}

#[test]
fn log_encryption_at_rest_needs_hydrant_keys() {
    let found = issues(&stream(
        "",
        "DeliveryStreamEncryptionConfigurationInput: { KeyType: CUSTOMER_MANAGED_CMK }",
    ));
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].path, "delivery_streams[0].DeliveryStreamEncryptionConfigurationInput");
}
