// VES as the original StateSet Sequencer's code computes it, written for Node 20 with nothing but `node:crypto`.
//
// Written from the original's Rust source (stateset/stateset-sequencer): each function names the Rust function it
// follows. It shares no code with this repository (app/ves is the implementation under test), so a byte this file
// and app/ves agree on was derived twice, independently.

import crypto from 'node:crypto';

// src/crypto/hash.rs: domain prefixes.
export const DOMAIN = {
  PAYLOAD_PLAIN: Buffer.from('VES_PAYLOAD_PLAIN_V1'),
  PAYLOAD_AAD: Buffer.from('VES_PAYLOAD_AAD_V1'),
  PAYLOAD_CIPHER: Buffer.from('VES_PAYLOAD_CIPHER_V1'),
  RECIPIENTS: Buffer.from('VES_RECIPIENTS_V1'),
  EVENTSIG: Buffer.from('VES_EVENTSIG_V1'),
  LEAF: Buffer.from('VES_LEAF_V1'),
  PAD_LEAF: Buffer.from('VES_PAD_LEAF_V1'),
  NODE: Buffer.from('VES_NODE_V1'),
  STREAM: Buffer.from('VES_STREAM_V1'),
  RECEIPT: Buffer.from('VES_RECEIPT_V1'),
  STATE_ROOT: Buffer.from('VES_STATE_ROOT_V1'),
};
export const ZERO_HASH = Buffer.alloc(32);

export const sha256 = (...parts) => crypto.createHash('sha256').update(Buffer.concat(parts)).digest();

// hash.rs u32_be / u64_be / encode_string; uuid.as_bytes() is the 16 bytes in RFC 4122 order.
export function u32be(n) {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new Error(`u32 out of range: ${n}`);
  const b = Buffer.alloc(4); b.writeUInt32BE(n); return b;
}
export function u64be(n) {
  const v = BigInt(n);
  if (v < 0n || v > 0xffffffffffffffffn) throw new Error(`u64 out of range: ${n}`);
  const b = Buffer.alloc(8); b.writeBigUInt64BE(v); return b;
}
export function encStr(s) { const utf8 = Buffer.from(s, 'utf8'); return Buffer.concat([u32be(utf8.length), utf8]); }
export function uuidBytes(u) {
  const hex = u.replace(/-/g, '');
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) throw new Error(`not a UUID: ${u}`);
  return Buffer.from(hex, 'hex');
}

// RFC 8785 (JCS), which serde_json_canonicalizer implements: object keys sorted by UTF-16 code units (JavaScript's
// default sort), numbers in ECMAScript form (JSON.stringify), strings escaped as JSON.stringify does.
export function jcs(value) {
  if (value === null || typeof value === 'boolean') return JSON.stringify(value);
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new Error('JCS: NaN/Infinity');
    return JSON.stringify(value);
  }
  if (typeof value === 'string') return JSON.stringify(value);
  if (Array.isArray(value)) return '[' + value.map(jcs).join(',') + ']';
  if (typeof value === 'object') {
    return '{' + Object.keys(value).sort().map((k) => JSON.stringify(k) + ':' + jcs(value[k])).join(',') + '}';
  }
  throw new Error(`JCS: unsupported ${typeof value}`);
}

// hash.rs payload_plain_hash / payload_plain_hash_salted.
export const payloadPlainHash = (payload) => sha256(DOMAIN.PAYLOAD_PLAIN, Buffer.from(jcs(payload), 'utf8'));
export function payloadPlainHashSalted(payload, salt) {
  if (salt.length !== 16) throw new Error('salt must be 16 bytes');
  return sha256(DOMAIN.PAYLOAD_PLAIN, salt, Buffer.from(jcs(payload), 'utf8'));
}

// hash.rs compute_event_signing_hash (the original has only this version: VES_VERSION = 1).
export function eventSigningPreimage(p) {
  return Buffer.concat([
    DOMAIN.EVENTSIG, u32be(p.ves_version),
    uuidBytes(p.tenant_id), uuidBytes(p.store_id), uuidBytes(p.event_id), uuidBytes(p.source_agent_id),
    u32be(p.agent_key_id),
    encStr(p.entity_type), encStr(p.entity_id), encStr(p.event_type), encStr(p.created_at),
    u32be(p.payload_kind), p.payload_plain_hash, p.payload_cipher_hash,
  ]);
}
export const eventSigningHash = (p) => sha256(eventSigningPreimage(p));

