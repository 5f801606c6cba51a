/* The reporting dashboard: reads the JSON API, draws with inline SVG, Vietnamese by default. */
"use strict";

const I18N = {
  vi: {
    pageTitle: "Chi trả an sinh xã hội không dùng tiền mặt",
    heading: "Tiến độ chi trả an sinh xã hội không dùng tiền mặt",
    subheading: "Tỉnh Vĩnh Phúc · Bảo hiểm xã hội tỉnh, Sở LĐTBXH, Trung tâm Dịch vụ việc làm",
    period: "Kỳ báo cáo", target: "Mục tiêu", switchTo: "English",
    authNeeded: "Cần mã truy cập có quyền reports:read.", authSave: "Dùng mã này",
    targetProgress: "Tiến độ so với mục tiêu", currentShare: "Tỷ lệ hiện tại", targetShare: "Mục tiêu",
    gap: "Còn thiếu", beyond: "Vượt", trend: "Xu hướng (6 kỳ)", projected: "Dự kiến đạt", deadline: "Hạn",
    keyFigures: "Số liệu chính", peoplePaid: "Người được chi trả", peopleCashless: "Nhận không dùng tiền mặt",
    cashlessShare: "Tỷ lệ không dùng tiền mặt", amountPaid: "Số tiền đã chi", claimsReceived: "Hồ sơ tiếp nhận",
    decisionsApproved: "Quyết định hưởng",
    peopleNote: "Mỗi người được tính một lần trong kỳ cho mỗi chế độ.",
    byChannel: "Theo hình thức chi trả", channel: "Hình thức", ofPeople: "Tỷ trọng",
    urbanRuralTitle: "Tỷ lệ không dùng tiền mặt theo kỳ: đô thị và nông thôn",
    rankingTitle: "Xếp hạng theo tỷ lệ không dùng tiền mặt", districts: "Huyện, thành phố",
    communes: "Xã, phường, thị trấn", laggardLegend: "Dưới mục tiêu", area: "Địa bàn", areaType: "Khu vực",
    share: "Tỷ lệ", export: "Xuất dữ liệu", schemesTitle: "Theo chế độ", freshness: "Cập nhật",
    total: "Tổng cộng", targetLine: "Mục tiêu", noData: "Chưa có số liệu", allSchemes: "Tất cả chế độ",
    scope: "Phạm vi", periodLabel: "kỳ", people: "người", lag: "độ trễ", seconds: "giây",
    rebuilding: "đang dựng lại số liệu", loadFailed: "Không tải được dữ liệu",
    ppUnit: "điểm %", perMonth: "/tháng", noProjection: "Không dự báo được (xu hướng không tăng)",
    reachedAlready: "Đã đạt", urban: "Đô thị", rural: "Nông thôn", unknown: "Chưa xác định",
    status_REACHED: "Đã đạt", status_ON_TRACK: "Đúng tiến độ", status_AT_RISK: "Có nguy cơ không đạt",
    status_NO_DATA: "Chưa có số liệu", deadlinePassed: "đã quá hạn",
    billion: "tỷ đồng", million: "triệu đồng", dong: "đồng",
    hidden: "Ẩn", hiddenTitle: "Ẩn để bảo vệ người trong ô có ít người",
    envelopesTitle: "Sử dụng dự toán kinh phí chi trả",
    envelopesNote: "Dự toán của từng cơ quan cho từng chế độ trong kỳ; phần đã phê duyệt được tính vào dự toán ngay khi người kiểm soát phê duyệt, phần đã chi là số đã vào tài khoản hoặc đã chi tiền mặt.",
    approvedLegend: "Đã phê duyệt", paidLegend: "Đã chi", overLegend: "Vượt dự toán",
    envelopeOf: "dự toán", remaining: "Còn lại", overBy: "Vượt", noEnvelope: "Chưa có dự toán",
    noEnvelopes: "Chưa có dự toán hay phê duyệt nào cho kỳ này",
    suppressionNote: "Ô có dưới {n} người được ẩn, cùng với ô cần ẩn thêm để không suy ra được bằng phép trừ; tổng cộng là số thật. Mã có quyền reports:detail cho xem mọi ô.",
  },
  en: {
    pageTitle: "Cashless social-security payments",
    heading: "Progress toward cashless social-security payments",
    subheading: "Vĩnh Phúc province · Provincial Social Insurance, DOLISA, Employment Service Centre",
    period: "Period", target: "Target", switchTo: "Tiếng Việt",
    authNeeded: "A token with the reports:read scope is needed.", authSave: "Use this token",
    targetProgress: "Progress against the target", currentShare: "Current share", targetShare: "Target",
    gap: "Gap", beyond: "Beyond", trend: "Trend (6 periods)", projected: "Projected to reach", deadline: "Deadline",
    keyFigures: "Key figures", peoplePaid: "People paid", peopleCashless: "Paid without cash",
    cashlessShare: "Cashless share", amountPaid: "Amount paid", claimsReceived: "Claims received",
    decisionsApproved: "Approved decisions",
    peopleNote: "Each person counts once per period and scheme.",
    byChannel: "By payment channel", channel: "Channel", ofPeople: "Of people",
    urbanRuralTitle: "Cashless share by period: urban and rural",
    rankingTitle: "Ranking by cashless share", districts: "Districts", communes: "Communes",
    laggardLegend: "Below target", area: "Area", areaType: "Type", share: "Share", export: "Export",
    schemesTitle: "By scheme", freshness: "Updated", total: "Total", targetLine: "Target",
    noData: "No data", allSchemes: "All schemes", scope: "Scope", periodLabel: "period", people: "people",
    lag: "lag", seconds: "s", rebuilding: "rebuilding the figures", loadFailed: "Could not load the data",
    ppUnit: "pp", perMonth: "/month", noProjection: "No projection (the trend is not rising)",
    reachedAlready: "Reached", urban: "Urban", rural: "Rural", unknown: "Unknown",
    status_REACHED: "Reached", status_ON_TRACK: "On track", status_AT_RISK: "At risk",
    status_NO_DATA: "No data", deadlinePassed: "deadline passed",
    billion: "billion VND", million: "million VND", dong: "VND",
    hidden: "Hidden", hiddenTitle: "Hidden to protect the people of a small cell",
    envelopesTitle: "Funds envelope use",
    envelopesNote: "Each agency's budget for each scheme in the period; what a checker approves counts against it at once, what was paid reached an account or was handed over in cash.",
    approvedLegend: "Approved", paidLegend: "Paid", overLegend: "Over the envelope",
    envelopeOf: "envelope", remaining: "Remaining", overBy: "Over by", noEnvelope: "No envelope loaded",
    noEnvelopes: "No envelope or approval for this period yet",
    suppressionNote: "Cells of fewer than {n} people are hidden, with the cells that would reveal them by subtraction; totals are exact. A token with reports:detail shows every cell.",
  },
};

