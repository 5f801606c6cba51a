/* The officers' console. It holds no logic of its own: every list and every action is a call to
   intake's, payout's or reporting's API with the signed-in person's bearer token; a queue is
   shown when the token's scopes can use it, and the server's answer (a problem's detail too) is
   what the page shows. Vietnamese by default, English on the switch. */
"use strict";

const I18N = {
  vi: {
    pageTitle: "Bàn làm việc của cán bộ chi trả",
    heading: "Bàn làm việc của cán bộ chi trả an sinh xã hội",
    subheading: "Tỉnh Vĩnh Phúc · Bảo hiểm xã hội tỉnh, Sở LĐTBXH, Trung tâm Dịch vụ việc làm, Bưu điện tỉnh",
    switchTo: "English", signOut: "Đăng xuất", signInTitle: "Đăng nhập", username: "Tên đăng nhập",
    password: "Mật khẩu", signIn: "Đăng nhập", oidcSignIn: "Đăng nhập qua cổng định danh",
    signInNote: "Mã truy cập chỉ được giữ trong thẻ trình duyệt này và mất khi đóng thẻ.",
    tabClaims: "Hồ sơ chờ quyết định", tabCycles: "Kỳ chi trả", tabAccounts: "Tài khoản cần sửa",
    tabPayments: "Chi trả lỗi, tạm giữ, bất thường", tabCash: "Danh sách chi tiền mặt", tabAudit: "Nhật ký",
    claim: "Hồ sơ", scheme: "Chế độ", agency: "Cơ quan", commune: "Xã", received: "Tiếp nhận",
    nothingWaiting: "Không có việc chờ.", decide: "Quyết định", decideClaim: "Quyết định hồ sơ",
    decisionNumber: "Số quyết định", startPeriod: "Kỳ bắt đầu",
    unemploymentFacts: "Căn cứ tính trợ cấp thất nghiệp", averageSalary: "Lương bình quân 6 tháng (đồng)",
    contributionMonths: "Số tháng đóng", region: "Vùng", contractEnded: "Ngày chấm dứt hợp đồng",
    salaryRegime: "Chế độ tiền lương", regimeEnterprise: "Doanh nghiệp (lương tối thiểu vùng)",
    regimeState: "Nhà nước (lương cơ sở)", calculate: "Tính theo quy định",
    amountPerInstallment: "Số tiền mỗi kỳ (đồng)", scheduleKind: "Lịch chi trả",
    fixedMonthly: "Hằng tháng, số kỳ xác định", openMonthly: "Hằng tháng, không thời hạn", oneOff: "Một lần",
    installments: "Số kỳ", rejectCode: "Mã lý do (khi từ chối)", rejectText: "Lý do (khi từ chối)",
    approveClaim: "Duyệt hưởng", rejectClaim: "Từ chối", close: "Đóng",
    calcText: "Theo quy định: {monthly}/tháng trong {months} tháng (tổng {total}). 60% lương bình quân là {share}; mức trần là {cap} (5 × {ceiling} {ceilingKind}){capped}.",
    capApplied: ", đã áp mức trần", ceilingBASE_SALARY: "lương cơ sở", ceilingREGIONAL_MINIMUM_WAGE: "lương tối thiểu vùng",
    period: "Kỳ", show: "Xem", prepare: "Lập kỳ chi trả", noCycle: "Kỳ này chưa được lập.", awaitingCycles: "Kỳ chờ duyệt:", noneAwaiting: "Không có kỳ nào chờ duyệt.",
    cycleState: "Trạng thái", progress: "Tiến độ", totals: "Tổng", count: "Số món", amount: "Số tiền",
    differences: "Chênh lệch so với kỳ trước", heldTitle: "Tạm giữ", awaiting: "Chờ phê duyệt",
    digest: "Mã kiểm (digest)", preparedBy: "Người lập", batches: "Lô", approvals: "Phê duyệt",
    envelope: "Hạn mức kinh phí", remaining: "Còn lại", approve: "Phê duyệt", reject: "Từ chối",
    rejectReason: "Lý do từ chối", decidedBy: "Người quyết định", decision: "Quyết định", reason: "Lý do",
    at: "Thời điểm", none: "Không có", byScheme: "Theo chế độ", byChannel: "Theo kênh",
    accountsNote: "Tài khoản không xác minh được hoặc bị ngân hàng báo lỗi: sửa tài khoản hoặc chuyển sang nhận tiền mặt.",
    beneficiary: "Người hưởng", bank: "Ngân hàng", account: "Tài khoản", holder: "Chủ tài khoản",
    status: "Trạng thái", nextStep: "Việc cần làm", fix: "Sửa", fixAccount: "Sửa phương thức nhận tiền",
    method: "Phương thức", ownAccount: "Tài khoản của người hưởng", cashPostOffice: "Tiền mặt tại bưu điện",
    bankBin: "Mã ngân hàng (BIN)", accountNumber: "Số tài khoản", cashReason: "Lý do nhận tiền mặt", save: "Lưu",
    failedForGood: "Chi trả thất bại", held: "Tạm giữ", anomalies: "Bất thường", installment: "Khoản chi",
    kind: "Loại", detail: "Chi tiết", handover: "Đã chi", returned: "Trả lại", paidOn: "Ngày chi",
    staffId: "Mã nhân viên", cashItem: "Món chi", state: "Trạng thái", entityType: "Đối tượng",
    entityId: "Mã đối tượng", actor: "Người thực hiện", action: "Thao tác", search: "Tìm",
    approvalTrail: "Nhật ký phê duyệt kỳ chi trả",
    footer: "Mọi thao tác đi qua API của các dịch vụ và được ghi nhật ký với danh tính người thực hiện.",
    saved: "Đã ghi nhận.", decided: "Đã ghi quyết định.", prepared: "Đã lập kỳ chi trả; chưa có khoản nào được gửi trước khi phê duyệt.",
    approvedMsg: "Đã phê duyệt.", rejectedMsg: "Đã từ chối.", handedOver: "Đã ghi nhận chi tiền.",
    returnedMsg: "Đã ghi nhận trả lại.", signedInAs: "Đã đăng nhập", loadFailed: "Không gọi được dịch vụ",
    reasonNeeded: "Cần ghi lý do.", list: "Danh sách", people: "người",
    role_maker: "Cán bộ lập", role_checker: "Cán bộ phê duyệt", "role_post-office": "Nhân viên bưu điện",
    "role_commune-official": "Cán bộ xã", role_leader: "Lãnh đạo", role_administrator: "Quản trị",
    ret_NOT_FOUND: "Không tìm thấy người nhận", ret_REFUSED: "Người nhận từ chối", ret_DECEASED: "Người nhận đã mất",
    diff_new: "Mới", diff_stopped: "Dừng", diff_changed_amount: "Đổi số tiền", diff_changed_account: "Đổi tài khoản",
    ch_OWN_ACCOUNT: "Tài khoản của người hưởng", ch_AUTHORISED_ACCOUNT: "Tài khoản người được ủy quyền", ch_CASH_POST_OFFICE: "Tiền mặt qua bưu điện",
  },
  en: {
    pageTitle: "Payment officers' console",
    heading: "Social-security payment officers' console",
    subheading: "Vĩnh Phúc province · Provincial Social Insurance, DOLISA, Employment Service Centre, Provincial Post Office",
    switchTo: "Tiếng Việt", signOut: "Sign out", signInTitle: "Sign in", username: "Username",
    password: "Password", signIn: "Sign in", oidcSignIn: "Sign in with the identity provider",
    signInNote: "The token is kept in this browser tab only and is gone when the tab closes.",
    tabClaims: "Claims awaiting decision", tabCycles: "Payment cycles", tabAccounts: "Accounts to fix",
    tabPayments: "Failed, held and anomalous payments", tabCash: "Cash lists", tabAudit: "Audit trail",
    claim: "Claim", scheme: "Scheme", agency: "Agency", commune: "Commune", received: "Received",
    nothingWaiting: "Nothing waiting.", decide: "Decide", decideClaim: "Decide claim",
    decisionNumber: "Decision number", startPeriod: "First period",
    unemploymentFacts: "Unemployment benefit facts", averageSalary: "Average salary of the last 6 months (VND)",
    contributionMonths: "Months of contributions", region: "Region", contractEnded: "Contract ended on",
    salaryRegime: "Salary regime", regimeEnterprise: "Enterprise (regional minimum wage)",
    regimeState: "State (base salary)", calculate: "Calculate by the rule",
    amountPerInstallment: "Amount per installment (VND)", scheduleKind: "Schedule",
    fixedMonthly: "Monthly, fixed number", openMonthly: "Monthly, open-ended", oneOff: "One-off",
    installments: "Installments", rejectCode: "Reason code (to reject)", rejectText: "Reason (to reject)",
    approveClaim: "Approve", rejectClaim: "Reject", close: "Close",
    calcText: "By the rule: {monthly} a month for {months} months (total {total}). 60% of the average salary is {share}; the cap is {cap} (5 × {ceiling} {ceilingKind}){capped}.",
    capApplied: ", cap applied", ceilingBASE_SALARY: "base salary", ceilingREGIONAL_MINIMUM_WAGE: "regional minimum wage",
    period: "Period", show: "Show", prepare: "Prepare the cycle", noCycle: "This period has no cycle yet.", awaitingCycles: "Awaiting approval:", noneAwaiting: "No cycle awaits approval.",
    cycleState: "State", progress: "Progress", totals: "Totals", count: "Count", amount: "Amount",
    differences: "Differences from the previous period", heldTitle: "Held", awaiting: "Awaiting approval",
    digest: "Digest", preparedBy: "Prepared by", batches: "Batches", approvals: "Approvals",
    envelope: "Funds envelope", remaining: "Remaining", approve: "Approve", reject: "Reject",
    rejectReason: "Reason for rejecting", decidedBy: "Decided by", decision: "Decision", reason: "Reason",
    at: "At", none: "None", byScheme: "By scheme", byChannel: "By channel",
    accountsNote: "Accounts that failed verification or that a bank flagged: correct the account or route the person to cash.",
    beneficiary: "Beneficiary", bank: "Bank", account: "Account", holder: "Holder",
    status: "Status", nextStep: "Next step", fix: "Fix", fixAccount: "Fix the payment method",
    method: "Method", ownAccount: "The beneficiary's own account", cashPostOffice: "Cash at the post office",
    bankBin: "Bank (BIN)", accountNumber: "Account number", cashReason: "Why cash", save: "Save",
    failedForGood: "Failed for good", held: "Held", anomalies: "Anomalies", installment: "Installment",
    kind: "Kind", detail: "Detail", handover: "Handed over", returned: "Returned", paidOn: "Paid on",
    staffId: "Staff id", cashItem: "Item", state: "State", entityType: "Entity",
    entityId: "Entity id", actor: "Actor", action: "Action", search: "Search",
    approvalTrail: "Payment cycle approvals trail",
    footer: "Every action goes through the services' APIs and is recorded with the person's identity.",
    saved: "Recorded.", decided: "Decision recorded.", prepared: "The cycle is prepared; nothing is sent before its approval.",
    approvedMsg: "Approved.", rejectedMsg: "Rejected.", handedOver: "Handover recorded.",
    returnedMsg: "Return recorded.", signedInAs: "Signed in", loadFailed: "The service could not be reached",
    reasonNeeded: "A reason is needed.", list: "List", people: "people",
    role_maker: "Maker", role_checker: "Checker", "role_post-office": "Post-office staff",
    "role_commune-official": "Commune official", role_leader: "Leader", role_administrator: "Administrator",
    ret_NOT_FOUND: "Beneficiary not found", ret_REFUSED: "Beneficiary refused", ret_DECEASED: "Beneficiary deceased",
    diff_new: "New", diff_stopped: "Stopped", diff_changed_amount: "Amount changed", diff_changed_account: "Account changed",
    ch_OWN_ACCOUNT: "Own account", ch_AUTHORISED_ACCOUNT: "Representative's account", ch_CASH_POST_OFFICE: "Cash at the post office",
  },
};

