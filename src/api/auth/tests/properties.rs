//! Property tests: header values and Authorization-like text never make verification panic.

use super::*;

/// Header values a fuzzer may put anywhere: visible ASCII, spaces, tabs and non-ASCII bytes.
fn header_value() -> impl Strategy<Value = HeaderValue> {
    proptest::collection::vec(prop_oneof![Just(b'\t'), 0x20u8..0x7f, 0x80u8..=0xff], 0..200)
        .prop_map(|bytes| HeaderValue::from_bytes(&bytes).unwrap())
}

/// Authorization values built from the pieces of real ones, in any order and number.
fn authorization_like() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("AWS4-HMAC-SHA256 ".to_owned()),
        Just("Credential=".to_owned()),
        Just("SignedHeaders=".to_owned()),
        Just("Signature=".to_owned()),
        Just("AKIDEXAMPLE/20261122/us-east-1/firehose/aws4_request".to_owned()),
        Just("host;x-amz-date".to_owned()),
        Just("/".to_owned()),
        Just(",".to_owned()),
        Just(";".to_owned()),
        Just("=".to_owned()),
        Just(" ".to_owned()),
        "[0-9a-f]{0,70}",
        "[ -~]{0,12}",
        "\\PC{0,6}",
    ];
    proptest::collection::vec(piece, 0..16).prop_map(|pieces| pieces.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn garbled_authorization_headers_never_panic_and_never_verify(value in header_value()) {
        let request = signed().set("authorization", "x");
        let mut request = request;
        request.headers.insert("authorization", value);
        prop_assert!(request.verify().is_err());
    }

    #[test]
    fn authorization_headers_made_of_real_pieces_never_panic(value in authorization_like()) {
        let mut request = signed();
        if let Ok(value) = HeaderValue::from_str(&value) {
            request.headers.insert("authorization", value);
            prop_assert!(request.verify().is_err());
        }
    }

    #[test]
    fn garbled_date_and_signed_headers_never_panic(
        date in header_value(),
        signed_names in proptest::collection::vec("[a-z-]{1,12}", 0..6),
        values in proptest::collection::vec(header_value(), 0..6),
    ) {
        let mut request = signed();
        request.headers.insert("x-amz-date", date);
        for (name, value) in signed_names.iter().zip(values) {
            if let Ok(name) = HeaderName::from_bytes(name.as_bytes()) {
                request.headers.append(name, value);
            }
        }
        let auth = request.authorization().replace(
            "SignedHeaders=content-type;host;x-amz-date;x-amz-target",
            &format!("SignedHeaders=host;{}", signed_names.join(";")),
        );
        let request = request.with_authorization(&auth);
        // Whatever happens, it is an answer, not a panic; with a garbled date it never passes.
        let _ = request.verify();
    }

    #[test]
    fn a_single_flipped_body_bit_never_verifies(index in 0..BODY.len(), bit in 0u8..8) {
        let mut request = signed();
        request.body[index] ^= 1 << bit;
        prop_assert_eq!(request.verify(), Err(AuthError::Mismatch));
    }

    #[test]
    fn any_mutated_byte_of_the_authorization_header_is_rejected_without_panic(
        index in 0usize..250,
        byte in 0x20u8..0x7f,
    ) {
        let request = signed();
        let mut auth = request.authorization().into_bytes();
        let index = index % auth.len();
        prop_assume!(auth[index] != byte);
        auth[index] = byte;
        let auth = String::from_utf8(auth).unwrap();
        // A change of whitespace next to a separator is still the same header.
        let same = auth.split_whitespace().collect::<String>()
            == request.authorization().split_whitespace().collect::<String>();
        let result = request.with_authorization(&auth).verify();
        if !same {
            prop_assert!(result.is_err(), "{auth}");
        }
    }
}