const MONTHS_EN = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const REFRESH_MS = 15000;

const state = {
  lang: initialLanguage(),
  period: null,
  targetId: null,
  level: "district",
  token: sessionStorage.getItem("reporting.token") || "",
  periods: null,
  progress: null,
  kpis: null,
  channels: null,
  trend: null,
  areas: null,
  schemes: null,
  envelopes: null,
  freshness: null,
};

function initialLanguage() {
  const asked = new URLSearchParams(location.search).get("lang");
  if (asked === "en" || asked === "vi") return asked;
  return localStorage.getItem("reporting.lang") === "en" ? "en" : "vi";
}

function t(key) {
  return (I18N[state.lang] && I18N[state.lang][key]) || I18N.vi[key] || key;
}

/* ---- numbers the Vietnamese way (212,7 tỷ đồng; 1.533; 25,4%) or the English way ---- */

function group(digits, sep) {
  const negative = digits.startsWith("-");
  let s = negative ? digits.slice(1) : digits;
  let out = "";
  while (s.length > 3) {
    out = sep + s.slice(-3) + out;
    s = s.slice(0, -3);
  }
  return (negative ? "-" : "") + s + out;
}

function fmtInt(n) {
  if (n === null || n === undefined) return t("hidden");
  return group(String(Math.trunc(n)), state.lang === "vi" ? "." : ",");
}

/* tenths: an integer number of tenths, written with one decimal */
function fmtTenths(tenths) {
  const negative = tenths < 0;
  const abs = Math.abs(tenths);
  const whole = group(String(Math.floor(abs / 10)), state.lang === "vi" ? "." : ",");
  const text = whole + (state.lang === "vi" ? "," : ".") + String(abs % 10);
  return (negative ? "-" : "") + text;
}

/* round half up of num/den to tenths, exactly, for non-negative integers */
function ratioTenths(num, den) {
  return Math.floor((2 * num * 10 + den) / (2 * den));
}

