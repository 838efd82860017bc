// The operators' console: Jobs and JobTasks read from the API, kept current by its watch stream.
//
// Plain DOM, no framework, no build step. Every request goes to this origin with
// `Authorization: Bearer <token>`, the watch stream's too (read with fetch, not
// EventSource); the token lives in sessionStorage and never in a URL. The view and
// its filters live in the URL's hash, so Back, reload and links keep them. Rows are
// keyed by id and patched cell by cell, so live updates keep focus and scroll.

const API = "cost-analysis/v1";
const TOKEN_KEY = "jobtask.console.token";
const POLL_MS = 5000;
const STREAM_RETRY_MS = [1000, 2000, 5000, 10000, 30000];
const PAGE_SIZES = [20, 50, 100];
const HISTORY_PAGE = 100;
const TASK_STATUSES = ["PENDING", "IN_PROGRESS", "SUCCESS", "FAILURE", "CANCELED", "TIMEOUT"];
const JOB_STATUSES = ["IN_PROGRESS", "SUCCESS", "FAILURE", "CANCELED", "TIMEOUT"];
const STATUS_LABELS = {
  PENDING: "Pending", IN_PROGRESS: "In progress", SUCCESS: "Success",
  FAILURE: "Failure", CANCELED: "Canceled", TIMEOUT: "Timed out",
};
const OUTCOMES = {
  applied: "changed the task",
  duplicate: "a redelivery of an event already applied: no effect",
  ignored: "accepted, but an earlier terminal event had already ended the task: no effect",
  parked: "waiting for the task's created event",
  conflict: "same event_id with other content: refused, sent to dead letters",
  rejected: "breaks the contract: refused, sent to dead letters",
};

// --- small DOM helpers ------------------------------------------------------------------------

const $ = (selector, root = document) => root.querySelector(selector);
const SVG = "http://www.w3.org/2000/svg";

/** An element with attributes (`on*` are listeners) and children (strings become text). */
function h(tag, attrs = {}, ...children) {
  const node = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "style") Object.assign(node.style, value); // CSSOM: the CSP refuses style attributes
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

// One glyph per status, so status never rests on colour alone (the label is beside it too).
const ICON_PATHS = {
  SUCCESS: ["M4.5 8.2l2.3 2.3 4.7-5"],
  FAILURE: ["M5.5 5.5l5 5M10.5 5.5l-5 5"],
  IN_PROGRESS: ["M8 2.5a5.5 5.5 0 0 1 0 11z"],
  PENDING: ["M5 8h.01M8 8h.01M11 8h.01"],
  CANCELED: ["M4.2 11.8l7.6-7.6"],
  TIMEOUT: ["M8 4.5V8l2.4 1.6"],
};

function statusIcon(status) {
  const filled = status === "IN_PROGRESS";
  return h("svg:svg", { class: "icon", viewBox: "0 0 16 16", "aria-hidden": "true", focusable: "false" },
    h("svg:circle", { cx: 8, cy: 8, r: 6.5, fill: "none", stroke: "currentColor", "stroke-width": 1.5,
      "stroke-dasharray": status === "PENDING" ? "2 2" : null }),
    ...(ICON_PATHS[status] || []).map((d) => h("svg:path", {
      d, fill: filled ? "currentColor" : "none", stroke: "currentColor", "stroke-width": filled ? 0 : 1.8,
      "stroke-linecap": "round", "stroke-linejoin": "round",
    })));
}

function statusBadge(status) {
  return h("span", { class: "status", "data-status": status, "data-testid": "status", title: status },
    statusIcon(status), h("span", { class: "status-text" }, STATUS_LABELS[status] || status || "—"));
}

const mono = (value) => (value ? h("span", { class: "mono" }, value) : "—");
const numberFormat = new Intl.NumberFormat("en-US");
const count = (value) => (value === undefined || value === null ? "—" : numberFormat.format(value));

/** A UTC time as date and clock, in a <time> whose title is the API's exact value. */
function timeCell(iso) {
  if (!iso) return h("span", { class: "muted", title: "not yet" }, "—");
  const moment = new Date(iso);
  if (Number.isNaN(moment.getTime())) return iso;
  const text = moment.toISOString();
  return h("time", { datetime: iso, title: iso },
    h("span", { class: "date" }, text.slice(0, 10)), h("span", { class: "gap" }, " "), h("span", { class: "clock" }, text.slice(11, 19)));
}

function duration(fromIso, toIso) {
  if (!fromIso) return null;
  const ms = (toIso ? new Date(toIso) : new Date()) - new Date(fromIso);
  if (!Number.isFinite(ms) || ms < 0) return null;
  if (ms < 10000) return `${(ms / 1000).toFixed(1)}s`;
  const seconds = Math.round(ms / 1000);
  const [d, hr, m, s] = [Math.floor(seconds / 86400), Math.floor(seconds / 3600) % 24,
    Math.floor(seconds / 60) % 60, seconds % 60];
  if (d) return `${d}d ${hr}h`;
  if (hr) return `${hr}h ${String(m).padStart(2, "0")}m`;
  return m ? `${m}m ${String(s).padStart(2, "0")}s` : `${s}s`;
}

/** `month=202207 · platform=gcp`: options on one line; the title holds the whole JSON. */
function optionsCell(options) {
  const entries = Object.entries(options || {});
  if (!entries.length) return h("span", { class: "muted" }, "—");
  const text = entries.map(([key, value]) =>
    `${key}=${typeof value === "object" && value !== null ? JSON.stringify(value) : value}`).join(" · ");
  return h("span", { class: "options", title: JSON.stringify(options, null, 2) }, text);
}

// A Job no job.created declared cannot tell how far it is: it counts the tasks known so far.
const undeclared = (job) => job.status === "IN_PROGRESS" && job.error_code === "ERROR_JOB_NOT_DECLARED";

