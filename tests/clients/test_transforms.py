"""WebAssembly transforms (the Lambda processor) end to end: boto3 puts records into the real
hydrant binary, each example module (and hand-written WAT modules) transforms them, and what
lands in S3 (s3s-fs) is exactly what the module's source says, with failed records in the
`processing-failed` error output in Firehose's JSON shape.

One server holds every stream of this file: compiling a Rust-built module takes seconds in a
debug build, so it is started once."""

import json
import re
import time
import urllib.request
import uuid

import pytest

from conftest import (
    KEY_SUFFIX,
    TESTDATA_WAT,
    WASM_DIST,
    ModuleServer,
    assert_exactly_once,
    error_documents,
    lambda_processor,
    list_objects,
    module_server,
    raw_of,
    s3_stream,
    wait_error_documents,
    wait_for,
)

FAIL_SOME_ARN = "arn:aws:lambda:us-east-1:123456789012:function:fail-some"
UPPER_ARN = "arn:aws:lambda:us-east-1:123456789012:function:upper"
RETRIES = 2  # NumberOfRetries of the streams whose module fails whole invocations


def wasm(name):
    return str(WASM_DIST / f"{name}.wasm")


def wat(name):
    return str(TESTDATA_WAT / f"{name}.wat")


# stream name -> (processor, extra hydrant: members)
STREAMS = {
    "noop": (lambda_processor(wasm("noop")), {}),
    "nl": (lambda_processor(wasm("append_newline")), {}),
    "redact": (lambda_processor(wasm("json_filter_redact")), {}),
    "csv": (lambda_processor("file://" + wasm("csv_to_json")), {}),
    "fail": (lambda_processor(FAIL_SOME_ARN, retries=RETRIES), {}),
    "port": (lambda_processor(wasm("lambda_port")), {}),
    "upper": (lambda_processor(UPPER_ARN), {}),
    "upperq": (lambda_processor(UPPER_ARN + ":prod"), {}),
    "trap": (lambda_processor(wat("trap"), retries=RETRIES), {}),
    # A tight loop burns ~1e9 fuel per second here: 2e8 keeps each attempt short.
    "spin": (lambda_processor(wat("spin"), retries=RETRIES), {"transform": {"fuel": 200000000}}),
    "hungry": (lambda_processor(wat("hungry"), retries=RETRIES), {"transform": {"memory_mib": 8}}),
}
DEFAULT_ERROR_LAYOUT = {"port"}  # no ErrorOutputPrefix: errors under <Prefix>processing-failed/yyyy/MM/dd/HH/


class Server(ModuleServer):
    def errors(self, stream):
        if stream in DEFAULT_ERROR_LAYOUT:
            return f"{stream}/processing-failed/"
        return f"err/{stream}/processing-failed/"

    def data_keys(self, stream):
        return [k for k in list_objects(self.s3, self.bucket, f"{stream}/") if "processing-failed/" not in k]

    def data(self, stream):
        """Counter of delivered lines in the stream's data objects (error objects excluded)."""
        import collections
        counts = collections.Counter()
        for key in self.data_keys(stream):
            body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
            for line in body.splitlines():
                counts[line] += 1
        return counts

    def raw_data(self, stream):
        return b"".join(self.s3.get_object(Bucket=self.bucket, Key=k)["Body"].read() for k in self.data_keys(stream))

    def wait_data(self, stream, lines, timeout=30):
        wanted = set(lines)

        def ready():
            try:
                c = self.data(stream)
            except Exception:  # noqa: BLE001
                return None
            return c if all(c[w] for w in wanted) else None

        try:
            return wait_for(ready, timeout=timeout, interval=0.25, what=f"{len(wanted)} lines of {stream}")
        except AssertionError:
            c = self.data(stream)
            missing = [w for w in wanted if not c[w]]
            raise AssertionError(f"{stream}: {len(missing)} lines never delivered, e.g. {missing[:3]}; "
                                 f"delivered: {list(c)[:5]}\n{self.h.log()[-3000:]}") from None


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    def streams(bucket):
        return [s3_stream(name, bucket, prefix=f"{name}/", shards=1, interval=1, processors=[processor], hydrant=hydrant,
                          error_prefix=None if name in DEFAULT_ERROR_LAYOUT else f"err/{name}/!{{firehose:error-output-type}}/")
                for name, (processor, hydrant) in STREAMS.items()]
    functions = {FAIL_SOME_ARN: wasm("fail_some"), UPPER_ARN: wat("upper")}
    with module_server(tmp_path_factory, "transforms", streams, settings={"functions": functions},
                       timeout=180, server=Server) as srv:
        yield srv
    assert_no_host_panic(srv.h)