function fmtShare(cashless, paid) {
  if (paid === null || paid === undefined || cashless === null) return t("hidden");
  if (!paid) return "–";
  return fmtTenths(ratioTenths(cashless * 100, paid)) + "%";
}

function fmtPercentValue(value) {
  if (value === null || value === undefined) return "–";
  return fmtTenths(Math.round(value * 10)) + "%";
}

function fmtMoney(vnd) {
  if (vnd === null || vnd === undefined) return t("hidden");
  if (vnd >= 1e9) return fmtTenths(ratioTenths(vnd, 1e9)) + " " + t("billion");
  if (vnd >= 1e6) return fmtTenths(ratioTenths(vnd, 1e6)) + " " + t("million");
  return fmtInt(vnd) + " " + t("dong");
}

function fmtPoints(value, signed) {
  if (value === null || value === undefined) return "–";
  const tenths = Math.round(value * 10);
  const sign = signed && tenths > 0 ? "+" : "";
  return sign + fmtTenths(tenths) + " " + t("ppUnit");
}

function fmtDate(iso) {
  if (!iso) return "–";
  const [y, m, d] = iso.slice(0, 10).split("-");
  return state.lang === "vi" ? `${d}/${m}/${y}` : `${Number(d)} ${MONTHS_EN[Number(m) - 1]} ${y}`;
}

function fmtPeriod(period) {
  if (!period) return "–";
  const [y, m] = period.split("-");
  return state.lang === "vi" ? `Tháng ${m}/${y}` : `${MONTHS_EN[Number(m) - 1]} ${y}`;
}

function fmtPeriodShort(period) {
  const [y, m] = period.split("-");
  return state.lang === "vi" ? `${m}/${y.slice(2)}` : `${MONTHS_EN[Number(m) - 1]} ${y.slice(2)}`;
}

function fmtTime(iso) {
  if (!iso) return "–";
  const moment = new Date(iso);
  const local = new Date(moment.getTime() + 7 * 3600 * 1000); // Vietnam time, UTC+7
  const pad = (n) => String(n).padStart(2, "0");
  const hms = `${pad(local.getUTCHours())}:${pad(local.getUTCMinutes())}:${pad(local.getUTCSeconds())}`;
  const day = `${local.getUTCFullYear()}-${pad(local.getUTCMonth() + 1)}-${pad(local.getUTCDate())}`;
  return `${hms} ${fmtDate(day)}`;
}

function name(item) {
  return state.lang === "vi" ? item.name_vi : item.name_en;
}

function areaTypeLabel(kind) {
  return { URBAN: t("urban"), RURAL: t("rural"), UNKNOWN: t("unknown") }[kind] || "";
}

/* ---- the API ---- */

class AuthNeeded extends Error {}

async function api(path, params) {
  const url = new URL(path, location.origin);
  for (const [key, value] of Object.entries(params || {})) {
    if (value === null || value === undefined || value === "") continue;
    for (const v of Array.isArray(value) ? value : [value]) url.searchParams.append(key, v);
  }
  const headers = { Accept: "application/json" };
  if (state.token) headers.Authorization = "Bearer " + state.token;
  const response = await fetch(url, { headers });
  if (response.status === 401 || response.status === 403) throw new AuthNeeded();
  if (!response.ok) throw new Error(`${response.status} ${url.pathname}`);
  return response.json();
}

function selectedProgress() {
  if (!state.progress) return null;
  return state.progress.targets.find((p) => p.target.id === state.targetId) || state.progress.targets[0] || null;
}

function scopeFilters(target) {
  const filters = { scheme: target ? target.schemes : [] };
  if (target && target.area_type !== "ALL") filters.area_type = target.area_type;
  if (target && target.area_code) {
    filters.area_level = target.area_level;
    filters.area_code = target.area_code;
  }
  return filters;
}

