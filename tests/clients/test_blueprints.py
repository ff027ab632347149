"""The Firehose blueprints as WebAssembly transforms (transforms/examples/apachelog-to-*,
syslog-rfc3164-to-*, syslog-rfc5424-to-*, process-record) end to end: boto3 puts real log
lines into the real hydrant binary, each module named by a Lambda ARN of the `functions:` map
converts them, and what lands in S3 (s3s-fs) is checked field by field; malformed lines land in
the `processing-failed` error output with the parser's reason.

One server holds every stream (compiling the modules takes seconds in a debug build).
test_blueprint_throughput, skipped unless HYDRANT_BENCH=1, measures each module's records/s
through the host (docs/transforms.md, "Blueprints")."""

import csv
import io
import json
import os

import pytest

import yaml

from conftest import (
    WASM_DIST,
    ModuleServer,
    doc_blocks,
    lambda_processor,
    list_objects,
    module_server,
    raw_of,
    s3_stream,
    wait_error_documents,
    wait_for,
)

BLUEPRINTS = {  # stream name -> module (transforms/dist/<module>.wasm)
    "apache-json": "apachelog_to_json",
    "apache-csv": "apachelog_to_csv",
    "syslog-json": "syslog_rfc3164_to_json",
    "syslog-csv": "syslog_rfc3164_to_csv",
    "syslog5424-json": "syslog_rfc5424_to_json",
    "syslog5424-csv": "syslog_rfc5424_to_csv",
    "process": "process_record",
}


def arn(module):
    return f"arn:aws:lambda:us-east-1:123456789012:function:{module.replace('_', '-')}"


class Server(ModuleServer):
    def data(self, stream):
        keys = [k for k in list_objects(self.s3, self.bucket, f"{stream}/")]
        return b"".join(self.s3.get_object(Bucket=self.bucket, Key=k)["Body"].read() for k in keys)

    def wait_lines(self, stream, count, timeout=30):
        def ready():
            lines = self.data(stream).splitlines(keepends=True)
            return lines if len(lines) >= count else None
        lines = wait_for(ready, timeout=timeout, what=f"{count} records of {stream}")
        assert len(lines) == count, lines
        assert all(line.endswith(b"\n") for line in lines), lines
        return lines

    def failed(self, stream, records, reasons):
        """Waits for the records' processing-failed documents and checks each: original bytes,
        Firehose's error code, the module's ARN, one attempt, the parser's reason."""
        prefix = f"err/{stream}/processing-failed/"
        docs = [d for _, d in wait_error_documents(self.s3, self.bucket, prefix, len(records))]
        assert sorted(raw_of(d) for d in docs) == sorted(records), [raw_of(d) for d in docs]
        for record, reason in zip(records, reasons):
            (doc,) = [d for d in docs if raw_of(d) == record]
            assert doc["errorCode"] == "Lambda.ProcessingFailedStatus", doc
            assert doc["lambdaArn"] == arn(BLUEPRINTS[stream]), doc
            assert doc["attemptsMade"] == 1, doc
            assert reason in doc["errorMessage"], (reason, doc)


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    missing = [m for m in BLUEPRINTS.values() if not (WASM_DIST / f"{m}.wasm").exists()]
    if missing:
        pytest.fail(f"{missing} not in {WASM_DIST}: run transforms/build.sh")

    def streams(bucket):
        return [s3_stream(name, bucket, prefix=f"{name}/", shards=1, interval=1, size=64,
                          processors=[lambda_processor(arn(module), buffer_mb=1)],
                          error_prefix=f"err/{name}/!{{firehose:error-output-type}}/")
                for name, module in BLUEPRINTS.items()]
    functions = {arn(m): str(WASM_DIST / f"{m}.wasm") for m in BLUEPRINTS.values()}
    with module_server(tmp_path_factory, "blueprints", streams, settings={"functions": functions},
                       timeout=180, server=Server) as srv:
        yield srv


# --- Apache access logs ------------------------------------------------------------------------