/* What to do next: payout names the step (`next_step`), these are its words for officers. */
const STEPS = {
  vi: {
    COLLECT_METHOD: "Thu thập tài khoản hoặc đăng ký nhận tiền mặt cho người hưởng.",
    WAIT_VERIFICATION: "Chờ ngân hàng xác minh tài khoản; lần chi sau sẽ tự chi.",
    FIX_ACCOUNT: "Sửa tài khoản (ngân hàng, số, chủ tài khoản) hoặc chuyển sang nhận tiền mặt.",
    CONFIRM_ACCOUNT: "Ngân hàng từ chối chi vào tài khoản này: xác nhận lại với người hưởng hoặc chuyển sang tiền mặt.",
    RENEW_AUTHORISATION: "Gia hạn giấy ủy quyền của người đại diện hoặc đổi phương thức.",
    WAIT_SUPPLEMENT: "Phương thức đổi sau khi duyệt: khoản này được chi ở lần chi bổ sung.",
    RESOLVE_DUPLICATE: "Hai quyết định cùng chế độ cùng chi cho một người: dừng quyết định sai.",
    DECIDE_STOP: "Cơ sở dữ liệu dân cư ghi người hưởng đã mất: quyết định đề xuất dừng hưởng.",
    CHECK_IDENTITY: "Đối chiếu họ tên, ngày sinh, số căn cước với cơ sở dữ liệu dân cư.",
    CHECK_DEATH: "Ngân hàng hoặc bưu điện báo người hưởng đã mất: xác minh rồi dừng hưởng hoặc đổi người đại diện.",
    HAND_OVER: "Chi tiền và ghi nhận, hoặc ghi trả lại kèm lý do.",
    DECIDE_REPAYMENT: "Cơ quan chi trả quyết định: tài khoản mới, hoặc chi tiền mặt kỳ sau.",
    ASK_COUNTERPARTY: "Hỏi ngân hàng hoặc bưu điện lý do lỗi rồi sửa phương thức nhận tiền.",
    RECONCILE: "Đối chiếu với sao kê ngân hàng trước khi chi lại.",
    CHECK_DOUBLE_PAYMENT: "Lần chi trước hoặc ngân hàng báo đã chi: kiểm tra không chi hai lần, không gửi lại.",
    TELL_OPERATIONS: "Báo bộ phận vận hành: kết quả không khớp với khoản chi này.",
    WAIT_SENDING: "Chưa có việc: chờ phê duyệt phần chi trả rồi gửi đi.",
    WAIT_OUTCOME: "Chưa có việc: ngân hàng hoặc bưu điện chưa trả lời.",
    NOTHING: "Không: đã xong.",
  },
  en: {
    COLLECT_METHOD: "Collect an account, or register the person for cash.",
    WAIT_VERIFICATION: "Wait for the bank to verify the account; the next pass pays it.",
    FIX_ACCOUNT: "Correct the account (bank, number, holder) or route the person to cash.",
    CONFIRM_ACCOUNT: "A bank refused a payment to this account: confirm it with the person, or route to cash.",
    RENEW_AUTHORISATION: "Renew the representative's authorisation, or change the method.",
    WAIT_SUPPLEMENT: "The method changed after approval: it is paid in a supplementary run.",
    RESOLVE_DUPLICATE: "Two entitlements of one scheme pay the person: stop the wrong one.",
    DECIDE_STOP: "The population registry records the holder as deceased: decide the proposed stop.",
    CHECK_IDENTITY: "Check the name, birth date and CCCD number with the population registry.",
    CHECK_DEATH: "The bank or the post office reports a death: check it, then stop the entitlement or change the representative.",
    HAND_OVER: "Hand the cash over and record it, or record the return with its reason.",
    DECIDE_REPAYMENT: "The agency decides: a new account, or cash again next period.",
    ASK_COUNTERPARTY: "Ask the bank or the post office why it failed, then fix the method.",
    RECONCILE: "Reconcile with the bank's statement before paying again.",
    CHECK_DOUBLE_PAYMENT: "An earlier attempt or the bank says it was paid: check it was not paid twice; never resend.",
    TELL_OPERATIONS: "Tell operations: the answer does not fit this payment.",
    WAIT_SENDING: "Nothing yet: it waits for its part's approval, then for sending.",
    WAIT_OUTCOME: "Nothing yet: the bank or the post office has not answered.",
    NOTHING: "Nothing: done.",
  },
};