async function load() {
  try {
    if (!state.periods) {
      state.periods = await api("/v1/periods");
      state.period = state.period || state.periods.default_period || state.periods.latest_complete;
    }
    state.progress = await api("/v1/targets/progress", { as_of: state.period });
    const progress = selectedProgress();
    if (progress) state.targetId = progress.target.id;
    const target = progress ? progress.target : null;
    const scope = scopeFilters(target);
    const tableScope = { ...scope };
    delete tableScope.area_level;
    delete tableScope.area_code;
    const [kpis, channels, trend, areas, schemes, envelopes, freshness] = await Promise.all([
      api("/v1/kpis", { period: state.period }),
      api("/v1/breakdowns/channel", { period: state.period }),
      api("/v1/timeseries", { split: "area-type", scheme: scope.scheme, period_to: state.period }),
      api(`/v1/breakdowns/${state.level}`, { ...tableScope, period: state.period, sort: "-share" }),
      api("/v1/breakdowns/scheme", { period: state.period }),
      api("/v1/envelopes", { period: state.period }),
      api("/v1/freshness"),
    ]);
    Object.assign(state, { kpis, channels, trend, areas, schemes, envelopes, freshness });
    document.getElementById("auth-banner").hidden = true;
    document.getElementById("error-banner").hidden = true;
    render();
  } catch (error) {
    if (error instanceof AuthNeeded) {
      document.getElementById("auth-banner").hidden = false;
      return;
    }
    const banner = document.getElementById("error-banner");
    banner.textContent = `${t("loadFailed")}: ${error.message}`;
    banner.hidden = false;
  } finally {
    document.body.dataset.ready = "true";
  }
}

/* ---- rendering ---- */

function render() {
  document.documentElement.lang = state.lang;
  document.querySelectorAll("[data-i18n]").forEach((el) => {
    el.textContent = t(el.dataset.i18n);
  });
  document.title = t("pageTitle");
  document.getElementById("lang-switch").textContent = t("switchTo");
  renderSelectors();
  renderGauge();
  renderKpis();
  renderTrend();
  renderAreas();
  renderSchemes();
  renderEnvelopes();
  renderFreshness();
  renderSuppressionNote();
  document.body.dataset.rendered = state.lang;
}

function renderSelectors() {
  const periodSelect = document.getElementById("period-select");
  const periods = (state.periods && state.periods.periods) || [];
  const options = periods.includes(state.period) || !state.period ? periods : [...periods, state.period];
  periodSelect.innerHTML = "";
  for (const p of [...options].reverse()) {
    const option = new Option(fmtPeriod(p), p, false, p === state.period);
    periodSelect.add(option);
  }
  const targetSelect = document.getElementById("target-select");
  targetSelect.innerHTML = "";
  for (const p of (state.progress && state.progress.targets) || []) {
    const title = state.lang === "vi" ? p.target.title_vi : p.target.title_en;
    targetSelect.add(new Option(title, p.target.id, false, p.target.id === state.targetId));
  }
}

function svg(tag, attrs, text) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
  if (text !== undefined) el.textContent = text;
  return el;
}

function arcPoint(cx, cy, r, fraction) {
  const angle = Math.PI * (1 - Math.max(0, Math.min(1, fraction)));
  return [cx + r * Math.cos(angle), cy - r * Math.sin(angle)];
}

function renderGauge() {
  const progress = selectedProgress();
  const box = document.getElementById("gauge");
  box.innerHTML = "";
  const set = (id, text) => { document.getElementById(id).textContent = text; };
  if (!progress) {
    set("target-title", t("noData"));
    return;
  }
  const target = progress.target;
  set("target-title", state.lang === "vi" ? target.title_vi : target.title_en);
  const cx = 120, cy = 118, r = 96;
  const chart = svg("svg", { viewBox: "0 0 240 140", role: "img", "aria-label": t("targetProgress") });
  const [x0, y0] = arcPoint(cx, cy, r, 0);
  const [x1, y1] = arcPoint(cx, cy, r, 1);
  chart.append(svg("path", { d: `M ${x0} ${y0} A ${r} ${r} 0 0 1 ${x1} ${y1}`, class: "gauge-track" }));
  const share = progress.people_paid ? progress.people_cashless / progress.people_paid : 0;
  if (progress.people_paid) {
    const [xv, yv] = arcPoint(cx, cy, r, share);
    chart.append(svg("path", { d: `M ${x0} ${y0} A ${r} ${r} 0 0 1 ${xv} ${yv}`,
                               class: `gauge-value status-${progress.status}` }));
  }
  const goal = target.target_percent / 100;
  const [ti, tj] = arcPoint(cx, cy, r - 16, goal);
  const [to, tp] = arcPoint(cx, cy, r + 14, goal);
  chart.append(svg("line", { x1: ti, y1: tj, x2: to, y2: tp, class: "gauge-target" }));
  const [lx, ly] = arcPoint(cx, cy, r + 22, goal);
  chart.append(svg("text", { x: lx, y: ly, class: "gauge-target-label", "text-anchor": "middle" },
                   fmtPercentValue(target.target_percent)));
  chart.append(svg("text", { x: cx, y: cy - 18, class: "gauge-share", "text-anchor": "middle",
                             "data-testid": "gauge-share" },
                   progress.people_paid ? fmtShare(progress.people_cashless, progress.people_paid) : "–"));
  chart.append(svg("text", { x: cx, y: cy + 2, class: "gauge-caption", "text-anchor": "middle" },
                   `${fmtInt(progress.people_cashless)} / ${fmtInt(progress.people_paid)} ${t("people")}`));
  box.append(chart);

  set("target-share", progress.people_paid ? fmtShare(progress.people_cashless, progress.people_paid) : "–");
  set("target-goal", fmtPercentValue(target.target_percent));
  if (progress.gap_pp === null) set("target-gap", "–");
  else if (progress.gap_pp > 0) set("target-gap", fmtPoints(progress.gap_pp));
  else set("target-gap", `${t("beyond")} ${fmtPoints(-progress.gap_pp)}`);
  set("target-trend", progress.trend_pp_per_month === null ? "–"
      : fmtPoints(progress.trend_pp_per_month, true) + t("perMonth"));
  if (progress.status === "REACHED") set("target-projected", t("reachedAlready"));
  else set("target-projected", progress.projected_date ? fmtDate(progress.projected_date) : t("noProjection"));
  set("target-deadline", fmtDate(target.deadline) + (progress.deadline_passed ? ` (${t("deadlinePassed")})` : ""));
  const status = document.getElementById("target-status");
  status.textContent = t(`status_${progress.status}`);
  status.className = `status status-${progress.status}`;
  status.dataset.status = progress.status;
  set("target-period", progress.period ? `${t("period")}: ${fmtPeriod(progress.period)}` : "");
}

