// The billing console's page: polls the keeper's JSON API every two seconds and redraws in place (no reload).
// Every value goes through textContent: nothing from the store is ever parsed as HTML.
"use strict";

const REFRESH_MS = 2000;
const TOKEN_KEY = "billing-console-token";
const charts = {};

const $ = (id) => document.getElementById(id);

async function getJson(path) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const response = await fetch(path, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  if (response.status === 401) {
    const error = new Error("unauthorized");
    error.unauthorized = true;
    throw error;
  }
  if (!response.ok) throw new Error(`${path}: ${response.status} ${(await response.json()).error}`);
  return response.json();
}

const time = (seconds) => (seconds ? new Date(seconds * 1000).toISOString().replace(".000Z", "Z") : "–");
const short = (address) => `${address.slice(0, 8)}…${address.slice(-6)}`;

/** Replaces a table's rows; `cells` maps an item to its cell texts. */
function fillTable(id, items, cells, emptyText) {
  const body = $(id).querySelector("tbody");
  const rows = items.map((item) => {
    const row = document.createElement("tr");
    row.dataset.id = String(item.id ?? "");
    for (const text of cells(item)) {
      const cell = document.createElement("td");
      cell.textContent = String(text);
      row.append(cell);
    }
    return row;
  });
  if (rows.length === 0) {
    const row = document.createElement("tr");
    const cell = document.createElement("td");
    cell.colSpan = $(id).querySelectorAll("th").length;
    cell.className = "empty";
    cell.textContent = emptyText;
    row.append(cell);
    rows.push(row);
  }
  body.replaceChildren(...rows);
}

function drawChart(id, options, data) {
  if (charts[id] === undefined) {
    charts[id] = new uPlot({ width: 720, height: 240, ...options }, data, $(id));
  } else {
    charts[id].setData(data);
  }
}

const bars = () => uPlot.paths.bars({ size: [0.6, 40] });

function showCharges(charges) {
  const x = charges.items.map((item) => item.day);
  drawChart(
    "charges-chart",
    {
      series: [
        {},
        { label: "Charged", stroke: "#059669", fill: "rgba(5,150,105,0.35)", paths: bars() },
        { label: "Failed", stroke: "#dc2626", fill: "rgba(220,38,38,0.35)", paths: bars() },
      ],
      scales: { x: { time: true } },
    },
    [x, charges.items.map((item) => item.charged), charges.items.map((item) => item.failed)],
  );
}

function showRevenue(revenue) {
  const merchants = [...new Set(revenue.items.map((item) => item.merchantId))].sort((a, b) => a - b);
  const tokens = [...new Set(revenue.items.map((item) => item.token))];
  const colors = ["#2563eb", "#d97706", "#7c3aed", "#059669", "#db2777"];
  const series = tokens.map((token, index) => ({
    label: revenue.items.find((item) => item.token === token)?.symbol ?? short(token),
    stroke: colors[index % colors.length],
    fill: `${colors[index % colors.length]}66`,
    paths: bars(),
  }));
  const values = tokens.map((token) =>
    merchants.map((merchant) => {
      const row = revenue.items.find((item) => item.token === token && item.merchantId === merchant);
      return row === undefined ? null : Number(row.formatted ?? row.amount);
    }),
  );
  // uPlot needs at least one point; an empty chart still renders its axes.
  const x = merchants.length > 0 ? merchants : [0];
  const data = [x, ...(values.length > 0 ? values : [[null]])];
  const key = `revenue-chart:${tokens.join(",")}`;
  if (charts["revenue-chart"] !== undefined && charts["revenue-chart"].key !== key) {
    charts["revenue-chart"].destroy();
    delete charts["revenue-chart"];
  }
  drawChart(
    "revenue-chart",
    {
      series: [{ label: "Merchant" }, ...(series.length > 0 ? series : [{ label: "no revenue yet" }])],
      scales: { x: { time: false, range: (u, min, max) => [min - 0.5, max + 0.5] } },
      axes: [{ label: "Merchant", values: (u, splits) => splits.map((v) => (Number.isInteger(v) ? `#${v}` : "")) }, {}],
    },
    data,
  );
  charts["revenue-chart"].key = key;
  fillTable(
    "revenue",
    revenue.items.map((item) => ({ ...item, id: `${item.merchantId}-${item.token}` })),
    (item) => [
      item.merchantId,
      item.symbol ?? item.token,
      item.charges,
      item.formatted ? `${item.formatted} (${item.amount})` : item.amount,
    ],
    "No charges yet.",
  );
}