CHROME = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/131.0.0.0 Safari/537.36")
IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15"
APACHE = [  # (line, JSON the blueprint writes, CSV row)
    (b'127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326\n',
     {"host": "127.0.0.1", "ident": "-", "authuser": "frank", "request": "GET /apache_pb.gif HTTP/1.0",
      "response": 200, "bytes": 2326, "verb": "GET", "@timestamp": "2000-10-10T13:55:36.000Z",
      "timezone": "-0700", "@timestamp_utc": "2000-10-10T20:55:36.000Z"},
     ["127.0.0.1", "-", "frank", "10/Oct/2000:13:55:36 -0700", "GET /apache_pb.gif HTTP/1.0", "200", "2326", "", ""]),
    (f'203.0.113.42 - - [08/Dec/2026:02:14:33 +0000] "GET /search?q=a,b HTTP/1.1" 200 5124 '
     f'"https://www.example.com/?q=hydrant" "{CHROME}"\n'.encode(),
     {"host": "203.0.113.42", "ident": "-", "authuser": "-", "request": "GET /search?q=a,b HTTP/1.1",
      "response": 200, "bytes": 5124, "verb": "GET", "@timestamp": "2026-12-08T02:14:33.000Z",
      "timezone": "+0000", "@timestamp_utc": "2026-12-08T02:14:33.000Z",
      "referrer": "https://www.example.com/?q=hydrant", "agent": CHROME},
     ["203.0.113.42", "-", "-", "08/Dec/2026:02:14:33 +0000", "GET /search?q=a,b HTTP/1.1", "200", "5124",
      "https://www.example.com/?q=hydrant", CHROME]),
    (b'2001:db8::7 - alice [08/Dec/2026:03:00:01 +0530] "POST /api/orders HTTP/2.0" 201 87 "-" '
     b'"python-requests/2.32.3"',
     {"host": "2001:db8::7", "ident": "-", "authuser": "alice", "request": "POST /api/orders HTTP/2.0",
      "response": 201, "bytes": 87, "verb": "POST", "@timestamp": "2026-12-08T03:00:01.000Z",
      "timezone": "+0530", "@timestamp_utc": "2026-12-07T21:30:01.000Z", "referrer": "-",
      "agent": "python-requests/2.32.3"},
     ["2001:db8::7", "-", "alice", "08/Dec/2026:03:00:01 +0530", "POST /api/orders HTTP/2.0", "201", "87", "-",
      "python-requests/2.32.3"]),
    (f'198.51.100.7 - - [29/Feb/2028:23:59:59 -0100] "GET /favicon.ico HTTP/1.1" 304 - '
     f'"https://www.example.com/" "{IPHONE}"\r\n'.encode(),
     {"host": "198.51.100.7", "ident": "-", "authuser": "-", "request": "GET /favicon.ico HTTP/1.1",
      "response": 304, "bytes": 0, "verb": "GET", "@timestamp": "2028-02-29T23:59:59.000Z",
      "timezone": "-0100", "@timestamp_utc": "2028-03-01T00:59:59.000Z", "referrer": "https://www.example.com/",
      "agent": IPHONE},
     ["198.51.100.7", "-", "-", "29/Feb/2028:23:59:59 -0100", "GET /favicon.ico HTTP/1.1", "304", "0",
      "https://www.example.com/", IPHONE]),
]
APACHE_BAD = [  # (line, reason in the error output)
    (b"this is not an access log line\n", "not an Apache access log line: no [date]"),
    (b'10.0.0.1 - - [30/Feb/2026:02:14:33 +0000] "GET / HTTP/1.1" 200 1\n', "bad date [30/Feb/2026:02:14:33 +0000]"),
    (b'10.0.0.1 - - [08/Dec/2026:02:14:33 +0000] "GET / HTTP/1.1" 200\n', "no size after the status"),
    (b'10.0.0.1 - - [08/Dec/2026:02:14:33 +0000] "GET / HTTP/1.1" 200 1 "-"\n', "no quoted user agent"),
    (b"\xff\xfe10.0.0.1 - -\n", "record is not UTF-8 text"),
    (b"10.0.0.1 - - [08/Dec/2026:02:14:33 +0000] \"GET / HTTP/1.1\" 200 1\n10.0.0.2 - -\n",
     "record holds more than one line"),
]


def test_apache_access_log_to_json_field_by_field(srv):
    srv.put("apache-json", [line for line, _, _ in APACHE] + [line for line, _ in APACHE_BAD])
    lines = srv.wait_lines("apache-json", len(APACHE))
    got = {(d["host"], d["request"]): d for d in map(json.loads, lines)}
    for _, want, _ in APACHE:
        doc = got[(want["host"], want["request"])]
        assert doc == want
        assert list(doc) == list(want), "keys in the blueprint's order"
    srv.failed("apache-json", [line for line, _ in APACHE_BAD], [why for _, why in APACHE_BAD])


def test_apache_access_log_to_csv_field_by_field(srv):
    srv.put("apache-csv", [line for line, _, _ in APACHE] + [line for line, _ in APACHE_BAD])
    lines = srv.wait_lines("apache-csv", len(APACHE))
    rows = list(csv.reader(io.StringIO(b"".join(lines).decode(), newline="")))
    assert sorted(rows) == sorted(row for _, _, row in APACHE)
    assert all(len(row) == 9 for row in rows)
    srv.failed("apache-csv", [line for line, _ in APACHE_BAD], [why for _, why in APACHE_BAD])