function renderKpis() {
  const f = state.kpis.figures;
  const put = (id, text, value) => {
    const el = document.getElementById(id);
    el.textContent = text;
    el.dataset.value = String(value);
  };
  document.getElementById("kpi-period").textContent = fmtPeriod(state.period);
  put("kpi-people-paid", fmtInt(f.people_paid), f.people_paid);
  put("kpi-people-cashless", fmtInt(f.people_cashless), f.people_cashless);
  put("kpi-share", fmtShare(f.people_cashless, f.people_paid), f.cashless_share_percent);
  put("kpi-amount", fmtMoney(f.paid_amount), f.paid_amount);
  put("kpi-claims", fmtInt(f.claims_received), f.claims_received);
  put("kpi-decisions", fmtInt(f.decisions_approved), f.decisions_approved);
  for (const id of ["kpi-people-paid", "kpi-people-cashless", "kpi-share", "kpi-amount", "kpi-claims", "kpi-decisions"]) {
    const el = document.getElementById(id);
    el.classList.remove("suppressed");
    delete el.dataset.suppressed;
    markHidden(el, f);
  }
  const body = document.querySelector("#channel-table tbody");
  body.innerHTML = "";
  const total = state.channels.total.people_paid;
  for (const row of state.channels.rows) {
    const tr = document.createElement("tr");
    tr.dataset.code = row.code;
    markHidden(tr, row);
    for (const [i, value] of [name(row), fmtInt(row.people_paid), fmtShare(row.people_paid, total),
                              fmtMoney(row.paid_amount)].entries()) {
      const td = document.createElement("td");
      td.textContent = value;
      if (i) td.className = "num";
      tr.append(td);
    }
    body.append(tr);
  }
}

function schemeNames(codes) {
  if (!codes || !codes.length) return t("allSchemes");
  const names = {};
  for (const row of (state.schemes && state.schemes.rows) || []) names[row.code] = name(row);
  return codes.map((c) => names[c] || SCHEME_NAMES[state.lang][c] || c).join(", ");
}

const SCHEME_NAMES = {
  vi: { PENSION: "Lương hưu", SI_ALLOWANCE: "Trợ cấp BHXH hằng tháng", UNEMPLOYMENT: "Trợ cấp thất nghiệp",
        VOCATIONAL_TRAINING: "Hỗ trợ học nghề", MERITORIOUS: "Ưu đãi người có công",
        SOCIAL_PROTECTION: "Bảo trợ xã hội", OVERSEAS_LABOUR: "Hỗ trợ đi làm việc ở nước ngoài" },
  en: { PENSION: "Pension", SI_ALLOWANCE: "Monthly social-insurance allowance", UNEMPLOYMENT: "Unemployment benefit",
        VOCATIONAL_TRAINING: "Vocational-training support", MERITORIOUS: "Allowance for people with meritorious service",
        SOCIAL_PROTECTION: "Social-protection allowance", OVERSEAS_LABOUR: "Overseas-labour support" },
};