const state = {
  lang: sessionStorage.getItem("console.lang") || "vi",
  config: null,
  token: sessionStorage.getItem("console.token"),
  who: null,
  queue: null,
  cycle: null,
  awaitingCycles: [],
};

const $ = (sel, root = document) => root.querySelector(sel);
const t = (key) => (I18N[state.lang] && I18N[state.lang][key]) || I18N.vi[key] || key;
const fill = (text, values) => text.replace(/\{(\w+)\}/g, (_, k) => (k in values ? values[k] : ""));

function money(amount) {
  if (amount === null || amount === undefined) return "";
  const locale = state.lang === "vi" ? "vi-VN" : "en-GB";
  return new Intl.NumberFormat(locale).format(amount) + (state.lang === "vi" ? " đ" : " VND");
}
function integer(n) {
  return new Intl.NumberFormat(state.lang === "vi" ? "vi-VN" : "en-GB").format(n || 0);
}
function when(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return isNaN(d) ? String(iso) : d.toLocaleString(state.lang === "vi" ? "vi-VN" : "en-GB", { timeZone: "Asia/Ho_Chi_Minh" });
}
function thisPeriod() {
  const now = new Date(Date.now() + 7 * 3600 * 1000); // Vietnam time
  return now.toISOString().slice(0, 7);
}
function todayInVietnam() {
  return new Date(Date.now() + 7 * 3600 * 1000).toISOString().slice(0, 10);
}
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "testid") node.dataset.testid = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}
function status(value) {
  return el("span", { class: `status s-${value}` }, value || "");
}

// --- the page's words ----------------------------------------------------------------------

function applyLanguage() {
  document.documentElement.lang = state.lang;
  document.title = t("pageTitle");
  for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  $("#lang-switch").textContent = t("switchTo");
  showWho();
}

// --- messages ------------------------------------------------------------------------------

function showProblem(text) {
  const box = $("#problem");
  box.textContent = text;
  box.hidden = !text;
  if (text) $("#notice").hidden = true;
}
function showNotice(text) {
  const box = $("#notice");
  box.textContent = text;
  box.hidden = !text;
  if (text) $("#problem").hidden = true;
}
function clearMessages() {
  showProblem("");
  showNotice("");
}

// --- the APIs ------------------------------------------------------------------------------

class ApiProblem extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title || problem.error_description)) || `HTTP ${status}`);
    this.status = status;
    this.problem = problem || {};
  }
}

