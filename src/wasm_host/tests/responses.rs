//! Firehose response rules, through the binary ABI and the JSON form.

use super::*;

// ---------- Firehose's response rules, through the binary ABI ----------

/// Builds a binary response by hand.
struct Resp(Vec<u8>);

impl Resp {
    fn new(count: u32) -> Self {
        Resp(count.to_le_bytes().to_vec())
    }
    fn entry(mut self, index: u32, result: u8, data: Option<&[u8]>, keys: &[(&str, &str)]) -> Self {
        self.0.extend(index.to_le_bytes());
        self.0.push(result);
        match data {
            Some(d) => {
                self.0.extend((d.len() as u32).to_le_bytes());
                self.0.extend(d);
            }
            None => self.0.extend(u32::MAX.to_le_bytes()),
        }
        self.0.extend((keys.len() as u32).to_le_bytes());
        for (k, v) in keys {
            for s in [k, v] {
                self.0.extend((s.len() as u32).to_le_bytes());
                self.0.extend(s.as_bytes());
            }
        }
        self
    }
}

/// Runs `respond.wat`, which answers with the first record's data verbatim.
fn respond(response: &[u8], batch_len: usize) -> Result<Vec<RecordOutcome>, InvocationError> {
    let mut input = vec![record("r0", response)];
    input.extend((1..batch_len).map(|i| record(&format!("r{i}"), b"x")));
    transform(&wat("respond")).invoke(&input)
}

#[test]
fn missing_duplicated_unknown_and_foreign_entries_follow_firehose_rules() {
    let response = Resp::new(7)
        .entry(0, 0, Some(b"zero"), &[("customer", "42"), ("year", "2024")])
        .entry(1, 1, None, &[])
        .entry(2, 2, None, &[])
        .entry(3, 2, Some(b"bad json"), &[])
        .entry(4, 9, Some(b"?"), &[])
        .entry(5, 0, None, &[])
        .entry(99, 0, Some(b"not in the batch"), &[]);
    let response = response.entry(6, 0, Some(b"once"), &[]).entry(6, 0, Some(b"twice"), &[]);
    let mut raw = response.0;
    raw[..4].copy_from_slice(&9u32.to_le_bytes());
    let out = respond(&raw, 8).unwrap();
    assert_eq!(out.len(), 8);
    let keys: BTreeMap<String, String> =
        [("customer".into(), "42".into()), ("year".into(), "2024".into())].into();
    assert_eq!(
        out[0].result,
        RecordResult::Ok { data: Bytes::from_static(b"zero"), partition_keys: keys }
    );
    assert_eq!(out[1].result, RecordResult::Dropped);
    assert_eq!(
        out[2].result,
        RecordResult::ProcessingFailed {
            error_code: codes::PROCESSING_FAILED_STATUS.into(),
            error_message: PROCESSING_FAILED_MESSAGE.into(),
        }
    );
    assert_eq!(
        out[3].result,
        RecordResult::ProcessingFailed {
            error_code: codes::PROCESSING_FAILED_STATUS.into(),
            error_message: "bad json".into(),
        }
    );
    assert_eq!(failed_code(&out[4].result), codes::INVALID_RETURN_FORMAT, "unknown result");
    assert_eq!(failed_code(&out[5].result), codes::INVALID_RETURN_FORMAT, "Ok without data");
    assert_eq!(failed_code(&out[6].result), codes::DUPLICATED_RECORD_ID);
    assert_eq!(failed_code(&out[7].result), codes::MISSING_RECORD_ID);
    assert_eq!(out[7].record_id, "r7");
}

#[test]
fn an_empty_response_means_every_record_is_missing() {
    let out = respond(&Resp::new(0).0, 3).unwrap();
    assert!(out.iter().all(|o| failed_code(&o.result) == codes::MISSING_RECORD_ID));
    assert_eq!(out.len(), 3);
}

#[test]
fn a_truncated_or_overlong_binary_response_is_unparseable_and_not_retried() {
    let full = Resp::new(1).entry(0, 0, Some(b"data"), &[]).0;
    let err = respond(&full[..full.len() - 2], 1).unwrap_err();
    assert!(matches!(err, InvocationError::ResponseUnparseable { .. }), "{err:?}");
    assert_eq!(err.code(), codes::JSON_PROCESSING_EXCEPTION);
    assert!(!err.is_retryable());
    let mut long = full.clone();
    long.push(0);
    assert!(matches!(respond(&long, 1), Err(InvocationError::ResponseUnparseable { .. })));
}