function renderTrend() {
  const progress = selectedProgress();
  const box = document.getElementById("trend-chart");
  box.innerHTML = "";
  document.getElementById("trend-scope").textContent =
    `${t("scope")}: ${schemeNames(progress ? progress.target.schemes : [])}`;
  const periods = state.trend.periods;
  const series = state.trend.series.filter((s) => s.code === "URBAN" || s.code === "RURAL");
  if (!periods.length || !series.length) {
    box.textContent = t("noData");
    return;
  }
  const goal = progress ? progress.target.target_percent : null;
  let top = goal || 0;
  for (const s of series) for (const p of s.points) if (p.people_paid) top = Math.max(top, 100 * p.people_cashless / p.people_paid);
  const yMax = Math.min(100, Math.max(10, Math.ceil((top + 5) / 10) * 10));
  const W = 760, H = 280, left = 48, right = 16, topPad = 16, bottom = 36;
  const plotW = W - left - right, plotH = H - topPad - bottom;
  const x = (i) => left + (periods.length === 1 ? plotW / 2 : (i * plotW) / (periods.length - 1));
  const y = (v) => topPad + plotH - (v / yMax) * plotH;
  const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": t("urbanRuralTitle") });
  for (let v = 0; v <= yMax; v += yMax <= 50 ? 10 : 20) {
    chart.append(svg("line", { x1: left, x2: W - right, y1: y(v), y2: y(v), class: "grid" }));
    chart.append(svg("text", { x: left - 6, y: y(v) + 4, "text-anchor": "end", class: "axis" }, fmtTenths(v * 10).replace(/[,.]0$/, "") + "%"));
  }
  const step = Math.max(1, Math.ceil(periods.length / 12));
  periods.forEach((p, i) => {
    if (i % step === 0 || i === periods.length - 1) {
      chart.append(svg("text", { x: x(i), y: H - 12, "text-anchor": "middle", class: "axis" }, fmtPeriodShort(p)));
    }
  });
  if (goal !== null) {
    chart.append(svg("line", { x1: left, x2: W - right, y1: y(goal), y2: y(goal), class: "target-line" }));
    chart.append(svg("text", { x: W - right, y: y(goal) - 6, "text-anchor": "end", class: "target-label" },
                     `${t("targetLine")} ${fmtPercentValue(goal)}`));
  }
  series.forEach((s) => {
    const pts = s.points.map((p, i) => (p.people_paid ? [x(i), y((100 * p.people_cashless) / p.people_paid), p] : null));
    const d = pts.filter(Boolean).map(([px, py], i) => `${i ? "L" : "M"} ${px.toFixed(1)} ${py.toFixed(1)}`).join(" ");
    chart.append(svg("path", { d, class: `series series-${s.code}` }));
    for (const point of pts.filter(Boolean)) {
      const [px, py, p] = point;
      const dot = svg("circle", { cx: px, cy: py, r: 3.5, class: `dot series-${s.code}`,
                                  "data-testid": `trend-point-${s.code}-${p.period}`,
                                  "data-share": fmtShare(p.people_cashless, p.people_paid) });
      dot.append(svg("title", {}, `${areaTypeLabel(s.code)} · ${fmtPeriod(p.period)}: ${fmtShare(p.people_cashless, p.people_paid)}`));
      chart.append(dot);
    }
  });
  box.append(chart);
  const legend = document.createElement("p");
  legend.className = "legend";
  for (const s of series) {
    legend.insertAdjacentHTML("beforeend",
      `<span class="swatch series-${s.code}"></span><span>${areaTypeLabel(s.code)}</span>`);
  }
  box.append(legend);
}

