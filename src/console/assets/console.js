// Hydrant console: polls /console/api/* every few seconds (only while the tab is visible) and
// draws it. Writes go through the Firehose API's own handler at /console/api/call, signed with
// SigV4 by aws4fetch when the server checks signatures. No framework, no build step.
"use strict";

const POLL_MS = 5000;
const FIREHOSE = "Firehose_20150804.";
const HYDRANT = "Hydrant_20261208.";
// Okabe-Ito colours, each series also with its own dash pattern.
const SERIES = [
  { label: "records/s", stroke: "#0072B2", dash: [], scale: "rec" },
  { label: "in MB/s", stroke: "#E69F00", dash: [8, 4], scale: "mb" },
  { label: "delivered MB/s", stroke: "#009E73", dash: [2, 3], scale: "mb" },
];
const STATUS = {
  ACTIVE: ["✔", "Active", "ok"],
  ACTIVE_WITH_ERRORS: ["⚠", "Active, records in error output", "warn"],
  DELETING: ["⏏", "Deleting", "warn"],
  DELIVERY_FAILING: ["✖", "Delivery failing", "bad"],
  WORKER_DOWN: ["✖", "Worker down", "bad"],
  LOG_REFUSING: ["⛔", "Log refuses writes", "bad"],
};

const state = { overview: null, view: null, timer: null, charts: new Map(), cards: new Map() };
const main = document.getElementById("main");

// ---- small helpers ----------------------------------------------------------------------------

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c !== null && c !== undefined && c !== false) node.append(c instanceof Node ? c : String(c));
  }
  return node;
}
function fill(node, ...children) {
  node.textContent = "";
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) node.append(c);
}
const fmt = (n, digits = 0) =>
  n === null || n === undefined ? "–" : Number(n).toLocaleString(undefined, { maximumFractionDigits: digits });
const bytes = (n) => {
  if (n === null || n === undefined) return "–";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
  return `${fmt(n, i ? 1 : 0)} ${units[i]}`;
};
const when = (epochS) => (epochS ? new Date(epochS * 1000).toLocaleString() : "–");
const secs = (s) => (s < 1 ? "0 s" : s < 120 ? `${fmt(s)} s` : s < 7200 ? `${fmt(s / 60, 1)} min` : `${fmt(s / 3600, 1)} h`);
const last = (a) => (a && a.length ? a[a.length - 1] : null);
const nums = (pairs) =>
  el("dl", { class: "nums" }, pairs.map(([label, value, field]) =>
    el("div", {}, el("dt", {}, label), el("dd", { "data-field": field }, value))));
function statusBadge(status) {
  const [icon, text, cls] = STATUS[status] || ["?", status, "warn"];
  return el("span", { class: `status ${cls}`, "data-status": status }, `${icon} ${text}`);
}

async function getJson(path) {
  const res = await fetch(path, { cache: "no-store" });
  const body = await res.json().catch(() => ({ message: `HTTP ${res.status}` }));
  if (!res.ok) throw new Error(body.message || `HTTP ${res.status}`);
  return body;
}

// ---- writes: the API's own handler, signed when auth is on ------------------------------------

function credentials() {
  try { return JSON.parse(sessionStorage.getItem("hydrant-key") || "null"); } catch { return null; }
}

class ApiError extends Error {
  constructor(type, message) { super(`${type}: ${message}`); this.type = type; }
}

// `background`: a read the page makes by itself (it never opens the key dialog).
async function call(target, body, background = false) {
  const headers = { "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": target };
  const url = `${location.origin}/console/api/call`;
  const init = { method: "POST", headers, body: JSON.stringify(body) };
  let res;
  if (state.overview && state.overview.auth) {
    const key = credentials();
    if (!key) {
      if (!background) document.getElementById("key-dialog").showModal();
      throw new ApiError("MissingAuthenticationToken", "enter an access key first (button “Access key”)");
    }
    if (!window.crypto || !crypto.subtle) {
      throw new ApiError("InsecureContext", "signing needs WebCrypto: open the console over https or on localhost");
    }
    const client = new aws4fetch.AwsClient({
      // The signing name is the service the target calls: `hydrant` for replays.
      accessKeyId: key.id, secretAccessKey: key.secret,
      service: target.startsWith(HYDRANT) ? "hydrant" : "firehose",
      region: state.overview.region, retries: 0,
    });
    res = await client.fetch(url, init);
  } else {
    res = await fetch(url, init);
  }
  const text = await res.text();
  let json = {};
  try { json = text ? JSON.parse(text) : {}; } catch { json = { message: text }; }
  if (!res.ok) throw new ApiError(json.__type || `HTTP ${res.status}`, json.message || json.Message || text);
  return json;
}

