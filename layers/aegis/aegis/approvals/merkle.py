"""An RFC 9162 §2.1 Merkle tree over change digests: one root an approver signs for a whole batch of changes.

Each leaf is a change digest (`ChangeBase.digest`, 64 lowercase hex). Leaves are in canonical order, sorted ascending
as hex strings, so that the root depends only on the set of changes and the console, the approval and the executor
compute the same root without agreeing on anything else. Leaf and node hashes are domain separated (0x00 / 0x01
prefixes) so that an inner node can never pass for a leaf, and an inclusion proof binds one change to the root.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

_DIGEST = re.compile(r"[0-9a-f]{64}")
_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"
# A batch holds at most a few hundred changes; a path this long would be a tree of 2**64 leaves, never ours.
_MAX_PATH = 64


class MerkleError(ValueError):
    """A digest, a set of digests or a proof that does not make (or fit) a Merkle tree of changes."""


def _require_digest(digest: Any, what: str = "digest") -> str:
    if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
        raise MerkleError(f"{what} is not 64 lowercase hex characters")
    return digest


def leaf_hash(digest: str) -> bytes:
    return hashlib.sha256(_LEAF_PREFIX + bytes.fromhex(_require_digest(digest))).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def canonical_leaves(digests: Iterable[str]) -> list[str]:
    """The digests in canonical leaf order; MerkleError for an empty set, a malformed digest or a duplicate."""
    leaves = sorted(_require_digest(digest) for digest in digests)
    if not leaves:
        raise MerkleError("a Merkle tree needs at least one change digest")
    if len(set(leaves)) != len(leaves):
        # A batch holds each change once: a repeated leaf would let one approval count twice for one change.
        raise MerkleError("a change digest appears twice in the batch")
    return leaves


def _split(n: int) -> int:
    """The largest power of two smaller than n (n >= 2): where RFC 9162 §2.1.1 splits a tree of n leaves."""
    return 1 << ((n - 1).bit_length() - 1)


def _root(hashes: Sequence[bytes]) -> bytes:
    if len(hashes) == 1:
        return hashes[0]
    k = _split(len(hashes))
    return node_hash(_root(hashes[:k]), _root(hashes[k:]))


def merkle_root(digests: Iterable[str]) -> str:
    """MTH over the digests in canonical order, as 64 lowercase hex."""
    return _root([leaf_hash(digest) for digest in canonical_leaves(digests)]).hex()


@dataclass(frozen=True)
class MerkleProof:
    """An RFC 9162 §2.1.3 inclusion proof: public, it proves one leaf is at `leaf_index` of a tree of `tree_size`."""

    leaf_index: int
    tree_size: int
    path: tuple[str, ...]

    def as_json(self) -> dict[str, Any]:
        return {"leaf_index": self.leaf_index, "tree_size": self.tree_size, "path": list(self.path)}

    @classmethod
    def from_json(cls, obj: Any) -> MerkleProof:
        """Strictly: exactly the three keys, integers that are not booleans, a list of well-formed hashes."""
        if not isinstance(obj, Mapping):
            raise MerkleError("a Merkle proof is a JSON object")
        if set(obj) != {"leaf_index", "tree_size", "path"}:
            raise MerkleError("a Merkle proof holds exactly leaf_index, tree_size and path")
        leaf_index, tree_size, path = obj["leaf_index"], obj["tree_size"], obj["path"]
        for name, value in (("leaf_index", leaf_index), ("tree_size", tree_size)):
            if not isinstance(value, int) or isinstance(value, bool):
                raise MerkleError(f"a Merkle proof's {name} is not an integer")
        if tree_size < 1 or not 0 <= leaf_index < tree_size:
            raise MerkleError("a Merkle proof's leaf_index is not within its tree_size")
        if not isinstance(path, list) or len(path) > _MAX_PATH:
            raise MerkleError("a Merkle proof's path is not a list of hashes")
        return cls(
            leaf_index, tree_size, tuple(_require_digest(node, "a Merkle proof's path element") for node in path)
        )


def _path(hashes: Sequence[bytes], index: int) -> list[bytes]:
    """PATH(m, D[n]) of RFC 9162 §2.1.3.1: the siblings from the leaf up to the root."""
    if len(hashes) == 1:
        return []
    k = _split(len(hashes))
    if index < k:
        return [*_path(hashes[:k], index), _root(hashes[k:])]
    return [*_path(hashes[k:], index - k), _root(hashes[:k])]


def inclusion_proof(digests: Iterable[str], digest: str) -> MerkleProof:
    """The proof that `digest` is a leaf of the tree over `digests`; MerkleError if it is not one of them."""
    leaves = canonical_leaves(digests)
    _require_digest(digest)
    if digest not in leaves:
        raise MerkleError("the change digest is not in the batch")
    index = leaves.index(digest)
    path = _path([leaf_hash(leaf) for leaf in leaves], index)
    return MerkleProof(index, len(leaves), tuple(node.hex() for node in path))


def _verification_failure(digest: str, proof: MerkleProof, root: str, tree_size: int | None) -> str | None:
    """Why the proof does not show `digest` under `root` (RFC 9162 §2.1.3.2), or None when it does."""
    if not isinstance(proof, MerkleProof):
        return "the proof is not a MerkleProof"
    if tree_size is not None and proof.tree_size != tree_size:
        return "the proof's tree_size is not the batch's size"
    try:
        _require_digest(digest)
        _require_digest(root, "root")
        # Re-checked: a MerkleProof built directly (not through from_json) may hold anything.
        proof = MerkleProof.from_json(proof.as_json())
    except MerkleError as exc:
        return str(exc)
    fn, sn = proof.leaf_index, proof.tree_size - 1
    r = leaf_hash(digest)
    for element in proof.path:
        if sn == 0:
            return "the proof's path is longer than its tree needs"
        p = bytes.fromhex(element)
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            # A right-edge node with no sibling at the levels below: climb past them (fn even, not yet 0).
            while fn & 1 == 0 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        return "the proof's path is shorter than its tree needs"
    if r.hex() != root:
        return "the proof does not lead from the change digest to the root"
    return None


def verify_inclusion(digest: str, proof: MerkleProof, root: str, *, tree_size: int | None = None) -> bool:
    """Whether `proof` shows `digest` is a leaf of the tree whose root is `root`.

    A root alone does not fix the tree's size: for some sizes a wrong `proof.tree_size` walks the same path and hashes
    identically (the leaf is still in the tree the root commits to). Pass `tree_size` when the signer stated the
    batch's size (the batch RAR's count) to refuse any proof that names another."""
    return _verification_failure(digest, proof, root, tree_size) is None


def require_inclusion(digest: str, proof: MerkleProof, root: str, *, tree_size: int | None = None) -> None:
    """Raise MerkleError naming why, unless `proof` shows `digest` is a leaf of the tree whose root is `root` (and,
    when `tree_size` is given, of that many leaves)."""
    failure = _verification_failure(digest, proof, root, tree_size)
    if failure is not None:
        raise MerkleError(failure)
