// The Merkle root of a batch of changes, recomputed here from the digests the page shows, so that the approver can
// compare its first characters with the root their phone shows. The algorithm is exactly the approval's and the
// executor's (aegis.approvals.merkle, RFC 9162 §2.1): leaves are change digests (64 lowercase hex) sorted ascending
// as strings, leaf hash SHA-256(0x00 || digest bytes), node hash SHA-256(0x01 || left || right), and a tree of n
// leaves splits at the largest power of two smaller than n. SHA-256 is WebCrypto's: no dependency.

export class MerkleError extends Error {
  override name = "MerkleError";
}

/** Bytes backed by a plain ArrayBuffer (what WebCrypto digests). */
type Bytes = Uint8Array<ArrayBuffer>;
export type Sha256 = (data: Bytes) => Promise<Bytes>;

const DIGEST = /^[0-9a-f]{64}$/;

const webCryptoSha256: Sha256 = async (data) => new Uint8Array(await crypto.subtle.digest("SHA-256", data));

function fromHex(hex: string): Bytes {
  const bytes = new Uint8Array(hex.length / 2);
  for (let index = 0; index < bytes.length; index += 1) bytes[index] = parseInt(hex.slice(index * 2, index * 2 + 2), 16);
  return bytes;
}

export function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

function prefixed(prefix: number, ...parts: Bytes[]): Bytes {
  const joined = new Uint8Array(1 + parts.reduce((total, part) => total + part.length, 0));
  joined[0] = prefix;
  let offset = 1;
  for (const part of parts) {
    joined.set(part, offset);
    offset += part.length;
  }
  return joined;
}

/** The digests in canonical leaf order; MerkleError for none, a malformed one or a repeated one (as in Python). */
export function canonicalLeaves(digests: readonly string[]): string[] {
  const leaves = [...digests].sort();
  if (leaves.length === 0) throw new MerkleError("a Merkle tree needs at least one change digest");
  leaves.forEach((leaf, index) => {
    if (!DIGEST.test(leaf)) throw new MerkleError(`digest ${index + 1} is not 64 lowercase hex characters`);
    if (index > 0 && leaves[index - 1] === leaf) throw new MerkleError("a change digest appears twice in the batch");
  });
  return leaves;
}

/** The largest power of two smaller than n (n >= 2). */
function split(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

async function subtreeRoot(hashes: Bytes[], sha256: Sha256): Promise<Bytes> {
  if (hashes.length === 1) return hashes[0] as Bytes;
  const k = split(hashes.length);
  const [left, right] = await Promise.all([subtreeRoot(hashes.slice(0, k), sha256), subtreeRoot(hashes.slice(k), sha256)]);
  return sha256(prefixed(0x01, left, right));
}

/** MTH over the digests in canonical order, as 64 lowercase hex. */
export async function merkleRoot(digests: readonly string[], sha256: Sha256 = webCryptoSha256): Promise<string> {
  const leaves = await Promise.all(canonicalLeaves(digests).map((digest) => sha256(prefixed(0x00, fromHex(digest)))));
  return toHex(await subtreeRoot(leaves, sha256));
}
