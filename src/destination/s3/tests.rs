//! The store's key rules as delivery sees them ([`StoreKeys`]): what the assembler refuses
//! to name, sending the records to `partitioning-failed` instead of blocking the shard.

use std::sync::Arc;

use hydrant_destinations::s3::KeyRules;

use crate::delivery::assembler::StoreKeys;

#[test]
fn the_store_keys_of_a_bucket_are_its_key_rules() {
    let s3: Arc<dyn StoreKeys> = Arc::new(KeyRules::S3);
    let local: Arc<dyn StoreKeys> = Arc::new(KeyRules::LOCAL);
    // 520 two-byte characters: past S3's 1024 bytes.
    let long = format!("p/{}/x", "é".repeat(520));
    assert!(s3.check(&long).unwrap_err().contains("at most 1024"));
    // A 300-byte segment: fine for S3, too long for a file name in a local directory.
    let segment = format!("p/{}/x", "s".repeat(300));
    assert_eq!(s3.check(&segment), Ok(()));
    assert!(local.check(&segment).unwrap_err().contains("at most 255"));
    assert!(s3.check("p/a//b").is_err());
}
