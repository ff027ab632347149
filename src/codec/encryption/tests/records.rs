//! Log records sealed at rest: round trips, sequence and epoch rules.

use super::*;

// ---- log records ---------------------------------------------------------------------------

#[test]
fn record_seal_open_round_trip() {
    let ring = ring("k1", &["k1"]);
    let (cipher, wrapped) = RecordCipher::new(&ring).unwrap();
    assert!(cipher.can_seal());
    assert_eq!(wrapped.key_id(), "k1");
    assert_eq!(wrapped.epoch_id(), cipher.epoch_id());
    for (seq, len) in [(0u64, 0usize), (1, 1), (2, 100), (10, 70_000)] {
        let payload = data(len, seq);
        let sealed = cipher.seal(seq, &payload).unwrap();
        assert_eq!(sealed.len(), len + RECORD_OVERHEAD);
        assert_eq!(sealed.len(), sealed_len(len));
        assert_eq!(record_epoch_id(&sealed), Some(cipher.epoch_id()));
        assert_eq!(cipher.open(seq, &sealed).unwrap(), payload);
    }
    let mut group = b"frame header".to_vec();
    cipher.seal_into(11, b"appended", &mut group).unwrap();
    assert_eq!(cipher.open(11, &group[12..]).unwrap(), b"appended");
}

#[test]
fn record_wrong_seq_or_any_flip_fails() {
    let ring = ring("k1", &["k1"]);
    let (cipher, _) = RecordCipher::new(&ring).unwrap();
    let sealed = cipher.seal(5, b"payload").unwrap();
    assert_eq!(cipher.open(6, &sealed), Err(RecordError::Tampered { seq: 6 }));
    assert_eq!(cipher.open(4, &sealed), Err(RecordError::Tampered { seq: 4 }));
    for pos in 0..sealed.len() {
        let mut bad = sealed.clone();
        bad[pos] ^= 1;
        assert!(cipher.open(5, &bad).is_err(), "flip at {pos}");
    }
    assert_eq!(cipher.open(5, &sealed[..19]), Err(RecordError::TooShort { len: 19 }));
    assert!(cipher.open(5, &sealed[..sealed.len() - 1]).is_err());
}

#[test]
fn record_seq_must_increase_within_an_epoch() {
    let ring = ring("k1", &["k1"]);
    let (cipher, _) = RecordCipher::new(&ring).unwrap();
    cipher.seal(0, b"a").unwrap();
    cipher.seal(1, b"b").unwrap();
    assert_eq!(cipher.seal(1, b"other"), Err(SealError::SeqNotIncreasing { seq: 1, last: 1 }));
    assert_eq!(cipher.seal(0, b"other"), Err(SealError::SeqNotIncreasing { seq: 0, last: 1 }));
    let mut out = b"kept".to_vec();
    assert!(cipher.seal_into(1, b"x", &mut out).is_err());
    assert_eq!(out, b"kept");
    cipher.seal(7, b"gaps are fine").unwrap();
    assert!(cipher.seal(6, b"but not going back").is_err());
    assert_eq!(cipher.seal(u64::MAX, b""), Err(SealError::SeqOutOfRange(u64::MAX)));
}

#[test]
fn record_epochs_open_their_own_records() {
    let a = MasterKey::generate("a").unwrap();
    let b = MasterKey::generate("b").unwrap();
    let ring_a = KeyRing::new("a", [a.clone()]).unwrap();
    let (epoch1, wrapped1) = RecordCipher::new(&ring_a).unwrap();
    let r1 = epoch1.seal(0, b"epoch one").unwrap();
    let persisted = wrapped1.clone().into_bytes();
    drop(epoch1);

    // "Restart" with a rotated ring: new epoch under b, old epoch reopened under a.
    let ring_ab = KeyRing::new("b", [a, b]).unwrap();
    let (epoch2, wrapped2) = RecordCipher::new(&ring_ab).unwrap();
    assert_eq!(wrapped2.key_id(), "b");
    let r2 = epoch2.seal(0, b"epoch two").unwrap(); // seq 0 again: another key
    let old = RecordCipher::open_existing(&ring_ab, &persisted).unwrap();
    assert_eq!(old.key_id(), "a");
    assert_eq!(old.epoch_id(), wrapped1.epoch_id());
    assert_eq!(old.open(0, &r1).unwrap(), b"epoch one");
    assert_eq!(epoch2.open(0, &r2).unwrap(), b"epoch two");
    assert!(old.open(0, &r2).is_err());
    assert!(epoch2.open(0, &r1).is_err());
    if old.epoch_id() != epoch2.epoch_id() {
        assert!(matches!(old.open(0, &r2), Err(RecordError::WrongEpoch { .. })));
    }
    // A reopened epoch cannot seal.
    assert!(!old.can_seal());
    assert_eq!(old.seal(1, b"x"), Err(SealError::ReadOnlyEpoch));

    // Its master key must be configured, and be the right one.
    let ring_b_only = KeyRing::new("b", [MasterKey::generate("b").unwrap()]).unwrap();
    let err = RecordCipher::open_existing(&ring_b_only, &persisted).unwrap_err();
    assert!(matches!(&err, DecryptError::UnknownKeyId { id, .. } if id == "a"), "{err}");
    let ring_wrong_a = KeyRing::new("a", [MasterKey::generate("a").unwrap()]).unwrap();
    assert!(matches!(
        RecordCipher::open_existing(&ring_wrong_a, &persisted),
        Err(DecryptError::KeyMismatch { .. })
    ));
    // Any change to the persisted bytes is caught.
    for pos in 0..persisted.len() {
        let mut bad = persisted.clone();
        bad[pos] ^= 1;
        assert!(RecordCipher::open_existing(&ring_ab, &bad).is_err(), "flip at {pos}");
    }
    for cut in 0..persisted.len() {
        assert!(RecordCipher::open_existing(&ring_ab, &persisted[..cut]).is_err());
    }
    let mut longer = persisted.clone();
    longer.push(0);
    assert!(WrappedKey::parse(&longer).is_err());
}
