// raner-pool WebUI: send the text to /ner, show it back with every entity highlighted.
// Safety: user text only ever reaches the page as Text nodes (textContent / splitText), never as HTML.
"use strict";

const TYPE_NAMES = { PER: "人名", LOC: "地名", ORG: "机构名", TIME: "时间", MONEY: "金额", PERCENT: "百分比", TITLE: "职位",
  PHONE: "电话", EMAIL: "邮箱", URL: "网址", ID_CARD: "身份证" };
const NAMED_COLORS = new Set(["red", "cyan", "yellow", "white", "orange", "green", "blue", "magenta", "purple", "pink"]);
const SAFE_CSS_COLOR = /^(#[0-9a-f]{3,8}|[a-z]{3,20})$/i;

const SAMPLES = {
  news: "2023年11月2日晚上8点，腾讯总裁刘炽平在深圳宣布追加投资2.8亿美元，营收同比增长百分之二十。阿里巴巴集团创始人马云在杭州出席了技术峰会。据说，刘德华平时生活在香港，但是他喜欢去北京钓鱼。",
  article: [
    "新华社北京3月5日电 第十四届全国人民代表大会第二次会议5日上午在人民大会堂开幕。",
    "国务院总理李强作政府工作报告时表示，今年将继续推动长江经济带发展和粤港澳大湾区建设。",
    "",
    "上海市人民政府与复旦大学签署合作协议，双方将在浦东新区共建人工智能研究院。",
    "中国科学院院士王晓东在会上介绍了北京生命科学研究所的最新进展。",
    "",
    "与此同时，联合国秘书长古特雷斯在纽约总部会见了中国常驻联合国代表。",
  ].join("\n"),
  mixed: "OpenAI 的 CEO Sam Altman 上周访问了东京，随后腾讯公司在深圳发布了混元大模型😀，华为也在上海举办了开发者大会。",
};

const $ = (id) => document.getElementById(id);
let lastResult = null;
const hiddenTypes = new Set();

// --- offsets: the API counts Python code points, the DOM counts UTF-16 units -------------------------------------

/** UTF-16 offset of every code-point boundary of `text` (length: code points + 1). */
function utf16Offsets(text) {
  const offsets = [0];
  for (const ch of text) offsets.push(offsets[offsets.length - 1] + ch.length);
  return offsets;
}

/** Entities that fit the text and do not overlap an earlier one, sorted by start. */
function usableEntities(text, entities) {
  const length = Array.from(text).length;
  const sorted = entities
    .filter((e) => Number.isInteger(e.start) && Number.isInteger(e.end) && 0 <= e.start && e.start < e.end && e.end <= length)
    .sort((a, b) => a.start - b.start || b.end - a.end);
  const kept = [];
  for (const e of sorted) {
    if (kept.length === 0 || e.start >= kept[kept.length - 1].end) kept.push(e);
  }
  return kept;
}

/** Fill `container` with `text`, each entity wrapped in a <mark>; inserted from the end towards the start. */
function renderHighlights(container, text, entities) {
  container.replaceChildren(document.createTextNode(text));
  const u16 = utf16Offsets(text);
  let head = container.firstChild; // the still-unsplit text before every mark inserted so far
  for (const entity of usableEntities(text, entities).reverse()) {
    const start = u16[entity.start];
    head.splitText(u16[entity.end]);
    const inside = head.splitText(start);
    inside.replaceWith(entityMark(entity, inside.data));
  }
}

/** The normalised value of a TIME, MONEY or PERCENT entity in words a reader checks at a glance; "" for none. */
function describeValue(entity) {
  const v = entity.value;
  if (!v || typeof v !== "object") return "";
  if (entity.type === "MONEY" && typeof v.amount === "string") {
    const [whole, fraction] = v.amount.split(".");
    const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    const approx = { about: "≈ ", over: "> ", under: "< " }[v.approx] || "";
    return `${approx}${v.currency || ""} ${grouped}${fraction ? "." + fraction : ""}`;
  }
  if (entity.type === "PERCENT" && typeof v.fraction === "number") {
    return `${+(v.fraction * 100).toFixed(6)}%`;
  }
  if (entity.type === "TIME") {
    if (typeof v.duration === "string") return `${v.kind} ${v.duration}`;
    if (typeof v.start === "string" && typeof v.end === "string") {
      const start = v.start.slice(0, 16).replace("T", " ");
      const end = v.end.slice(0, 16).replace("T", " ");
      const sameDay = start.slice(0, 10) === end.slice(0, 10);
      return `${start} — ${sameDay ? end.slice(11) : end}${v.every ? " (every " + v.every + ")" : ""}`;
    }
  }
  for (const field of ["e164", "address", "url", "id"]) if (typeof v[field] === "string") return v[field];
  return "";
}

function entityMark(entity, spanText) {
  const mark = document.createElement("mark");
  mark.className = "entity";
  mark.dataset.type = entity.type;
  mark.dataset.label = entity.type;
  const color = String(entity.color || "white").toLowerCase();
  if (NAMED_COLORS.has(color)) mark.classList.add(`entity-${color}`);
  else if (SAFE_CSS_COLOR.test(color)) mark.style.setProperty("--entity-color", color);
  const prob = typeof entity.prob === "number" ? entity.prob.toFixed(3) : "?";
  const value = describeValue(entity);
  mark.title = `${entity.type} ${TYPE_NAMES[entity.type] || ""} · ${value ? value + " · " : ""}p=${prob}`;
  if (value) {  // reachable by keyboard: the value shows above it (data-value) and is read out on focus
    mark.tabIndex = 0;
    mark.dataset.value = value;
    mark.setAttribute("aria-label", `${spanText}: ${TYPE_NAMES[entity.type] || entity.type} ${value}`);
  }
  mark.textContent = spanText;
  if (hiddenTypes.has(entity.type)) mark.classList.add("entity-hidden");
  return mark;
}

// --- statistics, legend, toggles ---------------------------------------------------------------------------------

function renderStats(entities, roundTripMs, serverMs) {
  const counts = {};
  for (const e of entities) counts[e.type] = (counts[e.type] || 0) + 1;
  const rows = [...Object.entries(counts).sort(), ["总计", entities.length]];
  $("stats").replaceChildren(...rows.map(([type, n]) => {
    const row = document.createElement("div");
    row.className = "flex justify-between";
    row.dataset.type = type;
    const name = document.createElement("dt");
    name.textContent = TYPE_NAMES[type] ? `${TYPE_NAMES[type]} ${type}` : type;
    const value = document.createElement("dd");
    value.className = "font-bold text-cyan-200";
    value.dataset.count = String(n);
    value.textContent = String(n);
    row.append(name, value);
    return row;
  }));
  $("timing").textContent = `往返 ${roundTripMs.toFixed(0)} ms · 模型 ${serverMs.toFixed(1)} ms`;
}

function renderLegend(entities) {
  const colors = new Map();
  for (const e of entities) colors.set(e.type, e.color);
  for (const [type, color] of [["PER", "red"], ["LOC", "cyan"], ["ORG", "yellow"]]) if (!colors.has(type)) colors.set(type, color);
  $("legend").replaceChildren(...[...colors].map(([type, color]) => {
    const toggle = document.createElement("button");
    toggle.type = "button";
    toggle.className = "legend-toggle";
    toggle.dataset.type = type;
    toggle.setAttribute("aria-pressed", String(!hiddenTypes.has(type)));
    const swatch = entityMark({ type, color, prob: 1 }, TYPE_NAMES[type] || type);
    swatch.classList.remove("entity-hidden");
    swatch.removeAttribute("title");
    toggle.append(swatch);
    toggle.title = `显示/隐藏 ${type}`;
    toggle.addEventListener("click", () => toggleType(type, toggle));
    return toggle;
  }));
}

function toggleType(type, button) {
  if (hiddenTypes.has(type)) hiddenTypes.delete(type);
  else hiddenTypes.add(type);
  button.setAttribute("aria-pressed", String(!hiddenTypes.has(type)));
  for (const mark of $("result").querySelectorAll("mark.entity")) {
    if (mark.dataset.type === type) mark.classList.toggle("entity-hidden", hiddenTypes.has(type));
  }
}

// --- talking to the API ------------------------------------------------------------------------------------------

function showMessage(text, kind) {
  const box = $("message");
  box.textContent = text;
  box.className = `mt-3 text-sm ${kind === "error" ? "cyber-error" : "text-cyan-300"}`;
  box.dataset.kind = kind;
}

function clearMessage() {
  $("message").className = "mt-3 hidden text-sm";
  $("message").textContent = "";
}

function explainError(status, body) {
  const detail = (body && body.error && body.error.message) || "";
  const requestId = body && body.error && body.error.request_id ? `（请求编号 ${body.error.request_id}）` : "";
  switch (status) {
    case 413: return `文本太长：${detail}`;
    case 429: return "请求太多，服务器正忙，请稍后再试。";
    case 503: return `服务暂不可用（模型繁忙或仍在加载），请稍后再试。${detail ? " " + detail : ""}`;
    case 404: return `模型不存在：${detail}`;
    case 422: return `请求有误：${detail}`;
    case 500: return `模型处理出错${requestId}。`;
    default: return `请求失败（HTTP ${status}）：${detail}`;
  }
}

async function detect() {
  const button = $("detect");
  if (button.disabled) return;
  const text = $("text").value;
  const model = $("model").value || undefined;
  button.disabled = true;
  button.dataset.busy = "true";
  button.textContent = "⏳ 侦测中…";
  clearMessage();
  const began = performance.now();
  try {
    let response;
    try {
      response = await fetch("/ner", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ text, model, min_prob: Number($("min-prob").value) }),
      });
    } catch (networkError) {
      showMessage("无法连接服务器：请检查网络或服务是否在运行。", "error");
      return;
    }
    let body = null;
    try { body = await response.json(); } catch (_) { body = null; }
    if (!response.ok || !body || body.success !== true) {
      showMessage(explainError(response.status, body), "error");
      return;
    }
    lastResult = { text, model: body.model, entities: body.data };
    renderHighlights($("result"), text, body.data);
    renderLegend(body.data);
    renderStats(body.data, performance.now() - began, body.elapsed_ms);
    $("copy").disabled = false;
    if (body.data.length === 0) showMessage("没有发现实体。", "info");
  } finally {
    button.disabled = false;
    delete button.dataset.busy;
    button.textContent = "🚀 开始侦测";
  }
}

