"""Encryption end to end: client-side envelope encryption of delivered objects (docs/encryption.md)
read back by `hydrant decrypt` and by an independent decryptor written from the spec
(decrypt_spec.py); tampering detected by both; key rotation; the log encrypted at rest; and the
SSE-KMS / SSE-S3 headers Hydrant sends to an S3 store (seen by a recording stub server)."""

import base64
import http.server
import json
import os
import struct
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from pathlib import Path

import pytest

from conftest import (
    KEY_SUFFIX,
    assert_exactly_once,
    config_yaml,
    hydrant_bin,
    list_objects,
    make_records,
    reconfigure,
    s3_stream,
    wait_for,
)

HERE = Path(__file__).resolve().parent
DECRYPT_SPEC = HERE / "decrypt_spec.py"
CHUNK = 65536


def header(data):
    """(magic, version, chunk_size, key_id, header length) of an encrypted object."""
    magic, version, chunk_size, n = data[:4], data[4], *struct.unpack(">IB", data[5:10])
    return magic, version, chunk_size, data[10:10 + n].decode("ascii", "replace"), 78 + n


def hydrant_decrypt(data, *key_args):
    args = [hydrant_bin(), "decrypt"]
    for k in key_args:
        args += ["--key-file", str(k)]
    return subprocess.run(args, input=data, capture_output=True, timeout=60)


def spec_decrypt(data, key_file, tmp_path):
    obj = tmp_path / f"obj-{uuid.uuid4().hex}"
    out = tmp_path / f"out-{uuid.uuid4().hex}"
    obj.write_bytes(data)
    r = subprocess.run([sys.executable, str(DECRYPT_SPEC), str(key_file), str(obj), str(out)],
                       capture_output=True, timeout=60)
    return r.returncode, (out.read_bytes() if out.exists() else None), r.stderr.decode(errors="replace")


