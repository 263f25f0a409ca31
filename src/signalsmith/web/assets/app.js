// signalsmith's dashboard: reads /api and /api/live, changes nothing. Every text from a post,
// a model or a request is put in the page as text (textContent, text nodes), never as markup.
"use strict";

const MAX_ROWS = 300;
const MAX_HELD = 5000;
const MAX_SEEN = 20000;
const HISTORY = 50;
const REFRESH_MS = { tickers: 10000, strategy: 5000, operations: 3000, ticker: 15000 };

// ---------------------------------------------------------------- small helpers

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "className") node.className = value;
    else if (name === "dataset") Object.assign(node.dataset, value);
    else if (name === "href") node.setAttribute("href", value);
    else node.setAttribute(name, String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function safeLink(url) {
  if (typeof url !== "string" || url.length > 2048) return null;
  try {
    const parsed = new URL(url);
    return parsed.protocol === "https:" || parsed.protocol === "http:" ? parsed.href : null;
  } catch {
    return null;
  }
}

function tickerHref(ticker) {
  return "#/ticker/" + encodeURIComponent(ticker);
}

function pct(value) {
  return typeof value === "number" ? Math.round(value * 100) + "%" : "–";
}

function num(value, digits = 2) {
  return typeof value === "number" ? value.toFixed(digits) : "–";
}

function count(value) {
  return typeof value === "number" ? value.toLocaleString("en-US") : "–";
}

function millis(text) {
  const value = Date.parse(text);
  return Number.isFinite(value) ? value : 0;
}

function clock(ms) {
  if (!ms) return "";
  const when = new Date(ms);
  const today = new Date().toDateString() === when.toDateString();
  const time = when.toLocaleTimeString("en-GB", { hour12: false });
  return today ? time : when.toISOString().slice(5, 10) + " " + time.slice(0, 5);
}

function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== "" && value !== null && value !== undefined) search.set(name, String(value));
  }
  return search.toString();
}

class Missing extends Error {}

// A same-origin request (the session cookie goes with it) given up after ``timeoutMs``.
function request(path, accept, timeoutMs) {
  return fetch(path, {
    headers: { Accept: accept },
    credentials: "same-origin",
    signal: AbortSignal.timeout(timeoutMs),
  });
}

async function api(path) {
  const answer = await request(path, "application/json", 10000);
  if (answer.status === 401) {
    location.reload(); // the session ended: the server shows its sign-in
    throw new Error("signed out");
  }
  if (answer.status === 404) throw new Missing(path);
  if (!answer.ok) throw new Error(path + " answered " + answer.status);
  return answer.json();
}

function fill(tbody, rows) {
  tbody.replaceChildren(...rows);
}

function cell(value, className) {
  return el("td", { className }, value);
}

function verdictBadge(verdict) {
  return el("span", { className: "verdict verdict-" + verdict }, verdict || "–");
}

function setConnection(state, text) {
  const node = document.getElementById("connection");
  node.dataset.state = state;
  node.textContent = text || state;
}

// ---------------------------------------------------------------- decisions as rows

// A decision as the feed rows show it, from a store row (/api/decisions) or a live event.
function fromStore(item) {
  return {
    key: item.correlation_id,
    kind: item.kind,
    ticker: item.ticker,
    verdict: item.verdict,
    confidence: item.confidence,
    status: item.status,
    analyzers: (item.analyzers || "").split(",").filter(Boolean),
    link: item.post_url,
    title: null,
    reasoning: null,
    at: millis(item.published_at),
  };
}

function fromLive(event) {
  let reasoning = event.reasoning || event.text || null;
  if (event.kind === "strategy" && event.agreement) {
    reasoning = "rating " + (event.rating ?? "–") + ", " + event.agreement + (reasoning ? ": " + reasoning : "");
  }
  return {
    key: event.correlation_id || event.id,
    kind: event.kind,
    ticker: event.ticker,
    verdict: event.verdict,
    confidence: event.confidence,
    status: event.status,
    analyzers: Array.isArray(event.analyzers) ? event.analyzers : [],
    link: event.link,
    title: event.title || null,
    reasoning,
    at: millis(event.published_at),
  };
}

