// Known answers for lib/ves.mjs from outside this repository: RFC 9180 A.1.1 (HPKE), RFC 8032 §7.1 (Ed25519),
// RFC 7748 §6.1 (X25519), and the one hash the original's own test suite pins
// (src/crypto/hash.rs test_signing_hash_cross_platform). Prints "ok" and exits 0, or throws.

import assert from 'node:assert/strict';
import * as v from './lib/ves.mjs';

const h = (s) => Buffer.from(s, 'hex');

// RFC 9180 A.1.1: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM, base mode (the AES-256-GCM suite the
// original uses differs only in the AEAD id and key length; the RFC publishes no X25519 vector for it).
{
  const info = h('4f6465206f6e2061204772656369616e2055726e');
  const skEm = h('52c4a758a802cd8b936eceea314432798d5baf2d7e9235dc084ab1b9cfa2f736');
  const pkRm = h('3948cfe0ad1ddb695d780e59077195da6c56506b027329794ab02bca80815c4d');
  const skRm = h('4612c550263fc8ad58375df3f557aac531d26850903e55a9f23f21d8534e8ac8');
  assert.equal(v.x25519Public(skRm).toString('hex'), pkRm.toString('hex'));
  const sealed = v.hpkeSeal(pkRm, info, h('436f756e742d30'), h('4265617574792069732074727574682c20747275746820626561757479'),
    { ephemeralPrivate: skEm, aeadId: 0x0001, nk: 16 });
  assert.equal(sealed.enc.toString('hex'), '37fda3567bdbd628e88668c3c8d7e97d1d1253b6d4ea6d44c150f741f1bf4431');
  assert.equal(v.hpkeSharedSecret(v.x25519(skEm, pkRm), sealed.enc, pkRm).toString('hex'),
    'fe0e18c9f024ce43799ae393c7e8fe8fce9d218875e8227b0187c04e7d2ea1fc');
  assert.equal(sealed.ct.toString('hex'),
    'f938558b5d72f1a23810b4be2ab4f84331acc02fc97babc53a52ae8218a355a96d8770ac83d07bea87e13c512a');
}

// RFC 8032 §7.1 TEST 1 and TEST 2.
{
  const k1 = v.ed25519FromSeed(h('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60'));
  assert.equal(k1.publicKey.toString('hex'), 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a');
  assert.equal(k1.sign(Buffer.alloc(0)).toString('hex'),
    'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b');
  const k2 = v.ed25519FromSeed(h('4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb'));
  const sig = k2.sign(h('72'));
  assert.equal(sig.toString('hex'),
    '92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00');
  assert.ok(v.ed25519Verify(k2.publicKey, h('72'), sig));
  assert.ok(!v.ed25519Verify(k2.publicKey, h('73'), sig));
}

// RFC 7748 §6.1: Alice and Bob.
{
  const alice = h('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a');
  const bob = h('5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb');
  assert.equal(v.x25519Public(alice).toString('hex'), '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a');
  assert.equal(v.x25519(alice, v.x25519Public(bob)).toString('hex'), '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742');
}

// The original's hash.rs test_signing_hash_cross_platform.
{
  const p = { ves_version: 1, tenant_id: '64527dd3-a654-4410-9327-e58a1492ce77', store_id: '91def158-819a-4461-b5c9-7759750ad157',
    event_id: '861910c9-7a1d-4b6f-83d6-51bbf4ae2849', source_agent_id: '80441726-74e2-430a-95ae-97ce21c6351b', agent_key_id: 1,
    entity_type: 'order', entity_id: 'ORD-001', event_type: 'order.created', created_at: '2025-12-20T17:51:10.243Z', payload_kind: 0,
    payload_plain_hash: h('7777c3fef466a0e9df7e07ea4ff13dc8ffbb9e487098f1b65530cdce7b6bbbe7'), payload_cipher_hash: v.ZERO_HASH };
  assert.equal(v.eventSigningHash(p).toString('hex'), 'e970dfc9ffc285c2c0ba59be5d9c653eee2d1ae4db9b7a02ea3cd62b8e7cf92b');
}

// JCS (RFC 8785 §3.2.3 key order by UTF-16 code units; numbers as ECMAScript), and base64url as the original reads it.
assert.equal(v.jcs({ b: [1, 1.5, -0, 1e21], a: 'é', '\u20ac': 1, '\ud83d\ude00': 2, '\ufb33': 3 }),
  '{"a":"é","b":[1,1.5,0,1e+21],"\u20ac":1,"\ud83d\ude00":2,"\ufb33":3}');
assert.equal(v.b64uDecode('QQ').toString('hex'), '41');
assert.equal(v.b64uDecode('QQ==').toString('hex'), '41');
for (const bad of ['QR', 'QQ=', 'QQ+/', 'Q']) assert.throws(() => v.b64uDecode(bad), bad);

// encrypt_payload_ves / decrypt_payload_ves round trip, and every authenticated part is checked.
{
  const sk = Buffer.alloc(32, 9);
  const ctx = { tenant_id: '00000000-0000-0000-0000-000000000001', store_id: '00000000-0000-0000-0000-000000000002',
    event_id: '11111111-1111-1111-1111-111111111111', source_agent_id: '22222222-2222-2222-2222-222222222222', agent_key_id: 1,
    entity_type: 'InventoryItem', entity_id: 'WIDGET-001', event_type: 'InventoryAdjusted', created_at: '2025-01-01T00:00:00Z' };
  const sealed = v.encryptPayloadVes({ delta: 100 }, ctx, [[2, v.x25519Public(sk)], [1, v.x25519Public(Buffer.alloc(32, 8))]]);
  assert.deepEqual(sealed.payloadEncrypted.recipients.map((r) => r.recipient_kid), [1, 2]);
  assert.equal(sealed.payloadCipherHash.toString('hex'), v.cipherHashFromEncrypted(sealed.payloadEncrypted, sealed.aad).toString('hex'));
  assert.deepEqual(v.decryptPayloadVes(sealed.payloadEncrypted, sealed.aad, 2, sk, sealed.payloadPlainHash), { delta: 100 });
  const otherAad = v.payloadAad({ ...ctx, entity_id: 'WIDGET-002', payload_plain_hash: sealed.payloadPlainHash });
  assert.throws(() => v.decryptPayloadVes(sealed.payloadEncrypted, otherAad, 2, sk, sealed.payloadPlainHash));
  assert.throws(() => v.decryptPayloadVes(sealed.payloadEncrypted, sealed.aad, 2, sk, Buffer.alloc(32)), /PayloadHashMismatch/);
}

console.log('ok');
