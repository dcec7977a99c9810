// A client of the ORIGINAL StateSet Sequencer, pointed at this server.
//
// It builds events exactly as the original's code does (lib/ves.mjs: VesEventEnvelope, encrypt_payload_ves) and
// walks the flow its agents walk, asserting the field names, types and hex forms the original's handlers produce
// (src/api/handlers/*.rs, src/api/types.rs). Where this server still answers differently, the check's id is listed
// in pending_differences.json: such a check is expected to fail (reported "pending"); if it passes, the run FAILS
// ("fixed": remove the id from the list), and an id the run never checks FAILS too, so the list cannot rot.
//
// The flow: register key -> ingest plaintext -> ingest encrypted -> replay -> tamper -> head -> events -> entity
// history -> commitment -> proof -> verify -> schemas -> anchor status, then the auth forms and error codes.
//
// Usage: node tests/compat/client.mjs --base-url URL --admin-key KEY --api-key KEY --tenant UUID
// Output: one JSON object per line ({"check", "status", "detail"}), then {"summary": ...} and {"artifacts": ...}.
// Exit status 0 only when no check failed and no pending difference was already fixed.

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as v from './lib/ves.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const args = Object.fromEntries(process.argv.slice(2).reduce((pairs, arg, i, all) =>
  (arg.startsWith('--') ? [...pairs, [arg.slice(2), all[i + 1]]] : pairs), []));
for (const name of ['base-url', 'admin-key', 'api-key', 'tenant']) {
  if (!args[name]) { console.error(`missing --${name}`); process.exit(2); }
}
const PENDING = new Set(JSON.parse(fs.readFileSync(args.pending ?? path.join(here, 'pending_differences.json'), 'utf8')).pending);

const results = [];
const ran = new Set();
function emit(line) { process.stdout.write(JSON.stringify(line) + '\n'); }

// One assertion about the original's wire format. `fn` throws (assert) when this server differs.
function check(id, fn) {
  if (ran.has(id)) throw new Error(`check id used twice: ${id}`);
  ran.add(id);
  let error = null;
  try { fn(); } catch (e) { error = e; }
  const pending = PENDING.has(id);
  const status = error ? (pending ? 'pending' : 'fail') : (pending ? 'fixed' : 'pass');
  const detail = error ? String(error.message ?? error) : (pending ? 'passes now: remove it from pending_differences.json' : '');
  results.push({ check: id, status, detail });
  emit({ check: id, status, detail });
  return !error;
}
// A step the rest of the flow depends on: its failure ends the run.
function must(id, fn) {
  if (!check(id, fn)) throw new Error(`stopping: ${id} failed`);
}
function assert(condition, message) { if (!condition) throw new Error(message); }
const show = (value) => JSON.stringify(value)?.slice(0, 300);
const eq = (actual, expected, what) => assert(actual === expected, `${what}: expected ${show(expected)}, got ${show(actual)}`);

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const RFC3339_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;
const plainHex = (s, bytes) => typeof s === 'string' && s.length === 2 * bytes && /^[0-9a-f]*$/.test(s);
const isUuid = (s) => typeof s === 'string' && UUID_RE.test(s);
const isU32 = (n) => Number.isInteger(n) && n >= 0 && n <= 0xffffffff;
const isU64 = (n) => Number.isInteger(n) && n >= 0;
// Decoding that this client tolerates for recomputation, so a value's *form* is judged by its own check only.
const bytesOf = (s) => Buffer.from(String(s).replace(/^0x/, ''), 'hex');