async function refresh() {
  const [overview, charges, revenue, pastDue, lapsed, due, pending, quarantine] = await Promise.all([
    getJson("api/overview"),
    getJson("api/charges?days=30"),
    getJson("api/revenue"),
    getJson("api/subscriptions?status=past_due&limit=50"),
    getJson("api/subscriptions?status=lapsed&limit=50"),
    getJson("api/due?hours=24&limit=50"),
    getJson("api/pending?limit=50"),
    getJson("api/quarantine?limit=50"),
  ]);
  $("login").hidden = true;
  $("content").hidden = false;
  const health = overview.health;
  $("health").textContent = health.ok ? "healthy" : "failing";
  $("health").className = `badge ${health.ok ? "ok" : "failing"}`;
  const reasons = (health.reasons ?? []).map((reason) => {
    const item = document.createElement("li");
    item.textContent = reason;
    return item;
  });
  $("reasons").replaceChildren(...reasons);
  $("synced-block").textContent = overview.syncedBlock ?? "–";
  $("sync-lag").textContent = health.headLagBlocks ?? health.lagBlocks ?? "–";
  $("count-active").textContent = overview.subscriptions.active;
  $("count-past-due").textContent = overview.subscriptions.past_due;
  $("count-lapsed").textContent = overview.subscriptions.lapsed;
  $("open-txs").textContent = overview.openTransactions;
  $("quarantined-count").textContent = overview.quarantined;
  showCharges(charges);
  showRevenue(revenue);
  const subscriptionCells = (when) => (item) => [
    item.id,
    item.merchantId,
    short(item.customer),
    item.amount,
    time(when(item)),
  ];
  fillTable(
    "past-due",
    pastDue.items,
    subscriptionCells((item) => item.pastDueSince),
    "Nothing past due.",
  );
  fillTable(
    "lapsed",
    lapsed.items,
    subscriptionCells((item) => item.nextChargeAt),
    "Nothing lapsed.",
  );
  fillTable(
    "due",
    due.items,
    subscriptionCells((item) => item.nextChargeAt),
    "Nothing due.",
  );
  $("due-total").textContent = `(${due.total} in all)`;
  fillTable(
    "pending",
    pending.items.map((item) => ({ ...item, id: `${item.sender}-${item.nonce}` })),
    (item) => [short(item.sender), item.nonce, item.state, item.ageSeconds, item.items, item.feeBumps],
    "No transaction in flight.",
  );
  fillTable(
    "quarantine",
    quarantine.items,
    (item) => [item.id, item.failures, time(item.retryAt), item.reason],
    "Nothing quarantined.",
  );
  $("updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
  document.body.dataset.refreshes = String(Number(document.body.dataset.refreshes ?? 0) + 1);
}

async function loop() {
  try {
    await refresh();
  } catch (error) {
    if (error.unauthorized) {
      $("content").hidden = true;
      $("login").hidden = false;
      if (sessionStorage.getItem(TOKEN_KEY)) $("login-error").textContent = "That token was refused.";
    } else {
      $("updated").textContent = `refresh failed: ${error.message}`;
    }
  }
  setTimeout(loop, REFRESH_MS);
}

$("login").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, $("token").value);
  $("login-error").textContent = "";
  refresh().catch(() => {});
});

window.addEventListener("DOMContentLoaded", loop);