# --- syslog, RFC 3164 --------------------------------------------------------------------------

RFC3164 = [  # (line, JSON, CSV row)
    (b"<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8\n",
     {"timestamp": "Oct 11 22:14:15", "hostname": "mymachine", "program": "su",
      "message": "'su root' failed for lonvick on /dev/pts/8", "facility": "auth", "severity": "crit"},
     ["Oct 11 22:14:15", "mymachine", "su", "", "'su root' failed for lonvick on /dev/pts/8", "auth", "crit"]),
    (b"Dec  8 02:14:33 web-1 CRON[4242]: (root) CMD (cd / && run-parts --report /etc/cron.hourly)\n",
     {"timestamp": "Dec  8 02:14:33", "hostname": "web-1", "program": "CRON", "processid": "4242",
      "message": "(root) CMD (cd / && run-parts --report /etc/cron.hourly)"},
     ["Dec  8 02:14:33", "web-1", "CRON", "4242", "(root) CMD (cd / && run-parts --report /etc/cron.hourly)", "", ""]),
    (b'Dec  8 02:14:34 web-1.example.com sshd[1022]: Accepted publickey for deploy from 203.0.113.5 port 52211 '
     b'ssh2: ED25519 SHA256:Zm9v, key "ci"\n',
     {"timestamp": "Dec  8 02:14:34", "hostname": "web-1.example.com", "program": "sshd", "processid": "1022",
      "message": 'Accepted publickey for deploy from 203.0.113.5 port 52211 ssh2: ED25519 SHA256:Zm9v, key "ci"'},
     ["Dec  8 02:14:34", "web-1.example.com", "sshd", "1022",
      'Accepted publickey for deploy from 203.0.113.5 port 52211 ssh2: ED25519 SHA256:Zm9v, key "ci"', "", ""]),
    ("<13>Dec 18 17:32:18.123 db-2 postgres[77]: LOG:  checkpoint complète".encode(),
     {"timestamp": "Dec 18 17:32:18.123", "hostname": "db-2", "program": "postgres", "processid": "77",
      "message": "LOG:  checkpoint complète", "facility": "user", "severity": "notice"},
     ["Dec 18 17:32:18.123", "db-2", "postgres", "77", "LOG:  checkpoint complète", "user", "notice"]),
]
RFC3164_BAD = [
    (b"2026-12-08T02:14:33.000000+00:00 web-1 CRON[1]: rsyslog's file format\n", "no timestamp like 'Oct 11 22:14:15'"),
    (b"Dec  8 02:14:33 web-1 a message without a tag\n", "no ':' after the program name"),
    (b"<200>Dec  8 02:14:33 web-1 app: bad priority\n", "bad <PRI>"),
    (b"Dec  8 02:14:33 web-1 app[0]: pid zero\n", "bad [pid]"),
    (b"\n", "record is an empty line"),
]


def test_syslog_rfc3164_to_json_field_by_field(srv):
    srv.put("syslog-json", [line for line, _, _ in RFC3164] + [line for line, _ in RFC3164_BAD])
    lines = srv.wait_lines("syslog-json", len(RFC3164))
    docs = sorted(map(json.loads, lines), key=lambda d: d["timestamp"])
    assert docs == sorted((want for _, want, _ in RFC3164), key=lambda d: d["timestamp"])
    for doc in docs:
        assert list(doc)[:3] == ["timestamp", "hostname", "program"], doc
    srv.failed("syslog-json", [line for line, _ in RFC3164_BAD], [why for _, why in RFC3164_BAD])


def test_syslog_rfc3164_to_csv_field_by_field(srv):
    srv.put("syslog-csv", [line for line, _, _ in RFC3164] + [line for line, _ in RFC3164_BAD])
    lines = srv.wait_lines("syslog-csv", len(RFC3164))
    rows = list(csv.reader(io.StringIO(b"".join(lines).decode(), newline="")))
    assert sorted(rows) == sorted(row for _, _, row in RFC3164)
    srv.failed("syslog-csv", [line for line, _ in RFC3164_BAD], [why for _, why in RFC3164_BAD])


# --- syslog, RFC 5424 --------------------------------------------------------------------------