function progressBar(job) {
  const total = job.total_tasks || 0;
  const finished = Math.max(0, total - (job.remained_tasks || 0));
  const percent = total ? Math.floor((finished * 100) / total) : 0;
  let text = total ? `${finished} of ${total} · ${percent}%` : "no tasks yet";
  let spoken = `${finished} of ${total} tasks finished (${percent}%)`;
  if (undeclared(job)) {
    text = `${finished} of ${total} known · total not declared`;
    spoken = `${finished} of the ${total} tasks known so far finished; the job's total was never declared`;
  }
  return h("div", {
    class: "progress", role: "progressbar", "data-testid": "progress", "data-status": job.status,
    "data-undeclared": undeclared(job) ? "true" : null, title: undeclared(job) ? job.error_message : null,
    "aria-valuemin": 0, "aria-valuemax": total, "aria-valuenow": finished, "aria-valuetext": spoken,
  }, h("span", { class: "progress-track", "aria-hidden": "true" },
    h("span", { class: "progress-fill", style: { width: `${percent}%` } })),
  h("span", { class: "progress-text" }, text));
}

function taskCounts(counts) {
  const shown = TASK_STATUSES.filter((status) => counts && counts[status]);
  if (!shown.length) return h("span", { class: "muted" }, "—");
  return h("ul", { class: "counts", "data-testid": "task-counts" }, shown.map((status) =>
    h("li", { class: "count", "data-status": status, title: `${STATUS_LABELS[status]}: ${counts[status]}` },
      statusIcon(status), h("span", { class: "visually-hidden" }, `${STATUS_LABELS[status]}: `),
      String(counts[status]))));
}