def assert_no_host_panic(h):
    """Guest panics are expected here (they are part of the error messages in the log); a panic of
    hydrant itself starts a line with "thread '...' panicked at"."""
    text = h.log_path.read_text(errors="replace")
    bad = [line for line in text.splitlines() if re.match(r"thread '[^']*'.* panicked at ", line)]
    assert not bad, "hydrant panicked:\n" + "\n".join(bad[:10])


def uid():
    return uuid.uuid4().hex


def now_ms():
    return int(time.time() * 1000)


def check_processing_failed(doc, raw, code, arn, attempts, t0, t1, message=None):
    assert raw_of(doc) == raw, doc
    assert doc["errorCode"] == code, doc
    assert doc["attemptsMade"] == attempts, doc
    assert doc["lambdaArn"] == arn, doc
    assert isinstance(doc["errorMessage"], str) and doc["errorMessage"], doc
    if message is not None:
        assert re.search(message, doc["errorMessage"]), doc
    assert t0 - 1000 <= doc["arrivalTimestamp"] <= t1 + 1000, (doc, t0, t1)
    assert doc["arrivalTimestamp"] <= doc["attemptEndingTimestamp"] <= now_ms() + 1000, doc
    for member in ("attemptsMade", "arrivalTimestamp", "errorCode", "errorMessage", "attemptEndingTimestamp",
                   "rawData", "lambdaArn"):
        assert member in doc, f"{member} missing from {doc}"


def test_noop_module_delivers_every_record_byte_for_byte(srv):
    records = [json.dumps({"noop": i, "id": uid()}).encode() + b"\n" for i in range(50)]
    records.append(b"\x00\xffbinary " + uid().encode() + b"\n")
    srv.put("noop", records)
    counts = srv.wait_data("noop", [r.rstrip(b"\n") for r in records])
    assert_exactly_once(counts, records)
    assert sorted(srv.raw_data("noop").splitlines(keepends=True)) == sorted(records)
    assert error_documents(srv.s3, srv.bucket, srv.errors("noop")) == []
    for key in srv.data_keys("noop"):
        assert KEY_SUFFIX.fullmatch(key.rsplit("/", 1)[1]), key


def test_append_newline_module_ends_every_record_with_exactly_one_newline(srv):
    bare = [f"bare-{uid()}".encode() for _ in range(10)]
    ended = [f"ended-{uid()}\n".encode() for _ in range(10)]
    srv.put("nl", bare + ended)
    srv.wait_data("nl", bare + [e.rstrip(b"\n") for e in ended])
    content = srv.raw_data("nl")
    assert sorted(content.splitlines(keepends=True)) == sorted([b + b"\n" for b in bare] + ended), content[:400]
    assert b"\n\n" not in content