// hash.rs compute_receipt_hash, compute_leaf_hash, compute_node_hash, pad_leaf, compute_stream_id,
// compute_ves_state_root.
export const receiptHash = (tenant, store, eventId, seq, signingHash) =>
  sha256(DOMAIN.RECEIPT, uuidBytes(tenant), uuidBytes(store), uuidBytes(eventId), u64be(seq), signingHash);
export const leafHash = (tenant, store, seq, signingHash, signature) =>
  sha256(DOMAIN.LEAF, uuidBytes(tenant), uuidBytes(store), u64be(seq), signingHash, signature);
export const nodeHash = (left, right) => sha256(DOMAIN.NODE, left, right);
export const PAD_LEAF = sha256(DOMAIN.PAD_LEAF);
export const streamId = (tenant, store) => sha256(DOMAIN.STREAM, uuidBytes(tenant), uuidBytes(store));
export const stateRoot = (tenant, store, prev, root, start, end, count) =>
  sha256(DOMAIN.STATE_ROOT, streamId(tenant, store), prev, root, u64be(start), u64be(end), u32be(count));

// encrypt.rs compute_payload_aad: no ves_version, no payload_kind.
export function payloadAad(p) {
  return sha256(
    DOMAIN.PAYLOAD_AAD,
    uuidBytes(p.tenant_id), uuidBytes(p.store_id), uuidBytes(p.event_id), uuidBytes(p.source_agent_id),
    u32be(p.agent_key_id),
    encStr(p.entity_type), encStr(p.entity_id), encStr(p.event_type), encStr(p.created_at),
    p.payload_plain_hash,
  );
}

// encrypt.rs base64_url_encode (URL_SAFE_NO_PAD) / base64_url_decode (no padding, or canonical padding).
export const b64u = (bytes) => Buffer.from(bytes).toString('base64url');
export function b64uDecode(s) {
  const bare = s.replace(/=+$/, '');
  const bytes = Buffer.from(bare, 'base64url');
  const padded = b64u(bytes) + '='.repeat((4 - (b64u(bytes).length % 4)) % 4);
  if (!/^[A-Za-z0-9_-]*=*$/.test(s) || (s !== b64u(bytes) && s !== padded)) throw new Error(`bad base64url: ${s}`);
  return bytes;
}

// encrypt.rs compute_recipients_hash: binary entries in the order given.
export function recipientsHash(recipients) {
  const parts = [DOMAIN.RECIPIENTS];
  for (const r of recipients) {
    const enc = b64uDecode(r.enc_b64u);
    const ct = b64uDecode(r.ct_b64u);
    parts.push(u32be(r.recipient_kid), u32be(enc.length), enc, u32be(ct.length), ct);
  }
  return sha256(...parts);
}

// encrypt.rs compute_payload_cipher_hash: U32_BE(1) is written whatever enc_version says.
export function payloadCipherHash(nonce, aad, ciphertext, tag, recipHash) {
  return sha256(DOMAIN.PAYLOAD_CIPHER, u32be(1), nonce, aad, u32be(ciphertext.length), ciphertext, tag, recipHash);
}
export function cipherHashFromEncrypted(pe, aad) {
  return payloadCipherHash(b64uDecode(pe.nonce_b64u), aad, b64uDecode(pe.ciphertext_b64u), b64uDecode(pe.tag_b64u),
    recipientsHash(pe.recipients));
}

// Ed25519 (ed25519-dalek in the original) from a 32-byte seed; X25519 keys. Node takes raw keys as DER.
const ED25519_PKCS8 = Buffer.from('302e020100300506032b657004220420', 'hex');
const ED25519_SPKI = Buffer.from('302a300506032b6570032100', 'hex');
const X25519_PKCS8 = Buffer.from('302e020100300506032b656e04220420', 'hex');
const X25519_SPKI = Buffer.from('302a300506032b656e032100', 'hex');