function resultLine(node, ok, text) {
  node.className = `result ${ok ? "ok" : "bad"}`;
  node.textContent = text;
}

// ---- charts -------------------------------------------------------------------------------------

function chartData(series) {
  return [series.t, series.records_per_s, series.in_mb_per_s, series.out_mb_per_s];
}

// The last hour, whatever the points: a fresh server's first point does not stretch the axis.
function chart(id, host, series, height, legend = true) {
  const width = Math.max(200, host.clientWidth || 300);
  const data = chartData(series);
  const old = state.charts.get(id);
  if (old && old.root.isConnected && old.root.parentNode === host) {
    old.setData(data);
    if (Math.abs(old.width - width) > 4) old.setSize({ width, height });
    return;
  }
  if (old) old.destroy();
  const opts = {
    width, height,
    series: [{}, ...SERIES.map((s) => ({ label: s.label, stroke: s.stroke, dash: s.dash, width: 2, scale: s.scale }))],
    axes: [{}, { scale: "rec", size: 50 }, { scale: "mb", side: 1, size: 50, grid: { show: false } }],
    scales: { x: { time: true, range: () => { const now = Date.now() / 1000; return [now - 3600, now]; } }, rec: { range: (u, min, max) => [0, Math.max(1, max)] },
      mb: { range: (u, min, max) => [0, Math.max(0.01, max)] } },
    legend: { show: legend },
  };
  host.textContent = "";
  state.charts.set(id, new uPlot(opts, data, host));
}

// ---- views --------------------------------------------------------------------------------------

async function overviewView() {
  const o = await getJson("/console/api/overview");
  state.overview = o;
  document.getElementById("key-button").hidden = !o.auth;
  let grid = main.querySelector(".grid");
  if (!grid || main.dataset.view !== "overview") {
    main.textContent = "";
    main.dataset.view = "overview";
    state.cards.clear();
    main.append(el("h1", {}, "Streams"),
      el("p", { class: "muted legend-key" },
        `Last hour, a point every ${o.sample_seconds} s: records/s (blue, solid), MB/s in (orange, dashed), `
        + "MB/s delivered (green, dotted). The stream in trouble comes first."));
    grid = el("div", { class: "grid" });
    main.append(grid);
  }
  if (!o.streams.length) fill(grid, el("p", { class: "muted" }, "No streams yet."));
  for (const s of o.streams) {
    const id = `${s.kind}/${s.name}`;
    let card = state.cards.get(id);
    if (!card) {
      card = el("article", { class: "card", "data-stream": s.name, "data-kind": s.kind });
      card.body = el("div");
      card.plot = el("div", { class: "chart" });
      card.append(card.body, card.plot);
      state.cards.set(id, card);
    }
    const cls = STATUS[s.status] ? STATUS[s.status][2] : "warn";
    card.className = `card ${cls === "bad" ? "trouble" : cls === "warn" ? "warn" : ""}`;
    const href = `#/stream/${s.kind}/${encodeURIComponent(s.name)}`;
    fill(card.body, 
      el("h3", {}, el("a", { href }, s.name), " ", statusBadge(s.status)),
      el("div", { class: "sub" }, `${s.kind === "kinesis" ? "Kinesis stream" : `${s.destination} · ${s.origin}`} · ${s.shards} shard${s.shards === 1 ? "" : "s"}`),
      nums([
        ["records/s", fmt(last(s.series.records_per_s), 1), "records_per_s"],
        ["in MB/s", fmt(last(s.series.in_mb_per_s), 3), "in_mb_per_s"],
        ["delivered MB/s", fmt(last(s.series.out_mb_per_s), 3), "out_mb_per_s"],
        ["records in", fmt(s.totals.records_in), "records_in"],
        ["records delivered", fmt(s.totals.records_out), "records_out"],
        ["in error output", fmt(s.totals.error_records), "error_records"],
        ["data freshness", secs(s.freshness_seconds), "freshness"],
        ["backlog", fmt(s.backlog_records), "backlog"],
      ]),
      s.last_error ? el("div", { class: "error", "data-field": "last_error" }, s.last_error) : null,
    );
    grid.append(card); // appending moves it: the cards follow the server's order
    chart(`o:${id}`, card.plot, s.series, 120, false);
  }
  for (const [id, card] of state.cards) {
    if (!o.streams.some((s) => `${s.kind}/${s.name}` === id)) { card.remove(); state.cards.delete(id); }
  }
}

