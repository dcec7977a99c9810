// The operator console: streams, an event browser with a live tail, event verification in the browser, commitments
// and keys. Everything comes from the public HTTP API with the pasted key (api.js). Nothing from the API is ever
// parsed as HTML: every value reaches the page through textContent (h() below), so hostile payloads stay text.

import * as api from "./api.js";
import * as ves from "./ves.js";

const TENANT_ITEM = "stateset-console-tenant";
const PAGE_SIZE = 50;
const TAIL_WAIT_SECONDS = 20;
const SCAN_PAGES = 20;

const state = { caller: null, tenant: null, tail: null };

// --- DOM ------------------------------------------------------------------------------------------------------------

/** An element with `props` (class, text, href — only `#…` links —, data-*, on* handlers, other attributes) and
 * children (nodes or strings, which become text nodes). */
function h(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = String(value);
    else if (name === "href") node.setAttribute("href", String(value).startsWith("#") ? value : "#");
    else if (name.startsWith("on")) node.addEventListener(name.slice(2).toLowerCase(), value);
    else if (name === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function main() {
  return document.getElementById("main");
}

function show(...nodes) {
  main().replaceChildren(...nodes);
}

function table(headings, rows, props = {}) {
  return h("table", props,
    h("thead", {}, h("tr", {}, headings.map((title) => h("th", { text: title })))),
    h("tbody", {}, rows));
}

function errorBox(error) {
  const text = error instanceof api.ApiError ? `${error.status} ${error.code}: ${error.message}` : String(error);
  return h("p", { class: "error", role: "alert", text });
}

function short(hex) {
  if (!hex) return "—";
  const plain = String(hex).replace(/^0x/, "");
  return plain.length > 16 ? plain.slice(0, 8) + "…" + plain.slice(-8) : plain;
}

function route(...parts) {
  return "#/" + parts.map((part) => encodeURIComponent(part)).join("/");
}

function field(object, snake, camel) {
  return object?.[snake] ?? object?.[camel];
}

// --- Key, scope, navigation -----------------------------------------------------------------------------------------

function mayAdminister() {
  return state.caller?.permissions === "admin";
}

function mayManageAgentKeys() {
  const caller = state.caller;
  return !!caller && (caller.permissions === "admin" || caller.permissions === "read_write") &&
    caller.store_ids.length === 0 && !caller.agent_id;
}

function renderLogin(message) {
  document.getElementById("session").replaceChildren();
  const input = h("input", { type: "password", id: "api-key", autocomplete: "off", spellcheck: "false",
    placeholder: "ssk_…", "aria-label": "API key" });
  const form = h("form", { id: "login", onSubmit: async (event) => {
    event.preventDefault();
    const key = input.value.trim();
    input.value = "";
    if (!key) return;
    api.storeKey(key);
    await start();
  } },
  h("label", { for: "api-key", text: "API key" }), input, h("button", { type: "submit", text: "Open console" }),
  h("p", { class: "hint", text: "The key stays in this tab (sessionStorage) and is sent only as the Authorization " +
    "header to this server's API. The console sees exactly what the key's scope allows." }));
  show(message ? errorBox(message) : "", form);
  input.focus();
}

function renderSession() {
  const caller = state.caller;
  const scope = [
    `permission: ${caller.permissions}`,
    `tenant: ${caller.tenant_id ?? "every tenant"}`,
    `stores: ${caller.store_ids.length ? caller.store_ids.join(", ") : "all"}`,
  ];
  if (caller.agent_id) scope.push(`agent: ${caller.agent_id}`);
  const tenantPicker = caller.tenant_id ? null : h("form", { id: "tenant-form", onSubmit: (event) => {
    event.preventDefault();
    const value = event.target.querySelector("input").value.trim();
    state.tenant = value;
    sessionStorage.setItem(TENANT_ITEM, value);
    navigate();
  } }, h("input", { name: "tenant", placeholder: "tenant id", value: state.tenant ?? "", "aria-label": "tenant" }),
  h("button", { type: "submit", text: "Use tenant" }));
  document.getElementById("session").replaceChildren(
    h("nav", {}, h("a", { href: "#/", text: "Streams" }), h("a", { href: "#/keys", text: "Keys" })),
    h("span", { id: "scope", text: scope.join(" · ") }), tenantPicker ?? "",
    h("button", { id: "logout", type: "button", text: "Forget key", onClick: () => {
      stopTail();
      api.forgetKey();
      state.caller = null;
      renderLogin();
    } }));
}

async function start() {
  try {
    state.caller = await api.get("api/v1/whoami");
  } catch (error) {
    api.forgetKey();
    state.caller = null;
    renderLogin(error);
    return;
  }
  state.tenant = state.caller.tenant_id ?? sessionStorage.getItem(TENANT_ITEM);
  renderSession();
  navigate();
}

function navigate() {
  stopTail();
  if (!state.caller) return;
  const [pathPart, queryPart] = location.hash.replace(/^#\/?/, "").split("?");
  const parts = pathPart.split("/").filter(Boolean).map(decodeURIComponent);
  const params = new URLSearchParams(queryPart || "");
  if (parts[0] === "keys") return keysView();
  if (!state.tenant) return show(h("p", { text: "A global key: choose a tenant above." }));
  if (parts[0] === "stream" && parts[1]) return streamView(parts[1], params);
  if (parts[0] === "event" && parts[1] && parts[2]) return eventView(parts[1], parts[2]);
  if (parts[0] === "commitments" && parts[1]) return commitmentsView(parts[1]);
  return streamsView();
}

// --- Streams --------------------------------------------------------------------------------------------------------

async function streamsView(after) {
  show(h("h2", { text: "Streams" }), h("p", { class: "loading", text: "Loading…" }));
  let page;
  try {
    page = await api.get("api/v1/streams", { tenant_id: state.tenant, after, limit: 100 });
  } catch (error) {
    return show(h("h2", { text: "Streams" }), errorBox(error));
  }
  const rows = page.streams.map((stream) => h("tr", { dataset: { store: stream.store_id } },
    h("td", {}, h("a", { href: route("stream", stream.store_id), text: stream.store_id })),
    h("td", { class: "num head", text: stream.head_sequence }),
    h("td", {}, stream.last_batch_id
      ? h("a", { href: route("commitments", stream.store_id), text: `…${stream.last_committed_sequence}` }) : "none"),
    h("td", { class: "num", text: stream.uncommitted }),
    h("td", { class: "num lag", text: stream.anchoring_lag }),
    h("td", { text: stream.last_anchored_at ? `${stream.last_anchored_sequence} (${short(stream.last_anchor_tx)})` : "never" }),
    h("td", { class: "num", text: stream.checkpoint_size ?? "—" })));
  show(h("h2", { text: "Streams" }),
    h("p", { class: "hint", text: `Tenant ${page.tenant_id}: ${page.count} stream(s) on this page.` }),
    table(["Store", "Head", "Committed to", "Uncommitted", "Anchoring lag", "Last anchored (tx)", "Checkpoint size"],
      rows, { id: "streams" }),
    page.next_after ? h("button", { type: "button", text: "More", onClick: () => streamsView(page.next_after) }) : "",
    h("button", { type: "button", text: "Refresh", onClick: () => streamsView(after) }));
}

// --- Event browser and live tail -------------------------------------------------------------------------------------

function eventRow(storeId, event) {
  return h("tr", { dataset: { sequence: event.sequence_number } },
    h("td", { class: "num" }, h("a", { href: route("event", storeId, event.event_id), text: event.sequence_number })),
    h("td", { text: event.event_type }),
    h("td", { text: event.entity_type }),
    h("td", { class: "entity-id", text: event.entity_id }),
    h("td", { text: event.source_agent_id }),
    h("td", { text: event.sequenced_at }));
}

function matchesFilters(event, params) {
  const type = params.get("event_type");
  return !type || event.event_type === type;
}

/** A page of the stream from `from`; with an event-type filter, successive pages are read until PAGE_SIZE events
 * match, the head is reached or SCAN_PAGES pages were read (the status line says which range was scanned). */
async function scanEvents(query, params) {
  let from = params.get("from") || 1;
  const shown = [];
  let page;
  for (let pages = 0; pages < SCAN_PAGES; pages++) {
    page = await api.get("api/v1/ves/events", { ...query, from });
    shown.push(...page.events.filter((event) => matchesFilters(event, params)));
    from = page.next_from;
    if (!params.get("event_type") || shown.length >= PAGE_SIZE || !page.count || page.next_from > page.head_sequence) break;
  }
  if (shown.length > PAGE_SIZE) {
    shown.length = PAGE_SIZE;
    return { page, shown, nextFrom: shown[PAGE_SIZE - 1].sequence_number + 1 };
  }
  return { page, shown, nextFrom: page.next_from };
}

function filterForm(storeId, params) {
  const input = (name, label) => h("input", { name, placeholder: label, "aria-label": label, value: params.get(name) ?? "" });
  return h("form", { id: "filters", onSubmit: (event) => {
    event.preventDefault();
    const next = new URLSearchParams();
    for (const element of event.target.querySelectorAll("input")) if (element.value) next.set(element.name, element.value);
    location.hash = route("stream", storeId) + (next.toString() ? "?" + next : "");
  } }, input("entity_type", "entity type"), input("entity_id", "entity id"), input("event_type", "event type"),
  h("button", { type: "submit", text: "Filter" }));
}

async function streamView(storeId, params) {
  const heading = h("h2", {}, "Stream ", h("code", { text: storeId }));
  const links = h("p", {}, h("a", { href: route("commitments", storeId), text: "Commitments" }));
  const body = h("tbody", {});
  const status = h("p", { class: "hint", id: "page-status" });
  const entity = params.get("entity_type") && params.get("entity_id");
  const tailBox = h("input", { type: "checkbox", id: "live-tail", disabled: entity ? true : undefined });
  const tailLabel = h("label", { for: "live-tail", text: " Live tail" });
  show(heading, links, filterForm(storeId, params), h("p", {}, tailBox, tailLabel), status,
    h("table", { id: "events" }, h("thead", {}, h("tr", {},
      ["Seq", "Event type", "Entity type", "Entity id", "Agent", "Sequenced at"].map((t) => h("th", { text: t })))), body));
  const query = { tenant_id: state.tenant, store_id: storeId, limit: PAGE_SIZE };
  let page;
  let shown;
  let nextFrom;
  try {
    if (entity) {
      page = await api.get(`api/v1/ves/entities/${encodeURIComponent(params.get("entity_type"))}/` +
        encodeURIComponent(params.get("entity_id")), { ...query, from: params.get("from") });
      shown = page.events;
    } else {
      ({ page, shown, nextFrom } = await scanEvents(query, params));
    }
  } catch (error) {
    return main().append(errorBox(error));
  }
  body.replaceChildren(...shown.map((event) => eventRow(storeId, event)));
  const first = Number(params.get("from")) || 1;
  status.textContent = entity
    ? `Entity history: ${page.count} event(s), version ${page.version}.`
    : params.get("event_type")
      ? `${shown.length} event(s) of type ${params.get("event_type")} among sequence numbers ${first}–` +
        `${Math.min(nextFrom - 1, page.head_sequence)} of head ${page.head_sequence}.`
      : `Events ${shown.length ? shown[0].sequence_number + "–" + shown[shown.length - 1].sequence_number : "none"} ` +
        `of head ${page.head_sequence}.`;
  if (!entity && nextFrom <= page.head_sequence) {
    const next = new URLSearchParams(params);
    next.set("from", nextFrom);
    main().append(h("a", { href: route("stream", storeId) + "?" + next, id: "next-page", text: "Next page" }));
  }
  let last = entity ? page.events.at(-1)?.sequence_number ?? 0 : Math.min(nextFrom - 1, page.head_sequence);
  tailBox.addEventListener("change", () => {
    if (tailBox.checked) startTail(storeId, params, body, () => last, (value) => { last = value; });
    else stopTail();
  });
}

/** Long-poll the stream after the last shown event while the box is checked and the tab is visible; a hidden tab
 * aborts the open poll and resumes when visible again. */
function startTail(storeId, params, body, getLast, setLast) {
  stopTail();
  const tail = { controller: null, stopped: false, running: false };
  state.tail = tail;
  const indicator = h("span", { id: "tail-state", class: "hint" });
  document.getElementById("page-status").append(" ", indicator);
  const loop = async () => {
    if (tail.running) return;
    tail.running = true;
    try {
      while (!tail.stopped && document.visibilityState === "visible") {
        indicator.textContent = "(tailing…)";
        tail.controller = new AbortController();
        try {
          const page = await api.get("api/v1/ves/events", {
            tenant_id: state.tenant, store_id: storeId, after: getLast(), limit: PAGE_SIZE, wait: TAIL_WAIT_SECONDS,
          }, { signal: tail.controller.signal });
          for (const event of page.events) {
            setLast(event.sequence_number);
            if (matchesFilters(event, params)) {
              const row = eventRow(storeId, event);
              row.classList.add("new");
              body.append(row);
            }
          }
        } catch (error) {
          if (tail.stopped || error.name === "AbortError") break;
          indicator.textContent = `(tail error: ${error.message}; retrying)`;
          await new Promise((resolve) => setTimeout(resolve, 2000));
        }
      }
    } finally {
      tail.running = false;
      tail.controller = null;
    }
    if (!tail.stopped && document.visibilityState !== "visible") indicator.textContent = "(tail paused: tab hidden)";
    else if (!tail.stopped) loop();
  };
  tail.onVisibility = () => {
    if (document.visibilityState === "visible") {
      if (!tail.stopped) loop();
    } else {
      tail.controller?.abort();
    }
  };
  document.addEventListener("visibilitychange", tail.onVisibility);
  loop();
}

function stopTail() {
  const tail = state.tail;
  if (!tail) return;
  tail.stopped = true;
  tail.controller?.abort();
  document.removeEventListener("visibilitychange", tail.onVisibility);
  state.tail = null;
}

// --- One event, verified in the browser ----------------------------------------------------------------------------

const CHECKS = [
  ["payload-hash", "Payload hash: SHA-256 over the RFC 8785 payload equals payload_plain_hash"],
  ["signing-hash", "Event signing hash recomputed from the envelope"],
  ["agent-signature", "Agent signature (Ed25519, the registered agent key)"],
  ["receipt-hash", "Receipt hash recomputed from stream, event id, sequence number and signing hash"],
  ["receipt-signature", "Receipt signature (Ed25519, the sequencer's published key)"],
  ["commitment-inclusion", "Inclusion proof against its Merkle commitment"],
  ["checkpoint-inclusion", "Inclusion in the stream's latest signed checkpoint (transparency log)"],
];

function checkList() {
  const items = new Map();
  const list = h("ul", { id: "checks" });
  for (const [id, label] of CHECKS) {
    const detail = h("span", { class: "detail", text: "checking…" });
    const item = h("li", { dataset: { check: id, status: "pending" } }, h("span", { class: "badge", text: "…" }),
      h("span", { class: "label", text: label }), detail);
    items.set(id, { item, detail });
    list.append(item);
  }
  const set = (id, status, text) => {
    const { item, detail } = items.get(id);
    item.dataset.status = status;
    item.querySelector(".badge").textContent = { pass: "✓", fail: "✗", skip: "–" }[status] ?? "…";
    detail.textContent = text;
  };
  return { list, set };
}

async function eventView(storeId, eventId) {
  show(h("h2", {}, "Event ", h("code", { text: eventId })), h("p", { class: "loading", text: "Loading…" }));
  const stream = { tenant_id: state.tenant, store_id: storeId };
  let event;
  try {
    event = await api.get(`api/v1/ves/events/${encodeURIComponent(eventId)}`, stream);
  } catch (error) {
    return show(h("h2", { text: "Event" }), errorBox(error));
  }
  const receipt = event.sequencer_receipt ?? {};
  const { list, set } = checkList();
  const envelope = { ...event };
  delete envelope.sequencer_receipt;
  show(h("h2", {}, "Event ", h("code", { text: eventId })),
    h("p", {}, h("a", { href: route("stream", storeId), text: "← stream" }), " · sequence ",
      h("strong", { id: "sequence-number", text: event.sequence_number })),
    h("section", { id: "verification" }, h("h3", { text: "Verification in this browser" }), list,
      h("p", { class: "caveat", id: "caveat", text:
        "These checks run in your browser, on code and keys served by the same sequencer you are checking, so they " +
        "cannot audit it independently: a dishonest server could serve a dishonest console. For an independent " +
        "check, export the stream and run `ves-verify` on your own machine with the sequencer's receipt key pinned " +
        "(docs/VERIFY.md)." })),
    h("h3", { text: "Payload" }), h("pre", { id: "payload", text: JSON.stringify(event.payload ?? event.payload_encrypted, null, 2) }),
    h("h3", { text: "Envelope" }), h("pre", { id: "envelope", text: JSON.stringify(envelope, null, 2) }),
    h("h3", { text: "Receipt" }), h("pre", { id: "receipt", text: JSON.stringify(receipt, null, 2) }));
  await verifyEvent(event, receipt, storeId, set);
}

async function verifyEvent(event, receipt, storeId, set) {
  const canEd25519 = await ves.ed25519Available();
  const agentSignature = ves.hexToBytes(event.agent_signature ?? "", undefined);
  let signingHash = null;

  if (event.payload_kind === 0) {
    try {
      const computed = await ves.payloadPlainHash(event.payload);
      const expected = ves.hexToBytes(event.payload_plain_hash, 32);
      set("payload-hash", ves.bytesEqual(computed, expected) ? "pass" : "fail",
        ves.bytesEqual(computed, expected) ? ves.bytesToHex(computed)
          : `computed ${ves.bytesToHex(computed)}, envelope says ${ves.bytesToHex(expected)}`);
    } catch (error) {
      set("payload-hash", "fail", String(error.message || error));
    }
  } else {
    set("payload-hash", "skip", "encrypted payload: the plaintext is not on the server (the sequencer checked the cipher hash)");
  }

  try {
    signingHash = await ves.eventSigningHash(event);
    const served = event.event_signing_hash ? ves.hexToBytes(event.event_signing_hash, 32) : null;
    if (served && !ves.bytesEqual(served, signingHash)) {
      set("signing-hash", "fail", `computed ${ves.bytesToHex(signingHash)}, server says ${ves.bytesToHex(served)}`);
    } else {
      set("signing-hash", "pass", ves.bytesToHex(signingHash));
    }
  } catch (error) {
    set("signing-hash", "fail", String(error.message || error));
  }

  await verifyAgentSignature(event, signingHash, agentSignature, canEd25519, set);
  await verifyReceipt(event, receipt, signingHash, canEd25519, set);
  await verifyCommitment(event, storeId, signingHash, agentSignature, set);
  await verifyCheckpoint(event, storeId, signingHash, agentSignature, canEd25519, set);
}

async function verifyAgentSignature(event, signingHash, agentSignature, canEd25519, set) {
  if (!signingHash) return set("agent-signature", "fail", "no signing hash to check against");
  if (!canEd25519) return set("agent-signature", "skip", "this browser's WebCrypto has no Ed25519");
  try {
    const keys = await api.get("api/v1/agents/keys", { tenant_id: event.tenant_id, agent_id: event.source_agent_id });
    const key = keys.keys.find((k) => k.agent_id === event.source_agent_id && k.key_id === event.agent_key_id);
    if (!key) return set("agent-signature", "fail", `agent key ${event.agent_key_id} is not registered`);
    const ok = await ves.ed25519Verify(ves.hexToBytes(key.public_key, 32), signingHash, agentSignature);
    set("agent-signature", ok ? "pass" : "fail",
      `agent ${event.source_agent_id}, key ${event.agent_key_id}${key.is_revoked ? " (revoked since)" : ""}`);
  } catch (error) {
    set("agent-signature", "fail", String(error.message || error));
  }
}

function sequencerKeyFor(info, version) {
  const versions = info.keys ?? info.key_versions;
  if (Array.isArray(versions) && version !== undefined && version !== null) {
    const match = versions.find((k) => (k.version ?? k.key_version) === version);
    if (match) return match.public_key;
  }
  return info.public_key;
}

async function verifyReceipt(event, receipt, signingHash, canEd25519, set) {
  const receiptHashText = field(receipt, "receipt_hash", "receiptHash");
  if (!signingHash || !receiptHashText) {
    set("receipt-hash", "fail", "no receipt or signing hash");
    return set("receipt-signature", "fail", "no receipt");
  }
  const computed = await ves.receiptHash(event.tenant_id, event.store_id, event.event_id, event.sequence_number, signingHash);
  const stated = ves.hexToBytes(receiptHashText, 32);
  set("receipt-hash", ves.bytesEqual(computed, stated) ? "pass" : "fail",
    ves.bytesEqual(computed, stated) ? ves.bytesToHex(computed) : `computed ${ves.bytesToHex(computed)}, receipt says ${ves.bytesToHex(stated)}`);
  const alg = field(receipt, "signature_alg", "signatureAlg");
  if (alg !== "ed25519") return set("receipt-signature", "fail", `receipt is not signed (signature_alg: ${alg})`);
  if (!canEd25519) return set("receipt-signature", "skip", "this browser's WebCrypto has no Ed25519");
  try {
    const info = await api.get("api/v1/ves/sequencer");
    const version = field(receipt, "sequencer_key_version", "sequencerKeyVersion");
    const publicKey = ves.hexToBytes(sequencerKeyFor(info, version), 32);
    const signature = ves.hexToBytes(field(receipt, "sequencer_signature", "sequencerSignature"), 64);
    const ok = await ves.ed25519Verify(publicKey, computed, signature);
    set("receipt-signature", ok ? "pass" : "fail", `sequencer key ${short(ves.bytesToHex(publicKey))}` +
      (version !== undefined && version !== null ? ` (version ${version})` : ""));
  } catch (error) {
    set("receipt-signature", "fail", String(error.message || error));
  }
}

async function verifyCommitment(event, storeId, signingHash, agentSignature, set) {
  if (!signingHash) return set("commitment-inclusion", "fail", "no signing hash");
  let proof;
  try {
    proof = await api.get(`api/v1/ves/proofs/${event.sequence_number}`, { tenant_id: state.tenant, store_id: storeId });
  } catch (error) {
    if (error instanceof api.ApiError && (error.status === 404 || error.status === 409)) {
      return set("commitment-inclusion", "skip", "not committed yet");
    }
    return set("commitment-inclusion", "fail", String(error.message || error));
  }
  try {
    const leaf = await ves.leafHash(event.tenant_id, event.store_id, event.sequence_number, signingHash,
      agentSignature.length === 64 ? agentSignature : new Uint8Array(64));
    if (!ves.bytesEqual(leaf, ves.hexToBytes(proof.leaf_hash, 32))) {
      return set("commitment-inclusion", "fail", "the proof's leaf is not this event's leaf hash");
    }
    const path = proof.proof_path.map((node) => ves.hexToBytes(node, 32));
    const root = await ves.foldCommitmentProof(leaf, path, proof.leaf_index, proof.leaf_count);
    const commitment = await api.get(`api/v1/ves/commitments/${encodeURIComponent(proof.batch_id)}`);
    const published = ves.hexToBytes(commitment.merkle_root, 32);
    const anchored = commitment.chain_tx_hash ? `anchored in tx ${short(commitment.chain_tx_hash)}` : "not anchored yet";
    set("commitment-inclusion", ves.bytesEqual(root, published) ? "pass" : "fail",
      `commitment ${commitment.batch_id} (${commitment.sequence_start}–${commitment.sequence_end}), ${anchored}`);
  } catch (error) {
    set("commitment-inclusion", "fail", String(error.message || error));
  }
}

async function verifyCheckpoint(event, storeId, signingHash, agentSignature, canEd25519, set) {
  const stream = { tenant_id: state.tenant, store_id: storeId };
  let note, vkey;
  try {
    const answer = await api.getWithHeaders("api/v1/ves/log/checkpoint", stream, { text: true });
    note = answer.body;
    vkey = answer.headers.get("X-Log-Vkey");
  } catch (error) {
    if (error instanceof api.ApiError && error.status === 404) {
      return set("checkpoint-inclusion", "skip", error.code === "NOT_FOUND" || !error.code
        ? "this server does not serve a transparency log" : `no checkpoint yet (${error.code})`);
    }
    return set("checkpoint-inclusion", "fail", String(error.message || error));
  }
  if (!canEd25519) return set("checkpoint-inclusion", "skip", "this browser's WebCrypto has no Ed25519");
  try {
    const verifier = await ves.parseVerifierKey(vkey);
    const info = await api.get("api/v1/ves/sequencer");
    if (info.log_public_key && ves.bytesToHex(verifier.publicKey) !== String(info.log_public_key).replace(/^0x/, "")) {
      return set("checkpoint-inclusion", "fail", "X-Log-Vkey is not the log key the sequencer publishes");
    }
    const checkpoint = await ves.verifyCheckpoint(note, verifier);
    if (!checkpoint.verified) return set("checkpoint-inclusion", "fail", "the checkpoint's signature does not verify");
    const ownOrigin = "/" + ves.bytesToHex(await ves.streamId(event.tenant_id, event.store_id));
    if (!checkpoint.origin.endsWith(ownOrigin) || verifier.name !== checkpoint.origin) {
      return set("checkpoint-inclusion", "fail", `checkpoint origin ${checkpoint.origin} is not this stream's log`);
    }
    if (checkpoint.treeSize < event.sequence_number) {
      return set("checkpoint-inclusion", "skip", `checkpoint of size ${checkpoint.treeSize} does not cover this event yet`);
    }
    const proof = await api.get(`api/v1/ves/log/inclusion/${event.sequence_number}`, { ...stream, tree_size: checkpoint.treeSize });
    const entry = await ves.leafHash(event.tenant_id, event.store_id, event.sequence_number, signingHash,
      agentSignature.length === 64 ? agentSignature : new Uint8Array(64));
    if (!ves.bytesEqual(entry, ves.hexToBytes(proof.entry, 32))) {
      return set("checkpoint-inclusion", "fail", "the log entry is not this event's leaf hash");
    }
    const root = await ves.rfc9162InclusionRoot(await ves.rfc9162Leaf(entry), proof.leaf_index, checkpoint.treeSize,
      proof.proof.map((node) => ves.hexToBytes(node, 32)));
    const ok = root !== null && ves.bytesEqual(root, checkpoint.root);
    set("checkpoint-inclusion", ok ? "pass" : "fail", `checkpoint ${checkpoint.origin} size ${checkpoint.treeSize}`);
  } catch (error) {
    set("checkpoint-inclusion", "fail", String(error.message || error));
  }
}

// --- Commitments ----------------------------------------------------------------------------------------------------

async function commitmentsView(storeId) {
  const heading = h("h2", {}, "Commitments of ", h("code", { text: storeId }));
  let page;
  try {
    page = await api.get("api/v1/ves/commitments", { tenant_id: state.tenant, store_id: storeId });
  } catch (error) {
    return show(heading, errorBox(error));
  }
  const rows = page.commitments.map((c) => h("tr", { dataset: { batch: c.batch_id } },
    h("td", { text: c.batch_id }),
    h("td", { class: "num", text: `${c.sequence_start}–${c.sequence_end}` }),
    h("td", { text: short(c.merkle_root) }),
    h("td", { text: c.committed_at }),
    h("td", { class: "anchored", text: c.is_anchored ? "anchored" : "pending" }),
    h("td", { text: c.chain_tx_hash ? `${short(c.chain_tx_hash)} (chain ${c.chain_id}, block ${c.chain_block_number})` : "—" })));
  show(heading, h("p", {}, h("a", { href: route("stream", storeId), text: "← stream" })),
    table(["Batch", "Range", "Merkle root", "Committed at", "Anchoring", "Transaction"], rows, { id: "commitments" }));
}

// --- Keys -----------------------------------------------------------------------------------------------------------

async function keysView() {
  const sections = [h("h2", { text: "Keys" })];
  if (!state.tenant) return show(...sections, h("p", { text: "A global key: choose a tenant above." }));
  try {
    const agents = await api.get("api/v1/agents/keys", { tenant_id: state.tenant });
    const rows = agents.keys.map((k) => h("tr", {},
      h("td", { text: k.agent_id }), h("td", { class: "num", text: k.key_id }), h("td", { text: short(k.public_key) }),
      h("td", { text: k.is_revoked ? "revoked" : "active" }),
      h("td", {}, mayManageAgentKeys() && !k.is_revoked ? h("button", { type: "button", class: "admin-action",
        text: "Revoke", onClick: () => revoke(`api/v1/agents/keys/${k.agent_id}/${k.key_id}`, { tenant_id: state.tenant }) }) : "")));
    sections.push(h("h3", { text: "Agent signing keys" }),
      table(["Agent", "Key id", "Public key", "State", ""], rows, { id: "agent-keys" }));
  } catch (error) {
    sections.push(h("h3", { text: "Agent signing keys" }), errorBox(error));
  }
  if (mayAdminister()) {
    try {
      const keys = await api.get("api/v1/admin/api-keys", { tenant_id: state.tenant });
      const rows = keys.api_keys.map((k) => h("tr", {},
        h("td", { text: k.key_prefix + "…" }), h("td", { text: k.permissions }),
        h("td", { text: k.store_ids.length ? k.store_ids.join(", ") : "all" }),
        h("td", { text: k.description ?? "" }), h("td", { text: k.is_revoked ? "revoked" : "active" }),
        h("td", {}, !k.is_revoked && k.key_id !== state.caller.key_id ? h("button", { type: "button",
          class: "admin-action", text: "Revoke", onClick: () => revoke(`api/v1/admin/api-keys/${k.key_id}`) }) : "")));
      sections.push(h("h3", { text: "API keys" }),
        table(["Prefix", "Permission", "Stores", "Description", "State", ""], rows, { id: "api-keys" }));
    } catch (error) {
      sections.push(h("h3", { text: "API keys" }), errorBox(error));
    }
  } else {
    sections.push(h("p", { class: "hint", text: "API keys are listed for admin keys only." }));
  }
  show(...sections);
}

async function revoke(path, params) {
  if (!window.confirm("Revoke this key? It is refused from its next request on.")) return;
  try {
    await api.del(path, params);
  } catch (error) {
    main().prepend(errorBox(error));
    return;
  }
  keysView();
}

// --- Start ----------------------------------------------------------------------------------------------------------

window.addEventListener("hashchange", navigate);
if (api.storedKey()) start();
else renderLogin();