def gunzip(data):
    r = subprocess.run(["gzip", "-d", "-c"], input=data, capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout


def big_records(n, tag):
    """Unique, partly random records (so the gzip output spans several 64 KiB chunks)."""
    run = uuid.uuid4().hex
    return [json.dumps({"tag": tag, "run": run, "i": i, "rnd": os.urandom(500).hex()}).encode() + b"\n"
            for i in range(n)]


class Keys:
    def __init__(self, tmp_path, monkeypatch):
        self.k1 = os.urandom(32)
        self.k2 = os.urandom(32)
        self.k1_file = tmp_path / "k1.key"
        self.k1_file.write_bytes(self.k1)  # raw 32 bytes
        self.k2_file = tmp_path / "k2.key"
        self.k2_file.write_text(base64.b64encode(self.k2).decode() + "\n")  # base64 text
        self.env = "HYD_T2_KEY_" + uuid.uuid4().hex[:8].upper()
        monkeypatch.setenv(self.env, base64.b64encode(self.k2).decode())

    def hydrant(self, active="k1", with_k2=False):
        """The stream's hydrant: members that encrypt its objects with these keys."""
        keys = [{"id": "k1", "file": str(self.k1_file)}]
        if with_k2:
            keys.append({"id": "k2", "base64": f"${{{self.env}}}"})
        return {"encryption": {"active_key": active, "keys": keys}}


@pytest.fixture
def keys(tmp_path, monkeypatch):
    return Keys(tmp_path, monkeypatch)


def wait_objects(s3, bucket, prefix, count=1, timeout=30):
    return wait_for(lambda: (lambda ks: ks if len(ks) >= count else None)(list_objects(s3, bucket, prefix)),
                    timeout=timeout, what=f"{count} objects under {prefix}")


def get(s3, bucket, key):
    return s3.get_object(Bucket=bucket, Key=key)


def decrypt_all(s3, bucket, prefix, keys, tmp_path, expect_key_id=None):
    """Every object under prefix through both decryptors, gunzipped; returns the joined records."""
    out = b""
    for key in list_objects(s3, bucket, prefix):
        data = get(s3, bucket, key)["Body"].read()
        magic, version, chunk_size, key_id, hlen = header(data)
        assert (magic, version, chunk_size) == (b"HYDE", 1, CHUNK), (key, magic, version, chunk_size)
        if expect_key_id:
            assert key_id == expect_key_id, (key, key_id)
        key_file = keys.k1_file if key_id == "k1" else keys.k2_file
        r = hydrant_decrypt(data, f"k1={keys.k1_file}", f"k2={keys.k2_file}")
        assert r.returncode == 0, f"hydrant decrypt failed on {key}: {r.stderr.decode(errors='replace')}"
        code, spec_plain, err = spec_decrypt(data, key_file, tmp_path)
        assert code == 0, f"decrypt_spec.py failed on {key}: {err}"
        assert spec_plain == r.stdout, f"the two decryptors disagree on {key}"
        n = len(r.stdout)
        assert len(data) == hlen + n + 16 * (n // chunk_size + 1), f"{key}: size does not follow the spec"
        out += gunzip(r.stdout) if key.endswith(".gz") else r.stdout
    return out


def test_objects_of_an_encrypted_gzip_stream_decrypt_with_both_decryptors_to_exactly_the_records(
        s3, bucket, hydrant_factory, keys, tmp_path):
    h = hydrant_factory(config_yaml(s3_stream(
        "enc", bucket, prefix="e/", compression="GZIP", shards=1, hydrant=keys.hydrant()), s3=s3))
    records = big_records(450, "enc")
    out = h.firehose().put_record_batch(DeliveryStreamName="enc", Records=[{"Data": r} for r in records])
    assert out["FailedPutCount"] == 0 and out["Encrypted"] is False  # objects encrypted, not the log
    wait_objects(s3, bucket, "e/")
    time.sleep(0.5)
    objs = list_objects(s3, bucket, "e/")
    assert len(objs) == 1, objs
    key = objs[0]
    assert key.endswith(".gz") and KEY_SUFFIX.fullmatch(key[len("e/") + 14:]), key
    obj = get(s3, bucket, key)
    data = obj["Body"].read()
    # An encrypted object is not a gzip stream: no Content-Encoding that would make a client
    # try to gunzip it; and no plaintext in it.
    assert obj.get("ContentEncoding") in (None, ""), obj.get("ContentEncoding")
    assert data[:4] == b"HYDE" and records[0][:30] not in data
    assert len(data) > 3 * CHUNK, f"expected several chunks, got {len(data)} bytes"
    plain = decrypt_all(s3, bucket, "e/", keys, tmp_path, expect_key_id="k1")
    assert plain == b"".join(records)


@pytest.fixture
def encrypted_object(s3, bucket, hydrant_factory, keys):
    h = hydrant_factory(config_yaml(s3_stream(
        "tamper", bucket, prefix="t/", compression="GZIP", shards=1, hydrant=keys.hydrant()), s3=s3))
    records = big_records(300, "tamper")
    assert h.firehose().put_record_batch(DeliveryStreamName="tamper", Records=[{"Data": r} for r in records])[
        "FailedPutCount"] == 0
    (key,) = wait_objects(s3, bucket, "t/")
    return get(s3, bucket, key)["Body"].read(), records


def test_flipping_any_one_byte_or_cutting_the_object_makes_both_decryptors_fail_loudly(
        encrypted_object, keys, tmp_path):
    data, records = encrypted_object
    _, _, _, key_id, hlen = header(data)
    assert key_id == "k1" and hlen == 80
    # The untouched object decrypts (so the failures below are the tampering's doing).
    ok = hydrant_decrypt(data, keys.k1_file)
    assert ok.returncode == 0 and gunzip(ok.stdout) == b"".join(records)
    positions = {
        "magic": 0, "version": 4, "chunk size": 7, "key id length": 9, "key id": 10, "nonce prefix": 13,
        "wrap nonce": 20, "wrapped key": 50, "wrapped key tag": hlen - 1, "first chunk": hlen,
        "first chunk tag": hlen + CHUNK + 15, "second chunk": hlen + CHUNK + 16 + 1000,
        "last chunk": len(data) - 20, "last byte": len(data) - 1,
    }
    variants = {}
    for what, pos in positions.items():
        assert pos < len(data), what
        for bit in (0x01, 0x80):
            bad = bytearray(data)
            bad[pos] ^= bit
            variants[f"{what} (byte {pos} ^ {bit:#x})"] = bytes(bad)
    variants["cut at a chunk boundary"] = data[:hlen + CHUNK + 16]
    variants["cut inside a chunk"] = data[:hlen + CHUNK + 16 + 100]
    variants["cut inside the header"] = data[:hlen - 1]
    variants["one byte appended"] = data + b"\x00"
    variants["a chunk appended again"] = data + data[hlen:hlen + CHUNK + 16]
    variants["empty"] = b""
    failures = []
    for what, bad in variants.items():
        r = hydrant_decrypt(bad, keys.k1_file)
        if r.returncode == 0 or not r.stderr.strip():
            failures.append(f"hydrant decrypt accepted {what} (exit {r.returncode}, stderr {r.stderr[:200]!r})")
        elif r.stdout and gunzip_ok(r.stdout) == b"".join(records):
            failures.append(f"hydrant decrypt failed on {what} but wrote the whole plaintext anyway")
        code, out, err = spec_decrypt(bad, keys.k1_file, tmp_path)
        if code == 0 or out is not None or not err.strip():
            failures.append(f"decrypt_spec.py accepted {what} (exit {code})")
    assert not failures, "\n".join(failures)
    # A wrong key is refused with a message naming the object's key id.
    wrong = tmp_path / "wrong.key"
    wrong.write_bytes(os.urandom(32))
    r = hydrant_decrypt(data, wrong)
    assert r.returncode != 0 and b"k1" in r.stderr, r.stderr


def gunzip_ok(data):
    r = subprocess.run(["gzip", "-d", "-c"], input=data, capture_output=True, timeout=60)
    return r.stdout if r.returncode == 0 else None


def test_key_rotation_keeps_old_objects_readable_and_names_the_new_key_in_new_objects(
        s3, bucket, hydrant_factory, keys, tmp_path):
    def config(active, with_k2):
        return config_yaml(s3_stream(
            "rot", bucket, prefix="r/", compression="GZIP", shards=1, hydrant=keys.hydrant(active, with_k2)), s3=s3)

    h = hydrant_factory(config("k1", False))
    old = make_records(100, tag="before-rotation")
    assert h.firehose().put_record_batch(DeliveryStreamName="rot", Records=[{"Data": r} for r in old])[
        "FailedPutCount"] == 0
    (old_key,) = wait_objects(s3, bucket, "r/")
    assert h.stop() == 0
    reconfigure(h, config("k2", True))
    h.start()
    new = make_records(100, tag="after-rotation")
    assert h.firehose().put_record_batch(DeliveryStreamName="rot", Records=[{"Data": r} for r in new])[
        "FailedPutCount"] == 0
    keys_now = wait_objects(s3, bucket, "r/", count=2)
    assert len(keys_now) == 2, keys_now
    (new_key,) = [k for k in keys_now if k != old_key]
    old_data = get(s3, bucket, old_key)["Body"].read()
    new_data = get(s3, bucket, new_key)["Body"].read()
    assert header(old_data)[3] == "k1", header(old_data)
    assert header(new_data)[3] == "k2", header(new_data)
    # Both objects decrypt with the ring (hydrant decrypt with ID=PATH for both keys, and the spec
    # decryptor with each object's key), to exactly their records.
    all_plain = decrypt_all(s3, bucket, "r/", keys, tmp_path)
    assert sorted(all_plain.splitlines(keepends=True)) == sorted(old + new)
    # The new object cannot be read with only the old key, and the error names the key it needs.
    r = hydrant_decrypt(new_data, f"k1={keys.k1_file}")
    assert r.returncode != 0 and b"k2" in r.stderr, r.stderr
    # The old object still decrypts with k1 alone (its header names k1).
    r = hydrant_decrypt(old_data, keys.k1_file)
    assert r.returncode == 0 and sorted(gunzip(r.stdout).splitlines(keepends=True)) == sorted(old)


def shard_files(h, stream):
    files = sorted((h.data_dir / "streams" / stream).glob("shard-*/**/*"))
    return [f for f in files if f.is_file()]


def test_log_encryption_at_rest_keeps_plaintext_out_of_segments_and_still_delivers_after_a_crash(
        s3, bucket, hydrant_factory, keys, tmp_path):
    enc = s3_stream("atrest", bucket, prefix="a/", compression="GZIP", shards=2, interval=3, hydrant=keys.hydrant())
    # DeliveryStreamEncryptionConfigurationInput is a member of the stream, not of its destination.
    enc.members["DeliveryStreamEncryptionConfigurationInput"] = {"KeyType": "CUSTOMER_MANAGED_CMK"}
    plain_stream = s3_stream("clear", bucket, prefix="c/", interval=3, shards=1)
    h = hydrant_factory(config_yaml(enc, plain_stream, s3=s3))
    fh = h.firehose()
    d = fh.describe_delivery_stream(DeliveryStreamName="atrest")["DeliveryStreamDescription"]
    assert d["DeliveryStreamEncryptionConfiguration"]["Status"] == "ENABLED", d.get("DeliveryStreamEncryptionConfiguration")
    marker = "PLAINTEXT-" + uuid.uuid4().hex
    records = [f'{{"secret":"{marker}-{i}","pad":"{"z" * 50}"}}\n'.encode() for i in range(60)]
    out = fh.put_record_batch(DeliveryStreamName="atrest", Records=[{"Data": r} for r in records[:50]])
    assert out["FailedPutCount"] == 0 and out["Encrypted"] is True, out
    for r in records[50:]:
        one = fh.put_record(DeliveryStreamName="atrest", Record={"Data": r})
        assert one["Encrypted"] is True, one
    clear_marker = "CLEARTEXT-" + uuid.uuid4().hex
    assert fh.put_record(DeliveryStreamName="clear", Record={"Data": f"{clear_marker}\n".encode()})[
        "Encrypted"] is False
    # Crash before the interval ends: the records exist only in the (encrypted) log.
    h.kill()
    assert list_objects(s3, bucket, "a/") == []
    files = shard_files(h, "atrest")
    assert files, "no shard files found"
    for f in files:
        content = f.read_bytes()
        assert marker.encode() not in content and b'"secret"' not in content, f"plaintext in {f}"
    # The check can see plaintext: the unencrypted stream's segment holds its record as is.
    assert any(clear_marker.encode() in f.read_bytes() for f in shard_files(h, "clear")), \
        "control: the unencrypted stream's record should be visible in its segment"
    h.start()
    wait_for(lambda: len(decrypt_all_quiet(s3, bucket, "a/", keys, tmp_path)) >= len(records), timeout=30,
             what="the records of the encrypted log delivered after the restart")
    got = decrypt_all(s3, bucket, "a/", keys, tmp_path, expect_key_id="k1")
    counts = __import__("collections").Counter(got.splitlines())
    assert_exactly_once(counts, records)


def decrypt_all_quiet(s3, bucket, prefix, keys, tmp_path):
    try:
        return decrypt_all(s3, bucket, prefix, keys, tmp_path).splitlines()
    except Exception:  # noqa: BLE001 - not there yet
        return []


def test_error_output_objects_of_an_encrypted_stream_are_encrypted_too(s3, bucket, hydrant_factory, keys, tmp_path):
    """A record that fails partitioning lands in the error output with its bytes in rawData: with
    hydrant.encryption on, that object must not carry the plaintext either."""
    jq = ("MetadataExtraction", {"MetadataExtractionQuery": "{c: .c}", "JsonParsingEngine": "JQ-1.6"})
    h = hydrant_factory(config_yaml(s3_stream(
        "encerr", bucket, prefix="p/c=!{partitionKeyFromQuery:c}/", error_prefix="err/!{firehose:error-output-type}/",
        partitioning=True, processors=[jq], shards=1, hydrant=keys.hydrant()), s3=s3))
    secret = f"not json, secret {uuid.uuid4().hex}".encode()
    good = b'{"c":"x","v":1}\n'
    assert h.firehose().put_record_batch(DeliveryStreamName="encerr", Records=[{"Data": good}, {"Data": secret}])[
        "FailedPutCount"] == 0
    wait_objects(s3, bucket, "p/")
    (err_key,) = wait_objects(s3, bucket, "err/")
    assert err_key.startswith("err/partitioning-failed/"), err_key
    data_obj = get(s3, bucket, list_objects(s3, bucket, "p/")[0])["Body"].read()
    assert data_obj[:4] == b"HYDE", "the data object is encrypted"
    err_obj = get(s3, bucket, err_key)["Body"].read()
    assert base64.b64encode(secret) not in err_obj and secret not in err_obj, (
        f"the error output object {err_key} holds the failed record in plaintext (rawData), although the "
        f"stream encrypts its objects: {err_obj[:200]!r}")
    assert err_obj[:4] == b"HYDE", err_key
    r = hydrant_decrypt(err_obj, keys.k1_file)
    assert r.returncode == 0 and base64.b64decode(json.loads(r.stdout.splitlines()[0])["rawData"]) == secret


# ---------------------------------------------------------------------------------------------
# Server-side encryption headers, seen by a recording S3 stub.

class RecordingS3(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        self.requests = []
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), RecordingHandler)


class RecordingHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _record(self, body):
        with self.server.lock:
            self.server.requests.append((self.command, urllib.parse.unquote(self.path), {k.lower(): v for k, v in self.headers.items()}, body))

    def do_PUT(self):  # noqa: N802
        body = self._body()
        self._record(body)
        self.send_response(200)
        self.send_header("ETag", f'"{uuid.uuid4().hex}"')
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_HEAD(self):  # noqa: N802
        self._record(b"")
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self):  # noqa: N802
        self._record(b"")
        body = b'<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><KeyCount>0</KeyCount></ListBucketResult>'
        self.send_response(200)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def recording_s3():
    server = RecordingS3()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