function decisionRow(decision, fresh) {
  const link = safeLink(decision.link);
  const row = el(
    "li",
    { className: "feed-row" + (fresh ? " fresh" : ""), "data-testid": "feed-row", dataset: { at: String(decision.at) } },
    el("span", { className: "when" }, clock(decision.at)),
    el("span", { className: "kind" }, decision.kind),
    el(
      "span",
      { className: "what" },
      el("a", { className: "ticker", href: tickerHref(decision.ticker) }, decision.ticker),
      verdictBadge(decision.verdict),
      el("span", { title: "confidence" }, pct(decision.confidence)),
      el("span", { className: "status-" + decision.status }, decision.status),
      decision.analyzers.length ? el("span", { className: "muted" }, decision.analyzers.join(" · ")) : null,
      link ? el("a", { href: link, target: "_blank", rel: "noopener noreferrer nofollow" }, "source") : null,
    ),
  );
  if (decision.title || decision.reasoning) {
    row.append(
      el(
        "span",
        { className: "why" },
        decision.title ? el("span", { className: "title" }, decision.title) : null,
        decision.title && decision.reasoning ? " — " : null,
        decision.reasoning,
      ),
    );
  }
  return row;
}

// Newest first: a row goes before the first one older than it.
function insertRow(list, row, at) {
  let before = null;
  for (const other of list.children) {
    if (Number(other.dataset.at) < at) {
      before = other;
      break;
    }
  }
  list.insertBefore(row, before);
  while (list.children.length > MAX_ROWS) list.lastElementChild.remove();
}

// ---------------------------------------------------------------- the live feed

const feed = {
  source: null,
  filters: {},
  quiet: null,
  sticky: false,
  lastId: null,
  startId: null,
  retry: null,
  paused: false,
  held: [],
  seen: new Set(),
  generation: 0,
};

function feedFilters() {
  const form = document.getElementById("feed-filters");
  const data = new FormData(form);
  const least = Number(data.get("min_confidence"));
  return {
    kind: data.get("kind") || "",
    ticker: String(data.get("ticker") || "").trim().toUpperCase(),
    verdict: data.get("verdict") || "",
    min_confidence: Number.isFinite(least) && least > 0 ? Math.min(least, 1) : "",
  };
}

function remember(key) {
  if (!key || feed.seen.has(key)) return false;
  feed.seen.add(key);
  if (feed.seen.size > MAX_SEEN) feed.seen.delete(feed.seen.values().next().value);
  return true;
}

function showDecision(decision, fresh) {
  const list = document.getElementById("feed");
  insertRow(list, decisionRow(decision, fresh), decision.at);
  document.getElementById("feed-empty").hidden = true;
}

function onDecision(event) {
  let data;
  try {
    data = JSON.parse(event.data);
  } catch {
    return;
  }
  feed.lastId = event.lastEventId || feed.lastId;
  const decision = fromLive(data);
  if (!remember(decision.key)) return;
  if (feed.paused) {
    feed.held.push(decision);
    if (feed.held.length > MAX_HELD) feed.held.shift();
    document.getElementById("held").textContent = feed.held.length + " new while paused";
    return;
  }
  showDecision(decision, true);
}

function feedNotice(text) {
  const node = document.getElementById("feed-notice");
  node.textContent = text || "";
  node.hidden = !text;
}

function showFeedState() {
  const state = feed.paused ? "paused" : "live";
  setConnection(state, state);
}

function connectFeed(generation) {
  if (generation !== feed.generation) return;
  const resume = feed.lastId || feed.startId;
  const url = "/api/live?" + query({ ...feed.filters, last_event_id: resume });
  const source = new EventSource(url);
  feed.source = source;
  source.addEventListener("decision", onDecision);
  source.addEventListener("behind", () => {
    if (feed.lastId) feedNotice("Catching up on what was missed…");
  });
  source.addEventListener("gap", () => {
    // From the page's own starting point (no event yet) a gap is only the stream's start.
    if (feed.lastId) {
      window.clearTimeout(feed.quiet);
      feed.sticky = true;
      feedNotice("Some decisions were trimmed from the stream before this page could read them.");
    }
  });
  source.onopen = () => {
    showFeedState();
    window.clearTimeout(feed.quiet);
    if (!feed.sticky) feed.quiet = window.setTimeout(() => feedNotice(""), 1500);
  };
  source.onerror = () => {
    setConnection("reconnecting", "reconnecting…");
    if (source.readyState === EventSource.CLOSED) {
      source.close();
      refused(url, generation);
    }
  };
}