function renderAreas() {
  const progress = selectedProgress();
  const goal = progress ? progress.target.target_percent : null;
  const target = progress ? progress.target : null;
  const scopeParts = [schemeNames(target ? target.schemes : [])];
  if (target && target.area_type !== "ALL") scopeParts.push(areaTypeLabel(target.area_type));
  scopeParts.push(fmtPeriod(state.period));
  document.getElementById("areas-scope").textContent = `${t("scope")}: ${scopeParts.join(" · ")}`;
  document.getElementById("level-district").classList.toggle("on", state.level === "district");
  document.getElementById("level-commune").classList.toggle("on", state.level === "commune");
  const body = document.querySelector("#areas-table tbody");
  body.innerHTML = "";
  let rank = 0;
  for (const row of state.areas.rows) {
    const tr = document.createElement("tr");
    const shareValue = row.people_paid ? (100 * row.people_cashless) / row.people_paid : null;
    const laggard = goal !== null && shareValue !== null && shareValue < goal;
    if (laggard) tr.classList.add("laggard");
    markHidden(tr, row);
    tr.dataset.code = row.code;
    tr.dataset.testid = "area-row";
    rank += 1;
    const cells = [
      String(rank), name(row), areaTypeLabel(row.area_type || (target && target.area_type)),
      fmtInt(row.people_paid), fmtInt(row.people_cashless),
      fmtShare(row.people_cashless, row.people_paid), fmtMoney(row.paid_amount),
    ];
    cells.forEach((text, i) => {
      const td = document.createElement("td");
      td.textContent = text;
      if (i >= 3) td.className = "num";
      tr.append(td);
    });
    body.append(tr);
  }
  const foot = document.querySelector("#areas-table tfoot");
  const f = state.areas.total;
  foot.innerHTML = "";
  const tr = document.createElement("tr");
  for (const [i, text] of ["", t("total"), "", fmtInt(f.people_paid), fmtInt(f.people_cashless),
                           fmtShare(f.people_cashless, f.people_paid), fmtMoney(f.paid_amount)].entries()) {
    const td = document.createElement("td");
    td.textContent = text;
    if (i >= 3) td.className = "num";
    tr.append(td);
  }
  tr.dataset.testid = "area-total";
  markHidden(tr, f);
  foot.append(tr);
  const params = new URLSearchParams({ period: state.period, sort: "-share", lang: state.lang });
  const scope = scopeFilters(target);
  for (const s of scope.scheme) params.append("scheme", s);
  if (scope.area_type) params.set("area_type", scope.area_type);
  document.getElementById("export-areas-csv").href = `/v1/exports/${state.level}.csv?${params}`;
  document.getElementById("export-areas-xlsx").href = `/v1/exports/${state.level}.xlsx?${params}`;
}

function renderSchemes() {
  const box = document.getElementById("scheme-bars");
  box.innerHTML = "";
  const rows = [...state.schemes.rows].sort((a, b) => (b.people_paid ?? -1) - (a.people_paid ?? -1) || a.code.localeCompare(b.code));
  if (!rows.length) box.textContent = t("noData");
  for (const row of rows) {
    const share = row.people_paid ? (100 * row.people_cashless) / row.people_paid : 0;
    const item = document.createElement("div");
    item.className = "bar-row";
    item.dataset.testid = "scheme-row";
    item.dataset.code = row.code;
    markHidden(item, row);
    item.innerHTML = `
      <div class="bar-label"></div>
      <div class="bar"><div class="bar-fill" style="width:${share.toFixed(2)}%"></div></div>
      <div class="bar-figures"></div>`;
    item.querySelector(".bar-label").textContent = name(row);
    item.querySelector(".bar-figures").textContent =
      `${fmtShare(row.people_cashless, row.people_paid)} · ${fmtInt(row.people_paid)} ${t("people")} · ${fmtMoney(row.paid_amount)}`;
    box.append(item);
  }
  const params = new URLSearchParams({ period: state.period, lang: state.lang });
  document.getElementById("export-schemes-csv").href = `/v1/exports/scheme.csv?${params}`;
  document.getElementById("export-schemes-xlsx").href = `/v1/exports/scheme.xlsx?${params}`;
}

/* A bar per agency and scheme: the envelope is the whole bar, the approved part fills it (red when
   over), the paid part inside it. Shares are exact integer ratios, rounded half up to tenths. */
