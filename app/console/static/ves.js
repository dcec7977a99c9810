// VES and VES-LOG-1 verification in the browser, byte for byte as docs/spec/VES.md and docs/spec/LOG.md say and as
// app/ves computes: SHA-256 and Ed25519 from WebCrypto, RFC 8785 canonical JSON, Merkle folds. No DOM, no network.

const utf8 = new TextEncoder();

export const TAG = Object.freeze({
  payloadPlain: "VES_PAYLOAD_PLAIN_V1",
  eventSigV1: "VES_EVENTSIG_V1",
  eventSigV2: "VES_EVENTSIG_V2",
  receipt: "VES_RECEIPT_V1",
  leaf: "VES_LEAF_V1",
  node: "VES_NODE_V1",
  padLeaf: "VES_PAD_LEAF_V1",
});

export class EncodingError extends Error {}

/** Bytes of a hex string, with or without `0x`, either case; `size` (bytes) is checked when given. */
export function hexToBytes(text, size) {
  if (typeof text !== "string") throw new EncodingError("expected a hex string");
  const hex = text.startsWith("0x") || text.startsWith("0X") ? text.slice(2) : text;
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) throw new EncodingError("not hex");
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  if (size !== undefined && out.length !== size) throw new EncodingError(`expected ${size} bytes, got ${out.length}`);
  return out;
}

export function bytesToHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export function bytesEqual(a, b) {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

export function concat(...parts) {
  const total = parts.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(total);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

export function u32(n) {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new EncodingError("not a u32");
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, n);
  return out;
}

export function u64(n) {
  if (!Number.isInteger(n) || n < 0) throw new EncodingError("not a u64");
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(n));
  return out;
}

function strField(text) {
  if (typeof text !== "string") throw new EncodingError("expected a string");
  const bytes = utf8.encode(text);
  return concat(u32(bytes.length), bytes);
}

export function uuidBytes(text) {
  if (typeof text !== "string" || !/^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/.test(text)) {
    throw new EncodingError("not a UUID");
  }
  return hexToBytes(text.replace(/-/g, ""), 16);
}

function tag(name) {
  return utf8.encode(name);
}

export async function sha256(...parts) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", concat(...parts)));
}

/** RFC 8785 canonical JSON of a value parsed by JSON.parse: sorted keys (UTF-16 code units), ECMAScript numbers and
 * string escapes, which is exactly what JSON.stringify writes for a single number or string. */
export function jcs(value) {
  if (value === null || typeof value === "boolean") return JSON.stringify(value);
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new EncodingError("JCS cannot encode a non-finite number");
    return JSON.stringify(value);
  }
  if (typeof value === "string") return JSON.stringify(value);
  if (Array.isArray(value)) return "[" + value.map(jcs).join(",") + "]";
  if (typeof value === "object") {
    const keys = Object.keys(value).sort();
    return "{" + keys.map((k) => JSON.stringify(k) + ":" + jcs(value[k])).join(",") + "}";
  }
  throw new EncodingError("JCS cannot encode " + typeof value);
}

export async function payloadPlainHash(payload) {
  return sha256(tag(TAG.payloadPlain), utf8.encode(jcs(payload)));
}

/** `event_signing_hash` of a wire envelope (h1 for ves_version 1, h2 for 2). */
export async function eventSigningHash(envelope) {
  const version = envelope.ves_version;
  if (version !== 1 && version !== 2) throw new EncodingError("unsupported ves_version");
  const inner = await sha256(
    tag(TAG.eventSigV1), u32(version), uuidBytes(envelope.tenant_id), uuidBytes(envelope.store_id),
    uuidBytes(envelope.event_id), uuidBytes(envelope.source_agent_id), u32(envelope.agent_key_id),
    strField(envelope.entity_type), strField(envelope.entity_id), strField(envelope.event_type),
    strField(envelope.created_at), u32(envelope.payload_kind),
    hexToBytes(envelope.payload_plain_hash, 32), hexToBytes(envelope.payload_cipher_hash, 32));
  if (version === 1) return inner;
  const absent = new Uint8Array([0]);
  const command = envelope.command_id == null ? absent : concat(new Uint8Array([1]), uuidBytes(envelope.command_id));
  const base = envelope.base_version == null ? absent : concat(new Uint8Array([1]), u64(envelope.base_version));
  return sha256(tag(TAG.eventSigV2), inner, command, base);
}

export async function streamId(tenantId, storeId) {
  return sha256(tag("VES_STREAM_V1"), uuidBytes(tenantId), uuidBytes(storeId));
}

export async function receiptHash(tenantId, storeId, eventId, sequenceNumber, signingHash) {
  return sha256(tag(TAG.receipt), uuidBytes(tenantId), uuidBytes(storeId), uuidBytes(eventId), u64(sequenceNumber),
    signingHash);
}

export async function leafHash(tenantId, storeId, sequenceNumber, signingHash, agentSignature) {
  return sha256(tag(TAG.leaf), uuidBytes(tenantId), uuidBytes(storeId), u64(sequenceNumber), signingHash,
    agentSignature);
}