#[test]
fn a_response_over_the_limit_is_rejected_and_not_retried() {
    let response = Resp::new(1).entry(0, 0, Some(&[b'a'; 300]), &[]).0;
    let limits = SandboxLimits { max_response_bytes: 200, ..SandboxLimits::default() };
    let mut t = Transform::new(&wat("respond"), context(), limits);
    let err = t.invoke(&[record("r0", &response)]).unwrap_err();
    assert_eq!(err, InvocationError::ResponseTooLarge { size: response.len() as u64, limit: 200 });
    assert!(!err.is_retryable());
    assert_eq!(err.code(), codes::MISSING_RECORD_ID);
    // not a reason to restart the instance
    assert!(t.invoke(&[record("r0", &Resp::new(0).0)]).is_ok());
    assert_eq!(t.instantiations(), 1);
}

#[test]
fn a_response_outside_guest_memory_is_an_abi_error() {
    let err = respond(b"", 1).unwrap_err();
    assert!(matches!(err, InvocationError::Abi { .. }), "{err:?}");
    assert_eq!(err.code(), codes::FUNCTION_ERROR);
}

// ---------- Firehose's response rules, through the JSON form ----------

fn json_rules(response: &str, ids: &[&str]) -> Result<Vec<RecordResult>, InvocationError> {
    let input: Vec<InputRecord> = ids.iter().map(|id| record(id, b"x")).collect();
    decode_json_response(response.as_bytes(), &input).map(results)
}

#[test]
fn json_responses_follow_the_same_rules() {
    let out = json_rules(
        r#"{"records":[
            {"recordId":"a","result":"Ok","data":"aGk=","metadata":{"partitionKeys":{"k":"v"}}},
            {"recordId":"b","result":"Dropped"},
            {"recordId":"c","result":"ProcessingFailed","data":"eA=="},
            {"recordId":"d","result":"Ok"},
            {"recordId":"e","result":"Maybe","data":"eA=="},
            {"recordId":"f","result":"Ok","data":"eA=="},
            {"recordId":"f","result":"Ok","data":"eA=="},
            {"recordId":"h","result":"Ok","data":"!!!"},
            {"recordId":"i","result":"Ok","data":"eA==","metadata":{"partitionKeys":{"n":1}}},
            {"recordId":"j","result":"ProcessingFailed","errorMessage":"mine"},
            {"recordId":"zzz","result":"Ok","data":"eA=="},
            {"result":"Ok","data":"eA=="},
            42
        ]}"#,
        &["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"],
    )
    .unwrap();
    let keys: BTreeMap<String, String> = [("k".into(), "v".into())].into();
    assert_eq!(out[0], RecordResult::Ok { data: Bytes::from_static(b"hi"), partition_keys: keys });
    assert_eq!(out[1], RecordResult::Dropped);
    assert_eq!(failed_code(&out[2]), codes::PROCESSING_FAILED_STATUS);
    assert_eq!(failed_code(&out[3]), codes::INVALID_RETURN_FORMAT, "Ok without data");
    assert_eq!(failed_code(&out[4]), codes::INVALID_RETURN_FORMAT, "unknown result");
    assert_eq!(failed_code(&out[5]), codes::DUPLICATED_RECORD_ID);
    assert_eq!(failed_code(&out[6]), codes::MISSING_RECORD_ID);
    assert_eq!(failed_code(&out[7]), codes::INVALID_RETURN_FORMAT, "bad base64");
    assert_eq!(failed_code(&out[8]), codes::INVALID_RETURN_FORMAT, "non-string key");
    assert_eq!(
        out[9],
        RecordResult::ProcessingFailed {
            error_code: codes::PROCESSING_FAILED_STATUS.into(),
            error_message: "mine".into()
        }
    );
}

#[test]
fn a_json_response_without_a_records_array_means_every_record_is_missing() {
    for response in [r#"{}"#, r#"{"records":null}"#, r#"{"records":{}}"#, "[]", "null"] {
        let out = json_rules(response, &["a", "b"]).unwrap();
        assert!(out.iter().all(|r| failed_code(r) == codes::MISSING_RECORD_ID), "{response}");
    }
}

#[test]
fn a_response_that_is_not_json_fails_the_invocation_without_retry() {
    let err = json_rules(r#"{"records":[{"recordId":"#, &["a"]).unwrap_err();
    assert!(matches!(err, InvocationError::ResponseUnparseable { .. }));
    assert_eq!(err.code(), codes::JSON_PROCESSING_EXCEPTION);
    assert!(!err.is_retryable());
}

#[test]
fn the_json_event_has_firehoses_shape() {
    let ctx = RequestContext {
        invocation_id: "inv-1",
        delivery_stream_arn: "arn:s",
        region: "eu-west-1",
    };
    let mut out = Vec::new();
    encode_json_request(&mut out, &ctx, &[record("4954", b"Hello World")]);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        r#"{"invocationId":"inv-1","deliveryStreamArn":"arn:s","region":"eu-west-1","records":[{"recordId":"4954","approximateArrivalTimestamp":1510772160000,"data":"SGVsbG8gV29ybGQ="}]}"#
    );
}