def test_json_filter_redact_module_drops_redacts_passes_through_and_fails_non_objects(srv):
    t0 = now_ms()
    run = uid()
    untouched = f'{{ "run": "{run}",  "level": "info", "note": "spaces kept" }}\n'.encode()
    secret = f'{{"run":"{run}","level":"warn","password":"hunter2","user":{{"name":"ann","email":"a@x.io"}},' \
             f'"card_number":"4111"}}\n'.encode()
    debug = f'{{"run":"{run}","level":"debug","password":"dropped-{run}"}}\n'.encode()
    trace = f'{{"run":"{run}","level":"trace"}}\n'.encode()
    array = f'["{run}", "not an object"]\n'.encode()
    garbage = f"not json {run}\n".encode()
    srv.put("redact", [untouched, secret, debug, trace, array, garbage])
    t1 = now_ms()
    redacted = (f'{{"run":"{run}","level":"warn","password":"[REDACTED]","user":{{"name":"ann",'
                f'"email":"[REDACTED]"}},"card_number":"[REDACTED]"}}').encode()
    srv.wait_data("redact", [untouched.rstrip(b"\n"), redacted])
    docs = wait_error_documents(srv.s3, srv.bucket, srv.errors("redact"), 2)
    mine = [d for _, d in docs if run.encode() in raw_of(d)]
    assert len(mine) == 2, mine
    by_raw = {raw_of(d): d for d in mine}
    arn = wasm("json_filter_redact")
    check_processing_failed(by_raw[array], array, "Lambda.ProcessingFailedStatus", arn, 1, t0, t1,
                            message="record is not a JSON object")
    check_processing_failed(by_raw[garbage], garbage, "Lambda.ProcessingFailedStatus", arn, 1, t0, t1,
                            message="record is not JSON")
    lines = [line for line in srv.raw_data("redact").splitlines(keepends=True) if run.encode() in line]
    # Byte for byte: the untouched record keeps its spacing; the redacted one is compact, key order
    # kept, trailing newline kept; debug/trace records are gone.
    assert sorted(lines) == sorted([untouched, redacted + b"\n"]), lines
    assert b"hunter2" not in srv.raw_data("redact") and f"dropped-{run}".encode() not in srv.raw_data("redact")


def test_csv_to_json_module_through_a_file_url_turns_lines_into_objects_and_fails_bad_lines(srv):
    t0 = now_ms()
    run = uid()
    good = [
        (f"1,{run}-alice,12.5,EUR".encode(), {"id": 1, "name": f"{run}-alice", "amount": 12.5, "currency": "EUR"}),
        (f'2,"{run}, bob",+7,"say ""hi"""\r\n'.encode(),
         {"id": 2, "name": f"{run}, bob", "amount": "+7", "currency": 'say "hi"'}),
        (f"-3,{run}-carol,0,\n".encode(), {"id": -3, "name": f"{run}-carol", "amount": 0, "currency": ""}),
    ]
    bad = [f"4,{run}-too-few,1\n".encode(), f'5,"{run} unterminated,1,EUR\n'.encode()]
    srv.put("csv", [g for g, _ in good] + bad)
    t1 = now_ms()

    def mine():
        out = []
        for line in srv.raw_data("csv").splitlines(keepends=True):
            if run.encode() in line:
                out.append(line)
        return out if len(out) >= len(good) else None

    lines = wait_for(mine, timeout=30, what="csv records as JSON")
    assert all(line.endswith(b"}\n") for line in lines), lines
    assert sorted((json.loads(line) for line in lines), key=lambda d: d["id"]) == \
        sorted((d for _, d in good), key=lambda d: d["id"])
    docs = [d for _, d in wait_error_documents(srv.s3, srv.bucket, srv.errors("csv"), 2) if run.encode() in raw_of(d)]
    assert sorted(raw_of(d) for d in docs) == sorted(bad)
    arn = "file://" + wasm("csv_to_json")
    for d in docs:
        msg = "expected 4 fields, got 3" if raw_of(d) == bad[0] else "unterminated quoted field"
        check_processing_failed(d, raw_of(d), "Lambda.ProcessingFailedStatus", arn, 1, t0, t1, message=msg)