async function streamView(kind, name) {
  const path = `/console/api/streams/${encodeURIComponent(kind)}/${encodeURIComponent(name)}`;
  const d = await getJson(path);
  const fresh = main.dataset.view !== `stream:${kind}/${name}`;
  if (fresh) {
    main.textContent = "";
    main.dataset.view = `stream:${kind}/${name}`;
    main.live = el("section");
    main.plot = el("div", { class: "chart" });
    main.forms = el("section");
    main.append(el("p", {}, el("a", { href: "#/" }, "← all streams")), el("h1", {}, d.name),
      main.live, el("h2", {}, "Last hour"), main.plot, main.forms);
    if (kind === "firehose") main.forms.append(testRecordForm(d.name), replaySection(d.name));
  }
  const shardRows = d.shards.map((s) => el("tr", { "data-shard": s.shard },
    el("td", {}, s.shard, s.open ? "" : " (closed)"), el("td", { class: "num" }, fmt(s.end)),
    el("td", { class: "num" }, fmt(s.checkpoint)), el("td", { class: "num" }, fmt(s.backlog_records)),
    el("td", { class: "num hide-narrow" }, bytes(s.bytes)), el("td", {}, s.lease_owner || "this node"),
    el("td", {}, s.problem ? el("span", { class: "error" }, s.problem) : "✔ moving")));
  const t = d.transform;
  fill(main.live, 
    el("p", {}, statusBadge(d.status), " ", el("span", { class: "muted" },
      `${d.kind === "kinesis" ? "Kinesis stream" : d.destination}${d.version ? ` · version ${d.version}` : ""}`)),
    d.arn ? el("p", { class: "muted key" }, d.arn) : null,
    d.last_error ? el("div", { class: "error", "data-field": "last_error" }, d.last_error) : null,
    nums([
      ["records in", fmt(d.totals.records_in), "records_in"],
      ["bytes in", bytes(d.totals.bytes_in), "bytes_in"],
      ["records delivered", fmt(d.totals.records_out), "records_out"],
      ["bytes delivered", bytes(d.totals.bytes_out), "bytes_out"],
      ["in error output", fmt(d.totals.error_records), "error_records"],
    ]),
    t ? el("div", {}, el("h2", {}, "Transform"), nums([
      ["Ok", fmt(t.ok), "transform_ok"], ["Dropped", fmt(t.dropped), "transform_dropped"],
      ["ProcessingFailed", fmt(t.processing_failed), "transform_failed"],
      ["invocations", fmt(t.invocations), "transform_invocations"],
      ["failed invocations", fmt(t.failed_invocations), "transform_failed_invocations"]])) : null,
    el("h2", {}, "Shards"),
    el("div", { class: "scroll" }, el("table", { id: "shards" },
      el("thead", {}, el("tr", {}, el("th", {}, "shard"), el("th", { class: "num" }, "end"),
        el("th", { class: "num" }, "checkpoint"), el("th", { class: "num" }, "backlog"),
        el("th", { class: "num hide-narrow" }, "size"), el("th", {}, "lease"), el("th", {}, "delivery"))),
      el("tbody", {}, shardRows))),
    d.kind === "kinesis" ? el("p", {}, "Read by: ", d.readers.length ? d.readers.join(", ") : "no delivery stream") : null,
    el("h2", {}, "Last objects delivered"),
    d.objects.length ? el("div", { class: "scroll" }, el("table", { id: "objects" },
      el("thead", {}, el("tr", {}, el("th", {}, "when"), el("th", {}, "key"), el("th", { class: "num" }, "records"),
        el("th", { class: "num" }, "size"))),
      el("tbody", {}, d.objects.map((o) => el("tr", {}, el("td", {}, when(o.at)), el("td", { class: "key" }, o.key),
        el("td", { class: "num" }, fmt(o.records)), el("td", { class: "num" }, bytes(o.bytes)))))))
      : el("p", { class: "muted" }, "None since this process started."),
    el("h2", {}, "Last error output"),
    d.errors.length ? el("div", { id: "errors" }, d.errors.map(errorObject))
      : el("p", { class: "muted" }, "None since this process started."),
    el("h2", {}, "Definition"), el("pre", { id: "definition" }, d.definition),
  );
  chart(`s:${kind}/${name}`, main.plot, d.series, 220);
  if (fresh && kind === "firehose") loadReplayWindow(d.name);
}