function renderEnvelopes() {
  const box = document.getElementById("envelope-bars");
  box.innerHTML = "";
  document.getElementById("envelopes-period").textContent = fmtPeriod(state.envelopes.period || state.period);
  if (!state.envelopes.rows.length) box.textContent = t("noEnvelopes");
  for (const row of state.envelopes.rows) {
    const item = document.createElement("div");
    item.className = "bar-row envelope";
    item.dataset.testid = "envelope-row";
    item.dataset.agency = row.agency;
    item.dataset.scheme = row.scheme;
    if (row.over) item.classList.add("over");
    if (row.envelope === null) item.classList.add("no-envelope");
    markHidden(item, row);
    const width = (part) => (row.envelope && part ? Math.min(100, (100 * part) / row.envelope) : 0);
    item.innerHTML = `
      <div class="bar-label"><span class="agency"></span> · <span class="scheme"></span></div>
      <div class="bar"><div class="bar-fill approved" style="width:${width(row.approved).toFixed(2)}%"></div>
        <div class="bar-fill paid" style="width:${width(row.paid).toFixed(2)}%"></div></div>
      <div class="bar-figures"><span class="used"></span><span class="remaining"></span></div>`;
    item.querySelector(".agency").textContent = row.agency;
    item.querySelector(".agency").title = state.lang === "vi" ? row.agency_name_vi : row.agency_name_en;
    item.querySelector(".scheme").textContent = state.lang === "vi" ? row.scheme_name_vi : row.scheme_name_en;
    const used = item.querySelector(".used");
    const remaining = item.querySelector(".remaining");
    if (row.envelope === null) {
      used.textContent = `${t("approvedLegend")} ${fmtMoney(row.approved)} · ${t("noEnvelope")}`;
    } else {
      used.textContent = `${fmtShare(row.approved, row.envelope)} · ${fmtMoney(row.approved)} / ${fmtMoney(row.envelope)} ${t("envelopeOf")}`;
      remaining.textContent = row.remaining === null ? `${t("paidLegend")} ${fmtMoney(row.paid)}`
        : row.over ? `${t("overBy")} ${fmtMoney(-row.remaining)} · ${t("paidLegend")} ${fmtMoney(row.paid)}`
        : `${t("remaining")} ${fmtMoney(row.remaining)} · ${t("paidLegend")} ${fmtMoney(row.paid)}`;
    }
    box.append(item);
  }
}

/* Readers without reports:detail get small cells hidden (null figures, `suppressed: true`). */
function renderSuppressionNote() {
  const threshold = [state.kpis, state.channels, state.trend, state.areas, state.schemes, state.envelopes]
    .map((body) => body && body.suppressed_below).find((n) => n !== null && n !== undefined);
  const note = document.getElementById("suppression-note");
  note.hidden = threshold === undefined;
  note.textContent = threshold === undefined ? "" : t("suppressionNote").replace("{n}", String(threshold));
}

function markHidden(el, figures) {
  if (figures && figures.suppressed) {
    el.classList.add("suppressed");
    el.dataset.suppressed = "true";
    el.title = t("hiddenTitle");
  }
}

function renderFreshness() {
  const f = state.freshness;
  let text = fmtTime(f.last_applied_at);
  if (f.lag_seconds !== null) text += ` · ${t("lag")} ${fmtTenths(Math.round(f.lag_seconds * 10))} ${t("seconds")}`;
  if (f.state !== "ACTIVE") text += ` · ${t("rebuilding")}`;
  document.getElementById("freshness").textContent = text;
}

/* ---- events ---- */

document.getElementById("lang-switch").addEventListener("click", () => {
  state.lang = state.lang === "vi" ? "en" : "vi";
  localStorage.setItem("reporting.lang", state.lang);
  if (state.kpis) render();
});
document.getElementById("period-select").addEventListener("change", (e) => {
  state.period = e.target.value;
  load();
});
document.getElementById("target-select").addEventListener("change", (e) => {
  state.targetId = e.target.value;
  load();
});
document.getElementById("level-district").addEventListener("click", () => { state.level = "district"; load(); });
document.getElementById("level-commune").addEventListener("click", () => { state.level = "commune"; load(); });
/* An export link cannot carry the bearer token: with one, fetch the file and hand it over. */
async function download(event) {
  if (!state.token) return;
  event.preventDefault();
  const link = event.currentTarget;
  const response = await fetch(link.href, { headers: { Authorization: "Bearer " + state.token } });
  if (!response.ok) {
    const banner = document.getElementById("error-banner");
    banner.textContent = `${t("loadFailed")}: ${response.status}`;
    banner.hidden = false;
    return;
  }
  const disposition = response.headers.get("content-disposition") || "";
  const match = /filename="([^"]+)"/.exec(disposition);
  const url = URL.createObjectURL(await response.blob());
  const save = document.createElement("a");
  save.href = url;
  save.download = match ? match[1] : "export";
  document.body.append(save);
  save.click();
  save.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}
for (const id of ["export-areas-csv", "export-areas-xlsx", "export-schemes-csv", "export-schemes-xlsx"]) {
  document.getElementById(id).addEventListener("click", download);
}
document.getElementById("auth-save").addEventListener("click", () => {
  state.token = document.getElementById("auth-token").value.trim();
  sessionStorage.setItem("reporting.token", state.token);
  load();
});

load();
setInterval(() => { if (!document.hidden) load(); }, REFRESH_MS);