/* One call to a service. A problem's detail (and each field error's) is what the person reads. */
async function api(service, path, { method = "GET", body, params, form, quiet } = {}) {
  const url = new URL(state.config[service] + path);
  for (const [k, v] of Object.entries(params || {})) if (v !== "" && v !== null && v !== undefined) url.searchParams.set(k, v);
  const headers = {};
  if (state.token) headers.Authorization = `Bearer ${state.token}`;
  let payload;
  if (form) {
    headers["Content-Type"] = "application/x-www-form-urlencoded";
    payload = new URLSearchParams(form).toString();
  } else if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(url, { method, headers, body: payload, credentials: "omit" });
  } catch (error) {
    const problem = new ApiProblem(0, { detail: `${t("loadFailed")}: ${service}` });
    if (!quiet) showProblem(problem.message);
    throw problem;
  }
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = { detail: text }; }
  if (!response.ok) {
    const problem = new ApiProblem(response.status, data);
    if (response.status === 401 && service !== "intake") signOut();
    if (!quiet) showProblem(describeProblem(problem));
    throw problem;
  }
  return data;
}

function describeProblem(problem) {
  const fields = (problem.problem.errors || []).map((e) => `${e.pointer || e.location || ""} ${e.detail || ""}`.trim());
  return [problem.message, ...fields].filter(Boolean).join(" · ");
}

// --- signing in ----------------------------------------------------------------------------

function decodeToken(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const json = decodeURIComponent(
      atob(part + "=".repeat((4 - (part.length % 4)) % 4)).split("").map((c) => "%" + c.charCodeAt(0).toString(16).padStart(2, "0")).join("")
    );
    return JSON.parse(json);
  } catch (_) {
    return null;
  }
}

/* Who the token says the person is (the server decides what they may do; the page only hides
   what the scopes cannot use). Intake's tokens and an external issuer's (Keycloak's realm roles). */
function whoOf(token) {
  const claims = decodeToken(token);
  if (!claims) return null;
  const scopes = new Set(String(claims.scope || "").split(/\s+/).filter(Boolean));
  const roles = claims.roles || (claims.realm_access && claims.realm_access.roles) || [];
  return {
    sub: claims.sub,
    name: claims.name || claims.preferred_username || claims.sub,
    roles,
    agency: claims.agency || null,
    communes: claims.communes || [],
    scopes,
    exp: claims.exp,
  };
}
const can = (scope) => !!(state.who && state.who.scopes.has(scope));

function showWho() {
  const who = state.who;
  $("#who").hidden = !who;
  $("#sign-out").hidden = !who;
  if (!who) return;
  $("#who-name").textContent = who.name;
  $("#who-roles").textContent = who.roles.map((r) => t(`role_${r}`)).join(", ");
  $("#who-agency").textContent = [who.agency, who.communes.length ? `${t("commune")}: ${who.communes.join(", ")}` : ""].filter(Boolean).join(" · ");
}

async function signInWithPassword(event) {
  event.preventDefault();
  clearMessages();
  const form = event.target;
  try {
    const answer = await api("intake", "/oauth/token", {
      method: "POST",
      form: { grant_type: "password", username: form.username.value, password: form.password.value },
    });
    form.password.value = "";
    startSession(answer.access_token);
  } catch (_) {
    /* the problem is shown */
  }
}

function startSession(token) {
  const who = whoOf(token);
  if (!who || (who.exp && who.exp * 1000 < Date.now())) {
    signOut();
    return;
  }
  state.token = token;
  state.who = who;
  sessionStorage.setItem("console.token", token);
  render();
}

function signOut() {
  state.token = null;
  state.who = null;
  sessionStorage.removeItem("console.token");
  render();
}