async function copyResult() {
  if (!lastResult) return;
  const json = JSON.stringify(lastResult.entities, null, 2);
  try {
    await navigator.clipboard.writeText(json);
    showMessage("已复制 JSON 结果。", "info");
  } catch (_) {
    const scratch = document.createElement("textarea");
    scratch.value = json;
    document.body.append(scratch);
    scratch.select();
    const copied = document.execCommand("copy");
    scratch.remove();
    showMessage(copied ? "已复制 JSON 结果。" : "复制失败：浏览器不允许访问剪贴板。", copied ? "info" : "error");
  }
}

async function loadModels() {
  const select = $("model");
  try {
    const response = await fetch("/v1/models");
    const body = await response.json();
    select.replaceChildren(...body.data.map((m) => {
      const option = document.createElement("option");
      option.value = m.id;
      option.textContent = m.id;
      return option;
    }));
  } catch (_) {
    showMessage("无法读取模型列表：服务器未响应。", "error");
  }
}

function updateCount() {
  $("chars").textContent = `${Array.from($("text").value).length} 字`;
}

document.addEventListener("DOMContentLoaded", () => {
  $("detect").addEventListener("click", detect);
  $("min-prob").addEventListener("input", () => {
    $("min-prob-value").textContent = Number($("min-prob").value).toFixed(2);
  });
  $("min-prob").addEventListener("change", () => { if (lastResult) detect(); });
  $("copy").addEventListener("click", copyResult);
  $("text").addEventListener("input", updateCount);
  $("text").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      detect();
    }
  });
  for (const chip of document.querySelectorAll("[data-sample]")) {
    chip.addEventListener("click", () => {
      $("text").value = SAMPLES[chip.dataset.sample];
      updateCount();
      $("text").focus();
    });
  }
  renderLegend([]);
  loadModels();
});