// The server refused the feed: signed out (the page reloads to its sign-in), a request it
// will never take (said, and not retried), or not now (tried again from the last id).
async function refused(url, generation) {
  let answer = null;
  try {
    answer = await request(url, "text/event-stream", 5000);
    if (answer.body) answer.body.cancel();
  } catch {
    answer = null; // the server is away
  }
  if (generation !== feed.generation) return;
  if (answer && answer.status === 401) {
    location.reload();
    return;
  }
  if (answer && answer.status >= 400 && answer.status < 500 && answer.status !== 429) {
    setConnection("error", "feed refused (" + answer.status + ")");
    feedNotice("The server refused this feed (" + answer.status + "): check the filters.");
    return;
  }
  feed.retry = window.setTimeout(() => connectFeed(generation), 2000);
}

function stopFeed() {
  feed.generation += 1;
  if (feed.source) feed.source.close();
  feed.source = null;
  window.clearTimeout(feed.retry);
  window.clearTimeout(feed.quiet);
  feed.sticky = false;
}

async function startFeed() {
  stopFeed();
  const generation = feed.generation;
  feed.lastId = null;
  feed.held = [];
  feed.seen = new Set();
  document.getElementById("held").textContent = "";
  document.getElementById("feed").replaceChildren();
  document.getElementById("feed-empty").hidden = false;
  const filters = feedFilters();
  feed.filters = filters; // what the live part follows too, until the next Apply
  feedNotice("");
  // History from the store; the live feed from a little before the newest row the store has
  // of any kind (it reads the decision log in order, so everything after that row is still to
  // come from the stream; the ids are times). Repeats are dropped by key. Without a store the
  // feed starts with its own newest decisions.
  let since = null;
  try {
    const [page, newest] = await Promise.all([
      api("/api/decisions?" + query({ ...filters, limit: HISTORY })),
      api("/api/decisions?limit=1"),
    ]);
    if (generation !== feed.generation) return;
    for (const item of page.items) {
      const decision = fromStore(item);
      if (remember(decision.key)) showDecision(decision, false);
    }
    if (newest.items.length) since = millis(newest.items[0].published_at) - 5000;
  } catch (error) {
    if (!(error instanceof Missing)) feedNotice("The store cannot answer now: showing live decisions only.");
  }
  if (generation !== feed.generation) return;
  feed.startId = since === null ? null : Math.max(0, Math.floor(since)) + "-0";
  connectFeed(generation);
}

function togglePause() {
  const button = document.getElementById("pause");
  feed.paused = !feed.paused;
  button.setAttribute("aria-pressed", String(feed.paused));
  button.textContent = feed.paused ? "Resume" : "Pause";
  if (!feed.paused) {
    for (const decision of feed.held) showDecision(decision, true);
    feed.held = [];
    document.getElementById("held").textContent = "";
  }
  if (feed.source && feed.source.readyState === EventSource.OPEN) {
    showFeedState();
  }
}

// ---------------------------------------------------------------- tickers

async function showTickers(_argument, stillHere) {
  const since = new Date(Date.now() - 86400000).toISOString();
  const [list, spikes] = await Promise.all([
    api("/api/tickers?limit=50"),
    api("/api/spikes?" + query({ since, limit: 500 })).catch(() => ({ items: [] })),
  ]);
  if (!stillHere()) return;
  const spiked = new Map();
  for (const spike of spikes.items) spiked.set(spike.ticker, (spiked.get(spike.ticker) || 0) + 1);
  const rows = list.items.map((item) => {
    const consensus = item.consensus || {};
    const spikeCount = spiked.get(item.ticker) || 0;
    return el(
      "tr",
      { "data-testid": "ticker-row" },
      el("td", {}, el("a", { className: "ticker", href: tickerHref(item.ticker) }, item.ticker)),
      cell(count(item.mentions), "num"),
      el("td", {}, verdictBadge(consensus.verdict)),
      cell(num(consensus.score), "num"),
      cell(pct(consensus.confidence), "num"),
      cell([consensus.buy, consensus.sell, consensus.hold].map(count).join(" / "), "num"),
      cell(spikeCount ? "⚡ " + spikeCount : "", "num"),
      cell(clock(millis(item.last_seen))),
    );
  });
  fill(document.querySelector("#tickers tbody"), rows);
  document.getElementById("tickers-empty").hidden = rows.length > 0;
}