KMS_ARN = "arn:aws:kms:us-east-1:123456789012:key/abc"


def test_sse_kms_and_sse_s3_settings_send_their_headers_on_every_put(recording_s3, hydrant_factory):
    port = recording_s3.server_address[1]
    store = {"type": "s3", "endpoint": f"http://127.0.0.1:{port}", "region": "us-east-1",
             "access_key_id": "AKIDSTUB", "secret_access_key": "stub", "allow_http": True}
    jq = ("MetadataExtraction", {"MetadataExtractionQuery": "{c: .c}", "JsonParsingEngine": "JQ-1.6"})
    h = hydrant_factory(config_yaml(
        s3_stream("kms", "bkt", prefix="kms/c=!{partitionKeyFromQuery:c}/", store="stub", partitioning=True,
                  processors=[jq], shards=1, error_prefix="kmserr/!{firehose:error-output-type}/",
                  EncryptionConfiguration={"KMSEncryptionConfig": {"AWSKMSKeyARN": KMS_ARN}}),
        s3_stream("aes", "bkt", prefix="aes/", store="stub", compression="GZIP",
                  hydrant={"server_side_encryption": "AES256"}),
        s3_stream("none", "bkt", prefix="none/", store="stub"),
        object_stores={"stub": store}))
    fh = h.firehose()
    for stream, recs in (("kms", [b'{"c":"a"}\n', b'{"c":"b"}\n', b"not json: to the error output\n"]),
                         ("aes", [b"aes record\n"]), ("none", [b"plain record\n"])):
        assert fh.put_record_batch(DeliveryStreamName=stream, Records=[{"Data": r} for r in recs])[
            "FailedPutCount"] == 0

    def puts():
        with recording_s3.lock:
            return [(p, hd) for m, p, hd, _ in recording_s3.requests if m == "PUT"]

    def ready():
        paths = [p for p, _ in puts()]
        want = ["/bkt/kms/c=a/", "/bkt/kms/c=b/", "/bkt/kmserr/partitioning-failed/", "/bkt/aes/", "/bkt/none/"]
        return all(any(p.startswith(w) for p in paths) for w in want)

    wait_for(ready, timeout=30, what=f"PUTs of every stream; seen {[p for p, _ in puts()]}")
    for path, hd in puts():
        if path.startswith(("/bkt/kms/", "/bkt/kmserr/")):
            assert hd.get("x-amz-server-side-encryption") == "aws:kms", (path, hd)
            assert hd.get("x-amz-server-side-encryption-aws-kms-key-id") == KMS_ARN, (path, hd)
        elif path.startswith("/bkt/aes/"):
            assert hd.get("x-amz-server-side-encryption") == "AES256", (path, hd)
            assert "x-amz-server-side-encryption-aws-kms-key-id" not in hd, (path, hd)
            assert hd.get("content-encoding") == "gzip", (path, hd)
        elif path.startswith("/bkt/none/"):
            assert "x-amz-server-side-encryption" not in hd, (path, hd)
        else:
            raise AssertionError(f"unexpected PUT {path}")