// --- the API ------------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function call(method, path, body, token = session.token) {
  let response;
  try {
    response = await fetch(`${API}/${path}`, {
      method, cache: "no-store",
      headers: { Authorization: `Bearer ${token}`, ...(body === undefined ? {} : { "Content-Type": "application/json" }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, "ERROR_NETWORK", "The API cannot be reached (network error).");
  }
  let payload = null;
  try { payload = await response.json(); } catch { /* not JSON: reported below */ }
  if (!response.ok) {
    const detail = (payload && payload.detail) || {};
    throw new ApiError(response.status, detail.code || `HTTP_${response.status}`,
      detail.message || response.statusText || "The API gave no message.");
  }
  if (payload === null) throw new ApiError(response.status, "ERROR_BAD_RESPONSE", "The API answered with something that is not JSON.");
  return payload;
}

const post = (path, body) => call("POST", path, body);
const unsupported = (error) => error.status === 404 && error.code === "ERROR_UNSUPPORTED_API";

/** A sentence an operator can act on, for any failure of a call. */
function explain(error, what) {
  if (!(error instanceof ApiError)) return `${what} failed: ${error.message || error}`;
  const tail = ` (${error.code}: ${error.message})`;
  switch (error.status) {
    case 0: return `${what}: the API cannot be reached. Check the network or the server; the page retries by itself.`;
    case 401: return `Your token was refused: it is unknown or has expired. Sign in again.${tail}`;
    case 403: return `${what}: permission denied for this token.${tail}`;
    case 503: return `${what}: the store cannot be reached right now; the page retries by itself.${tail}`;
    case 504: return `${what}: the query took too long. Narrow the filters or show fewer rows.${tail}`;
    default: return `${what} failed.${tail}`;
  }
}

function showMessage(node, text, kind = "error") {
  node.hidden = !text;
  node.dataset.kind = kind;
  node.textContent = text || "";
}

// --- session: the token, its scope, sign in and out --------------------------------------------------

const session = { token: null, scope: null };

/** The token's scope; before `auth/scope` exists, a one-row list proves the token and read is assumed. */
async function fetchScope(token) {
  try {
    const scope = await call("GET", "auth/scope", undefined, token);
    return { domain_id: scope.domain_id, workspace_ids: scope.workspace_ids ?? null, permissions: scope.permissions || ["read"] };
  } catch (error) {
    if (!unsupported(error)) throw error;
    await call("POST", "job-task/list", { query: { page: { start: 1, limit: 1 } } }, token);
    return { domain_id: null, workspace_ids: null, permissions: ["read"] };
  }
}

async function signIn(token) {
  const button = $("#sign-in-button");
  button.disabled = true;
  showMessage($("#sign-in-message"), "");
  try {
    session.scope = await fetchScope(token);
  } catch (error) {
    if (error.status === 401) sessionStorage.removeItem(TOKEN_KEY);
    const text = error.status === 401 ? "That token was refused: it is unknown or has expired." : explain(error, "Signing in");
    showSignIn(text + (error.status === 401 ? ` (${error.code}: ${error.message})` : ""));
    return;
  } finally {
    button.disabled = false;
  }
  session.token = token;
  sessionStorage.setItem(TOKEN_KEY, token);
  $("#token").value = "";
  showApp();
}

function signOut(message = "", kind = "error") {
  session.token = null;
  session.scope = null;
  sessionStorage.removeItem(TOKEN_KEY);
  live.stop();
  cancelDialog.dialog.close();
  // Nothing read with the old token stays in the page.
  active = null;
  jobsView.table.message("");
  tasksView.table.message("");
  tasksView.route = null;
  taskView.route = null;
  showSignIn(message, kind);
}

function showSignIn(message = "", kind = "error") {
  for (const node of document.querySelectorAll(".view, #nav, #session")) node.hidden = true;
  $("#sign-in").hidden = false;
  showMessage($("#sign-in-message"), message, kind);
  $("#token").focus();
}

function showApp() {
  $("#sign-in").hidden = true;
  $("#nav").hidden = false;
  $("#session").hidden = false;
  const { domain_id: domain, workspace_ids: workspaces, permissions } = session.scope;
  const where = domain ? domain + (workspaces ? ` · ${workspaces.join(", ")}` : "") : "signed in";
  $("#scope").textContent = `${where} · ${permissions.join(" + ")}`;
  $("#scope").title = "The token's domain, workspaces and permissions";
  loadDataSources();
  live.start();
  render({ focus: true });
}

/** A 401 anywhere means the token is gone: back to the prompt, saying why. */
function handleError(error, node, what) {
  if (error instanceof ApiError && error.status === 401) {
    signOut(explain(error, what));
    return true;
  }
  showMessage(node, explain(error, what));
  return false;
}

const canCancel = () => Boolean(session.scope && session.scope.permissions.includes("cancel"));

// --- routes: #/jobs, #/jobs/<job_id>, #/tasks, #/tasks/<job_task_id>, each with ?filters ------------

function currentRoute() {
  const raw = location.hash.startsWith("#/") ? location.hash.slice(2) : "jobs";
  const [path, query = ""] = raw.split("?");
  const [section, id] = path.split("/").map((part) => decodeURIComponent(part || ""));
  const params = Object.fromEntries(new URLSearchParams(query));
  if (section === "tasks" && id) return { view: "task", id, params };
  if (section === "tasks") return { view: "tasks", params };
  if (section === "jobs" && id) return { view: "tasks", jobId: id, params };
  return { view: "jobs", params };
}

function routeHash(route) {
  const path = route.view === "jobs" ? "jobs" : route.jobId ? `jobs/${encodeURIComponent(route.jobId)}` : "tasks";
  const params = new URLSearchParams(Object.entries(route.params || {}).filter(([, value]) => value));
  return `#/${path}${params.size ? `?${params}` : ""}`;
}

/** Changes filters or page of the current view: the URL follows without a new history entry. */
function setParams(changes) {
  const route = currentRoute();
  route.params = { ...route.params, ...changes };
  history.replaceState(null, "", routeHash(route));
  render();
}

let active = null;

function render({ focus = false } = {}) {
  if (!session.token) return;
  const route = currentRoute();
  const view = { jobs: jobsView, tasks: tasksView, task: taskView }[route.view];
  const changedView = active !== view;
  if (changedView && active) active.scrollY = window.scrollY;
  for (const other of [jobsView, tasksView, taskView]) other.section.hidden = other !== view;
  for (const link of document.querySelectorAll("#nav a")) {
    const current = link.dataset.view === (route.view === "jobs" || route.jobId ? "jobs" : "tasks");
    if (current) link.setAttribute("aria-current", "page"); else link.removeAttribute("aria-current");
  }
  active = view;
  view.show(route, changedView);
  if (focus || changedView) {
    // The heading takes the focus (where a screen reader starts); the page returns
    // to where the operator left this view, or to its top.
    view.section.querySelector("h1").focus({ preventScroll: true });
    window.scrollTo(0, view === taskView ? 0 : view.scrollY || 0);
  }
}

// --- tables keyed by id, patched in place -------------------------------------------------------------

/** A table of `columns` whose rows are keyed by `idKey` and patched cell by cell. */
function keyedTable(table, columns, idKey, rowTestId, hrefOf) {
  table.append(h("thead", {}, h("tr", {}, columns.map((column) =>
    h("th", { scope: "col", class: column.className, "data-col": column.key }, column.label)))));
  const body = h("tbody");
  table.append(body);
  const rows = new Map();

  function fill(cell, column, item) {
    const content = column.render(item);
    const next = h("td", {}, content);
    if (cell.innerHTML !== next.innerHTML) cell.replaceChildren(...next.childNodes);
  }

  function makeRow(item) {
    const id = item[idKey];
    const tr = h("tr", { "data-testid": rowTestId, "data-id": id, class: "clickable" });
    tr.addEventListener("click", (event) => {
      if (event.target.closest("a, button, input, select, textarea")) return;
      if (window.getSelection && String(window.getSelection())) return; // selecting text, not opening
      location.hash = hrefOf(rows.get(id)?.item || item);
    });
    for (const column of columns) {
      tr.append(h("td", { "data-field": column.key, "data-label": column.label, class: column.className }));
    }
    return tr;
  }

  function patch(item) {
    const entry = rows.get(item[idKey]);
    if (!entry) return false;
    entry.item = item;
    columns.forEach((column, index) => fill(entry.tr.children[index], column, item));
    entry.tr.dataset.status = item.status || "";
    return true;
  }

  return {
    /** Shows `items` in order, reusing the rows already there. */
    show(items, { stale = () => false } = {}) {
      const order = [];
      const keep = new Set();
      for (const item of items) {
        const id = item[idKey];
        if (!rows.has(id)) rows.set(id, { tr: makeRow(item), item });
        patch(item);
        const { tr } = rows.get(id);
        tr.classList.toggle("stale", stale(item));
        order.push(tr);
        keep.add(id);
      }
      for (const [id, entry] of rows) if (!keep.has(id)) { entry.tr.remove(); rows.delete(id); }
      for (const child of [...body.children]) if (!child.dataset.id) child.remove();
      order.forEach((tr, index) => { if (body.children[index] !== tr) body.insertBefore(tr, body.children[index] || null); });
    },
    patch,
    items: () => [...rows.values()].map((entry) => entry.item),
    markStale(id, isStale) { rows.get(id)?.tr.classList.toggle("stale", isStale); },
    /** One full-width row saying why there are no rows (loading, empty, an error). */
    message(content, kind = "empty") {
      rows.clear();
      body.replaceChildren(h("tr", { class: `placeholder ${kind}` },
        h("td", { colspan: columns.length, "data-testid": `table-${kind}` }, content)));
    },
  };
}

/** Previous / next and the range shown, plus the page size. */
function pager(container, onChange) {
  const range = h("span", { class: "range", "data-testid": "range" });
  const previous = h("button", { type: "button", class: "button", "data-testid": "page-previous" }, "‹ Previous");
  const next = h("button", { type: "button", class: "button", "data-testid": "page-next" }, "Next ›");
  const size = h("select", { "data-testid": "page-size" }, PAGE_SIZES.map((n) => h("option", { value: n }, `${n} rows`)));
  container.append(range, h("span", { class: "pager-buttons" }, previous, next),
    h("label", { class: "page-size" }, h("span", { class: "visually-hidden" }, "Rows per page"), size));
  let state = { page: 1, limit: PAGE_SIZES[0], total: 0, shown: 0 };
  previous.addEventListener("click", () => onChange({ page: String(state.page - 1) }));
  next.addEventListener("click", () => onChange({ page: String(state.page + 1) }));
  size.addEventListener("change", () => onChange({ limit: size.value, page: "" }));
  return {
    /** One more row arrived live on the first page. */
    added() {
      this.update({ ...state, total: state.total + 1, shown: Math.min(state.shown + 1, state.limit) });
    },
    update({ page, limit, total, shown }) {
      state = { page, limit, total, shown };
      size.value = String(limit);
      const first = total ? (page - 1) * limit + 1 : 0;
      range.textContent = total ? `${first}–${first + shown - 1} of ${count(total)}` : "0 of 0";
      previous.disabled = page <= 1;
      next.disabled = page * limit >= total;
    },
  };
}

/** A page past the end (rows went away, or an old link): go to the last page instead. */
function beyondLastPage(answer, page, limit) {
  if (answer.results.length || page <= 1 || !answer.total_count) return false;
  setParams({ page: String(Math.ceil(answer.total_count / limit)) });
  return true;
}

/** The page and page size in a route's params, made sane. */
function paging(params) {
  const limit = PAGE_SIZES.includes(Number(params.limit)) ? Number(params.limit) : PAGE_SIZES[0];
  const page = Math.max(1, Math.floor(Number(params.page)) || 1);
  return { page, limit, query: { page: { start: (page - 1) * limit + 1, limit }, sort: [{ key: "created_at", desc: true }] } };
}

function fillSelect(select, values, allLabel, labels = {}) {
  const current = select.value;
  select.replaceChildren(h("option", { value: "" }, allLabel),
    ...values.map((value) => h("option", { value }, labels[value] || value)));
  select.value = current;
}

/** Wires a filter form: each control writes its param; the refresh button reloads. */
function wireFilters(form, view) {
  form.addEventListener("submit", (event) => event.preventDefault());
  for (const control of form.querySelectorAll("select, input")) {
    control.addEventListener("change", () => setParams({ [control.name]: control.value.trim(), page: "" }));
  }
  form.querySelector("[data-action=refresh]").addEventListener("click", () => view.load());
}

function syncFilters(form, params) {
  for (const control of form.querySelectorAll("select, input")) {
    const value = params[control.name] || "";
    if (control.tagName === "SELECT" && value && ![...control.options].some((option) => option.value === value)) {
      control.append(h("option", { value }, value));
    }
    if (control !== document.activeElement) control.value = value;
  }
}

let dataSources = [];

/** The data sources the caller can see, for the filters: its tasks' and its jobs' (a job may have none yet). */
async function loadDataSources() {
  const distinct = { query: { distinct: "data_source_id" } };
  // Either may fail (a server without jobs, the store away): the filters still offer "all",
  // and the tables say what is wrong, if it lasts.
  const answers = await Promise.allSettled([post("job-task/stat", distinct), post("job/stat", distinct)]);
  const found = answers.flatMap((answer) => (answer.status === "fulfilled" ? answer.value.results || [] : []));
  dataSources = [...new Set(found.filter((value) => typeof value === "string"))].sort();
  for (const select of document.querySelectorAll("select[name=data_source_id]")) {
    fillSelect(select, dataSources, "All data sources");
  }
  if (active && active.section.querySelector("form.filters")) {
    syncFilters(active.section.querySelector("form.filters"), currentRoute().params);
  }
}

// --- the Jobs view --------------------------------------------------------------------------------

const jobHref = (job) => `#/jobs/${encodeURIComponent(job.job_id)}`;

/** A token limited to workspaces cancels only a Job of one of them (the API checks its tasks too). */
function mayCancel(job) {
  if (!canCancel() || job.status !== "IN_PROGRESS") return false;
  const workspaces = session.scope.workspace_ids;
  return !workspaces || (job.resource_group === "WORKSPACE" && workspaces.includes(job.workspace_id));
}

function cancelButton(job) {
  if (!mayCancel(job)) return null;
  return h("button", {
    type: "button", class: "button danger small", "data-testid": "cancel-job",
    "aria-label": `Cancel job ${job.job_id}`, onclick: () => cancelDialog.open(job),
  }, "Cancel");
}

const JOB_COLUMNS = [
  { key: "job_id", label: "Job", className: "id", render: (job) => h("a", { href: jobHref(job), class: "mono" }, job.job_id) },
  { key: "status", label: "Status", render: (job) => statusBadge(job.status) },
  { key: "progress", label: "Progress", className: "wide", render: progressBar },
  { key: "task_counts", label: "Tasks", render: (job) => taskCounts(job.task_counts) },
  { key: "created_count", label: "Created count", className: "num", render: (job) => count(job.created_count) },
  { key: "created_at", label: "Started (UTC)", render: (job) => timeCell(job.created_at) },
  { key: "finished_at", label: "Finished (UTC)", render: (job) => job.finished_at ? timeCell(job.finished_at)
    : h("span", { class: "muted" }, undeclared(job) ? "waiting for job.created"
      : job.status === "IN_PROGRESS" ? `running ${duration(job.created_at) || ""}` : "—") },
  { key: "data_source_id", label: "Data source", render: (job) => mono(job.data_source_id) },
  { key: "actions", label: "Actions", className: "actions", render: (job) => cancelButton(job) || "" },
];

const jobsView = {
  section: $("#view-jobs"),
  table: null,
  pager: null,
  route: null,
  generation: 0,

  init() {
    this.table = keyedTable($("#jobs-table"), JOB_COLUMNS, "job_id", "job-row", jobHref);
    this.pager = pager($("[data-pager=jobs]"), setParams);
    const form = $("[data-filters=jobs]");
    fillSelect(form.elements.status, JOB_STATUSES, "All statuses", STATUS_LABELS);
    fillSelect(form.elements.data_source_id, [], "All data sources");
    wireFilters(form, this);
  },

  show(route, fresh) {
    this.route = route;
    syncFilters($("[data-filters=jobs]"), route.params);
    if (fresh && !this.table.items().length) this.table.message("Loading jobs…", "loading");
    this.load();
  },

  async load() {
    const { params } = this.route;
    const { page, limit, query } = paging(params);
    const body = { query };
    if (params.status) body.status = params.status;
    if (params.data_source_id) body.data_source_id = params.data_source_id;
    const generation = ++this.generation;
    try {
      const answer = await post("job/list", body);
      if (generation !== this.generation) return; // a newer load answered first
      if (beyondLastPage(answer, page, limit)) return;
      showMessage($("#jobs-error"), "");
      $("[data-pager=jobs]").hidden = false;
      if (answer.results.length) this.table.show(answer.results);
      else this.table.message(params.status || params.data_source_id ? "No jobs match these filters." : "No jobs yet.");
      this.pager.update({ page, limit, total: answer.total_count, shown: answer.results.length });
    } catch (error) {
      if (generation !== this.generation) return;
      if (unsupported(error)) {
        this.table.message(["This server does not serve Jobs yet (its API has no job endpoints). ",
          h("a", { href: "#/tasks" }, "The Tasks view"), " shows every task, and each task links to its job's tasks."],
        "unsupported");
        $("[data-pager=jobs]").hidden = true;
        return;
      }
      if (handleError(error, $("#jobs-error"), "Loading jobs")) return;
      if (!this.table.items().length) this.table.message(explain(error, "Loading jobs"), "error");
    }
  },

  /** A job as the stream sent it: patch its row, or add it on top when it is new and fits. */
  upsert(job) {
    if (this.table.patch(job)) {
      this.table.markStale(job.job_id, !this.matches(job));
      return;
    }
    const { page } = paging(this.route?.params || {});
    const newest = this.table.items()[0];
    if (!this.route || page !== 1 || !this.matches(job) || (newest && job.created_at < newest.created_at)) return;
    this.table.show([job, ...this.table.items()].slice(0, paging(this.route.params).limit));
    this.pager.added();
  },

  matches(job) {
    const { status, data_source_id: dataSource } = this.route?.params || {};
    return (!status || job.status === status) && (!dataSource || job.data_source_id === dataSource);
  },
};

// --- the Tasks view (all tasks, or one job's with its summary on top) --------------------------------

const taskHref = (task) => `#/tasks/${encodeURIComponent(task.job_task_id)}`;

const TASK_COLUMNS = [
  { key: "job_task_id", label: "Task", className: "id", render: (task) => h("a", { href: taskHref(task), class: "mono" }, task.job_task_id) },
  { key: "status", label: "Status", render: (task) => statusBadge(task.status) },
  { key: "job_id", label: "Job", render: (task) => task.job_id ? h("a", { href: jobHref(task), class: "mono" }, task.job_id) : "—" },
  { key: "data_source_id", label: "Data source", render: (task) => mono(task.data_source_id) },
  { key: "created_count", label: "Created count", className: "num", render: (task) => count(task.created_count) },
  { key: "options", label: "Options", className: "wide", render: (task) => optionsCell(task.options) },
  { key: "created_at", label: "Created (UTC)", render: (task) => timeCell(task.created_at) },
  { key: "started_at", label: "Started (UTC)", render: (task) => timeCell(task.started_at) },
  { key: "finished_at", label: "Finished (UTC)", render: (task) => timeCell(task.finished_at) },
  { key: "error", label: "Error", className: "error-cell", render: (task) => task.error_code
    ? h("span", { title: task.error_message || "" }, h("code", {}, task.error_code), task.error_message ? ` ${task.error_message}` : "")
    : "" },
];

const tasksView = {
  section: $("#view-tasks"),
  table: null,
  pager: null,
  route: null,
  job: null,
  generation: 0,

  init() {
    this.table = keyedTable($("#tasks-table"), TASK_COLUMNS, "job_task_id", "task-row", taskHref);
    this.pager = pager($("[data-pager=tasks]"), setParams);
    const form = $("[data-filters=tasks]");
    fillSelect(form.elements.status, TASK_STATUSES, "All statuses", STATUS_LABELS);
    fillSelect(form.elements.data_source_id, [], "All data sources");
    wireFilters(form, this);
  },

  show(route, fresh) {
    const jobChanged = this.route?.jobId !== route.jobId;
    this.route = route;
    $("#tasks-title").textContent = route.jobId ? "Tasks of this job" : "Tasks";
    syncFilters($("[data-filters=tasks]"), route.params);
    // A job's tasks all come from one data source: that filter would only confuse.
    $(".filter-data-source", this.section).hidden = Boolean(route.jobId);
    $("#tasks-table").classList.toggle("of-job", Boolean(route.jobId));
    if (jobChanged || (fresh && !this.table.items().length)) {
      this.table.message("Loading tasks…", "loading");
      this.job = null;
      this.renderSummary();
    }
    this.load();
  },

  async load() {
    const { params, jobId } = this.route;
    const { page, limit, query } = paging(params);
    if (params.keyword) query.keyword = params.keyword;
    const body = { query };
    if (params.status) body.status = params.status;
    if (jobId) body.job_id = jobId;
    else if (params.data_source_id) body.data_source_id = params.data_source_id;
    const generation = ++this.generation;
    if (jobId) this.loadJob(jobId, generation);
    try {
      const answer = await post("job-task/list", body);
      if (generation !== this.generation) return;
      if (beyondLastPage(answer, page, limit)) return;
      showMessage($("#tasks-error"), "");
      if (answer.results.length) this.table.show(answer.results, { stale: (task) => !this.matches(task) });
      else this.table.message(params.status || params.keyword || params.data_source_id
        ? "No tasks match these filters." : "No tasks yet.");
      this.pager.update({ page, limit, total: answer.total_count, shown: answer.results.length });
    } catch (error) {
      if (generation !== this.generation) return;
      if (handleError(error, $("#tasks-error"), "Loading tasks")) return;
      if (!this.table.items().length) this.table.message(explain(error, "Loading tasks"), "error");
    }
  },

  async loadJob(jobId, generation) {
    try {
      const job = await post("job/get", { job_id: jobId });
      if (generation !== this.generation) return;
      this.job = job;
    } catch (error) {
      if (generation !== this.generation) return;
      if (error.status === 401) return; // the list reports it
      this.job = { job_id: jobId, unavailable: unsupported(error)
        ? "Job details are not available on this server yet; its tasks are below."
        : explain(error, "Loading the job") };
    }
    this.renderSummary();
  },

  renderSummary() {
    const box = $("#job-summary");
    const jobId = this.route?.jobId;
    box.hidden = !jobId;
    if (!jobId) return;
    const job = this.job || { job_id: jobId };
    const head = h("div", { class: "summary-head" },
      h("p", { class: "crumbs" }, h("a", { href: "#/jobs" }, "← Jobs")),
      h("h2", {}, "Job ", h("span", { class: "mono", "data-testid": "job-id" }, jobId)),
      job.status ? statusBadge(job.status) : null,
      job.status ? cancelButton(job) : null);
    if (!job.status) {
      box.replaceChildren(head, h("p", { class: "muted", "data-testid": "job-unavailable" }, job.unavailable || "Loading the job…"));
      return;
    }
    const fields = [
      ["Progress", progressBar(job)],
      ["Tasks", taskCounts(job.task_counts)],
      ["Created count", count(job.created_count)],
      ["Data source", h("span", { class: "mono" }, job.data_source_id || "—")],
      ["Workspace", job.workspace_id || "— (domain-wide)"],
      ["Started (UTC)", timeCell(job.created_at)],
      ["Finished (UTC)", timeCell(job.finished_at)],
      ["Duration", duration(job.created_at, job.finished_at) || "—"],
      ["Options", optionsCell(job.options)],
    ];
    if (job.error_code || job.error_message) {
      fields.push(["Error", h("span", {}, job.error_code ? h("code", {}, job.error_code) : "", " ", job.error_message || "")]);
    }
    box.replaceChildren(head, h("dl", { class: "fields summary-fields" },
      fields.map(([label, value]) => h("div", { "data-field": label }, h("dt", {}, label), h("dd", {}, value)))));
  },

  upsert(task) {
    if (this.table.patch(task)) {
      this.table.markStale(task.job_task_id, !this.matches(task));
      return;
    }
    if (!this.route || !this.matches(task) || this.route.params.keyword) return;
    const { page, limit } = paging(this.route.params);
    const newest = this.table.items()[0];
    if (page !== 1 || (newest && task.created_at < newest.created_at)) return;
    this.table.show([task, ...this.table.items()].slice(0, limit), { stale: (item) => !this.matches(item) });
    this.pager.added();
  },

  updateJob(job) {
    if (this.route?.jobId !== job.job_id) return;
    this.job = job;
    if (!this.section.hidden) this.renderSummary();
  },

  matches(task) {
    const { params = {}, jobId } = this.route || {};
    return (!params.status || task.status === params.status)
      && (!jobId || task.job_id === jobId)
      && (jobId || !params.data_source_id || task.data_source_id === params.data_source_id);
  },
};

// --- one task: its fields and its history timeline --------------------------------------------------

const taskView = {
  section: $("#view-task"),
  route: null,
  task: null,
  history: [],
  historyTotal: 0,
  generation: 0,
  historyTimer: null,

  init() {
    $("#history-more").addEventListener("click", () => this.loadHistory(this.history.length));
  },

  show(route) {
    const same = this.route?.id === route.id;
    this.route = route;
    $("#task-title").replaceChildren("Task ", h("span", { class: "mono" }, route.id));
    $("#task-back").href = tasksView.route ? routeHash(tasksView.route) : "#/tasks";
    $("#task-back").textContent = tasksView.route?.jobId ? "← Tasks of the job" : "← Tasks";
    if (!same) {
      this.task = null;
      $("#task-status").replaceChildren();
      $("#task-fields").replaceChildren(h("p", { class: "muted" }, "Loading…"));
      $("#history").replaceChildren();
      $("#history-count").textContent = "";
      $("#history-more").hidden = true;
    }
    this.load();
  },

  async load() {
    const generation = ++this.generation;
    const id = this.route.id;
    try {
      const task = await post("job-task/get", { job_task_id: id });
      if (generation !== this.generation) return;
      showMessage($("#task-error"), "");
      this.update(task);
    } catch (error) {
      if (generation !== this.generation) return;
      if (error.status === 404 && error.code === "ERROR_NOT_FOUND") {
        showMessage($("#task-error"), `No task ${id} in your scope: it does not exist, or belongs to another domain or workspace.`);
        $("#task-fields").replaceChildren();
        return;
      }
      if (handleError(error, $("#task-error"), "Loading the task")) return;
    }
    this.loadHistory(0);
  },

  update(task) {
    if (!this.route || task.job_task_id !== this.route.id) return;
    const changed = this.task && this.task.updated_at !== task.updated_at;
    this.task = task;
    $("#task-status").replaceChildren(statusBadge(task.status));
    const rows = [
      ["Status", statusBadge(task.status)],
      ["Job", task.job_id ? h("a", { href: jobHref(task), class: "mono" }, task.job_id) : "—"],
      ["Data source", h("span", { class: "mono" }, task.data_source_id || "—")],
      ["Domain", h("span", { class: "mono" }, task.domain_id || "—")],
      ["Workspace", task.workspace_id || "— (domain-wide)"],
      ["Created count", count(task.created_count)],
      ["Created (UTC)", timeCell(task.created_at)],
      ["Started (UTC)", timeCell(task.started_at)],
      ["Finished (UTC)", timeCell(task.finished_at)],
      ["Updated (UTC)", timeCell(task.updated_at)],
      ["Ran for", duration(task.started_at, task.finished_at) || "—"],
    ];
    if (task.error_code || task.error_message) {
      rows.push(["Error", h("span", { class: "error-text" }, task.error_code ? h("code", {}, task.error_code) : "", " ", task.error_message || "")]);
    }
    rows.push(["Options", Object.keys(task.options || {}).length
      ? h("pre", { class: "json", "data-testid": "task-options" }, JSON.stringify(task.options, null, 2)) : "—"]);
    $("#task-fields").replaceChildren(...rows.map(([label, value]) =>
      h("div", { "data-field": label }, h("dt", {}, label), h("dd", {}, value))));
    if (changed) {
      // A live change means new deliveries: fetch the history again, once per burst.
      clearTimeout(this.historyTimer);
      this.historyTimer = setTimeout(() => this.loadHistory(0), 300);
    }
  },

  async loadHistory(offset) {
    const id = this.route.id;
    const more = $("#history-more");
    try {
      const answer = await post("job-task/history", { job_task_id: id, query: { page: { start: offset + 1, limit: HISTORY_PAGE } } });
      if (this.route?.id !== id) return;
      showMessage($("#history-error"), "");
      this.history = offset ? [...this.history, ...answer.results] : answer.results;
      this.historyTotal = answer.total_count ?? this.history.length;
      $("#history").replaceChildren(...this.history.map(historyItem));
      if (!this.history.length) $("#history").replaceChildren(h("li", { class: "muted" }, "No deliveries recorded."));
      $("#history-count").textContent = `(${count(this.historyTotal)})`;
      more.hidden = this.history.length >= this.historyTotal;
    } catch (error) {
      if (this.route?.id !== id) return;
      if (unsupported(error)) {
        const domain = this.task?.domain_id || session.scope?.domain_id || "<domain>";
        showMessage($("#history-error"), "This server does not serve task histories over HTTP yet. "
          + `From a shell: jobtask history ${id} --domain ${domain}`, "info");
        return;
      }
      handleError(error, $("#history-error"), "Loading the history");
    }
  },
};

function historyItem(record) {
  const outcome = record.outcome || "unknown";
  const noEffect = outcome === "duplicate" || outcome === "ignored";
  const lag = duration(record.occurred_at, record.received_at);
  return h("li", { class: `event outcome-${outcome}${noEffect ? " no-effect" : ""}`, "data-testid": "history-item", "data-outcome": outcome },
    h("div", { class: "event-head" },
      h("span", { class: "event-kind" }, record.kind || record.task_name || "event"),
      h("span", { class: "outcome", "data-outcome": outcome, title: OUTCOMES[outcome] || "" },
        h("span", { class: "outcome-mark", "aria-hidden": "true" }, { applied: "●", duplicate: "↻", ignored: "○", parked: "‖", conflict: "!", rejected: "✕" }[outcome] || "?"),
        outcome),
      noEffect ? h("span", { class: "no-effect-note" }, "no effect") : null),
    h("div", { class: "event-times" }, "occurred ", timeCell(record.occurred_at),
      record.received_at ? h("span", {}, " · received ", timeCell(record.received_at), lag ? ` (${lag} later)` : "") : null),
    record.reason ? h("p", { class: "event-reason" }, record.reason) : null,
    h("p", { class: "event-ids muted small" }, `event ${record.event_id || "—"} · message ${record.message_id || "—"}`));
}

// --- cancel: a modal dialog with a reason ------------------------------------------------------------

const cancelDialog = {
  dialog: $("#cancel-dialog"),
  job: null,
  opener: null,

  init() {
    $("#cancel-form").addEventListener("submit", (event) => { event.preventDefault(); this.confirm(); });
    $("#cancel-dismiss").addEventListener("click", () => this.dialog.close());
    this.dialog.addEventListener("close", () => this.opener?.isConnected && this.opener.focus());
  },

  open(job) {
    this.job = job;
    this.opener = document.activeElement;
    $("#cancel-job-id").textContent = job.job_id;
    $("#cancel-reason").value = "";
    showMessage($("#cancel-message"), "");
    $("#cancel-confirm").disabled = false;
    this.dialog.showModal();
    $("#cancel-reason").focus();
  },

  async confirm() {
    const reason = $("#cancel-reason").value.trim();
    if (!reason) {
      showMessage($("#cancel-message"), "Say why, for whoever looks at this job later.");
      $("#cancel-reason").focus();
      return;
    }
    $("#cancel-confirm").disabled = true;
    try {
      const job = await post("job/cancel", { job_id: this.job.job_id, reason });
      applyChange("job", job);
      this.dialog.close();
      toast(`Job ${job.job_id} canceled.`);
    } catch (error) {
      $("#cancel-confirm").disabled = false;
      if (error.status === 401) { this.dialog.close(); handleError(error, $("#cancel-message"), "Canceling"); return; }
      showMessage($("#cancel-message"), explain(error, "Canceling the job"));
    }
  },
};

let toastTimer = null;

function toast(text) {
  const node = $("#toast");
  node.textContent = text;
  node.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { node.hidden = true; }, 5000);
}

// --- live: the watch stream, and polling while it is unavailable --------------------------------------

/** Applies one changed object to whatever shows it. */
function applyChange(kind, item) {
  if (kind === "job_task") {
    tasksView.upsert(item);
    taskView.update(item);
  } else if (kind === "job") {
    jobsView.upsert(item);
    tasksView.updateJob(item);
  }
}

function reloadActive() {
  if (session.token && active) active.load();
}

/**
 * The parser of a text/event-stream, as the EventSource specification reads one: lines end with
 * CR, LF or CRLF; `data:` lines join with LF; `event:` names the event (`message` when absent);
 * `id:` sets the last event id, kept from event to event, when the event is dispatched (a frame
 * with an id and no data sets it and dispatches nothing); `retry:` in digits sets the reconnect
 * delay; a line starting with `:` is a comment. `push` takes decoded text in chunks of any size.
 */
function eventStream(dispatch) {
  const stream = { lastEventId: "", retry: null };
  let pending = "";
  let data = [];
  let type = "";
  let idBuffer = "";
  let first = true;

  function field(line) {
    if (line === "") {
      stream.lastEventId = idBuffer;
      if (data.length) dispatch({ type: type || "message", data: data.join("\n"), lastEventId: idBuffer });
      data = [];
      type = "";
      return;
    }
    if (line.startsWith(":")) return;
    const colon = line.indexOf(":");
    const name = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (name === "data") data.push(value);
    else if (name === "event") type = value;
    else if (name === "id" && !value.includes("\0")) idBuffer = value;
    else if (name === "retry" && /^\d+$/.test(value)) stream.retry = Number(value);
  }

  stream.push = (chunk) => {
    let text = pending + chunk;
    if (first && text) {
      if (text.startsWith("\uFEFF")) text = text.slice(1);
      first = false;
    }
    // A CR at the end may be the first half of a CRLF: wait for the next chunk to tell.
    const held = text.endsWith("\r") ? "\r" : "";
    const lines = (held ? text.slice(0, -1) : text).split(/\r\n|\r|\n/);
    pending = lines.pop() + held;
    for (const line of lines) field(line);
  };
  return stream;
}

/**
 * The watch stream, read with fetch so that the token goes as `Authorization: Bearer` and never in a
 * URL (EventSource cannot send headers; a URL ends up in proxies' and servers' logs). It behaves as
 * an EventSource would: a dropped stream reconnects by itself after the server's `retry:`, sending
 * `Last-Event-ID`, and the server replays what was missed or sends `reset` (reload what is shown).
 * An HTTP error is looked into: a refused token signs out, a server without the stream is polled,
 * anything else is retried, longer after each failure, with polling meanwhile.
 */
const live = {
  controller: null,
  epoch: 0,
  retry: 0,
  retryMs: STREAM_RETRY_MS[1],
  lastEventId: "",
  retryTimer: null,
  pollTimer: null,
  down: false,

  start() {
    this.stop();
    this.connect();
  },

  stop() {
    this.epoch += 1; // whatever an older connect() awaits now changes nothing
    this.controller?.abort();
    this.controller = null;
    clearTimeout(this.retryTimer);
    this.stopPolling();
    this.down = false;
    this.lastEventId = ""; // the next token's stream starts afresh
    this.state("off", "Offline");
  },

  state(name, text, title = "") {
    const node = $("#connection");
    node.dataset.state = name;
    node.title = title;
    $(".connection-text", node).textContent = text;
  },

  /** One connection: open the stream, read it until it ends, then reconnect or find out why not. */
  async connect() {
    const epoch = this.epoch;
    const controller = new AbortController();
    this.controller = controller;
    const resumed = Boolean(this.lastEventId);
    const headers = { Authorization: `Bearer ${session.token}`, Accept: "text/event-stream" };
    if (resumed) headers["Last-Event-ID"] = this.lastEventId;
    if (!this.down) this.state("connecting", "Connecting…");
    let response;
    try {
      response = await fetch(`${API}/job-task/watch`, { headers, signal: controller.signal, cache: "no-store" });
    } catch {
      if (epoch === this.epoch) this.failed(0);
      return;
    }
    if (epoch !== this.epoch) {
      controller.abort();
      return;
    }
    const type = response.headers.get("content-type") || "";
    if (response.status !== 200 || !type.startsWith("text/event-stream") || !response.body) {
      controller.abort();
      await this.failed(response.status === 200 ? 0 : response.status);
      return;
    }
    this.opened(resumed);
    try {
      await this.read(response.body, epoch);
    } catch {
      /* dropped mid-stream: reconnect below, as after its end */
    }
    if (epoch !== this.epoch) return;
    this.down = true;
    this.state("reconnecting", "Disconnected — reconnecting");
    this.retryTimer = setTimeout(() => this.connect(), this.retryMs);
  },

  opened(resumed) {
    this.retry = 0;
    this.stopPolling();
    this.state("live", "Live", "Rows change as the worker applies events.");
    // Resumed from Last-Event-ID, the stream itself brings what was missed (or a reset);
    // without an id to resume from, what is shown may be stale: reload it.
    if (this.down && !resumed) reloadActive();
    this.down = false;
  },

  /** Reads the stream's events into the page until it ends; each applied as it comes. */
  async read(body, epoch) {
    const stream = eventStream((event) => {
      if (epoch !== this.epoch) return;
      if (event.type === "reset") {
        reloadActive();
        loadDataSources();
      } else if (event.type === "job_task" || event.type === "job") {
        try { applyChange(event.type, JSON.parse(event.data)); } catch { /* a malformed event changes nothing */ }
      }
    });
    const reader = body.getReader();
    const decoder = new TextDecoder();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done || epoch !== this.epoch) break;
        stream.push(decoder.decode(value, { stream: true }));
        this.lastEventId = stream.lastEventId;
        if (stream.retry !== null) this.retryMs = stream.retry;
      }
    } finally {
      reader.releaseLock();
    }
  },

  /** The stream did not open (`status` 0: the API was not reached): find out why, and what to do. */
  async failed(status) {
    const epoch = this.epoch;
    if (status === 401) {
      // Refused: the token is gone, unless the API refuses only the stream (then poll).
      try {
        await fetchScope(session.token);
      } catch (error) {
        if (epoch === this.epoch && error.status === 401) signOut(explain(error, "The live stream"));
        if (error.status === 401) return;
      }
      if (epoch !== this.epoch) return;
    }
    this.down = true;
    this.startPolling();
    if (status === 404) {
      this.state("polling", `Polling every ${POLL_MS / 1000} s`,
        "This server has no live stream: the page reloads what it shows every few seconds.");
      this.retryTimer = setTimeout(() => this.connect(), 60000);
      return;
    }
    this.state("reconnecting", "Disconnected — reconnecting",
      `The live stream is unavailable (${status ? `HTTP ${status}` : "unreachable"}); retrying, and reloading every ${POLL_MS / 1000} s meanwhile.`);
    this.retryTimer = setTimeout(() => this.connect(), this.backoff());
  },

  /** How long to wait before the next try: longer after each failure, reset by a success. */
  backoff() {
    const wait = STREAM_RETRY_MS[Math.min(this.retry, STREAM_RETRY_MS.length - 1)];
    this.retry += 1;
    return wait;
  },

  startPolling() {
    if (!this.pollTimer) this.pollTimer = setInterval(reloadActive, POLL_MS);
  },

  stopPolling() {
    clearInterval(this.pollTimer);
    this.pollTimer = null;
  },
};

// --- start ----------------------------------------------------------------------------------------

function start() {
  jobsView.init();
  tasksView.init();
  taskView.init();
  cancelDialog.init();
  $("#token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = $("#token").value.trim();
    if (!token) {
      showMessage($("#sign-in-message"), "Enter a token first.");
      $("#token").focus();
      return;
    }
    signIn(token);
  });
  $("#sign-out").addEventListener("click", () => signOut("Signed out. The token is forgotten in this tab.", "info"));
  $(".skip-link").addEventListener("click", (event) => { event.preventDefault(); $("#main").focus(); });
  window.addEventListener("hashchange", () => render());
  const saved = sessionStorage.getItem(TOKEN_KEY);
  if (saved) signIn(saved);
  else showSignIn();
}

start();