// ---------------------------------------------------------------- one ticker

const charts = { sentiment: null, candles: null, resize: null };

function chartWidth(node) {
  return Math.max(260, node.clientWidth || node.parentElement.clientWidth - 16);
}

function dropCharts() {
  for (const name of ["sentiment", "candles"]) {
    if (charts[name]) charts[name].destroy();
    charts[name] = null;
  }
}

function axes() {
  const grid = { stroke: "#2a313c", width: 1 };
  return [
    { stroke: "#8b95a5", grid },
    { stroke: "#8b95a5", grid, size: 64 },
  ];
}

function movingAverage(values, span) {
  const out = [];
  let sum = 0;
  for (let i = 0; i < values.length; i += 1) {
    sum += values[i];
    if (i >= span) sum -= values[i - span];
    out.push(sum / Math.min(i + 1, span));
  }
  return out;
}

function drawSentiment(posts) {
  const node = document.getElementById("sentiment-chart");
  const points = posts
    .map((item) => [millis(item.published_at) / 1000, item.score])
    .filter(([t, s]) => t > 0 && Number.isFinite(s))
    .sort((a, b) => a[0] - b[0]);
  document.getElementById("sentiment-empty").hidden = points.length > 0;
  node.hidden = points.length === 0;
  if (!points.length) return;
  const times = points.map((p) => p[0]);
  const scores = points.map((p) => p[1]);
  const data = [times, scores, movingAverage(scores, 10)];
  charts.sentiment = new uPlot(
    {
      width: chartWidth(node),
      height: 240,
      scales: { y: { range: [-1, 1] } },
      axes: axes(),
      series: [
        {},
        { label: "post", stroke: "transparent", points: { show: true, size: 5, stroke: "#58a6ff", fill: "#58a6ff" } },
        { label: "average of 10", stroke: "#d29922", width: 2, points: { show: false } },
      ],
    },
    data,
    node,
  );
}

// Candle bodies and wicks, drawn over the plot from the series' values.
function candleBodies() {
  return {
    hooks: {
      draw: (u) => {
        const [time, open, high, low, close] = u.data;
        const ctx = u.ctx;
        const { left, top, width, height } = u.bbox;
        const body = Math.max(1, Math.min(12, (width / Math.max(time.length, 1)) * 0.6));
        ctx.save();
        ctx.beginPath();
        ctx.rect(left, top, width, height);
        ctx.clip();
        for (let i = 0; i < time.length; i += 1) {
          const x = u.valToPos(time[i], "x", true);
          const [yOpen, yHigh, yLow, yClose] = [open[i], high[i], low[i], close[i]].map((v) => u.valToPos(v, "y", true));
          ctx.fillStyle = close[i] >= open[i] ? "#3fb950" : "#f85149";
          ctx.fillRect(Math.round(x) - 0.5, yHigh, 1, Math.max(1, yLow - yHigh));
          ctx.fillRect(x - body / 2, Math.min(yOpen, yClose), body, Math.max(1, Math.abs(yClose - yOpen)));
        }
        ctx.restore();
      },
    },
  };
}

function drawCandles(candles) {
  const node = document.getElementById("candle-chart");
  document.getElementById("candle-caption").textContent =
    "Candles, " + candles.granularity + " (" + candles.source + ")";
  const hidden = { stroke: "transparent", points: { show: false } };
  charts.candles = new uPlot(
    {
      width: chartWidth(node),
      height: 240,
      axes: axes(),
      plugins: [candleBodies()],
      series: [
        {},
        { label: "open", ...hidden },
        { label: "high", ...hidden },
        { label: "low", ...hidden },
        { label: "close", ...hidden },
      ],
    },
    [candles.time, candles.open, candles.high, candles.low, candles.close],
    node,
  );
}

function insightBox(insight) {
  const box = document.getElementById("ticker-insight");
  if (!insight) {
    box.replaceChildren(el("p", { className: "muted" }, "No insight on this ticker."));
    return;
  }
  box.replaceChildren(
    el(
      "p",
      {},
      verdictBadge(insight.verdict),
      " ",
      pct(insight.confidence),
      insight.direction ? " · trend " + insight.direction : "",
      " · " + clock(millis(insight.published_at)),
    ),
    el("p", { "data-testid": "insight-text" }, insight.text),
  );
}