export function ed25519FromSeed(seed) {
  const privateKey = crypto.createPrivateKey({ key: Buffer.concat([ED25519_PKCS8, seed]), format: 'der', type: 'pkcs8' });
  const publicKey = crypto.createPublicKey(privateKey).export({ format: 'der', type: 'spki' }).subarray(-32);
  return { privateKey, publicKey, sign: (msg) => crypto.sign(null, msg, privateKey) };
}
export function ed25519Verify(publicKey, msg, signature) {
  const key = crypto.createPublicKey({ key: Buffer.concat([ED25519_SPKI, publicKey]), format: 'der', type: 'spki' });
  return crypto.verify(null, msg, key, signature);
}
const x25519Private = (sk) => crypto.createPrivateKey({ key: Buffer.concat([X25519_PKCS8, sk]), format: 'der', type: 'pkcs8' });
const x25519PublicKey = (pk) => crypto.createPublicKey({ key: Buffer.concat([X25519_SPKI, pk]), format: 'der', type: 'spki' });
export const x25519Public = (sk) => crypto.createPublicKey(x25519Private(sk)).export({ format: 'der', type: 'spki' }).subarray(-32);
export const x25519 = (sk, pk) => crypto.diffieHellman({ privateKey: x25519Private(sk), publicKey: x25519PublicKey(pk) });

// RFC 9180 HPKE, base mode: DHKEM(X25519, HKDF-SHA256) 0x0020, HKDF-SHA256 0x0001, AES-256-GCM 0x0002 (the `hpke`
// crate's setup_sender/seal as encrypt.rs wrap_dek_hpke calls them). `aeadId`/`nk` exist for RFC 9180 A.1.
const hmac = (key, data) => crypto.createHmac('sha256', key.length ? key : Buffer.alloc(32)).update(data).digest();
function hkdfExpand(prk, info, length) {
  let out = Buffer.alloc(0); let block = Buffer.alloc(0);
  for (let i = 1; out.length < length; i += 1) {
    block = hmac(prk, Buffer.concat([block, info, Buffer.from([i])]));
    out = Buffer.concat([out, block]);
  }
  return out.subarray(0, length);
}
const i2osp2 = (n) => { const b = Buffer.alloc(2); b.writeUInt16BE(n); return b; };
const KEM_SUITE = Buffer.concat([Buffer.from('KEM'), i2osp2(0x0020)]);
const hpkeSuite = (aeadId) => Buffer.concat([Buffer.from('HPKE'), i2osp2(0x0020), i2osp2(0x0001), i2osp2(aeadId)]);
const labeledExtract = (suite, salt, label, ikm) => hmac(salt, Buffer.concat([Buffer.from('HPKE-v1'), suite, Buffer.from(label), ikm]));
const labeledExpand = (suite, prk, label, info, L) =>
  hkdfExpand(prk, Buffer.concat([i2osp2(L), Buffer.from('HPKE-v1'), suite, Buffer.from(label), info]), L);