async function http(method, route, { body, key = args['api-key'], query, auth } = {}) {
  const url = new URL(args['base-url'] + route);
  for (const [k, val] of Object.entries(query ?? {})) url.searchParams.set(k, val);
  const headers = { Accept: 'application/json' };
  // The original's middleware reads `Authorization: ApiKey <key>`, a bare `Authorization: <key>`, or `X-API-Key`.
  if (key && auth === 'x-api-key') headers['X-API-Key'] = key;
  else if (key && auth === 'bare') headers.Authorization = key;
  else if (key) headers.Authorization = `ApiKey ${key}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: response.status, json, text };
}

// The receipt the original's ingest handler builds (VesReceiptResponse, rename_all camelCase).
function receiptChecks(prefix, receipt, event, expectedNumber) {
  check(`${prefix}.receipt.core_fields`, () => {
    eq(receipt.eventId, event.envelope.event_id, 'eventId');
    eq(receipt.sequenceNumber, expectedNumber, 'sequenceNumber');
    assert(typeof receipt.sequencedAt === 'string' && RFC3339_RE.test(receipt.sequencedAt), `sequencedAt RFC 3339: ${show(receipt.sequencedAt)}`);
    eq(receipt.signatureAlg, 'ed25519', 'signatureAlg');
  });
  check(`${prefix}.receipt.receipt_hash_recomputes`, () => {
    const expected = v.receiptHash(event.envelope.tenant_id, event.envelope.store_id, event.envelope.event_id, expectedNumber, event.signingHash);
    assert(bytesOf(receipt.receiptHash).equals(expected), `receiptHash ${show(receipt.receiptHash)} != ${expected.toString('hex')}`);
  });
}

function receiptFormChecks(receipt) {
  // hex::encode: plain lowercase hex. Rust's hex::decode and Node's Buffer.from(s, 'hex') cannot read "0x…".
  check('receipt.receipt_hash_plain_hex', () => assert(plainHex(receipt.receiptHash, 32), `receiptHash: ${show(receipt.receiptHash)}`));
  check('receipt.sequencer_signature_plain_hex', () => assert(plainHex(receipt.sequencerSignature, 64), `sequencerSignature: ${show(receipt.sequencerSignature)}`));
  check('receipt.sequencer_id_uuid', () => assert(isUuid(receipt.sequencerId), `sequencerId: ${show(receipt.sequencerId)}`));
  check('receipt.sequencer_key_version', () => assert(isU32(receipt.sequencerKeyVersion), `sequencerKeyVersion: ${show(receipt.sequencerKeyVersion)}`));
  // generate_receipt sets receipt_signature_scheme 1 for an Ed25519 key; the response carries it when not 0.
  check('receipt.signature_scheme', () => eq(receipt.receiptSignatureScheme, 1, 'receiptSignatureScheme'));
}

// VesIngestResponse (rename_all camelCase). The counts are of NEW events: a replayed event is neither accepted nor
// rejected (its stored receipt is returned); sequenceStart/End are null when nothing new was sequenced; headSequence
// is the stream's head, a u64 (0 for an empty stream, never null).
function ingestResponseChecks(prefix, r, expected) {
  check(`${prefix}.response_fields`, () => {
    const wrong = [];
    const want = (actual, value, what) => { if (actual !== value) wrong.push(`${what}: expected ${show(value)}, got ${show(actual)}`); };
    want(r.status, 200, 'status');
    if (!isUuid(r.json?.batchId)) wrong.push(`batchId: ${show(r.json?.batchId)}`);
    want(r.json?.eventsAccepted, expected.accepted, 'eventsAccepted');
    want(r.json?.eventsRejected, expected.rejected, 'eventsRejected');
    want(r.json?.sequenceStart, expected.start, 'sequenceStart');
    want(r.json?.sequenceEnd, expected.end, 'sequenceEnd');
    want(r.json?.headSequence, expected.head, 'headSequence');
    assert(!wrong.length, wrong.join('; '));
  });
}

async function main() {
  const tenant = args.tenant;
  const store = crypto.randomUUID();
  const agentId = crypto.randomUUID();
  const agent = { tenantId: tenant, agentId, keyId: 1, key: v.ed25519FromSeed(crypto.randomBytes(32)) };
  const recipients = [7, 3].map((kid) => { const sk = crypto.randomBytes(32); return { kid, sk, pk: v.x25519Public(sk) }; });
  const ingest = (events) => http('POST', '/api/v1/ves/events/ingest', { body: { agentId, events: events.map((e) => e.envelope) } });
  const context = (entityId, eventType) => ({ store_id: store, event_id: crypto.randomUUID(), entity_type: 'order',
    entity_id: entityId, event_type: eventType, created_at: v.chronoRfc3339() });

  // 1. Register the agent's signing key (RegisterAgentKeyRequest, camelCase; the original requires an admin key).
  const registration = await http('POST', '/api/v1/agents/keys', { key: args['admin-key'], body: {
    tenantId: tenant, agentId, keyId: 1, publicKey: agent.key.publicKey.toString('hex') } });
  must('register.accepted', () => assert(registration.status === 200 || registration.status === 201, `status ${registration.status}: ${registration.text}`));
  check('register.status_200', () => eq(registration.status, 200, 'status'));
  check('register.body', () => {
    const b = registration.json;
    eq(b.success, true, 'success'); eq(b.tenantId, tenant, 'tenantId'); eq(b.agentId, agentId, 'agentId');
    eq(b.keyId, 1, 'keyId'); eq(b.keyAlgorithm, 0, 'keyAlgorithm'); assert(typeof b.message === 'string', 'message');
  });

  // 2. Plaintext events (VesEventEnvelope::new_plaintext).
  const plain = [
    v.newPlaintextEvent(agent, context('ORD-1', 'order.created'), { orderId: 'ORD-1', amount: 100, currency: 'USD', note: 'café ✓' }),
    v.newPlaintextEvent(agent, context('ORD-1', 'order.paid'), { orderId: 'ORD-1', paid: true, parts: [3, 1, 2], ratio: 0.5 }),
  ];
  const first = await ingest(plain);
  must('ingest.accepted', () => { eq(first.status, 200, `status (${first.text})`); eq(first.json.eventsAccepted, 2, `eventsAccepted (${show(first.json.rejections)})`); });
  ingestResponseChecks('ingest', first, { accepted: 2, rejected: 0, start: 1, end: 2, head: 2 });
  const receipts = first.json.receipts;
  must('ingest.receipts', () => { assert(Array.isArray(receipts) && receipts.length === 2, `receipts: ${show(receipts)}`); });
  receiptChecks('ingest.0', receipts[0], plain[0], 1);
  receiptChecks('ingest.1', receipts[1], plain[1], 2);
  receiptFormChecks(receipts[0]);
  // skip_serializing_if = "Vec::is_empty": an empty rejections list is omitted.
  check('ingest.empty_rejections_omitted', () => assert(!('rejections' in first.json), `rejections present: ${show(first.json.rejections)}`));
  const sequencer = await http('GET', '/api/v1/ves/sequencer', { key: null });
  check('ours.receipt.signature_verifies', () => {
    const publicKey = bytesOf(sequencer.json.public_key);
    for (const r of receipts) assert(v.ed25519Verify(publicKey, bytesOf(r.receiptHash), bytesOf(r.sequencerSignature)), `signature of ${r.eventId}`);
  });
  check('ours.sequencer.key_versions', () => {
    const version = sequencer.json.keys.find((k) => k.version === receipts[0].sequencerKeyVersion);
    assert(version, `key version ${receipts[0].sequencerKeyVersion} listed: ${show(sequencer.json.keys)}`);
    eq(version.public_key, sequencer.json.public_key, 'public_key of the current version'); eq(version.current, true, 'current');
    assert(plainHex(version.public_key, 32), 'plain hex');
  });

  // 3. An encrypted event (encrypt_payload_ves: AES-256-GCM, HPKE-wrapped data key, two recipients).
  const secret = { orderId: 'ORD-1', card: { last4: '4242' }, amount: 100 };
  const sealed = v.newEncryptedEvent(agent, context('ORD-1', 'order.card_added'), secret, recipients.map((r) => [r.kid, r.pk]));
  const third = await ingest([sealed]);
  must('encrypted.accepted', () => { eq(third.status, 200, `status (${third.text})`); eq(third.json.eventsAccepted, 1, `eventsAccepted (${show(third.json.rejections)})`); });
  ingestResponseChecks('encrypted', third, { accepted: 1, rejected: 0, start: 3, end: 3, head: 3 });
  receiptChecks('encrypted', third.json.receipts[0], sealed, 3);
  check('encrypted.recipients_sorted_by_kid', () => eq(sealed.envelope.payload_encrypted.recipients.map((r) => r.recipient_kid).join(','), '3,7', 'kids'));
  check('encrypted.self_decrypts', () => {
    const opened = v.decryptPayloadVes(sealed.envelope.payload_encrypted, sealed.sealed.aad, 7, recipients[0].sk, sealed.sealed.payloadPlainHash);
    eq(v.jcs(opened), v.jcs(secret), 'decrypted payload');
  });

  // 4. Replay: the same events again are not sequenced twice; their stored receipts come back.
  const replay = await ingest(plain);
  ingestResponseChecks('replay', replay, { accepted: 0, rejected: 0, start: null, end: null, head: 3 });
  check('replay.same_receipts', () => {
    assert(Array.isArray(replay.json.receipts) && replay.json.receipts.length === 2, `receipts: ${show(replay.json.receipts)}`);
    replay.json.receipts.forEach((r, i) => {
      eq(r.sequenceNumber, receipts[i].sequenceNumber, 'sequenceNumber');
      eq(r.receiptHash, receipts[i].receiptHash, 'receiptHash');
      eq(r.sequencerSignature, receipts[i].sequencerSignature, 'sequencerSignature');
    });
  });

  // 5. Tampering: each is a new event (a known event_id would be a duplicate), rejected, nothing sequenced.
  const tamperedPayload = v.newPlaintextEvent(agent, context('ORD-2', 'order.created'), { amount: 1 });
  tamperedPayload.envelope.payload = { amount: 1000 };
  const tamperedSignature = v.newPlaintextEvent(agent, context('ORD-2', 'order.created'), { amount: 2 });
  const signature = bytesOf(tamperedSignature.envelope.agent_signature); signature[10] ^= 1;
  tamperedSignature.envelope.agent_signature = '0x' + signature.toString('hex');
  const tamperedCipher = v.newEncryptedEvent(agent, context('ORD-2', 'order.card_added'), secret, recipients.map((r) => [r.kid, r.pk]));
  const tag = v.b64uDecode(tamperedCipher.envelope.payload_encrypted.tag_b64u); tag[0] ^= 1;
  tamperedCipher.envelope.payload_encrypted.tag_b64u = v.b64u(tag);
  const tamper = await ingest([tamperedPayload, tamperedSignature, tamperedCipher]);
  ingestResponseChecks('tamper', tamper, { accepted: 0, rejected: 3, start: null, end: null, head: 3 });
  check('tamper.rejection_fields', () => {
    const list = tamper.json.rejections;
    assert(Array.isArray(list) && list.length === 3, `rejections: ${show(list)}`);
    list.forEach((r, i) => {
      eq(r.event_id, [tamperedPayload, tamperedSignature, tamperedCipher][i].envelope.event_id, 'event_id');
      assert(typeof r.reason === 'string' && typeof r.message === 'string', `reason/message: ${show(r)}`);
    });
  });
  // VesRejectionReason's Display: the strings clients branch on.
  check('tamper.reason_strings', () => eq((tamper.json.rejections ?? []).map((r) => r.reason).join(','),
    'invalid_payload_hash,invalid_signature,invalid_cipher_hash', 'reasons'));
  check('tamper.empty_receipts_omitted', () => assert(!('receipts' in tamper.json), `receipts present: ${show(tamper.json.receipts)}`));

  // A batch whose every event is rejected, into a stream that has none: head_sequence is a u64, 0 (not null).
  const emptyStore = crypto.randomUUID();
  const lonely = v.newPlaintextEvent(agent, { ...context('ORD-3', 'order.created'), store_id: emptyStore }, { n: 1 });
  lonely.envelope.payload = { n: 2 };
  const rejectedOnly = await ingest([lonely]);
  check('ingest.head_sequence_zero_for_empty_stream', () => { eq(rejectedOnly.status, 200, 'status'); eq(rejectedOnly.json.headSequence, 0, 'headSequence'); });

  // 6. Head (GET /api/v1/head: {"head_sequence": u64}).
  const head = await http('GET', '/api/v1/head', { query: { tenant_id: tenant, store_id: store } });
  check('head.fields', () => { eq(head.status, 200, 'status'); assert(isU64(head.json.head_sequence), `head_sequence: ${show(head.json.head_sequence)}`); });
  // Ours: one log, so the VES events are counted (the original's /api/v1/head counts only its legacy table).
  check('ours.head.counts_ves_events', () => eq(head.json.head_sequence, 3, 'head_sequence'));
  const emptyHead = await http('GET', '/api/v1/head', { query: { tenant_id: tenant, store_id: emptyStore } });
  check('head.empty_stream_is_zero', () => eq(emptyHead.json.head_sequence, 0, 'head_sequence'));

  // 7. Events (GET /api/v1/events: {"events": [SequencedEvent], "count"}; SequencedEvent is {envelope, sequenced_at}).
  const page = await http('GET', '/api/v1/events', { query: { tenant_id: tenant, store_id: store } });
  check('events.list_fields', () => {
    eq(page.status, 200, 'status');
    assert(Array.isArray(page.json.events), 'events array'); eq(page.json.count, page.json.events.length, 'count');
  });
  check('events.sequenced_event_shape', () => {
    const e = page.json.events[0];
    assert(e && typeof e.envelope === 'object' && typeof e.sequenced_at === 'string', `element: ${show(e)}`);
    eq(e.envelope.event_id, plain[0].envelope.event_id, 'envelope.event_id');
    eq(e.envelope.sequence_number, 1, 'envelope.sequence_number');
    eq(e.envelope.source_agent, agentId, 'envelope.source_agent');
    assert(plainHex(e.envelope.payload_hash, 32), `envelope.payload_hash plain hex: ${show(e.envelope.payload_hash)}`);
  });
  // Ours: the VES read path serves the encrypted event exactly as the original stores it.
  const ves = await http('GET', '/api/v1/ves/events', { query: { tenant_id: tenant, store_id: store } });
  check('ours.ves_events.encrypted_stored_as_sent', () => {
    const served = ves.json.events.find((e) => e.event_id === sealed.envelope.event_id);
    assert(served, 'encrypted event served');
    eq(v.jcs(served.payload_encrypted), v.jcs(sealed.envelope.payload_encrypted), 'payload_encrypted');
    eq(served.payload_cipher_hash, sealed.envelope.payload_cipher_hash, 'payload_cipher_hash');
    eq(served.payload_plain_hash, sealed.envelope.payload_plain_hash, 'payload_plain_hash');
    eq(served.payload_kind, 1, 'payload_kind'); assert(!('payload' in served) || served.payload === null, 'no plaintext payload');
  });

  // 8. Entity history (GET /api/v1/entities/{type}/{id}: {entity_type, entity_id, events, count, total, has_more};
  //    `from` is an offset into the entity's events, `limit` at most 100).
  const entityQuery = { tenant_id: tenant, store_id: store };
  const history = await http('GET', '/api/v1/entities/order/ORD-1', { query: entityQuery });
  check('entity.fields', () => {
    eq(history.status, 200, 'status'); eq(history.json.entity_type, 'order', 'entity_type'); eq(history.json.entity_id, 'ORD-1', 'entity_id');
    eq(history.json.count, 3, 'count'); eq(history.json.total, 3, 'total'); eq(history.json.has_more, false, 'has_more');
    eq(history.json.events.map((e) => e.envelope.sequence_number).join(','), '1,2,3', 'sequence numbers');
    assert(history.json.events.every((e) => typeof e.sequenced_at === 'string' && RFC3339_RE.test(e.sequenced_at)), 'sequenced_at');
  });
  const offsetPage = await http('GET', '/api/v1/entities/order/ORD-1', { query: { ...entityQuery, from: 1, limit: 1 } });
  check('entity.offset_paging', () => {
    eq(offsetPage.status, 200, 'status'); eq(offsetPage.json.count, 1, 'count'); eq(offsetPage.json.total, 3, 'total');
    eq(offsetPage.json.has_more, true, 'has_more'); eq(offsetPage.json.events[0].envelope.event_id, plain[1].envelope.event_id, 'second event');
  });
  check('entity.legacy_payload_hash', () => {
    // The legacy envelope's payload_hash: SHA-256 of the canonical JSON payload, no domain tag, plain hex.
    const served = history.json.events[0].envelope;
    eq(served.payload_hash, v.sha256(Buffer.from(v.jcs(plain[0].envelope.payload), 'utf8')).toString('hex'), 'payload_hash');
  });

  // 9. Commitment (POST /api/v1/ves/commitments, all four fields given as the original requires; 200).
  const commit = await http('POST', '/api/v1/ves/commitments', { body: { tenant_id: tenant, store_id: store, sequence_start: 1, sequence_end: 3 } });
  must('commitment.created', () => { eq(commit.status, 200, `status (${commit.text})`); });
  const c = commit.json;
  const allEvents = [plain[0], plain[1], sealed];
  const leaves = allEvents.map((e, i) => v.leafHash(tenant, store, i + 1, e.signingHash, bytesOf(e.envelope.agent_signature)));
  const padded = [...leaves, v.PAD_LEAF];
  const expectedRoot = v.nodeHash(v.nodeHash(padded[0], padded[1]), v.nodeHash(padded[2], padded[3]));
  check('commitment.fields', () => {
    assert(isUuid(c.batch_id), `batch_id ${show(c.batch_id)}`); eq(c.tenant_id, tenant, 'tenant_id'); eq(c.store_id, store, 'store_id');
    eq(c.ves_version, 1, 'ves_version'); eq(c.tree_depth, 2, 'tree_depth'); eq(c.leaf_count, 3, 'leaf_count');
    eq(c.padded_leaf_count, 4, 'padded_leaf_count'); eq(c.sequence_start, 1, 'sequence_start'); eq(c.sequence_end, 3, 'sequence_end');
    assert(typeof c.committed_at === 'string' && RFC3339_RE.test(c.committed_at), `committed_at ${show(c.committed_at)}`);
  });
  check('commitment.hashes_plain_hex', () => {
    for (const name of ['merkle_root', 'prev_state_root', 'new_state_root']) assert(plainHex(c[name], 32), `${name}: ${show(c[name])}`);
  });
  check('commitment.roots_recompute', () => {
    eq(bytesOf(c.merkle_root).toString('hex'), expectedRoot.toString('hex'), 'merkle_root');
    eq(bytesOf(c.prev_state_root).toString('hex'), v.ZERO_HASH.toString('hex'), 'prev_state_root');
    eq(bytesOf(c.new_state_root).toString('hex'), v.stateRoot(tenant, store, v.ZERO_HASH, expectedRoot, 1, 3, 3).toString('hex'), 'new_state_root');
  });
  const detail = await http('GET', `/api/v1/ves/commitments/${c.batch_id}`);
  check('commitment.detail_fields', () => {
    eq(detail.status, 200, 'status'); eq(detail.json.merkle_root, c.merkle_root, 'merkle_root'); eq(detail.json.is_anchored, false, 'is_anchored');
    for (const name of ['chain_id', 'chain_tx_hash', 'chain_block_number', 'anchored_at']) eq(detail.json[name], null, name);
  });

  // 10. Proof (GET /api/v1/ves/proofs/{n}?tenant_id&store_id&batch_id: batch_id is required by the original).
  const proof = await http('GET', '/api/v1/ves/proofs/2', { query: { tenant_id: tenant, store_id: store, batch_id: c.batch_id } });
  check('proof.fields', () => {
    eq(proof.status, 200, 'status'); eq(proof.json.sequence_number, 2, 'sequence_number'); eq(proof.json.batch_id, c.batch_id, 'batch_id');
    eq(proof.json.leaf_index, 1, 'leaf_index'); eq(proof.json.merkle_root, c.merkle_root, 'merkle_root');
    assert(Array.isArray(proof.json.directions) && proof.json.directions.every((d) => typeof d === 'boolean'), `directions ${show(proof.json.directions)}`);
  });
  check('proof.hashes_plain_hex', () => {
    assert(plainHex(proof.json.leaf_hash, 32), `leaf_hash ${show(proof.json.leaf_hash)}`);
    assert(proof.json.proof_path.every((h) => plainHex(h, 32)), `proof_path ${show(proof.json.proof_path)}`);
  });
  check('proof.folds_to_root', () => {
    // ves_commitment.rs verify_inclusion: directions[i] true = the running hash is the left child.
    eq(proof.json.leaf_hash, leaves[1].toString('hex'), 'leaf_hash');
    let current = Buffer.from(proof.json.leaf_hash, 'hex');
    proof.json.proof_path.forEach((sibling, i) => {
      const s = Buffer.from(sibling, 'hex');
      current = proof.json.directions[i] ? v.nodeHash(current, s) : v.nodeHash(s, current);
    });
    eq(current.toString('hex'), expectedRoot.toString('hex'), 'folded root');
  });

  // 11. Verify (POST /api/v1/ves/proofs/verify: the original decodes plain hex and echoes leaf_hash, merkle_root).
  const verifyBody = { leaf_hash: proof.json.leaf_hash, merkle_root: proof.json.merkle_root, proof_path: proof.json.proof_path, leaf_index: proof.json.leaf_index };
  const verdict = await http('POST', '/api/v1/ves/proofs/verify', { body: verifyBody });
  check('verify.valid_echoes', () => {
    eq(verdict.status, 200, 'status'); eq(verdict.json.valid, true, 'valid');
    eq(verdict.json.leaf_hash, verifyBody.leaf_hash, 'leaf_hash'); eq(verdict.json.merkle_root, verifyBody.merkle_root, 'merkle_root');
  });
  const wrong = await http('POST', '/api/v1/ves/proofs/verify', { body: { ...verifyBody, leaf_hash: leaves[0].toString('hex') } });
  check('verify.wrong_leaf_invalid', () => { eq(wrong.status, 200, 'status'); eq(wrong.json.valid, false, 'valid'); });

  // 12. Schemas (RegisterSchemaRequest camelCase; 200 {id, eventType, version, createdAt}; list of SchemaResponse).
  const schemaJson = { type: 'object', required: ['orderId'], properties: { orderId: { type: 'string' } } };
  const registered = await http('POST', '/api/v1/schemas', { body: { tenantId: tenant, eventType: 'order.shipped', schemaJson, description: 'shipping' } });
  check('schemas.register', () => {
    eq(registered.status, 200, `status (${registered.text})`); assert(isUuid(registered.json.id), `id ${show(registered.json.id)}`);
    eq(registered.json.eventType, 'order.shipped', 'eventType'); eq(registered.json.version, 1, 'version');
    assert(typeof registered.json.createdAt === 'string' && RFC3339_RE.test(registered.json.createdAt), 'createdAt');
  });
  const schemas = await http('GET', '/api/v1/schemas', { query: { tenant_id: tenant } });
  check('schemas.list_fields', () => {
    eq(schemas.status, 200, 'status'); eq(schemas.json.count, schemas.json.schemas.length, 'count');
    const s = schemas.json.schemas.find((x) => x.id === registered.json.id);
    assert(s, 'registered schema listed');
    eq(s.tenantId, tenant, 'tenantId'); eq(s.eventType, 'order.shipped', 'eventType'); eq(s.version, 1, 'version');
    eq(v.jcs(s.schemaJson), v.jcs(schemaJson), 'schemaJson'); eq(s.status, 'active', 'status'); eq(s.compatibility, 'backward', 'compatibility');
    eq(s.description, 'shipping', 'description'); eq(s.createdBy, null, 'createdBy');
    for (const name of ['createdAt', 'updatedAt']) assert(typeof s[name] === 'string' && RFC3339_RE.test(s[name]), name);
  });
  const schemaMiss = v.newPlaintextEvent(agent, context('ORD-4', 'order.shipped'), { carrier: 'x' });
  const schemaReject = await ingest([schemaMiss]);
  check('schemas.enforced_reason', () => eq(schemaReject.json?.rejections?.[0]?.reason, 'schema_validation', 'reason'));

  // 13. Anchor status (GET /api/v1/anchor/status: {anchor_enabled, message}; this server runs without a chain).
  const anchor = await http('GET', '/api/v1/anchor/status');
  check('anchor.status_fields', () => {
    eq(anchor.status, 200, 'status'); eq(anchor.json.anchor_enabled, false, 'anchor_enabled'); assert(typeof anchor.json.message === 'string', 'message');
  });

  // The original's guard: an event whose source_agent_id is not the request's agentId fails the whole request.
  const stranger = v.newPlaintextEvent({ ...agent, agentId: crypto.randomUUID() }, context('ORD-5', 'order.created'), { n: 5 });
  const misattributed = await ingest([stranger]);
  check('ingest.source_agent_mismatch_400', () => eq(misattributed.status, 400, 'status'));

  // Auth as the original's clients send it.
  const viaHeader = await http('GET', '/api/v1/head', { query: { tenant_id: tenant, store_id: store }, auth: 'x-api-key' });
  check('auth.x_api_key', () => { eq(viaHeader.status, 200, 'status'); eq(viaHeader.json.head_sequence, 3, 'head_sequence'); });
  const bare = await http('GET', '/api/v1/head', { query: { tenant_id: tenant, store_id: store }, auth: 'bare' });
  check('auth.bare_authorization', () => eq(bare.status, 200, 'status'));
  const unknownKey = await http('GET', '/api/v1/head', { key: 'ss_not_a_key', query: { tenant_id: tenant, store_id: store } });
  check('errors.invalid_api_key_code', () => { eq(unknownKey.status, 401, 'status'); eq(unknownKey.json?.code, 'invalid_api_key', 'code'); });

  // Errors: the original's auth middleware answers {"error": "<message>", "code": "<snake_case>"}.
  const anonymous = await http('GET', '/api/v1/head', { key: null, query: { tenant_id: tenant, store_id: store } });
  check('errors.unauthenticated_status', () => { eq(anonymous.status, 401, 'status'); assert(typeof anonymous.json?.error === 'string', `error: ${show(anonymous.json)}`); });
  check('errors.unauthenticated_code', () => eq(anonymous.json?.code, 'missing_auth', 'code'));

  emit({ artifacts: {
    tenant_id: tenant, store_id: store, agent_id: agentId,
    encrypted_event_id: sealed.envelope.event_id, payload: secret,
    recipients: recipients.map((r) => ({ recipient_kid: r.kid, private_key_hex: r.sk.toString('hex') })),
  } });
}

let aborted = null;
try { await main(); } catch (e) { aborted = String(e.message ?? e); }
for (const id of PENDING) {
  if (!ran.has(id) && !aborted) { results.push({ check: id, status: 'fail', detail: 'listed as pending but never checked' }); emit(results.at(-1)); }
}
const count = (s) => results.filter((r) => r.status === s).length;
const summary = { pass: count('pass'), pending: count('pending'), fail: count('fail'), fixed: count('fixed'), aborted };
emit({ summary });
process.exit(summary.fail || summary.fixed || aborted ? 1 : 0);