function errorObject(o) {
  return el("div", { class: "card", "data-error-type": o.output_type },
    el("div", {}, el("strong", {}, o.output_type), ` · ${fmt(o.records)} records · shard ${o.shard} · ${when(o.at)}`),
    el("div", { class: "muted key" }, o.key),
    o.unreadable ? el("p", { class: "muted" }, o.unreadable) : null,
    o.documents.map((doc) => el("details", { class: "error-doc" },
      el("summary", {}, el("code", { "data-field": "error_code" }, doc.error_code || "?"), " ", doc.error_message || ""),
      el("p", {}, "Failed record:"), el("pre", { "data-field": "record" }, doc.record ?? `(binary) ${doc.raw_data || ""}`))));
}

function testRecordForm(stream) {
  const out = el("p", { class: "result", role: "status", id: "test-record-result" });
  const data = el("textarea", { name: "data", rows: 3, id: "test-record-data" }, '{"hello": "hydrant"}\n');
  const form = el("form", { class: "inline", id: "test-record-form" },
    el("label", {}, "Record (text, sent as is)", data),
    el("div", {}, el("button", { class: "primary", type: "submit" }, "Send test record")), out);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    resultLine(out, true, "sending…");
    try {
      const utf8 = new TextEncoder().encode(data.value);
      const b64 = btoa(String.fromCharCode(...utf8));
      const r = await call(`${FIREHOSE}PutRecord`, { DeliveryStreamName: stream, Record: { Data: b64 } });
      resultLine(out, true, `stored: RecordId ${r.RecordId}`);
    } catch (e) { resultLine(out, false, e.message); }
  });
  return el("div", {}, el("h2", {}, "Send a test record"), form);
}

// ---- replays (Hydrant_20261208.*) ----------------------------------------------------------------

// A date as a datetime-local input's value (local time, to the second).
const localInput = (d) => new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 19);

function replayForm(stream) {
  const out = el("p", { class: "result", role: "status", id: "replay-result" });
  const now = new Date();
  const from = el("input", { type: "datetime-local", name: "from", id: "replay-from", value: localInput(new Date(now - 3600e3)), step: 1 });
  const to = el("input", { type: "datetime-local", name: "to", id: "replay-to", value: localInput(now), step: 1 });
  const prefix = el("input", { name: "prefix", id: "replay-prefix", value: `replay/${stream}/` });
  const target = el("input", { name: "target", id: "replay-target", placeholder: "or another delivery stream" });
  const form = el("form", { class: "inline", id: "replay-form" },
    stream ? null : el("label", {}, "Stream", el("input", { name: "stream", id: "replay-stream", required: true })),
    el("label", {}, "From (local time)", from), el("label", {}, "To (local time)", to),
    el("label", {}, "New prefix of the same destination", prefix),
    el("label", {}, "…or deliver to stream", target),
    el("div", {}, el("button", { class: "primary", type: "submit" }, "Start replay")), out);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const name = stream || form.elements.stream.value;
    const body = { DeliveryStreamName: name, From: Date.parse(from.value) / 1000, To: Date.parse(to.value) / 1000 };
    if (target.value.trim()) body.TargetDeliveryStreamName = target.value.trim();
    else body.Prefix = prefix.value;
    resultLine(out, true, "starting…");
    try {
      const r = await call(`${HYDRANT}StartReplay`, body);
      resultLine(out, true, `replay ${r.ReplayId} started`);
      refreshReplays();
    } catch (e) { resultLine(out, false, e.message); }
  });
  return form;
}

