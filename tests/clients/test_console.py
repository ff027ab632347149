"""The web console (docs/console.md) in a real browser: headless Chromium (Debian's, driven by
Debian's chromedriver through Selenium; nothing is downloaded) opens /console/ of the real
binary while boto3 loads one stream, another stream's S3 endpoint does not answer, and a third
stream's transform fails and drops some records. The tests read the numbers off the
page and compare them with what was put, find the failing stream on top and the error document
with its code and record, send a test record and find it in S3, sign writes with an access key
when `auth` is on, and read each cluster node's leases. Screenshots go to
$HYDRANT_TEST_ARTIFACTS (default tests/clients/artifacts/).

`test_console_starts_a_replay` drives the replay form; it needs the replay operations
(Hydrant_20261208.StartReplay and friends) and fails until they are served."""

import collections
import json
import os
import re
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from conftest import (
    ROOT,
    TESTDATA_WAT,
    Hydrant,
    config_yaml,
    delivered_lines,
    free_port,
    lambda_processor,
    module_server,
    new_bucket,
    s3_client,
    s3_stream,
    wait_for,
)

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is installed by scripts/services.sh")

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ARTIFACTS = Path(os.environ.get("HYDRANT_TEST_ARTIFACTS") or ROOT / "tests" / "clients" / "artifacts")
VERDICT = str(TESTDATA_WAT / "verdict.wat")  # first byte f: ProcessingFailed, d: Dropped, else Ok
FAILED, DROPPED, OK = 10, 5, 15
HISTORY = [f"history-{i}" for i in range(25)]  # what the replay test replays


def lines_under(s3, bucket, prefix):
    """How often each delivered line (without its newline) is under prefix."""
    return collections.Counter(line for line, _ in delivered_lines(s3, bucket, prefix))


def shot(driver, name):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"console-{name}.png"
    driver.save_screenshot(str(path))
    return path


@pytest.fixture(scope="module")
def driver():
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        if os.environ.get("HYDRANT_REQUIRE_SERVICES") == "1":
            pytest.fail("chromium and chromedriver are installed by scripts/services.sh")
        pytest.skip("chromium and chromedriver are installed by scripts/services.sh")
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,1000", "--no-first-run", "--disable-extensions"):
        options.add_argument(arg)
    d = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    d.set_page_load_timeout(30)
    yield d
    d.quit()


def page(driver, js):
    """The value of a JS expression on the page."""
    return driver.execute_script(f"return ({js});")


def wait_page(driver, js, what, timeout=30):
    """Waits until the JS expression is truthy on the page; returns its value."""
    return wait_for(lambda: page(driver, js), timeout=timeout, interval=0.25, what=what)


def number(text):
    return float(text.replace(",", "").replace("\u202f", "").replace("\xa0", "")) if text not in (None, "–") else None


def field(driver, stream, name):
    return page(driver, f"(document.querySelector('.card[data-stream=\"{stream}\"] [data-field=\"{name}\"]') || {{}}).textContent")


def open_stream(driver, endpoint, name):
    """Opens a stream's page and waits until it shows that stream."""
    driver.get(f"{endpoint}/console/#/stream/firehose/{name}")
    wait_page(driver, f"document.querySelector('main h1') && document.querySelector('main h1').textContent === '{name}' "
                      "&& document.getElementById('shards')", f"{name}'s page")


