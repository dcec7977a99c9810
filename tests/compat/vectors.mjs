// Recompute, with lib/ves.mjs (written from the original's Rust code), every value the original's
// tests/vectors/*.json leave as a placeholder or get wrong, from the inputs in those same files.
// Prints one JSON object on stdout; tests/vectors/original/corrected.json is this output, checked in, and
// tests/ves/test_original_vectors.py requires both app/ves and this script to reproduce it.
//
// Usage: node tests/compat/vectors.mjs [dir-of-original-vectors]

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as v from './lib/ves.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const dir = process.argv[2] ?? path.join(here, '..', 'vectors', 'original');
const load = (name) => JSON.parse(fs.readFileSync(path.join(dir, name), 'utf8'));
const sig = load('ves_sig_1_test_vectors.json');
const enc = load('ves_enc_1_test_vectors.json');
const chain = load('ves_chain_1_test_vectors.json');
const hex = (b) => Buffer.from(b).toString('hex');
const unhex = (s) => Buffer.from(s.replace(/^0x/, ''), 'hex');

// The fixed HPKE ephemeral private key the enc file lacks (encrypt.rs draws it from OsRng): our choice, recorded
// here and in tests/vectors/original/README.md, so that recipients_hash and payload_cipher_hash are reproducible.
const EPHEMERAL_KID_1 = unhex('202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f');

const domains = {};
for (const [name, d] of Object.entries({ ...sig.domain_separators.values, ...enc.domain_separators.values })) {
  const bytes = Buffer.from(d.ascii, 'ascii');
  domains[name] = { ascii: d.ascii, hex: hex(bytes), length: bytes.length };
}

const plainHashes = {};
for (const c of sig.payload_plain_hash.vectors) plainHashes[`sig:${c.name}`] = hex(v.payloadPlainHash(c.payload));
for (const c of enc.payload_plain_hash.vectors) {
  plainHashes[`enc:${c.name}`] = hex(c.salt_hex ? v.payloadPlainHashSalted(c.payload, unhex(c.salt_hex)) : v.payloadPlainHash(c.payload));
}

const t = sig.event_signing_params.test_event;
const paramsCase = { ...t, payload_plain_hash: unhex(t.payload_plain_hash_hex), payload_cipher_hash: unhex(t.payload_cipher_hash_hex) };
const paramsPreimage = v.eventSigningPreimage(paramsCase);

const full = sig.full_signing_test;
const key1 = v.ed25519FromSeed(unhex(full.private_key_hex));
const fullParams = { ...full.event, payload_plain_hash: v.payloadPlainHash(full.event.payload), payload_cipher_hash: v.ZERO_HASH };
const fullSigningHash = v.eventSigningHash(fullParams);

const fe = enc.full_encryption;
const ctx = { ...fe.event_context };
const sealed = v.encryptPayloadVes(fe.payload, ctx, [[fe.recipient.kid, unhex(fe.recipient.public_key_hex)]], {
  salt: unhex(fe.random_values_hex.salt), dek: unhex(fe.random_values_hex.dek), nonce: unhex(fe.random_values_hex.nonce),
  ephemeral: { [fe.recipient.kid]: EPHEMERAL_KID_1 },
});
const encParams = { ...ctx, payload_kind: 1, payload_plain_hash: sealed.payloadPlainHash, payload_cipher_hash: sealed.payloadCipherHash };
const encSigningHash = v.eventSigningHash(encParams);
const recipient1 = enc.hpke_key_pairs.test_keys.find((k) => k.kid === fe.recipient.kid);
const opened = v.decryptPayloadVes(sealed.payloadEncrypted, sealed.aad, fe.recipient.kid, unhex(recipient1.private_key_hex), sealed.payloadPlainHash);

const aeadCase = enc.aead_test_vectors.vectors[0];
const aeadCipher = (() => {
  const c = crypto.createCipheriv('aes-256-gcm', unhex(aeadCase.key_hex), unhex(aeadCase.nonce_hex));
  c.setAAD(unhex(aeadCase.aad_hex));
  const ct = Buffer.concat([c.update(unhex(aeadCase.plaintext_hex)), c.final()]);
  return { ciphertext_hex: hex(ct), tag_hex: hex(c.getAuthTag()) };
})();

const streamCase = chain.stream_id_computation.vectors[0];

const out = {
  source: 'computed by tests/compat/vectors.mjs from the inputs of the original\'s tests/vectors files',
  domain_separators: domains,
  payload_plain_hash: plainHashes,
  event_signing_params: { preimage_total_bytes: paramsPreimage.length, event_signing_hash_hex: hex(v.sha256(paramsPreimage)) },
  full_signing_test: {
    payload_plain_hash_hex: hex(fullParams.payload_plain_hash),
    event_signing_hash_hex: hex(fullSigningHash),
    agent_signature_hex: hex(key1.sign(fullSigningHash)),
  },
  hpke_public_keys: Object.fromEntries(enc.hpke_key_pairs.test_keys.map((k) => [k.name, hex(v.x25519Public(unhex(k.private_key_hex)))])),
  full_encryption: {
    ephemeral_private_key_hex: hex(EPHEMERAL_KID_1),
    payload_plain_hash_hex: hex(sealed.payloadPlainHash),
    payload_aad_hex: hex(sealed.aad),
    recipients_hash_hex: hex(sealed.recipientsHash),
    payload_cipher_hash_hex: hex(sealed.payloadCipherHash),
    payload_encrypted: sealed.payloadEncrypted,
    event_signing_hash_hex: hex(encSigningHash),
    agent_signature_hex: hex(key1.sign(encSigningHash)),
    decrypts_to: opened,
  },
  aead_test_case_1: aeadCipher,
  stream_id: { tenant_id: streamCase.tenant_id, store_id: streamCase.store_id, stream_id_hex: hex(v.streamId(streamCase.tenant_id, streamCase.store_id)) },
};
process.stdout.write(JSON.stringify(out, null, 2) + '\n');