/* An external OpenID Connect issuer: the authorization code flow with PKCE (a public client). */
async function oidcDiscovery() {
  const issuer = state.config.sign_in.issuer.replace(/\/$/, "");
  const response = await fetch(`${issuer}/.well-known/openid-configuration`, { credentials: "omit" });
  if (!response.ok) throw new ApiProblem(response.status, { detail: t("loadFailed") });
  return response.json();
}
function randomText(bytes) {
  const data = crypto.getRandomValues(new Uint8Array(bytes));
  return btoa(String.fromCharCode(...data)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}
async function challengeOf(verifier) {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return btoa(String.fromCharCode(...new Uint8Array(digest))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}
async function oidcStart() {
  try {
    const discovery = await oidcDiscovery();
    const verifier = randomText(48);
    const stateValue = randomText(16);
    sessionStorage.setItem("console.pkce", JSON.stringify({ verifier, state: stateValue }));
    const url = new URL(discovery.authorization_endpoint);
    url.search = new URLSearchParams({
      response_type: "code",
      client_id: state.config.sign_in.client_id,
      redirect_uri: location.origin + location.pathname,
      scope: state.config.sign_in.scope,
      state: stateValue,
      code_challenge: await challengeOf(verifier),
      code_challenge_method: "S256",
    }).toString();
    location.assign(url.toString());
  } catch (error) {
    showProblem(error.message);
  }
}
async function oidcFinish() {
  const params = new URLSearchParams(location.search);
  const code = params.get("code");
  if (!code) return;
  const saved = JSON.parse(sessionStorage.getItem("console.pkce") || "{}");
  sessionStorage.removeItem("console.pkce");
  history.replaceState(null, "", location.pathname);
  if (!saved.verifier || saved.state !== params.get("state")) {
    showProblem(t("loadFailed"));
    return;
  }
  const discovery = await oidcDiscovery();
  const response = await fetch(discovery.token_endpoint, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    credentials: "omit",
    body: new URLSearchParams({
      grant_type: "authorization_code",
      code,
      redirect_uri: location.origin + location.pathname,
      client_id: state.config.sign_in.client_id,
      code_verifier: saved.verifier,
    }).toString(),
  });
  const answer = await response.json();
  if (!response.ok) {
    showProblem(answer.error_description || answer.error || t("loadFailed"));
    return;
  }
  startSession(answer.access_token);
}

// --- the queues ----------------------------------------------------------------------------

/* Which queue each scope opens. The server's authority matrix decides; the page follows. */
const QUEUES = {
  claims: () => can("claims:read"),
  cycles: () => can("payout:read") && (can("cycles:prepare") || can("cycles:approve") || can("payout:operate") || can("reports:read")),
  accounts: () => can("payout:read") && !can("cash:handover"),
  payments: () => can("payout:read") && !can("cash:handover"),
  cash: () => can("payout:read") && (can("cash:handover") || (state.who && state.who.communes.length > 0) || can("payout:operate")),
  audit: () => can("audit:read") || can("payout:operate"),
};
const LOADERS = {
  claims: loadClaims,
  cycles: () => loadCycle(),
  accounts: loadAccounts,
  payments: loadPayments,
  cash: loadCash,
  audit: loadAudit,
};

function render() {
  const signedIn = !!state.who;
  $("#sign-in").hidden = signedIn;
  $("#tabs").hidden = !signedIn;
  const oidc = state.config && state.config.sign_in.kind === "oidc";
  $("#sign-in-form").hidden = oidc;
  $("#oidc-sign-in").hidden = !oidc;
  showWho();
  const open = signedIn ? Object.keys(QUEUES).filter((q) => QUEUES[q]()) : [];
  for (const button of document.querySelectorAll("#tabs button")) button.hidden = !open.includes(button.dataset.queue);
  if (!open.includes(state.queue)) state.queue = open[0] || null;
  for (const name of Object.keys(QUEUES)) $(`#queue-${name}`).hidden = name !== state.queue;
  for (const button of document.querySelectorAll("#tabs button")) button.classList.toggle("active", button.dataset.queue === state.queue);
  $("#cycle-prepare").hidden = !can("cycles:prepare");
  document.body.dataset.signedIn = signedIn ? "yes" : "no";
  if (state.queue) LOADERS[state.queue]().catch(() => {});
}

async function openQueue(name) {
  clearMessages();
  state.queue = name;
  render();
}

function loaded(name) {
  document.body.dataset.loaded = name;
}

// claims ------------------------------------------------------------------------------------

async function loadClaims() {
  const body = $('[data-testid="claims-table"] tbody');
  const data = await api("intake", "/v1/claims", { params: { status: "RECEIVED", limit: 100 } });
  body.replaceChildren(
    ...data.items.map((claim) =>
      el("tr", { testid: `claim-${claim.claim_id}` },
        el("td", {}, el("code", {}, claim.portal_dossier_id)),
        el("td", {}, claim.scheme),
        el("td", {}, claim.agency),
        el("td", {}, claim.address.commune_code),
        el("td", {}, when(claim.received_at)),
        el("td", {}, can("decisions:write")
          ? el("button", { type: "button", class: "secondary", testid: "decide", onclick: () => openDecision(claim) }, t("decide"))
          : null)
      )
    )
  );
  $('[data-testid="claims-empty"]').hidden = data.items.length > 0;
  loaded("claims");
}

function openDecision(claim) {
  const form = $("#decision-form");
  form.reset();
  form.dataset.claim = claim.claim_id;
  form.dataset.agency = claim.agency;
  $("#decision-claim").textContent = claim.portal_dossier_id;
  form.start_period.value = thisPeriod();
  const unemployment = claim.scheme === "UNEMPLOYMENT";
  $("#unemployment-facts").hidden = !unemployment;
  $("#calculation").hidden = true;
  form.schedule_kind.value = unemployment ? "FIXED_MONTHLY" : "OPEN_MONTHLY";
  form.dataset.scheme = claim.scheme;
  form.hidden = false;
}

async function calculate() {
  const form = $("#decision-form");
  const box = $("#calculation");
  clearMessages();
  try {
    const rule = await api("intake", "/v1/unemployment/benefit", {
      params: {
        average_salary: form.average_salary.value,
        contribution_months: form.contribution_months.value,
        region: form.region.value,
        contract_ended_on: form.contract_ended_on.value,
        salary_regime: form.salary_regime.value,
      },
    });
    box.textContent = fill(t("calcText"), {
      monthly: money(rule.monthly_amount),
      months: rule.months,
      total: money(rule.total),
      share: money(rule.basis.share_of_salary),
      cap: money(rule.cap),
      ceiling: money(rule.basis.ceiling),
      ceilingKind: t(`ceiling${rule.basis.ceiling_kind}`),
      capped: rule.capped ? t("capApplied") : "",
    });
    box.dataset.monthly = rule.monthly_amount;
    box.dataset.months = rule.months;
    box.hidden = false;
    form.amount_per_installment.value = rule.monthly_amount;
    form.installments.value = rule.months;
    form.schedule_kind.value = "FIXED_MONTHLY";
  } catch (_) {
    box.hidden = true;
  }
}

async function decideClaim(outcome) {
  const form = $("#decision-form");
  clearMessages();
  const agency = form.dataset.agency;
  let body;
  if (outcome === "APPROVED") {
    body = {
      outcome,
      agency,
      decision_number: form.decision_number.value,
      amount_per_installment: Number(form.amount_per_installment.value),
      schedule: {
        kind: form.schedule_kind.value,
        start_period: form.start_period.value,
        ...(form.installments.value ? { installments: Number(form.installments.value) } : {}),
      },
    };
    if (form.dataset.scheme === "UNEMPLOYMENT") {
      Object.assign(body, {
        average_salary: Number(form.average_salary.value),
        contribution_months: Number(form.contribution_months.value),
        region: form.region.value,
        salary_regime: form.salary_regime.value,
        ...(form.contract_ended_on.value ? { contract_ended_on: form.contract_ended_on.value } : {}),
      });
    }
  } else {
    body = {
      outcome,
      agency,
      reason_code: form.reason_code.value,
      reason_text: form.reason_text.value,
      ...(form.decision_number.value ? { decision_number: form.decision_number.value } : {}),
    };
  }
  try {
    await api("intake", `/v1/claims/${encodeURIComponent(form.dataset.claim)}/decision`, { method: "POST", body });
    form.hidden = true;
    showNotice(t("decided"));
    await loadClaims();
  } catch (_) {
    /* the problem is shown */
  }
}

// cycles ------------------------------------------------------------------------------------

function facts(pairs) {
  return el("dl", { class: "facts" }, pairs.map(([label, value, testid]) =>
    el("div", {}, el("dt", {}, label), el("dd", { testid }, value))));
}
function bucketTable(bucket, testid, prefix = "") {
  const rows = Object.entries(bucket || {});
  if (!rows.length) return el("p", { class: "muted" }, t("none"));
  const label = (key) => (prefix && I18N.vi[prefix + key] ? t(prefix + key) : key);
  return el("table", { class: "compact", testid },
    el("thead", {}, el("tr", {}, el("th", {}, ""), el("th", { class: "num" }, t("count")), el("th", { class: "num" }, t("amount")))),
    el("tbody", {}, rows.map(([key, v]) => el("tr", {}, el("td", {}, label(key)),
      el("td", { class: "num" }, integer(v.count)),
      el("td", { class: "num" }, money(v.amount))))));
}
function trailTable(items, testid) {
  return el("table", { class: "compact", testid },
    el("thead", {}, el("tr", {}, [t("at"), t("agency"), t("decision"), t("decidedBy"), t("preparedBy"), t("amount"), t("reason")].map((h) => el("th", {}, h)))),
    el("tbody", {}, items.map((a) => el("tr", { testid: `approval-${a.id}` },
      el("td", {}, when(a.decided_at)), el("td", {}, a.agency), el("td", {}, status(a.decision)),
      el("td", {}, a.decided_by_name ? `${a.decided_by_name} (${a.decided_by})` : a.decided_by),
      el("td", {}, Array.isArray(a.prepared_by) ? a.prepared_by.join(", ") : a.prepared_by || ""),
      el("td", { class: "num" }, money(a.amount)), el("td", {}, a.reason || "")))));
}

// The cycles PREPARED, newest first, each part with its state: the checkers' queue.
async function loadAwaitingCycles() {
  try {
    const data = await api("payout", "/v1/cycles", { params: { awaiting: true, limit: 24 }, quiet: true });
    state.awaitingCycles = data.items;
  } catch (_) {
    state.awaitingCycles = []; // the queue is a shortcut: the period can still be typed
  }
  renderAwaitingCycles();
  return state.awaitingCycles;
}

function renderAwaitingCycles() {
  const items = state.awaitingCycles || [];
  $("#cycles-awaiting").replaceChildren(items.length
    ? el("p", {}, t("awaitingCycles"), " ", ...items.map((c) =>
        el("button", {
          type: "button", class: "secondary", testid: `awaiting-cycle-${c.period}`,
          onclick: () => { clearMessages(); loadCycle(c.period).catch(() => {}); },
        }, `${c.period} · `, ...Object.entries(c.parts).map(([agency, partState]) =>
          el("span", {}, agency, " ", status(partState), " ")))))
    : el("p", { class: "muted", testid: "none-awaiting" }, t("noneAwaiting")));
}

async function loadCycle(period) {
  const input = $('[data-testid="cycle-period"]');
  const awaiting = await loadAwaitingCycles();
  if (period) input.value = period;
  // The first cycle with a part for a checker now, else the first listed, else this period.
  const first = awaiting.find((c) => c.awaiting_approval.length) || awaiting[0];
  if (!input.value) input.value = first ? first.period : thisPeriod();
  const view = $("#cycle-view");
  let cycle;
  try {
    cycle = await api("payout", `/v1/cycles/${encodeURIComponent(input.value)}`, { quiet: true });
  } catch (problem) {
    if (problem.status === 404) {
      view.replaceChildren(el("p", { class: "muted", testid: "no-cycle" }, t("noCycle")));
      loaded("cycles");
      return;
    }
    showProblem(describeProblem(problem));
    return;
  }
  state.cycle = cycle;
  view.replaceChildren(renderCycle(cycle));
  loaded("cycles");
}

function renderCycle(cycle) {
  const parts = Object.entries(cycle.agencies || {});
  return el("div", { testid: "cycle", "data-period": cycle.period, "data-state": cycle.approval_state },
    facts([
      [t("period"), cycle.period, "cycle-period-shown"],
      [t("cycleState"), status(cycle.approval_state), "cycle-state"],
      [t("totals"), `${integer((cycle.installments || {}).count)} · ${money((cycle.installments || {}).sum)}`, "cycle-totals"],
    ]),
    parts.map(([agency, part]) => renderPart(cycle, agency, part)));
}

function renderPart(cycle, agency, part) {
  const awaiting = part.awaiting_approval;
  // A checker approves; the preparer is offered the same button so that the server's refusal
  // (four eyes: never the one who prepared it) is what they read, not a hidden control.
  const preparedIt = !!(awaiting && state.who && (awaiting.prepared_by || []).includes(state.who.sub));
  const mayApprove = awaiting && (can("cycles:approve") || preparedIt);
  return el("section", { class: "part", testid: `part-${agency}`, "data-state": part.state },
    el("h3", {}, agency, " ", status(part.state)),
    facts([
      [t("count"), integer(part.totals.count), `part-${agency}-count`],
      [t("amount"), money(part.totals.amount), `part-${agency}-amount`],
    ]),
    el("div", { class: "grid" },
      el("div", {}, el("h4", {}, t("byScheme")), bucketTable(part.totals.by_scheme, `part-${agency}-schemes`)),
      el("div", {}, el("h4", {}, t("byChannel")), bucketTable(part.totals.by_channel, `part-${agency}-channels`, "ch_")),
      el("div", {}, el("h4", {}, t("differences")), bucketTable(part.differences, `part-${agency}-differences`, "diff_")),
      el("div", {}, el("h4", {}, t("heldTitle")), bucketTable(part.held, `part-${agency}-held`)),
      el("div", {}, el("h4", {}, t("envelope")), el("table", { class: "compact" }, el("tbody", {},
        Object.entries(part.envelopes || {}).map(([scheme, e]) => el("tr", {}, el("td", {}, scheme),
          el("td", { class: "num" }, e.envelope === null ? "—" : money(e.envelope)),
          el("td", { class: "num" }, e.remaining === null ? "" : `${t("remaining")}: ${money(e.remaining)}`))))))),
    awaiting
      ? el("div", { class: "panel", testid: `awaiting-${agency}` },
          el("h4", {}, t("awaiting")),
          facts([
            [t("count"), integer(awaiting.count), `awaiting-${agency}-count`],
            [t("amount"), money(awaiting.amount), `awaiting-${agency}-amount`],
            [t("preparedBy"), (awaiting.prepared_by || []).join(", "), `awaiting-${agency}-prepared-by`],
            [t("batches"), String((awaiting.batches || []).length), `awaiting-${agency}-batches`],
          ]),
          el("p", {}, `${t("digest")}: `, el("code", { testid: `digest-${agency}` }, awaiting.digest)),
          mayApprove
            ? el("div", { class: "actions" },
                el("button", { type: "button", testid: `approve-${agency}`, onclick: () => decideCycle(cycle.period, agency, awaiting.digest, "APPROVE") }, t("approve")),
                el("input", { testid: `reject-reason-${agency}`, placeholder: t("rejectReason"), maxlength: "500" }),
                el("button", { type: "button", class: "danger", testid: `reject-${agency}`, onclick: () => decideCycle(cycle.period, agency, awaiting.digest, "REJECT") }, t("reject")))
            : null)
      : null,
    el("h4", {}, t("approvals")),
    part.approvals && part.approvals.length ? trailTable(part.approvals, `trail-${agency}`) : el("p", { class: "muted" }, t("none")));
}

async function prepareCycle() {
  clearMessages();
  const period = $('[data-testid="cycle-period"]').value || thisPeriod();
  try {
    await api("payout", "/v1/cycles", { method: "POST", body: { period } });
    showNotice(t("prepared"));
    await loadCycle(period);
  } catch (_) {
    /* the problem is shown */
  }
}

async function decideCycle(period, agency, digest, decision) {
  clearMessages();
  const body = { agency, digest, decision };
  if (decision === "REJECT") {
    const reason = $(`[data-testid="reject-reason-${agency}"]`).value.trim();
    if (reason) body.reason = reason;
  }
  try {
    await api("payout", `/v1/cycles/${encodeURIComponent(period)}/approvals`, { method: "POST", body });
    showNotice(decision === "APPROVE" ? t("approvedMsg") : t("rejectedMsg"));
    await loadCycle(period);
  } catch (_) {
    /* the problem (four eyes, a stale digest, an envelope) is shown as the server says it */
  }
}

// accounts to fix -----------------------------------------------------------------------------

async function loadAccounts() {
  const body = $('[data-testid="accounts-table"] tbody');
  const data = await api("payout", "/v1/payment-methods", { params: { limit: 200 } });
  body.replaceChildren(
    ...data.items.map((m) =>
      el("tr", { testid: `method-${m.beneficiary_id}` },
        el("td", {}, el("code", {}, m.beneficiary_id)),
        el("td", {}, m.commune_code || ""),
        el("td", {}, m.bank_bin || ""),
        el("td", {}, m.account_number || ""),
        el("td", {}, m.account_holder_name || ""),
        el("td", {}, status(m.status), " ", m.status_reason || ""),
        el("td", { testid: "next-step" }, nextStep(m.next_step)),
        el("td", {}, can("payment-methods:write")
          ? el("button", { type: "button", class: "secondary", testid: "fix", onclick: () => openFix(m) }, t("fix"))
          : null)
      )
    )
  );
  $('[data-testid="accounts-empty"]').hidden = data.items.length > 0;
  loaded("accounts");
}

function openFix(method) {
  const form = $("#fix-form");
  form.reset();
  form.dataset.beneficiary = method.beneficiary_id;
  $("#fix-beneficiary").textContent = method.beneficiary_id;
  form.bank_bin.value = method.bank_bin || "";
  form.hidden = false;
}

async function saveFix(event) {
  event.preventDefault();
  clearMessages();
  const form = event.target;
  const body = { method: form.method.value };
  if (body.method === "CASH_POST_OFFICE") body.cash_reason = form.cash_reason.value;
  else Object.assign(body, { bank_bin: form.bank_bin.value, account_number: form.account_number.value });
  try {
    await api("intake", `/v1/beneficiaries/${encodeURIComponent(form.dataset.beneficiary)}/payment-method`, { method: "PUT", body });
    form.hidden = true;
    showNotice(t("saved"));
    await loadAccounts();
  } catch (_) {
    /* the problem is shown */
  }
}

// failed, held, anomalies -------------------------------------------------------------------

function nextStep(code) {
  const steps = STEPS[state.lang] || STEPS.vi;
  return steps[code] || STEPS.vi[code] || code || "";
}

async function loadPayments() {
  const period = $('[data-testid="payments-period"]').value;
  const [failed, held, anomalies] = await Promise.all([
    api("payout", "/v1/installments", { params: { state: "FAILED", period, limit: 200 } }),
    api("payout", "/v1/installments", { params: { state: "ON_HOLD", period, limit: 200 } }),
    api("payout", "/v1/anomalies", { params: { period, limit: 200 } }),
  ]);
  const rows = (items, reasonOf) => items.map((i) =>
    el("tr", { testid: `installment-${i.id}` },
      el("td", {}, el("code", {}, String(i.id))), el("td", {}, el("code", {}, i.beneficiary_id)), el("td", {}, i.period),
      el("td", { class: "num" }, money(i.amount)), el("td", {}, [reasonOf(i), i.reason_text].filter(Boolean).join(": ")),
      el("td", { testid: "next-step" }, nextStep(i.next_step))));
  $('[data-testid="failed-table"] tbody').replaceChildren(...rows(failed.items, (i) => i.reason_code));
  $('[data-testid="held-table"] tbody').replaceChildren(...rows(held.items, (i) => i.hold_reason));
  $('[data-testid="anomalies-table"] tbody').replaceChildren(...anomalies.items.map((a) =>
    el("tr", { testid: `anomaly-${a.id}` },
      el("td", {}, a.kind), el("td", {}, el("code", {}, a.beneficiary_id || "")), el("td", {}, a.period || ""),
      el("td", {}, a.detail ? (typeof a.detail === "object" ? JSON.stringify(a.detail) : String(a.detail)) : ""),
      el("td", { testid: "next-step" }, nextStep(a.next_step)))));
  loaded("payments");
}

// cash lists ---------------------------------------------------------------------------------

async function loadCash() {
  const form = $("#cash-form");
  const data = await api("payout", "/v1/cash-lists", { params: { period: form.period.value, commune: form.commune.value, limit: 500 } });
  const box = $("#cash-lists");
  box.replaceChildren(...data.lists.map((list) =>
    el("section", { class: "cash-list", testid: `cash-list-${list.period}-${list.commune_code}` },
      el("h3", {}, `${t("list")} ${list.period} · ${t("commune")} ${list.commune_code} · ${integer(list.count)} ${t("people")} · ${money(list.amount)}`),
      el("table", { class: "compact" },
        el("thead", {}, el("tr", {}, [t("cashItem"), t("beneficiary"), t("holder"), t("amount"), t("state"), t("paidOn"), t("staffId"), t("nextStep"), ""].map((h) => el("th", {}, h)))),
        el("tbody", {}, list.items.map(cashRow))))));
  if (!data.lists.length) box.replaceChildren(el("p", { class: "muted", testid: "cash-empty" }, t("nothingWaiting")));
  loaded("cash");
}

function cashRow(item) {
  const open = item.state === "SUBMITTED" && item.current;
  const id = item.end_to_end_id;
  return el("tr", { testid: `cash-item-${id}`, "data-state": item.state },
    el("td", {}, el("code", {}, id)), el("td", {}, el("code", {}, item.beneficiary_id)), el("td", {}, item.account_name || ""),
    el("td", { class: "num" }, money(item.amount)), el("td", { testid: "cash-state" }, status(item.state)),
    el("td", {}, item.paid_on || ""), el("td", {}, item.staff_id || ""),
    el("td", { testid: "next-step" }, nextStep(item.next_step)),
    el("td", {}, open && can("cash:handover")
      ? el("div", { class: "item-actions" },
          el("label", {}, t("paidOn"), el("input", { type: "date", value: todayInVietnam(), testid: `paid-on-${id}` })),
          el("label", {}, t("staffId"), el("input", { testid: `staff-${id}`, maxlength: "64" })),
          el("button", { type: "button", testid: `handover-${id}`, onclick: () => recordCash(id, "handover") }, t("handover")),
          el("select", { testid: `return-reason-${id}` }, ["NOT_FOUND", "REFUSED", "DECEASED"].map((r) => el("option", { value: r }, t(`ret_${r}`)))),
          el("button", { type: "button", class: "danger", testid: `return-${id}`, onclick: () => recordCash(id, "return") }, t("returned")))
      : null));
}

async function recordCash(id, kind) {
  clearMessages();
  const body = kind === "handover"
    ? { paid_on: $(`[data-testid="paid-on-${id}"]`).value, staff_id: $(`[data-testid="staff-${id}"]`).value }
    : { reason: $(`[data-testid="return-reason-${id}"]`).value };
  try {
    await api("payout", `/v1/cash-lists/items/${encodeURIComponent(id)}/${kind}`, { method: "POST", body });
    showNotice(kind === "handover" ? t("handedOver") : t("returnedMsg"));
    await loadCash();
  } catch (_) {
    /* the problem is shown */
  }
}

// audit ---------------------------------------------------------------------------------------

async function loadAudit() {
  $("#audit-form").hidden = !can("audit:read");
  $('[data-testid="audit-table"]').hidden = !can("audit:read");
  $("#trail-form").hidden = !can("payout:read");
  if (can("audit:read")) {
    const form = $("#audit-form");
    const data = await api("intake", "/v1/audit", {
      params: { entity_type: form.entity_type.value, entity_id: form.entity_id.value, client_id: form.client_id.value, action: form.action.value, limit: 200 },
    });
    $('[data-testid="audit-table"] tbody').replaceChildren(...data.items.map((a) =>
      el("tr", { testid: `audit-${a.id}` }, el("td", {}, when(a.at)), el("td", {}, a.client_id), el("td", {}, a.action),
        el("td", {}, a.entity_type), el("td", {}, el("code", {}, a.entity_id)))));
  }
  loaded("audit");
}

async function loadTrail(event) {
  event.preventDefault();
  clearMessages();
  const period = event.target.period.value;
  try {
    const data = await api("payout", `/v1/cycles/${encodeURIComponent(period)}/approvals`);
    const table = trailTable(data.items, "trail-table");
    $('[data-testid="trail-table"]').replaceWith(table);
    loaded("trail");
  } catch (_) {
    /* the problem is shown */
  }
}

// --- wiring ----------------------------------------------------------------------------------

async function main() {
  $("#lang-switch").addEventListener("click", () => {
    state.lang = state.lang === "vi" ? "en" : "vi";
    sessionStorage.setItem("console.lang", state.lang);
    applyLanguage();
    // A queue's rows carry words too (states, next steps): shown again in the new language. The
    // cash lists are not reloaded: the dates and staff ids being typed there would be lost.
    if (state.queue === "cycles") {
      renderAwaitingCycles();
      if (state.cycle) $("#cycle-view").replaceChildren(renderCycle(state.cycle));
    } else if (state.queue && state.queue !== "cash") LOADERS[state.queue]().catch(() => {});
    document.body.dataset.rendered = state.lang;
  });
  $("#sign-in-form").addEventListener("submit", signInWithPassword);
  $("#oidc-sign-in").addEventListener("click", oidcStart);
  $("#sign-out").addEventListener("click", signOut);
  for (const button of document.querySelectorAll("#tabs button")) button.addEventListener("click", () => openQueue(button.dataset.queue));
  $("#calculate").addEventListener("click", calculate);
  $("#approve-claim").addEventListener("click", () => decideClaim("APPROVED"));
  $("#reject-claim").addEventListener("click", () => decideClaim("REJECTED"));
  $("#close-decision").addEventListener("click", () => { $("#decision-form").hidden = true; });
  $("#cycle-form").addEventListener("submit", (e) => { e.preventDefault(); clearMessages(); loadCycle().catch(() => {}); });
  $("#cycle-prepare").addEventListener("click", prepareCycle);
  $("#fix-form").addEventListener("submit", saveFix);
  $("#close-fix").addEventListener("click", () => { $("#fix-form").hidden = true; });
  $("#payments-form").addEventListener("submit", (e) => { e.preventDefault(); clearMessages(); loadPayments().catch(() => {}); });
  $("#cash-form").addEventListener("submit", (e) => { e.preventDefault(); clearMessages(); loadCash().catch(() => {}); });
  $("#audit-form").addEventListener("submit", (e) => { e.preventDefault(); clearMessages(); loadAudit().catch(() => {}); });
  $("#trail-form").addEventListener("submit", loadTrail);

  const response = await fetch("/console/config.json", { credentials: "omit" });
  state.config = await response.json();
  applyLanguage();
  if (state.config.sign_in.kind === "oidc") await oidcFinish().catch((e) => showProblem(e.message));
  if (state.token) startSession(state.token);
  else render();
  document.body.dataset.rendered = state.lang;
}

main().catch((error) => showProblem(error.message));