class Load:
    """boto3 PutRecordBatch of 100 records at a time into `stream`, in a thread, counting what
    was acknowledged."""

    def __init__(self, srv, stream):
        self.srv, self.stream, self.acked, self.stop = srv, stream, 0, threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        fh = self.srv.h.firehose()
        while not self.stop.is_set():
            records = [{"Data": f"load-{uuid.uuid4().hex}\n".encode()} for _ in range(100)]
            out = fh.put_record_batch(DeliveryStreamName=self.stream, Records=records)
            self.acked += len(records) - out["FailedPutCount"]
            time.sleep(0.1)

    def finish(self):
        self.stop.set()
        self.thread.join(timeout=30)
        return self.acked


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    def streams(bucket):
        return [
            s3_stream("load", bucket, prefix="load/", shards=2),
            s3_stream("broken", bucket, prefix="broken/", shards=1, store="dead"),
            s3_stream("verdict", bucket, prefix="verdict/", shards=1, processors=[lambda_processor(VERDICT)],
                      error_prefix="err/verdict/!{firehose:error-output-type}/"),
            s3_stream("quiet", bucket, prefix="quiet/", shards=1),
            s3_stream("history", bucket, prefix="history/", shards=2),
        ]

    # An S3 endpoint where nothing listens: the stream's delivery fails and is retried.
    dead = {"type": "s3", "endpoint": f"http://127.0.0.1:{free_port()}", "region": "us-east-1",
            "access_key_id": "k", "secret_access_key": "s", "allow_http": True}
    settings = {"object_stores": {"dead": dead}}
    with module_server(tmp_path_factory, "console", streams, settings=settings, timeout=120) as srv:
        srv.put("broken", [b"waits in the log\n"] * 20)
        verdicts = ([f"fail-{i}\n".encode() for i in range(FAILED)] + [f"drop-{i}\n".encode() for i in range(DROPPED)]
                    + [f"ok-{i}\n".encode() for i in range(OK)])
        srv.put("verdict", verdicts)
        srv.put("history", [f"{line}\n".encode() for line in HISTORY])
        yield srv


@pytest.fixture(scope="module")
def load(srv):
    load = Load(srv, "load")
    yield load
    load.finish()


def test_overview_puts_the_failing_stream_on_top_with_the_numbers_put(srv, load, driver):
    driver.get(srv.h.endpoint + "/console")  # redirected to /console/
    assert driver.current_url.endswith("/console/"), driver.current_url
    wait_page(driver, "document.querySelectorAll('.grid .card').length === 5", "five stream cards")
    first = wait_page(driver, "document.querySelector('.grid .card [data-status]').dataset.status === 'DELIVERY_FAILING' "
                              "&& document.querySelector('.grid .card').dataset.stream", "a failing stream on top")
    assert first == "broken"
    card_text = page(driver, "document.querySelector('.grid .card').innerText")
    assert "Delivery failing" in card_text  # in words, not only in colour
    assert "delivery failing" in field(driver, "broken", "last_error")
    assert number(field(driver, "broken", "backlog")) >= 20  # log positions: a seal takes one too
    assert number(field(driver, "broken", "freshness").split()[0]) > 0
    # The chart gets a point every 10 s: the load shows as records/s within two readings.
    rate = wait_for(lambda: (number(field(driver, "load", "records_per_s")) or 0) > 0 and field(driver, "load", "records_per_s"),
                    timeout=30, interval=0.5, what="a records/s point of the load")
    assert number(rate) > 0
    assert page(driver, "document.querySelectorAll('.card[data-stream=\"load\"] .uplot canvas').length") >= 1
    shot(driver, "overview")
    acked = load.finish()
    assert acked > 0
    # What the page says came in is what was acknowledged, once the next poll shows it.
    wait_for(lambda: number(field(driver, "load", "records_in")) == acked, timeout=15, interval=0.5,
             what=f"records in = {acked} on the page (it says {field(driver, 'load', 'records_in')})")
    delivered = wait_for(lambda: number(field(driver, "load", "records_out")) == acked and acked, timeout=20,
                         interval=0.5, what="every record delivered on the page")
    assert delivered == acked
    # A phone: one column, nothing wider than the screen.
    driver.set_window_size(390, 844)
    try:
        time.sleep(0.6)
        assert page(driver, "document.documentElement.scrollWidth <= window.innerWidth + 1"), "page wider than a phone"
        shot(driver, "overview-phone")
    finally:
        driver.set_window_size(1280, 1000)


