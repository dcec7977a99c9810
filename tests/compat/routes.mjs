// A client of the ORIGINAL StateSet Sequencer calling the routes issue 18 added: legacy commitments and proofs, the
// anchor service's feed, an agent and its API keys, public registration, schemas by id, admin reads and
// /health/detailed. Requests and assertions follow the original's handlers (src/api/handlers/*.rs,
// src/api/types.rs); where this server deliberately differs (docs/spec/API.md, "Routes of the original sequencer"),
// only the status is checked. The inclusion proof is folded here with the original's own VES hashes (lib/ves.mjs).
//
// Usage: node tests/compat/routes.mjs --base-url URL --admin-key KEY --tenant UUID
// Output: one JSON object per line ({"check", "status", "detail"}), then {"summary": ...}. Exit 0 only when every
// check passed.

import crypto from 'node:crypto';
import * as v from './lib/ves.mjs';

const args = Object.fromEntries(process.argv.slice(2).reduce((pairs, arg, i, all) =>
  (arg.startsWith('--') ? [...pairs, [arg.slice(2), all[i + 1]]] : pairs), []));
for (const name of ['base-url', 'admin-key', 'tenant']) {
  if (!args[name]) { console.error(`missing --${name}`); process.exit(2); }
}

const results = [];
function emit(line) { process.stdout.write(JSON.stringify(line) + '\n'); }
function check(id, fn) {
  let error = null;
  try { fn(); } catch (e) { error = e; }
  const line = { check: id, status: error ? 'fail' : 'pass', detail: error ? String(error.message ?? error) : '' };
  results.push(line);
  emit(line);
  return !error;
}
function must(id, fn) { if (!check(id, fn)) throw new Error(`stopping: ${id} failed`); }
function assert(condition, message) { if (!condition) throw new Error(message); }
const show = (value) => JSON.stringify(value)?.slice(0, 300);
const eq = (actual, expected, what) => assert(actual === expected, `${what}: expected ${show(expected)}, got ${show(actual)}`);
const keys = (object, expected, what) => eq(Object.keys(object ?? {}).sort().join(','), [...expected].sort().join(','), `${what} fields`);
const plainHex = (s, bytes) => typeof s === 'string' && s.length === 2 * bytes && /^[0-9a-f]*$/.test(s);
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const isUuid = (s) => typeof s === 'string' && UUID_RE.test(s);