async function showTicker(name, stillHere) {
  const ticker = name.toUpperCase();
  document.getElementById("ticker-name").textContent = ticker;
  const path = encodeURIComponent(ticker);
  const [detail, posts, insights] = await Promise.all([
    api("/api/tickers/" + path).catch((error) => (error instanceof Missing ? null : Promise.reject(error))),
    api("/api/decisions?" + query({ ticker, kind: "post", limit: 500 })),
    api("/api/insights?" + query({ product: ticker, limit: 1 })).catch(() => ({ items: [] })),
  ]);
  // Candles are asked for only where the market pipeline has read some (an insight).
  const candles = insights.items.length ? await api("/api/candles/" + path).catch(() => null) : null;
  if (!stillHere()) return;
  const summary = document.getElementById("ticker-summary");
  if (detail) {
    const span = detail.window;
    const consensus = span.consensus;
    summary.replaceChildren(
      "Last " + Math.round(span.window_s / 60) + " min: " + count(span.mentions) + " mentions, consensus ",
      verdictBadge(consensus.verdict),
      " score " + num(consensus.score) + ", confidence " + pct(consensus.confidence) +
        (detail.spikes.length ? " · ⚡ " + detail.spikes.length + " spikes" : ""),
    );
  } else {
    summary.textContent = "No decision on this ticker yet.";
  }
  dropCharts();
  const hasCandles = Boolean(candles && candles.time && candles.time.length);
  document.getElementById("candle-figure").hidden = !hasCandles;
  drawSentiment(posts.items);
  if (hasCandles) drawCandles(candles);
  insightBox(insights.items[0]);
  const recent = (detail ? detail.recent : []).map((item) => decisionRow(fromStore(item), false));
  document.getElementById("ticker-recent").replaceChildren(...recent);
}

// ---------------------------------------------------------------- strategy

function rating(signal, analyst) {
  const found = (signal.ratings || []).find((r) => r.analyst === analyst);
  return found && found.rating !== null ? String(found.rating) : "–";
}

async function showStrategy(_argument, stillHere) {
  const [page, stats] = await Promise.all([
    api("/api/strategy-signals?limit=100"),
    api("/api/strategy-signals/stats").catch(() => null),
  ]);
  if (!stillHere()) return;
  const rows = page.items.map((signal) =>
    el(
      "tr",
      { "data-testid": "strategy-row" },
      cell(clock(millis(signal.published_at))),
      el("td", {}, el("a", { className: "ticker", href: tickerHref(signal.symbol) }, signal.symbol)),
      cell(signal.strategy || "–"),
      cell(signal.side || "–"),
      cell(signal.status, "status-" + signal.status),
      cell(rating(signal, "rules"), "num"),
      cell(rating(signal, "llm"), "num"),
      cell(signal.agreement || "–"),
      cell(signal.rating ?? "–", "num"),
    ),
  );
  fill(document.querySelector("#strategy tbody"), rows);
  document.getElementById("strategy-empty").hidden = rows.length > 0;
  const line = document.getElementById("strategy-stats");
  if (stats) {
    const agreements = Object.entries(stats.agreements || {}).map(([name, n]) => name + " " + n).join(", ");
    line.textContent =
      count(stats.total) + " decided (" + count(stats.processed) + " rated, " + count(stats.failed) +
      " failed, " + count(stats.expired) + " expired), " + (stats.pending ?? "?") + " pending" +
      (agreements ? " · " + agreements : "") + " · $" + num(stats.cost_usd, 4);
  } else {
    line.textContent = "";
  }
}

// ---------------------------------------------------------------- operations