def test_stream_page_shows_the_error_document_the_failed_record_and_the_transform_counts(srv, driver):
    open_stream(driver, srv.h.endpoint, "verdict")
    counts = wait_for(lambda: (lambda c: c if c == [OK, DROPPED, FAILED] else None)(
        [number(page(driver, f"document.querySelector('[data-field=\"transform_{k}\"]').textContent"))
         for k in ("ok", "dropped", "failed")]), timeout=20, interval=0.5, what="Ok/Dropped/ProcessingFailed counts")
    assert counts == [OK, DROPPED, FAILED]
    wait_page(driver, "document.querySelector('#errors .error-doc')", "an error document", timeout=20)
    assert page(driver, "document.querySelector('#errors [data-error-type]').dataset.errorType") == "processing-failed"
    code = page(driver, "document.querySelector('#errors [data-field=\"error_code\"]').textContent")
    assert code == "Lambda.ProcessingFailedStatus"
    driver.execute_script("document.querySelector('#errors details').open = true")
    record = page(driver, "document.querySelector('#errors [data-field=\"record\"]').textContent")
    assert re.fullmatch(r"fail-\d+\n?", record), record
    definition = page(driver, "document.getElementById('definition').textContent")
    assert "DeliveryStreamName: verdict" in definition and "verdict.wat" in definition
    objects = wait_page(driver, "[...document.querySelectorAll('#objects td.key')].map(t => t.textContent)",
                        "a delivered object", timeout=20)
    assert all(k.startswith("verdict/") for k in objects), objects
    shot(driver, "stream-verdict")
    # The failing stream's page names the error and the shard that waits.
    open_stream(driver, srv.h.endpoint, "broken")
    problem = wait_page(driver, "(document.querySelector('#shards [data-shard] .error') || {}).textContent", "the shard's problem")
    assert "delivery failing" in problem
    assert number(page(driver, "document.querySelector('#shards [data-shard] td:nth-child(4)').textContent")) >= 20
    shot(driver, "stream-broken")


def test_send_a_test_record_is_delivered(srv, driver):
    open_stream(driver, srv.h.endpoint, "quiet")
    box = wait_for(lambda: driver.find_elements("id", "test-record-data"), timeout=15, what="the test-record form")[0]
    text = f"console-test-{uuid.uuid4().hex}"
    box.clear()
    box.send_keys(text)
    driver.find_element("css selector", "#test-record-form button[type=submit]").click()
    result = wait_page(driver, "(t => t.startsWith('stored') && t)(document.getElementById('test-record-result').textContent)",
                       "the record stored")
    assert "RecordId" in result
    lines = wait_for(lambda: (lambda got: got if got[text] else None)(
        lines_under(srv.s3, srv.bucket, "quiet/")), timeout=20, what="the test record in S3")
    assert lines[text] == 1
    wait_page(driver, "document.querySelector('#objects td.key')", "the object listed", timeout=15)
    shot(driver, "test-record")
    # An unknown stream in the URL is a plain message, not a broken page.
    driver.get(srv.h.endpoint + "/console/#/stream/firehose/no-such-stream")
    assert "no-such-stream" in wait_page(driver, "document.getElementById('live').classList.contains('stale') && "
                                                 "document.getElementById('live').textContent", "the error shown")


@pytest.fixture(scope="module")
def signed(tmp_path_factory):
    """A server with auth: sigv4: a key that may only read and one that may put."""
    s3 = s3_client()
    bucket = new_bucket(s3)
    settings = {"auth": {"mode": "sigv4", "credentials": [
        {"access_key_id": "AKIDREADER", "secret_access_key": "reader-secret", "actions": ["firehose:Describe*", "firehose:List*"]},
        {"access_key_id": "AKIDPUTTER", "secret_access_key": "putter-secret", "actions": ["firehose:PutRecord"]}]}}
    h = Hydrant(tmp_path_factory.mktemp("console-signed"), config_yaml(s3_stream("signed", bucket, prefix="signed/", shards=1),
                                                                         s3=s3, **settings))
    h.start()
    yield h, s3, bucket
    h.kill()