export function hpkeSharedSecret(dh, enc, pkR) {
  const prk = labeledExtract(KEM_SUITE, Buffer.alloc(0), 'eae_prk', dh);
  return labeledExpand(KEM_SUITE, prk, 'shared_secret', Buffer.concat([enc, pkR]), 32);
}
export function hpkeKeySchedule(shared, info, { aeadId = 0x0002, nk = 32 } = {}) {
  const suite = hpkeSuite(aeadId);
  const pskIdHash = labeledExtract(suite, Buffer.alloc(0), 'psk_id_hash', Buffer.alloc(0));
  const infoHash = labeledExtract(suite, Buffer.alloc(0), 'info_hash', info);
  const context = Buffer.concat([Buffer.from([0]), pskIdHash, infoHash]);
  const secret = labeledExtract(suite, shared, 'secret', Buffer.alloc(0));
  return { key: labeledExpand(suite, secret, 'key', context, nk), baseNonce: labeledExpand(suite, secret, 'base_nonce', context, 12) };
}
function aesGcmSeal(key, nonce, aad, plaintext) {
  const cipher = crypto.createCipheriv(`aes-${key.length * 8}-gcm`, key, nonce);
  cipher.setAAD(aad);
  const ct = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return { ct, tag: cipher.getAuthTag() };
}
function aesGcmOpen(key, nonce, aad, ct, tag) {
  const decipher = crypto.createDecipheriv(`aes-${key.length * 8}-gcm`, key, nonce);
  decipher.setAAD(aad); decipher.setAuthTag(tag);
  return Buffer.concat([decipher.update(ct), decipher.final()]);
}
// Single-shot seal (sequence 0: nonce = base_nonce). Returns enc (32 bytes) and ct || tag.
export function hpkeSeal(pkR, info, aad, plaintext, { ephemeralPrivate = crypto.randomBytes(32), ...suite } = {}) {
  const enc = x25519Public(ephemeralPrivate);
  const { key, baseNonce } = hpkeKeySchedule(hpkeSharedSecret(x25519(ephemeralPrivate, pkR), enc, pkR), info, suite);
  const { ct, tag } = aesGcmSeal(key, baseNonce, aad, plaintext);
  return { enc, ct: Buffer.concat([ct, tag]) };
}
export function hpkeOpen(skR, enc, info, aad, sealed) {
  const pkR = x25519Public(skR);
  const { key, baseNonce } = hpkeKeySchedule(hpkeSharedSecret(x25519(skR, enc), enc, pkR), info);
  return aesGcmOpen(key, baseNonce, aad, sealed.subarray(0, -16), sealed.subarray(-16));
}

export const HPKE_PARAMS = { mode: 'base', kem: 'X25519-HKDF-SHA256', kdf: 'HKDF-SHA256', aead: 'AES-256-GCM' };

// encrypt.rs encrypt_payload_ves, step by step. `ctx` is the event context (PayloadAadParams minus the hash);
// `recipientKeys` is [[kid, x25519 public key], ...]. `fixed` may pin salt/dek/nonce/ephemeral keys (vectors).
export function encryptPayloadVes(payload, ctx, recipientKeys, fixed = {}) {
  if (!recipientKeys.length) throw new Error('NoRecipients');
  const salt = fixed.salt ?? crypto.randomBytes(16);
  const payloadPlainHash = payloadPlainHashSalted(payload, salt);
  const aad = payloadAad({ ...ctx, payload_plain_hash: payloadPlainHash });
  const dek = fixed.dek ?? crypto.randomBytes(32);
  const nonce = fixed.nonce ?? crypto.randomBytes(12);
  const plaintext = Buffer.concat([salt, Buffer.from(jcs(payload), 'utf8')]);
  const { ct: ciphertext, tag } = aesGcmSeal(dek, nonce, aad, plaintext);
  const recipients = recipientKeys.map(([kid, pk]) => {
    const { enc, ct } = hpkeSeal(pk, aad, Buffer.alloc(0), dek, { ephemeralPrivate: fixed.ephemeral?.[kid] ?? crypto.randomBytes(32) });
    return { recipient_kid: kid, enc_b64u: b64u(enc), ct_b64u: b64u(ct) };
  });
  recipients.sort((a, b) => a.recipient_kid - b.recipient_kid);
  const recipHash = recipientsHash(recipients);
  const payloadCipherHashValue = payloadCipherHash(nonce, aad, ciphertext, tag, recipHash);
  const payloadEncrypted = {
    enc_version: 1, aead: 'AES-256-GCM', nonce_b64u: b64u(nonce), ciphertext_b64u: b64u(ciphertext),
    tag_b64u: b64u(tag), hpke: { ...HPKE_PARAMS }, recipients,
  };
  return { payloadEncrypted, payloadSalt: salt, payloadPlainHash, payloadCipherHash: payloadCipherHashValue, aad, recipientsHash: recipHash };
}