async function showOperations(_argument, stillHere) {
  const ops = await api("/api/operations");
  if (!stillHere()) return;
  const show = (value) => (value === null || value === undefined ? "?" : count(value));
  fill(
    document.querySelector("#ops-pipelines tbody"),
    ops.pipelines.map((p) =>
      el(
        "tr",
        { "data-testid": "pipeline-row" },
        cell(p.name),
        cell(p.status, "status-" + p.status),
        cell(count(p.read), "num"),
        cell(count(p.acknowledged), "num"),
        cell(count(p.dead_lettered), "num"),
        cell(show(p.pending), "num"),
        cell(show(p.lag), "num"),
        cell(p.stream + " / " + p.group, "muted"),
      ),
    ),
  );
  const reasons = ops.dead_letters.by_reason;
  fill(
    document.querySelector("#ops-dead-letters tbody"),
    reasons.length
      ? reasons.map((r) => el("tr", {}, cell(r.pipeline), cell(r.reason), cell(count(r.count), "num")))
      : [el("tr", {}, el("td", { colspan: 3, className: "muted" }, "None since start."))],
  );
  document.getElementById("ops-dlq-streams").textContent = ops.dead_letters.streams
    .map((s) => s.stream + ": " + show(s.length))
    .join(" · ");
  fill(
    document.querySelector("#ops-providers tbody"),
    ops.providers.map((p) =>
      el(
        "tr",
        {},
        cell(p.name),
        cell(p.model),
        cell(p.state + (p.reason ? " (" + p.reason + ")" : ""), p.state === "ok" ? "" : "status-error"),
        cell(Object.entries(p.calls || {}).map(([k, v]) => k + " " + v).join(", ") || "0"),
        cell(count(p.tokens.input) + " / " + count(p.tokens.output), "num"),
        cell("$" + num(p.cost_usd, 4), "num"),
      ),
    ),
  );
  document.getElementById("ops-no-providers").hidden = ops.providers.length > 0;
  const today = ops.today;
  document.getElementById("ops-today").textContent = today
    ? "Today (UTC): " + count(today.decisions) + " decisions, " + count(today.tokens_in) + " tokens in, " +
      count(today.tokens_out) + " out, $" + num(today.cost_usd, 4)
    : "Today's spend: no store to count it from.";
}

// ---------------------------------------------------------------- views

const views = {
  feed: { show: startFeed, leave: stopFeed },
  tickers: { show: showTickers, every: REFRESH_MS.tickers },
  ticker: { show: showTicker, every: REFRESH_MS.ticker, leave: dropCharts },
  strategy: { show: showStrategy, every: REFRESH_MS.strategy },
  operations: { show: showOperations, every: REFRESH_MS.operations },
};
let current = { name: null, timer: null, generation: 0, busy: false };

function route() {
  const [, name = "feed", argument = ""] = location.hash.split("/");
  const view = views[name] ? name : "feed";
  try {
    return { view, argument: decodeURIComponent(argument) };
  } catch {
    return { view: "feed", argument: "" }; // a malformed address
  }
}

// One refresh at a time per view; what comes back after the view changed is dropped.
async function refresh(view, argument) {
  if (current.busy) return;
  const generation = current.generation;
  const stillHere = () => generation === current.generation;
  current.busy = true;
  try {
    await views[view].show(argument, stillHere);
    if (view !== "feed" && stillHere()) setConnection("idle", "updated " + clock(Date.now()));
  } catch (error) {
    if (view !== "feed" && stillHere()) setConnection("reconnecting", "cannot reach the server");
  } finally {
    if (stillHere()) current.busy = false;
  }
}

function navigate() {
  const { view, argument } = route();
  if (current.name && views[current.name].leave) views[current.name].leave();
  window.clearInterval(current.timer);
  current = { name: view, timer: null, generation: current.generation + 1, busy: false };
  for (const section of document.querySelectorAll(".view")) section.hidden = section.id !== "view-" + view;
  for (const link of document.querySelectorAll("nav a")) {
    link.classList.toggle("active", link.dataset.view === (view === "ticker" ? "tickers" : view));
  }
  refresh(view, argument);
  if (views[view].every) current.timer = window.setInterval(() => refresh(view, argument), views[view].every);
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("feed-filters").addEventListener("submit", (event) => {
    event.preventDefault();
    startFeed();
  });
  document.getElementById("pause").addEventListener("click", togglePause);
  window.addEventListener("hashchange", navigate);
  window.addEventListener("resize", () => {
    for (const name of ["sentiment", "candles"]) {
      const chart = charts[name];
      if (chart) chart.setSize({ width: chartWidth(chart.root.parentElement), height: 240 });
    }
  });
  navigate();
});