def test_writes_need_a_key_with_the_permission_when_auth_is_on(signed, driver):
    h, s3, bucket = signed
    open_stream(driver, h.endpoint, "signed")
    box = wait_for(lambda: driver.find_elements("id", "test-record-data"), timeout=15, what="the test-record form")[0]
    assert page(driver, "!document.getElementById('key-button').hidden"), "the page asks for a key"
    driver.execute_script("sessionStorage.clear()")

    def send(text):
        box.clear()
        box.send_keys(text)
        driver.find_element("css selector", "#test-record-form button[type=submit]").click()
        return wait_page(driver, "(t => !t.startsWith('sending') && t)(document.getElementById('test-record-result').textContent)",
                         "an answer")

    assert "MissingAuthenticationToken" in send("no key")
    assert page(driver, "document.getElementById('key-dialog').open")

    def use_key(key_id, secret):
        form = driver.find_element("id", "key-form")
        for name, value in (("id", key_id), ("secret", secret)):
            box_ = form.find_element("name", name)
            box_.clear()
            box_.send_keys(value)
        form.find_element("css selector", "button[value=save]").click()
        wait_page(driver, "!document.getElementById('key-dialog').open", "the dialog closed")

    use_key("AKIDREADER", "reader-secret")
    denied = send("reader")
    assert "AccessDeniedException" in denied and "firehose:PutRecord" in denied, denied
    driver.find_element("id", "key-button").click()
    use_key("AKIDPUTTER", "wrong-secret")
    assert "InvalidSignatureException" in send("bad secret")
    driver.find_element("id", "key-button").click()
    use_key("AKIDPUTTER", "putter-secret")
    text = f"signed-{uuid.uuid4().hex}"
    assert send(text).startswith("stored")
    wait_for(lambda: lines_under(s3, bucket, "signed/")[text] == 1, timeout=20, what="the signed record in S3")
    # Reading needs no key: the overview and the stream pages are read-only.
    assert page(driver, "sessionStorage.getItem('hydrant-key') !== null")
    shot(driver, "signed")


def test_cluster_view_shows_each_nodes_leases(cluster, bucket, driver):
    """Three nodes on the NATS cluster share a stream of 3 shards: each node's console lists the
    leases it holds, together they hold each shard's delivery lease once, and one node's page
    shows every node and who holds each lease."""
    nodes = cluster([s3_stream("spread", bucket, prefix="spread/", shards=3)])

    def held():
        out = {}
        for node in nodes:
            view = json.loads(node.urlopen(node.endpoint + "/console/api/cluster", timeout=5).read())
            assert view["core"] == "jetstream" and view["node"] == node.workdir.name, view
            out[view["node"]] = sorted(int(l["shard"]) for l in view["leases"]
                                       if l["stream"] == "spread" and l["consumer"] == "delivery")
        return out

    owners = wait_for(lambda: (lambda h: h if sorted(sum(h.values(), [])) == [0, 1, 2] else None)(held()),
                      timeout=45, interval=0.5, what="each shard's lease held by one node")
    first = nodes[0]
    driver.get(first.endpoint + "/console/#/cluster")
    wait_page(driver, "(document.querySelector('[data-field=\"node\"]') || {}).textContent", "the node's name",
              timeout=15)
    # Retention holds leases of every shard too: n1 always lists some.
    rows = wait_page(driver, "[...document.querySelectorAll('#leases tbody tr')].map(r => r.innerText)",
                     "n1's leases", timeout=15)
    # The page lists every consumer's leases (retention holds some too): compare the delivery
    # consumer's, row by row.
    delivery = sorted(int(r.split("\t")[2]) for r in rows if r.split("\t")[1] == "delivery")
    assert delivery == owners["n1"], (rows, owners)
    assert page(driver, "document.querySelector('[data-field=\"node\"]').textContent") == "n1"
    # Any node's console shows the whole cluster: the three nodes, up, and who holds each shard's
    # delivery lease, as the owners themselves report it.
    nodes_rows = wait_page(driver, "(r => r.length === 3 && r)([...document.querySelectorAll('#nodes tbody tr')]"
                                   ".map(r => r.innerText))", "the three nodes", timeout=15)
    assert [r.split("\t")[:2] for r in nodes_rows] == [["n1", "✓ up"], ["n2", "✓ up"], ["n3", "✓ up"]], nodes_rows

    def cluster_wide():
        rows = page(driver, "[...document.querySelectorAll('#all-leases tbody tr')].map(r => r.innerText)") or []
        seen = {int(r.split("\t")[2]): r.split("\t")[3] for r in rows
                if r.split("\t")[:2] == ["spread", "delivery"]}
        return seen if seen == {shard: n for n, shards in owners.items() for shard in shards} else None

    wait_for(cluster_wide, timeout=15, interval=0.5, what="every shard's delivery lease with its owner on n1's page")
    shot(driver, "cluster")
    open_stream(driver, first.endpoint, "spread")
    shown = page(driver, "[...document.querySelectorAll('#shards [data-shard] td:nth-child(6)')].map(t => t.textContent)")
    assert shown == ["n1" if shard in owners["n1"] else "another node" for shard in range(3)], (shown, owners)