function replaySection(stream) {
  return el("div", {}, el("h2", {}, "Replay"),
    el("p", { id: "replay-window", class: "muted" }, "Oldest replayable record: …"),
    replayForm(stream), el("h2", {}, "Replays"), el("div", { id: "replays", "data-stream": stream }));
}

async function loadReplayWindow(stream) {
  const node = document.getElementById("replay-window");
  try {
    const w = await call(`${HYDRANT}DescribeReplayWindow`, { DeliveryStreamName: stream }, true);
    node.textContent = w.Oldest === null || w.Oldest === undefined
      ? "Nothing retained to replay yet."
      : `Replayable: from ${when(w.Oldest)} to ${when(w.Newest)}`;
    node.dataset.oldest = w.Oldest ?? "";
    // The form starts at the oldest replayable record when that is within the last hour.
    const from = document.getElementById("replay-from");
    if (from && w.Oldest && Date.parse(from.value) / 1000 < w.Oldest) from.value = localInput(new Date(Math.floor(w.Oldest) * 1000));
  } catch (e) {
    node.className = "result bad";
    node.textContent = `Replay window unknown: ${e.message}`;
  }
}

async function refreshReplays() {
  const host = document.getElementById("replays");
  if (!host) return;
  try {
    const r = await call(`${HYDRANT}ListReplays`, {}, true);
    const only = host.dataset.stream;
    const rows = (r.Replays || []).filter((x) => !only || x.DeliveryStreamName === only);
    const row = (x) => el("tr", { "data-replay": x.ReplayId, "data-status": x.Status },
      el("td", { class: "key" }, x.ReplayId), el("td", {}, x.DeliveryStreamName),
      el("td", {}, `${when(x.From)} – ${when(x.To)}`),
      el("td", { class: "key" }, x.TargetDeliveryStreamName ? `stream ${x.TargetDeliveryStreamName}` : `prefix ${x.Prefix}`),
      el("td", {}, `${x.Status === "DONE" ? "✔" : x.Status === "FAILED" ? "✖" : "⟳"} ${x.Status}`,
        x.Error ? el("div", { class: "error" }, x.Error) : null),
      el("td", {}, el("progress", { max: 1, value: x.Progress || 0 }),
        ` ${fmt((x.Progress || 0) * 100)} % · ${fmt(x.Records)} records · ${bytes(x.Bytes)}`
        + ` · shards ${x.ShardsDone}/${x.ShardsTotal}`));
    const head = el("thead", {}, el("tr", {}, ["replay", "stream", "range", "to", "status", "progress"]
      .map((h) => el("th", {}, h))));
    fill(host, rows.length
      ? el("div", { class: "scroll" }, el("table", {}, head, el("tbody", {}, rows.map(row))))
      : el("p", { class: "muted" }, "No replays."));
  } catch (e) {
    fill(host, el("p", { class: "result bad" }, `Replays unavailable: ${e.message}`));
  }
}

async function replaysView() {
  if (main.dataset.view !== "replays") {
    main.textContent = "";
    main.dataset.view = "replays";
    main.append(el("h1", {}, "Replays"),
      el("p", { class: "muted" }, "Re-deliver a time range of a stream's retained log, exactly once."),
      replayForm(null), el("h2", {}, "All replays"), el("div", { id: "replays" }));
  }
  await refreshReplays();
}