RFC5424 = [  # (line, JSON, CSV row)
    (b'<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" '
     b'eventSource="Application" eventID="1011"] An application event log entry...\n',
     {"facility": "local4", "severity": "notice", "version": 1, "timestamp": "2003-10-11T22:14:15.003Z",
      "hostname": "mymachine.example.com", "appname": "evntslog", "procid": None, "msgid": "ID47",
      "structured_data": {"exampleSDID@32473": {"iut": "3", "eventSource": "Application", "eventID": "1011"}},
      "message": "An application event log entry..."},
     ["local4", "notice", "1", "2003-10-11T22:14:15.003Z", "mymachine.example.com", "evntslog", "", "ID47",
      '[exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"]', "An application event log entry..."]),
    (b"<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - \xef\xbb\xbf'su root' failed for lonvick "
     b"on /dev/pts/8\n",
     {"facility": "auth", "severity": "crit", "version": 1, "timestamp": "2003-10-11T22:14:15.003Z",
      "hostname": "mymachine.example.com", "appname": "su", "procid": None, "msgid": "ID47",
      "structured_data": {}, "message": "'su root' failed for lonvick on /dev/pts/8"},
     ["auth", "crit", "1", "2003-10-11T22:14:15.003Z", "mymachine.example.com", "su", "", "ID47", "",
      "'su root' failed for lonvick on /dev/pts/8"]),
    (b'<14>1 2026-12-08T02:14:33.123456+01:00 web-1 nginx 4242 ACCESS [meta sequenceId="29" '
     b'note="a \\"quoted\\" \\] value" tag="a" tag="b"][origin ip="203.0.113.9"] GET /health, 200\n',
     {"facility": "user", "severity": "info", "version": 1, "timestamp": "2026-12-08T02:14:33.123456+01:00",
      "hostname": "web-1", "appname": "nginx", "procid": "4242", "msgid": "ACCESS",
      "structured_data": {"meta": {"sequenceId": "29", "note": 'a "quoted" ] value', "tag": ["a", "b"]},
                          "origin": {"ip": "203.0.113.9"}},
      "message": "GET /health, 200"},
     ["user", "info", "1", "2026-12-08T02:14:33.123456+01:00", "web-1", "nginx", "4242", "ACCESS",
      '[meta sequenceId="29" note="a \\"quoted\\" \\] value" tag="a" tag="b"][origin ip="203.0.113.9"]',
      "GET /health, 200"]),
    (b"<0>1 - - - - - -\n",
     {"facility": "kern", "severity": "emerg", "version": 1, "timestamp": None, "hostname": None, "appname": None,
      "procid": None, "msgid": None, "structured_data": {}, "message": None},
     ["kern", "emerg", "1", "", "", "", "", "", "", ""]),
]
RFC5424_BAD = [
    (b"<34>Oct 11 22:14:15 mymachine su: an RFC 3164 line\n", "no version 1"),
    (b'<34>1 2003-10-11T22:14:15.003Z host app - ID47 [unclosed a="1"\n', "not closed with ]"),
    (b"<34>2 2003-10-11T22:14:15.003Z host app - - - version two\n", "version 2 (only 1 is defined)"),
    (b"<34>1 2003-02-30T22:14:15Z host app - - - no such day\n", "bad timestamp"),
    (b"plain text\n", "no <PRI>"),
]


def test_syslog_rfc5424_to_json_field_by_field(srv):
    srv.put("syslog5424-json", [line for line, _, _ in RFC5424] + [line for line, _ in RFC5424_BAD])
    lines = srv.wait_lines("syslog5424-json", len(RFC5424))
    docs = [json.loads(line) for line in lines]
    for _, want, _ in RFC5424:
        (doc,) = [d for d in docs if d["facility"] == want["facility"]]
        assert doc == want
        assert list(doc) == list(want)
    srv.failed("syslog5424-json", [line for line, _ in RFC5424_BAD], [why for _, why in RFC5424_BAD])


def test_syslog_rfc5424_to_csv_field_by_field(srv):
    srv.put("syslog5424-csv", [line for line, _, _ in RFC5424] + [line for line, _ in RFC5424_BAD])
    lines = srv.wait_lines("syslog5424-csv", len(RFC5424))
    rows = list(csv.reader(io.StringIO(b"".join(lines).decode(), newline="")))
    assert sorted(rows) == sorted(row for _, _, row in RFC5424)
    srv.failed("syslog5424-csv", [line for line, _ in RFC5424_BAD], [why for _, why in RFC5424_BAD])


# --- the general processing template -----------------------------------------------------------