/** The root a VES inclusion proof folds to (VES.md §Merkle commitments); strict about the index. */
export async function foldCommitmentProof(leaf, path, leafIndex, leafCount) {
  if (!Number.isInteger(leafIndex) || leafIndex < 0 || leafIndex >= 2 ** path.length) {
    throw new EncodingError("leaf index outside the proof's tree");
  }
  if (leafCount !== undefined && leafIndex >= leafCount) throw new EncodingError("leaf index is a padding slot");
  let node = leaf;
  let index = leafIndex;
  for (const sibling of path) {
    node = index % 2 === 0 ? await sha256(tag(TAG.node), node, sibling) : await sha256(tag(TAG.node), sibling, node);
    index = Math.floor(index / 2);
  }
  return node;
}

// --- Ed25519 -------------------------------------------------------------------------------------------------------

let ed25519Support;

/** Whether this browser's WebCrypto has Ed25519 (Chromium 137+, Firefox 129+, Safari 17+). */
export async function ed25519Available() {
  if (ed25519Support === undefined) {
    try {
      await crypto.subtle.importKey("raw", new Uint8Array(32), { name: "Ed25519" }, false, ["verify"]);
      ed25519Support = true;
    } catch (error) {
      ed25519Support = !(error instanceof DOMException && error.name === "NotSupportedError");
    }
  }
  return ed25519Support;
}

export async function ed25519Verify(publicKey, message, signature) {
  if (publicKey.length !== 32 || signature.length !== 64) return false;
  try {
    const key = await crypto.subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, ["verify"]);
    return await crypto.subtle.verify({ name: "Ed25519" }, key, signature, message);
  } catch (error) {
    if (error instanceof DOMException && error.name === "NotSupportedError") throw error;
    return false;
  }
}

// --- VES-LOG-1: RFC 9162 trees, C2SP signed notes and checkpoints --------------------------------------------------

export async function rfc9162Leaf(entry) {
  return sha256(new Uint8Array([0]), entry);
}

async function rfc9162Node(left, right) {
  return sha256(new Uint8Array([1]), left, right);
}

/** RFC 9162 §2.1.3.2: the root an inclusion proof of `leafIndex` in a tree of `treeSize` gives, or null. */
export async function rfc9162InclusionRoot(leaf, leafIndex, treeSize, proof) {
  if (!Number.isInteger(leafIndex) || !Number.isInteger(treeSize) || leafIndex < 0 || leafIndex >= treeSize) return null;
  let fn = leafIndex;
  let sn = treeSize - 1;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0) return null;
    if (fn % 2 === 1 || fn === sn) {
      r = await rfc9162Node(p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = await rfc9162Node(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 ? r : null;
}

function base64ToBytes(text) {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) throw new EncodingError("not base64");
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

/** A C2SP verifier key `<name>+<hex key hash>+<base64(0x01 || public key)>`. */
export async function parseVerifierKey(text) {
  // The key name and hash hold no "+", the base64 key may: split at the first two only (as Go's note does).
  const value = String(text);
  const first = value.indexOf("+");
  const second = first < 0 ? -1 : value.indexOf("+", first + 1);
  if (first <= 0 || second < 0) throw new EncodingError("not a verifier key");
  const [name, hashHex, keyB64] = [value.slice(0, first), value.slice(first + 1, second), value.slice(second + 1)];
  const keyBytes = base64ToBytes(keyB64);
  if (keyBytes.length !== 33 || keyBytes[0] !== 1) throw new EncodingError("not an Ed25519 verifier key");
  const keyHash = (await sha256(utf8.encode(name + "\n"), keyBytes)).slice(0, 4);
  if (bytesToHex(keyHash) !== hashHex.toLowerCase()) throw new EncodingError("verifier key hash does not match");
  return { name, keyHash, publicKey: keyBytes.slice(1) };
}

/** Parse a signed checkpoint note; `verified` is whether a signature line of `verifier` verifies over the body. */
export async function verifyCheckpoint(noteText, verifier) {
  const split = noteText.indexOf("\n\n");
  if (split < 0) throw new EncodingError("not a signed note");
  const body = noteText.slice(0, split + 1);
  const lines = body.split("\n");
  if (lines.length < 4) throw new EncodingError("not a checkpoint");
  const [origin, sizeText, rootB64] = lines;
  if (!/^(0|[1-9][0-9]*)$/.test(sizeText)) throw new EncodingError("bad checkpoint size");
  const root = base64ToBytes(rootB64);
  if (root.length !== 32) throw new EncodingError("bad checkpoint root");
  let verified = false;
  for (const line of noteText.slice(split + 2).split("\n")) {
    const match = /^\u2014 (\S+) (\S+)$/.exec(line);
    if (!match || match[1] !== verifier.name) continue;
    const raw = base64ToBytes(match[2]);
    if (raw.length !== 68 || !bytesEqual(raw.slice(0, 4), verifier.keyHash)) continue;
    if (await ed25519Verify(verifier.publicKey, utf8.encode(body), raw.slice(4))) verified = true;
  }
  return { origin, treeSize: Number(sizeText), root, verified };
}