async function http(method, route, { body, key = args['admin-key'], query } = {}) {
  const url = new URL(args['base-url'] + route);
  for (const [k, val] of Object.entries(query ?? {})) url.searchParams.set(k, val);
  const headers = { Accept: 'application/json' };
  if (key) headers.Authorization = `ApiKey ${key}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: response.status, json, text, headers: response.headers };
}

// Fold an inclusion proof as the original's VES verifier does: bit d of leaf_index 0 means the node is on the left.
function foldProof(leaf, path, index) {
  let node = leaf;
  path.forEach((sibling, depth) => {
    const s = Buffer.from(sibling, 'hex');
    node = ((index >> depth) & 1) === 0 ? v.nodeHash(node, s) : v.nodeHash(s, node);
  });
  return node;
}

async function main() {
  const tenant = args.tenant;
  const store = crypto.randomUUID();
  const agentId = crypto.randomUUID();
  const agent = { tenantId: tenant, agentId, keyId: 1, key: v.ed25519FromSeed(crypto.randomBytes(32)) };
  const stream = { tenant_id: tenant, store_id: store };

  // Setup: an agent key, an API key for the agent, three events.
  const registered = await http('POST', '/api/v1/agents/keys', { body: {
    tenantId: tenant, agentId, keyId: 1, publicKey: agent.key.publicKey.toString('hex') } });
  must('setup.agent_key', () => assert([200, 201].includes(registered.status), `status ${registered.status}: ${registered.text}`));
  const minted = await http('POST', '/api/v1/admin/api-keys', { body: { tenant_id: tenant, permissions: 'read_write', agent_id: agentId } });
  must('setup.agent_api_key', () => assert(typeof minted.json?.api_key === 'string', `status ${minted.status}: ${minted.text}`));
  const agentKey = minted.json.api_key;
  // Schemas are tenant-wide: changing them takes a key for the whole tenant that is not bound to one agent
  // (docs/SECURITY.md); the original lets any write key of the tenant.
  const tenantWide = await http('POST', '/api/v1/admin/api-keys', { body: { tenant_id: tenant, permissions: 'read_write' } });
  must('setup.tenant_api_key', () => assert(typeof tenantWide.json?.api_key === 'string', `status ${tenantWide.status}: ${tenantWide.text}`));
  const tenantKey = tenantWide.json.api_key;
  const events = ['order.created', 'order.paid', 'order.shipped'].map((type) => v.newPlaintextEvent(agent, {
    store_id: store, event_id: crypto.randomUUID(), entity_type: 'order', entity_id: 'ORD-9', event_type: type,
    created_at: v.chronoRfc3339() }, { type }));
  const ingest = await http('POST', '/api/v1/ves/events/ingest', { key: agentKey, body: { agentId, events: events.map((e) => e.envelope) } });
  must('setup.ingest', () => { eq(ingest.status, 200, `status (${ingest.text})`); eq(ingest.json.eventsAccepted, 3, 'eventsAccepted'); });

  // Legacy commitments (src/api/handlers/commitments.rs).
  const created = await http('POST', '/api/v1/commitments', { key: agentKey, body: { ...stream, sequence_start: 1, sequence_end: 3 } });
  must('commitments.create_status_200', () => eq(created.status, 200, `status (${created.text})`));
  const c = created.json;
  check('commitments.create_fields', () => {
    keys(c, ['batch_id', 'tenant_id', 'store_id', 'prev_state_root', 'new_state_root', 'events_root', 'event_count',
      'sequence_start', 'sequence_end', 'committed_at'], 'commitment');
    for (const name of ['prev_state_root', 'new_state_root', 'events_root']) assert(plainHex(c[name], 32), `${name}: ${show(c[name])}`);
    eq(c.event_count, 3, 'event_count');
  });
  check('commitments.state_root_recomputes', () => {
    const expected = v.stateRoot(tenant, store, Buffer.from(c.prev_state_root, 'hex'), Buffer.from(c.events_root, 'hex'), 1, 3, 3);
    eq(c.new_state_root, expected.toString('hex'), 'new_state_root');
  });
  const listed = await http('GET', '/api/v1/commitments', { key: agentKey, query: stream });
  check('commitments.list_unanchored', () => {
    eq(listed.status, 200, 'status'); eq(listed.json.count, listed.json.commitments.length, 'count');
    const mine = listed.json.commitments.find((x) => x.batch_id === c.batch_id);
    assert(mine, 'listed'); eq(mine.is_anchored, false, 'is_anchored'); eq(mine.events_root, c.events_root, 'events_root');
  });
  const one = await http('GET', `/api/v1/commitments/${c.batch_id}`, { key: agentKey });
  check('commitments.get_batch_commitment_serde', () => {
    eq(one.status, 200, 'status');
    eq(JSON.stringify(one.json.events_root), JSON.stringify([...Buffer.from(c.events_root, 'hex')]), 'events_root as [u8; 32]');
    eq(JSON.stringify(one.json.sequence_range), '[1,3]', 'sequence_range'); eq(one.json.chain_tx_hash, null, 'chain_tx_hash');
  });

  // Legacy proofs (src/api/handlers/proofs.rs), folded with the original's VES hashes.
  const proof = await http('GET', '/api/v1/proofs/2', { key: agentKey, query: { ...stream, batch_id: c.batch_id } });
  check('proofs.fields', () => {
    eq(proof.status, 200, `status (${proof.text})`);
    keys(proof.json, ['sequence_number', 'batch_id', 'events_root', 'leaf_hash', 'leaf_index', 'proof_path', 'directions'], 'proof');
    assert(proof.json.proof_path.every((h) => plainHex(h, 32)), 'proof_path plain hex');
  });
  check('proofs.folds_to_events_root', () => {
    const e = events[1];
    const leaf = v.leafHash(tenant, store, 2, e.signingHash, Buffer.from(e.envelope.agent_signature.replace(/^0x/, ''), 'hex'));
    eq(proof.json.leaf_hash, leaf.toString('hex'), 'leaf_hash');
    eq(foldProof(leaf, proof.json.proof_path, proof.json.leaf_index).toString('hex'), c.events_root, 'folded root');
  });
  const verified = await http('POST', '/api/v1/proofs/verify', { key: agentKey, body: {
    leaf_hash: proof.json.leaf_hash, events_root: proof.json.events_root, proof_path: proof.json.proof_path, leaf_index: proof.json.leaf_index } });
  check('proofs.verify_echoes', () => {
    eq(verified.status, 200, 'status'); eq(verified.json.valid, true, 'valid');
    eq(verified.json.leaf_hash, proof.json.leaf_hash, 'leaf_hash'); eq(verified.json.events_root, proof.json.events_root, 'events_root');
  });

  // Anchoring is not configured on this server: the original answers 503 too.
  const anchored = await http('POST', '/api/v1/anchor', { body: { batch_id: c.batch_id } });
  check('anchor.not_configured_503', () => eq(anchored.status, 503, 'status'));

  // The anchor service's feed (anchor_compat_router), 0x hex.
  const pending = await http('GET', '/v1/commitments/pending', { query: { limit: 5000 } });
  check('anchor_service.pending', () => {
    eq(pending.status, 200, 'status'); eq(pending.json.total, pending.json.commitments.length, 'total');
    const mine = pending.json.commitments.find((x) => x.batch_id === c.batch_id);
    assert(mine, 'pending lists the commitment'); eq(mine.events_root, '0x' + c.events_root, 'events_root');
  });
  const txHash = '0x' + crypto.randomBytes(32).toString('hex');
  const notified = await http('POST', `/v1/commitments/${c.batch_id}/anchored`, { body: { chain_tx_hash: txHash, chain_id: 84532001, block_number: 12 } });
  check('anchor_service.anchored', () => {
    eq(notified.status, 200, `status (${notified.text})`);
    eq(JSON.stringify(notified.json), JSON.stringify({ batch_id: c.batch_id, status: 'anchored', chain_tx_hash: txHash, chain_id: 84532001, block_number: 12 }), 'body');
  });
  const again = await http('POST', `/v1/commitments/${c.batch_id}/anchored`, { body: { chain_tx_hash: txHash, chain_id: 84532001 } });
  check('anchor_service.already_anchored', () => eq(JSON.stringify(again.json), JSON.stringify({ batch_id: c.batch_id, status: 'already_anchored' }), 'body'));

  // The agent and its API keys (src/api/handlers/agents.rs).
  const me = await http('GET', `/api/v1/agents/${agentId}`, { key: agentKey });
  check('agents.get', () => {
    eq(me.status, 200, 'status'); keys(me.json, ['agentId', 'tenantId', 'active', 'permissions', 'storeIds', 'rateLimit'], 'AgentResponse');
    eq(me.json.tenantId, tenant, 'tenantId'); eq(me.json.permissions, 'read_write', 'permissions');
  });
  const second = await http('POST', `/api/v1/agents/${agentId}/api-keys`, { key: agentKey, body: { readOnly: true } });
  check('agents.create_api_key', () => {
    eq(second.status, 200, `status (${second.text})`);
    keys(second.json, ['success', 'apiKey', 'keyHashPrefix', 'permissions', 'message'], 'ApiKeyResponse');
    eq(second.json.keyHashPrefix, crypto.createHash('sha256').update(second.json.apiKey).digest('hex').slice(0, 16), 'keyHashPrefix');
    eq(second.json.permissions, 'read', 'permissions');
  });
  const list = await http('GET', `/api/v1/agents/${agentId}/api-keys`, { key: agentKey });
  check('agents.list_api_keys', () => {
    eq(list.status, 200, 'status'); eq(list.json.count, 2, 'count');
    list.json.keys.forEach((k) => keys(k, ['keyHashPrefix', 'active', 'permissions', 'rateLimit'], 'ApiKeyInfo'));
  });
  const revoked = await http('DELETE', `/api/v1/agents/${agentId}/api-keys/${second.json?.keyHashPrefix}`, { key: agentKey });
  check('agents.revoke_api_key', () => {
    eq(revoked.status, 200, 'status');
    eq(JSON.stringify(revoked.json), JSON.stringify({ success: true, message: 'API key revoked successfully' }), 'body');
  });
  const withRevoked = await http('GET', `/api/v1/agents/${agentId}`, { key: second.json?.apiKey });
  check('agents.revoked_key_refused', () => eq(withRevoked.status, 401, 'status'));
  const register = await http('POST', '/api/v1/agents/register', { key: null, body: { name: 'compat-bot' } });
  check('agents.register_disabled', () => { eq(register.status, 403, 'status'); eq(register.json?.code, 'REGISTRATION_DISABLED', 'code'); });

  // Schemas (src/api/handlers/schemas.rs). Registration is issue 11's route: the original's body first, ours else.
  let schemaReg = await http('POST', '/api/v1/schemas', { key: tenantKey, body: { tenantId: tenant, eventType: 'order.paid',
    schemaJson: { type: 'object', required: ['type'] } } });
  if (schemaReg.status === 400) {
    schemaReg = await http('POST', '/api/v1/schemas', { key: tenantKey, body: { tenant_id: tenant, event_type: 'order.paid',
      schema: { type: 'object', required: ['type'] } } });
  }
  must('setup.schema', () => assert([200, 201].includes(schemaReg.status), `status ${schemaReg.status}: ${schemaReg.text}`));
  const versions = await http('GET', '/api/v1/schemas/event-type/order.paid', { key: tenantKey, query: { tenant_id: tenant, event_type: 'order.paid' } });
  check('schemas.by_event_type', () => { eq(versions.status, 200, 'status'); eq(versions.json.count, 1, 'count'); });
  const schemaId = versions.json?.schemas?.[0]?.id;
  const byId = await http('GET', `/api/v1/schemas/${schemaId}`, { key: tenantKey });
  check('schemas.schema_response', () => {
    eq(byId.status, 200, 'status');
    keys(byId.json, ['id', 'tenantId', 'eventType', 'version', 'schemaJson', 'status', 'compatibility', 'description',
      'createdAt', 'updatedAt', 'createdBy'], 'SchemaResponse');
    assert(isUuid(byId.json.id), 'id'); eq(byId.json.status, 'active', 'status');
  });
  const withVersion = await http('GET', '/api/v1/schemas/event-type/order.paid', { key: tenantKey, query: { tenant_id: tenant, event_type: 'order.paid', version: 1 } });
  check('schemas.by_event_type_version', () => { eq(withVersion.status, 200, 'status'); eq(withVersion.json.schema?.id, schemaId, 'schema.id'); });
  const latest = await http('GET', '/api/v1/schemas/event-type/order.paid/latest', { key: tenantKey, query: { tenant_id: tenant, event_type: 'order.paid' } });
  check('schemas.latest', () => { eq(latest.status, 200, 'status'); eq(latest.json.id, schemaId, 'id'); });
  const invalid = await http('POST', '/api/v1/schemas/validate', { key: tenantKey, body: { tenantId: tenant, eventType: 'order.paid', payload: {} } });
  check('schemas.validate', () => {
    eq(invalid.status, 200, 'status'); keys(invalid.json, ['valid', 'schemaId', 'schemaVersion', 'errors'], 'ValidationResponse');
    eq(invalid.json.valid, false, 'valid'); eq(invalid.json.schemaId, schemaId, 'schemaId');
    invalid.json.errors.forEach((e) => keys(e, ['path', 'message'], 'ValidationErrorResponse'));
  });
  const status = await http('PUT', `/api/v1/schemas/${schemaId}/status`, { key: tenantKey, body: { status: 'deprecated' } });
  check('schemas.update_status', () => eq(JSON.stringify(status.json), JSON.stringify({ success: true, schema_id: schemaId, new_status: 'deprecated' }), 'body'));
  const deleted = await http('DELETE', `/api/v1/schemas/${schemaId}`);
  check('schemas.delete', () => eq(JSON.stringify(deleted.json), JSON.stringify({ success: true, deleted_schema_id: schemaId }), 'body'));

  // Operator reads (src/api/handlers/admin.rs, health.rs).
  const overview = await http('GET', '/api/v1/admin/overview');
  check('admin.overview', () => {
    eq(overview.status, 200, 'status');
    keys(overview.json, ['tenants', 'stores', 'agents', 'apiKeys', 'activeApiKeys', 'totalHeadSequence', 'activeStores24h',
      'maxProjectionLag', 'lastActivityAt'], 'AdminOverviewResponse');
  });
  const tenants = await http('GET', '/api/v1/admin/tenants', { query: { limit: 1000 } });
  check('admin.tenants', () => { eq(tenants.status, 200, 'status'); assert(Array.isArray(tenants.json), 'bare array'); });
  const stores = await http('GET', '/api/v1/admin/stores', { query: { limit: 1000 } });
  check('admin.stores', () => {
    assert(Array.isArray(stores.json), 'bare array');
    const mine = stores.json.find((s) => s.storeId === store);
    assert(mine, 'lists the store'); eq(mine.headSequence, 3, 'headSequence');
  });
  const agents = await http('GET', '/api/v1/admin/agents', { query: { limit: 1000 } });
  check('admin.agents', () => { assert(Array.isArray(agents.json), 'bare array'); assert(agents.json.some((a) => a.agentId === agentId), 'lists the agent'); });
  const health = await http('GET', '/health/detailed');
  check('health.detailed', () => {
    eq(health.status, 200, 'status'); eq(health.json.service, 'stateset-sequencer', 'service');
    assert(['healthy', 'degraded'].includes(health.json.status), `status ${health.json.status}`);
    eq(health.json.components?.database?.name, 'postgresql', 'components.database.name');
  });
  const healthAsAgent = await http('GET', '/health/detailed', { key: agentKey });
  check('health.detailed_admin_only', () => eq(healthAsAgent.status, 403, 'status'));
}

let aborted = null;
try { await main(); } catch (e) { aborted = String(e.message ?? e); }
const summary = { pass: results.filter((r) => r.status === 'pass').length, fail: results.filter((r) => r.status === 'fail').length, aborted };
emit({ summary });
process.exit(summary.fail || aborted ? 1 : 0);