def test_process_record_template_is_the_identity_for_text_and_fails_other_bytes(srv):
    text = [b'{"user": 1, "event": "click"}\n', "plain text, accents é ü\n".encode(), b"  spaces kept  \n"]
    binary = b"\x00\xff\xfe not text\n"
    srv.put("process", text + [binary])
    assert sorted(srv.wait_lines("process", len(text))) == sorted(text)
    srv.failed("process", [binary], ["record is not UTF-8 (at byte 1)"])


# --- the docs ----------------------------------------------------------------------------------

def test_docs_give_every_blueprint_a_config_that_names_its_module_by_the_lambda_arn():
    """docs/transforms.md's Blueprints section: one `yaml part` block per module, whose stream's
    LambdaArn is the `functions:` key that maps to the module. (tests/docs/main.rs loads them.)"""
    documented = []
    for block in doc_blocks("docs/transforms.md", "yaml part"):
        config = yaml.safe_load(block)
        if "functions" not in config:
            continue
        (stream,) = config["delivery_streams"]
        processors = stream["ExtendedS3DestinationConfiguration"]["ProcessingConfiguration"]["Processors"]
        (lambda_arn,) = [p["ParameterValue"] for p in processors[0]["Parameters"] if p["ParameterName"] == "LambdaArn"]
        assert list(config["functions"]) == [lambda_arn], block
        documented.append(config["functions"][lambda_arn])
    assert sorted(documented) == sorted(f"transforms/dist/{m}.wasm" for m in BLUEPRINTS.values())


# --- throughput (HYDRANT_BENCH=1) --------------------------------------------------------------

BENCH_LINES = {  # stream -> one realistic line of its format (~200 B)
    "apache-json": APACHE[1][0], "apache-csv": APACHE[1][0],
    "syslog-json": RFC3164[2][0], "syslog-csv": RFC3164[2][0],
    "syslog5424-json": RFC5424[2][0], "syslog5424-csv": RFC5424[2][0],
    "process": APACHE[1][0],
}


def histogram(h, name, stream):
    """The _sum and _count of a histogram (or summary) metric of one stream."""
    text = h.urlopen(h.endpoint + "/metrics", timeout=5).read().decode()
    out = {}
    for line in text.splitlines():
        for part in ("_sum", "_count"):
            if line.startswith(f"{name}{part}{{") and f'stream="{stream}"' in line:
                out[part] = out.get(part, 0.0) + float(line.rsplit(" ", 1)[1])
    return out.get("_sum", 0.0), out.get("_count", 0.0)


@pytest.mark.skipif(os.environ.get("HYDRANT_BENCH") != "1", reason="a benchmark: set HYDRANT_BENCH=1")
def test_blueprint_throughput(srv):
    """Per module, after a warm-up batch: BENCH_RECORDS lines (default 20000) through the stream
    (1 MiB invocations), BENCH_ROUNDS times (default 5; the best round is the figure: other
    work on the machine only ever slows a round down), records/s =
    records / the time spent in the module's invocations (hydrant_execute_processing_duration_seconds,
    measured around `Transform::invoke` in the host: request encoding, the guest, response
    decoding)."""
    total = int(os.environ.get("BENCH_RECORDS", "20000"))
    rounds = int(os.environ.get("BENCH_ROUNDS", "5"))
    print()
    for stream, line in BENCH_LINES.items():
        # Warm-up: the first invocation also instantiates the module.
        warm = srv.h.metric("hydrant_succeed_processing_records_total", stream) + 10
        srv.put(stream, [line] * 10)
        wait_for(lambda: srv.h.metric("hydrant_succeed_processing_records_total", stream) >= warm,
                 timeout=60, what=f"the warm-up batch of {stream}")
        rates = []
        for _ in range(rounds):
            before_sum, before_count = histogram(srv.h, "hydrant_execute_processing_duration_seconds", stream)
            before_ok = srv.h.metric("hydrant_succeed_processing_records_total", stream)
            for start in range(0, total, 500):
                srv.put(stream, [line] * min(500, total - start))
            wait_for(lambda: srv.h.metric("hydrant_succeed_processing_records_total", stream) - before_ok >= total,
                     timeout=300, interval=0.5, what=f"{total} records through {stream}")
            seconds, calls = histogram(srv.h, "hydrant_execute_processing_duration_seconds", stream)
            seconds -= before_sum
            calls -= before_count
            rates.append(total / seconds)
        best = max(rates)
        print(f"{BLUEPRINTS[stream]:24} {len(line):4} B  {total} records x {rounds}, {calls:.0f} invocations each  "
              f"best {best / 1000:5.0f} k records/s {best * len(line) / 1e6:6.1f} MB/s  "
              f"(rounds: {', '.join(f'{r / 1000:.0f} k' for r in rates)})")