// encrypt.rs decrypt_payload_ves: unwrap, decrypt, split salt, parse, check the salted hash.
export function decryptPayloadVes(pe, aad, kid, skR, expectedPlainHash) {
  const recip = pe.recipients.find((r) => r.recipient_kid === kid);
  if (!recip) throw new Error(`RecipientNotFound(${kid})`);
  const dek = hpkeOpen(skR, b64uDecode(recip.enc_b64u), aad, Buffer.alloc(0), b64uDecode(recip.ct_b64u));
  const plaintext = aesGcmOpen(dek, b64uDecode(pe.nonce_b64u), aad, b64uDecode(pe.ciphertext_b64u), b64uDecode(pe.tag_b64u));
  const salt = plaintext.subarray(0, 16);
  const payload = JSON.parse(plaintext.subarray(16).toString('utf8'));
  if (!payloadPlainHashSalted(payload, salt).equals(expectedPlainHash)) throw new Error('PayloadHashMismatch');
  return payload;
}

// chrono's DateTime<Utc>::to_rfc3339() (what VesEventEnvelope::new_plaintext writes): "+00:00", and a fraction of
// 0, 3, 6 or 9 digits (SecondsFormat::AutoSi).
export function chronoRfc3339(ms = Date.now(), subMillisNanos = Number(process.hrtime.bigint() % 1000000n)) {
  const d = new Date(ms);
  const nanos = d.getUTCMilliseconds() * 1e6 + subMillisNanos;
  const base = d.toISOString().slice(0, 19);
  let frac = '';
  if (nanos % 1e9 === 0) frac = '';
  else if (nanos % 1e6 === 0) frac = '.' + String(nanos / 1e6).padStart(3, '0');
  else if (nanos % 1e3 === 0) frac = '.' + String(nanos / 1e3).padStart(6, '0');
  else frac = '.' + String(nanos).padStart(9, '0');
  return `${base}${frac}+00:00`;
}

const hex0x = (b) => '0x' + Buffer.from(b).toString('hex');

// VesEventEnvelope (src/domain/ves_event.rs) as serde writes it: snake_case, this field order, hashes and the
// signature with hash256_hex_0x / signature64_hex_0x, `payload`/`payload_encrypted`/`command_id`/`base_version`
// omitted when None (skip_serializing_if), agent_key_id and payload_kind as integers.
export function envelopeJson(p, signature, { payload, payloadEncrypted, commandId, baseVersion } = {}) {
  const e = {
    ves_version: p.ves_version, event_id: p.event_id, tenant_id: p.tenant_id, store_id: p.store_id,
    source_agent_id: p.source_agent_id, agent_key_id: p.agent_key_id, entity_type: p.entity_type,
    entity_id: p.entity_id, event_type: p.event_type, created_at: p.created_at, payload_kind: p.payload_kind,
  };
  if (payload !== undefined) e.payload = payload;
  if (payloadEncrypted !== undefined) e.payload_encrypted = payloadEncrypted;
  e.payload_plain_hash = hex0x(p.payload_plain_hash);
  e.payload_cipher_hash = hex0x(p.payload_cipher_hash);
  e.agent_signature = hex0x(signature);
  if (commandId !== undefined) e.command_id = commandId;
  if (baseVersion !== undefined) e.base_version = baseVersion;
  return e;
}

// VesEventEnvelope::new_plaintext.
export function newPlaintextEvent(agent, ctx, payload) {
  const p = { ves_version: 1, ...ctx, agent_key_id: agent.keyId, source_agent_id: agent.agentId, tenant_id: agent.tenantId,
    payload_kind: 0, payload_plain_hash: payloadPlainHash(payload), payload_cipher_hash: ZERO_HASH };
  const signingHash = eventSigningHash(p);
  return { envelope: envelopeJson(p, agent.key.sign(signingHash), { payload }), signingHash, params: p };
}

// encrypt_payload_ves + VesEventEnvelope::new_encrypted.
export function newEncryptedEvent(agent, ctx, payload, recipientKeys, fixed) {
  const base = { ...ctx, agent_key_id: agent.keyId, source_agent_id: agent.agentId, tenant_id: agent.tenantId };
  const sealed = encryptPayloadVes(payload, base, recipientKeys, fixed);
  const p = { ves_version: 1, ...base, payload_kind: 1, payload_plain_hash: sealed.payloadPlainHash,
    payload_cipher_hash: sealed.payloadCipherHash };
  const signingHash = eventSigningHash(p);
  return { envelope: envelopeJson(p, agent.key.sign(signingHash), { payloadEncrypted: sealed.payloadEncrypted }),
    signingHash, params: p, sealed };
}