def test_the_console_is_on_the_admin_listener_only_when_there_is_one(hydrant_factory):
    """With admin_listen, /console/ is served there (with its API door) and not on listen, where
    producers connect; without it, on a loopback listen."""
    admin = free_port()
    h = hydrant_factory(config_yaml(admin_listen=f"127.0.0.1:{admin}"))
    page_html = urllib.request.urlopen(f"http://127.0.0.1:{admin}/console/", timeout=5).read().decode()
    assert "assets/console.js" in page_html
    overview = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{admin}/console/api/overview", timeout=5).read())
    assert overview["core"] == "embedded"
    for path in ("/console/", "/console/api/overview"):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(h.endpoint + path, timeout=5)
        assert refused.value.code in (400, 404), path
    plain = hydrant_factory(config_yaml(shutdown_timeout_seconds=5))
    assert urllib.request.urlopen(plain.endpoint + "/console/", timeout=5).status == 200


def test_console_starts_a_replay(srv, driver):
    """Needs the replay operations (Hydrant_20261208.*): fails until they are served."""
    wait_for(lambda: lines_under(srv.s3, srv.bucket, "history/") == collections.Counter(HISTORY), timeout=20,
             what="the history delivered once")
    open_stream(driver, srv.h.endpoint, "history")
    window = wait_page(driver, "(t => t && !t.includes('…') && t)((document.getElementById('replay-window') || {}).textContent)",
                       "the replay window")
    assert window.startswith("Replayable: from"), window
    oldest = float(page(driver, "document.getElementById('replay-window').dataset.oldest"))
    assert oldest <= time.time()
    prefix = f"replay/console-{uuid.uuid4().hex[:8]}/"
    box = driver.find_element("id", "replay-prefix")
    box.clear()
    box.send_keys(prefix)
    driver.find_element("css selector", "#replay-form button[type=submit]").click()
    result = wait_page(driver, "(t => !t.startsWith('starting') && t)(document.getElementById('replay-result').textContent)",
                       "the replay started")
    assert re.match(r"replay \S+ started", result), result
    replay_id = result.split()[1]
    status = wait_page(driver, f"(r => r && r.dataset.status === 'DONE' && r.dataset.status)"
                               f"(document.querySelector('#replays [data-replay=\"{replay_id}\"]'))",
                       "the replay done", timeout=60)
    assert status == "DONE"
    shot(driver, "replay")
    # The new prefix holds the range's records once.
    lines = wait_for(lambda: (lambda got: got if sum(got.values()) >= len(HISTORY) else None)(
        lines_under(srv.s3, srv.bucket, prefix)), timeout=30, what="replayed records under the new prefix")
    assert lines == collections.Counter(HISTORY), lines