async function clusterView() {
  const c = await getJson("/console/api/cluster");
  main.textContent = "";
  main.dataset.view = "cluster";
  main.append(el("h1", {}, "Cluster"));
  if (c.core !== "jetstream") {
    main.append(el("p", {}, "This Hydrant runs on its embedded log: one node, no leases to share."));
    return;
  }
  main.append(nums([["this node", c.node, "node"], ["namespace", c.namespace, "namespace"],
    ["replicas", c.replicas, "replicas"], ["lease", `${c.lease_seconds} s`, "lease_seconds"]]),
  el("p", { class: "muted key" }, `NATS: ${c.servers.join(", ")}`),
  el("h2", {}, "Nodes"),
  c.nodes.length ? el("div", { class: "scroll" }, el("table", { id: "nodes" },
    el("thead", {}, el("tr", {}, ["node", "state", "heartbeat", "leases", "started"].map((h) => el("th", {}, h)))),
    el("tbody", {}, c.nodes.map((n) => el("tr", { "data-node": n.id }, el("td", {}, n.id),
      el("td", {}, n.alive ? "✓ up" : "✕ gone"), el("td", { class: "num" }, `${n.silent_seconds.toFixed(1)} s ago`),
      el("td", { class: "num" }, n.leases), el("td", {}, new Date(n.started_ms).toISOString())))))) :
    el("p", { class: "muted" }, "None seen yet."),
  el("h2", {}, "Who holds each lease"),
  c.all_leases.length ? el("div", { class: "scroll" }, el("table", { id: "all-leases" },
    el("thead", {}, el("tr", {}, ["stream", "consumer", "shard", "node"].map((h) => el("th", {}, h)))),
    el("tbody", {}, c.all_leases.map((l) => el("tr", {}, el("td", {}, l.stream), el("td", {}, l.consumer),
      el("td", {}, l.shard), el("td", {}, l.node || "– (free)")))))) : el("p", { class: "muted" }, "None."),
  el("h2", {}, `Leases held by ${c.node}`),
  c.leases.length ? el("div", { class: "scroll" }, el("table", { id: "leases" },
    el("thead", {}, el("tr", {}, ["stream", "consumer", "shard", "node"].map((h) => el("th", {}, h)))),
    el("tbody", {}, c.leases.map((l) => el("tr", {}, el("td", {}, l.stream), el("td", {}, l.consumer),
      el("td", {}, l.shard), el("td", {}, l.node)))))) : el("p", { class: "muted" }, "None."),
  el("h2", {}, "Takeovers by this node"),
  c.takeovers.length ? el("div", { class: "scroll" }, el("table", { id: "takeovers" },
    el("thead", {}, el("tr", {}, ["stream", "consumer", "shard", "how", "times"].map((h) => el("th", {}, h)))),
    el("tbody", {}, c.takeovers.map((t) => el("tr", {}, el("td", {}, t.stream), el("td", {}, t.consumer),
      el("td", {}, t.shard), el("td", {}, t.how), el("td", { class: "num" }, t.count)))))) : el("p", { class: "muted" }, "None."),
  el("p", { class: "muted" }, "Takeovers are counted by the node that made them: open another node's console for its own."));
}

// ---- routing and polling ------------------------------------------------------------------------

function route() {
  const parts = location.hash.replace(/^#\/?/, "").split("/");
  if (parts[0] === "stream" && parts.length >= 3) {
    return ["stream", () => streamView(parts[1], decodeURIComponent(parts.slice(2).join("/")))];
  }
  if (parts[0] === "cluster") return ["cluster", clusterView];
  if (parts[0] === "replays") return ["replays", replaysView];
  return ["overview", overviewView];
}

async function refresh() {
  clearTimeout(state.timer);
  const live = document.getElementById("live");
  const [name, view] = route();
  for (const a of document.querySelectorAll("[data-nav]")) {
    if (a.dataset.nav === name) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
  try {
    if (!state.overview && name !== "overview") state.overview = await getJson("/console/api/overview");
    await view();
    document.getElementById("key-button").hidden = !state.overview.auth;
    if (name === "stream") refreshReplays();
    live.classList.remove("stale");
    live.textContent = `live · updated ${new Date().toLocaleTimeString()}`;
  } catch (e) {
    live.classList.add("stale");
    live.textContent = `not updated: ${e.message}`;
    if (!main.dataset.view) fill(main, el("p", { class: "result bad" }, e.message));
  }
  // Polls only while the tab is visible: a console nobody looks at costs nothing.
  if (!document.hidden) state.timer = setTimeout(refresh, POLL_MS);
}

window.addEventListener("hashchange", () => { main.dataset.view = ""; refresh(); main.focus(); });
document.addEventListener("visibilitychange", () => { if (!document.hidden) refresh(); });
window.addEventListener("resize", () => { clearTimeout(state.resize); state.resize = setTimeout(refresh, 300); });

const keyDialog = document.getElementById("key-dialog");
document.getElementById("key-button").addEventListener("click", () => keyDialog.showModal());
document.getElementById("key-form").addEventListener("submit", (ev) => {
  const form = ev.target;
  if (ev.submitter && ev.submitter.value === "forget") sessionStorage.removeItem("hydrant-key");
  else sessionStorage.setItem("hydrant-key", JSON.stringify({ id: form.elements.id.value, secret: form.elements.secret.value }));
});

refresh();