def test_fail_some_module_named_by_a_lambda_arn_drops_and_fails_records_individually(srv):
    t0 = now_ms()
    run = uid()
    keep = [f'{{"run":"{run}","i":{i},"what":"keep"}}\n'.encode() for i in range(20)]
    dropped = [f'{{"run":"{run}","i":{i},"what":"drop"}}\n'.encode() for i in range(5)]
    failed = [f'{{"run":"{run}","i":{i},"what":"fail"}}\n'.encode() for i in range(5)]
    records = [r for trio in zip(keep, dropped + [None] * 15, failed + [None] * 15) for r in trio if r]
    srv.put("fail", records)
    t1 = now_ms()
    srv.wait_data("fail", [k.rstrip(b"\n") for k in keep])
    docs = wait_error_documents(srv.s3, srv.bucket, srv.errors("fail"), 5)
    time.sleep(1.5)  # anything late (a drop that should not be there) would show up now
    docs = [d for _, d in error_documents(srv.s3, srv.bucket, srv.errors("fail")) if run.encode() in raw_of(d)]
    assert sorted(raw_of(d) for d in docs) == sorted(failed), [raw_of(d) for d in docs]
    for d in docs:
        # The per-record failure is not retried: attemptsMade 1 whatever NumberOfRetries says.
        check_processing_failed(d, raw_of(d), "Lambda.ProcessingFailedStatus", FAIL_SOME_ARN, 1, t0, t1,
                                message=r"^record \S+ asked to fail$")
    counts = srv.data("fail")
    mine = {line: c for line, c in counts.items() if run.encode() in line}
    assert mine == {k.rstrip(b"\n"): 1 for k in keep}, mine
    # Dropped records leave no trace anywhere in the bucket (data or error objects).
    everything = b""
    for key in list_objects(srv.s3, srv.bucket):
        body = srv.s3.get_object(Bucket=srv.bucket, Key=key)["Body"].read()
        everything += body
        if "failed" in key:
            everything += b"".join(raw_of(json.loads(line)) for line in body.splitlines())
    for r in dropped:
        assert r.rstrip(b"\n") not in everything, f"dropped record found in the bucket: {r!r}"


def test_lambda_port_json_abi_module_adds_processed_and_fails_non_objects_under_the_default_error_prefix(srv):
    t0 = now_ms()
    run = uid()
    docs_in = [{"run": run, "i": i, "partition": "p" if i % 2 else None} for i in range(10)]
    records = [json.dumps(d).encode() for d in docs_in]
    bad = [f"[1,2,\"{run}\"]".encode(), f"plain {run}".encode()]
    srv.put("port", records + bad)
    t1 = now_ms()

    def mine():
        lines = [line for line in srv.raw_data("port").splitlines(keepends=True) if run.encode() in line]
        return lines if len(lines) >= len(records) else None

    lines = wait_for(mine, timeout=30, what="lambda_port output")
    assert all(line.endswith(b"\n") for line in lines)
    assert sorted((json.loads(line) for line in lines), key=lambda d: d["i"]) == \
        [dict(d, processed=True) for d in docs_in]
    # No ErrorOutputPrefix and a Prefix without expressions: <Prefix>processing-failed/yyyy/MM/dd/HH/.
    docs = wait_error_documents(srv.s3, srv.bucket, "port/processing-failed/", 2)
    mine_docs = [(k, d) for k, d in docs if run.encode() in raw_of(d)]
    assert sorted(raw_of(d) for _, d in mine_docs) == sorted(bad)
    for key, d in mine_docs:
        assert re.fullmatch(r"port/processing-failed/\d{4}/\d{2}/\d{2}/\d{2}/port-1-.+", key), key
        assert KEY_SUFFIX.fullmatch(key.rsplit("/", 1)[1]) and KEY_SUFFIX.fullmatch(key.rsplit("/", 1)[1])["ext"] == "", key
        check_processing_failed(d, raw_of(d), "Lambda.ProcessingFailedStatus", wasm("lambda_port"), 1, t0, t1,
                                message="not a JSON object")


def test_hand_written_wat_module_found_through_the_functions_map_upper_cases_records(srv):
    run = uid()
    records = [f"hello {run} #{i} MiXeD éß\n".encode() for i in range(20)]
    srv.put("upper", records)
    srv.put("upperq", records[:5])  # a qualified ARN (:prod) finds the unqualified functions: entry
    expect = [r.rstrip(b"\n").upper() for r in records]
    # Only ASCII letters change: the UTF-8 bytes of é and ß are left alone.
    assert all("éß".encode() in e for e in expect)
    assert_exactly_once(srv.wait_data("upper", expect), [e + b"\n" for e in expect])
    assert_exactly_once(srv.wait_data("upperq", expect[:5]), [e + b"\n" for e in expect[:5]])


def test_a_panicking_module_fails_the_whole_invocation_after_retries_and_the_next_batch_delivers(srv):
    t0 = now_ms()
    run = uid()
    batch = [f'{{"run":"{run}","n":1}}\n'.encode(), f'{{"run":"{run}","n":2,"x":"panic"}}\n'.encode(),
             f'{{"run":"{run}","n":3}}\n'.encode()]
    srv.put("fail", batch)
    t1 = now_ms()

    def mine():
        docs = [d for _, d in error_documents(srv.s3, srv.bucket, srv.errors("fail")) if run.encode() in raw_of(d)]
        return docs if len(docs) >= 3 else None

    docs = wait_for(mine, timeout=30, what="the panicking batch in processing-failed")
    assert sorted(raw_of(d) for d in docs) == sorted(batch)
    for d in docs:
        check_processing_failed(d, raw_of(d), "Lambda.FunctionError", FAIL_SOME_ARN, RETRIES + 1, t0, t1,
                                message="asked to panic")
    assert not any(run.encode() in line for line in srv.data("fail"))
    # The instance was discarded; the next batch gets a fresh one and is delivered.
    later = [f'{{"run":"{run}","n":{n},"later":true}}\n'.encode() for n in range(4, 9)]
    srv.put("fail", later)
    srv.wait_data("fail", [r.rstrip(b"\n") for r in later])


@pytest.mark.parametrize("stream,message", [
    ("trap", r"trapped.*panicked at src/lib.rs:7: boom"),
    ("spin", r"timed out.*fuel"),
    ("hungry", r"^transform exceeded its memory limit of 8388608 bytes$"),
])
def test_a_module_that_traps_loops_or_eats_memory_sends_its_batch_to_processing_failed_and_the_server_carries_on(
        srv, stream, message):
    t0 = now_ms()
    run = uid()
    batch = [f"{stream} {run} {i}\n".encode() for i in range(5)]
    srv.put(stream, batch)
    t1 = now_ms()

    def mine():
        docs = [d for _, d in error_documents(srv.s3, srv.bucket, srv.errors(stream)) if run.encode() in raw_of(d)]
        return docs if len(docs) >= len(batch) else None

    docs = wait_for(mine, timeout=60, what=f"{stream} batch in processing-failed")
    assert sorted(raw_of(d) for d in docs) == sorted(batch), docs
    for d in docs:
        check_processing_failed(d, raw_of(d), "Lambda.FunctionError", wat(stream), RETRIES + 1, t0, t1,
                                message=message)
    assert srv.data_keys(stream) == [], "a failed invocation must not deliver anything"
    # The server is healthy, this stream keeps accepting, and another stream still delivers.
    assert urllib.request.urlopen(srv.h.endpoint + "/healthz", timeout=5).status == 200
    assert srv.h.proc.poll() is None
    srv.put(stream, [f"{stream} {run} after\n".encode()])
    good = [f"good after {stream} {run} {i}\n".encode() for i in range(3)]
    srv.put("noop", good)
    srv.wait_data("noop", [g.rstrip(b"\n") for g in good])
    wait_for(lambda: any(raw_of(d) == f"{stream} {run} after\n".encode()
                         for _, d in error_documents(srv.s3, srv.bucket, srv.errors(stream))),
             timeout=60, what=f"the next {stream} batch failed the same way")
