"""The Merkle tree of a batch (RFC 9162 §2.1): known-answer roots from an independent reference, every proof of trees
of 1..17 leaves, and every way a proof, a leaf or a set of leaves can be wrong."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from aegis.approvals.merkle import (
    MerkleError,
    MerkleProof,
    inclusion_proof,
    leaf_hash,
    merkle_root,
    node_hash,
    require_inclusion,
    verify_inclusion,
)


# --- An independent reference, written from RFC 9162 §2.1.1 and §2.1.3.1, not from the code under test --------------
#   MTH({}) = SHA-256(); MTH({d(0)}) = SHA-256(0x00 || d(0));
#   for n > 1, k the largest power of two smaller than n: MTH(D[n]) = SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n])).
#   PATH(0, {d(0)}) = {}; for m < k: PATH(m, D[n]) = PATH(m, D[0:k]) : MTH(D[k:n]);
#   for m >= k: PATH(m, D[n]) = PATH(m - k, D[k:n]) : MTH(D[0:k]).
def _sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def _mth(entries: list[bytes]) -> bytes:
    n = len(entries)
    if n == 1:
        return _sha(b"\x00" + entries[0])
    k = _k(n)
    return _sha(b"\x01" + _mth(entries[:k]) + _mth(entries[k:]))


def _ref_path(m: int, entries: list[bytes]) -> list[bytes]:
    n = len(entries)
    if n == 1:
        return []
    k = _k(n)
    if m < k:
        return [*_ref_path(m, entries[:k]), _mth(entries[k:])]
    return [*_ref_path(m - k, entries[k:]), _mth(entries[:k])]


def _digests(n: int, salt: str = "") -> list[str]:
    """n distinct change-digest-like leaves, deliberately not generated in sorted order."""
    return [hashlib.sha256(f"change-{salt}-{i}".encode()).hexdigest() for i in range(n)]


def _reference_root(digests: list[str]) -> str:
    return _mth([bytes.fromhex(d) for d in sorted(digests)]).hex()


# --- Roots -----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [1, 2, 3, 5, 7, 8])
def test_root_is_rfc9162_mth_over_the_sorted_digests(n: int) -> None:
    digests = _digests(n)
    assert merkle_root(digests) == _reference_root(digests)


def test_small_roots_written_out_by_hand() -> None:
    a, b, c = sorted(_digests(3))
    leaf = {d: _sha(b"\x00" + bytes.fromhex(d)) for d in (a, b, c)}
    assert merkle_root([a]) == leaf[a].hex()
    assert merkle_root([b, a]) == _sha(b"\x01" + leaf[a] + leaf[b]).hex()
    # Three leaves split at two: the left subtree is full, the third leaf is promoted unhashed to the top.
    assert merkle_root([c, a, b]) == _sha(b"\x01" + _sha(b"\x01" + leaf[a] + leaf[b]) + leaf[c]).hex()


def test_leaf_and_node_hashes_are_domain_separated() -> None:
    a, b = _digests(2)
    assert leaf_hash(a) == _sha(b"\x00" + bytes.fromhex(a))
    assert node_hash(leaf_hash(a), leaf_hash(b)) == _sha(b"\x01" + leaf_hash(a) + leaf_hash(b))
    # A two-leaf tree's root is not the leaf hash of the concatenation: an inner node never passes for a leaf.
    assert merkle_root([a, b]) != hashlib.sha256(b"\x00" + leaf_hash(a) + leaf_hash(b)).hexdigest()


def test_root_depends_on_the_set_only() -> None:
    digests = _digests(9)
    assert merkle_root(digests) == merkle_root(list(reversed(digests))) == merkle_root(sorted(digests))
    assert merkle_root(digests) != merkle_root(digests[:8])


def test_an_empty_batch_is_refused() -> None:
    with pytest.raises(MerkleError, match="at least one"):
        merkle_root([])
    with pytest.raises(MerkleError, match="at least one"):
        inclusion_proof([], _digests(1)[0])


def test_a_duplicate_leaf_is_refused() -> None:
    digests = _digests(4)
    with pytest.raises(MerkleError, match="twice"):
        merkle_root([*digests, digests[2]])
    with pytest.raises(MerkleError, match="twice"):
        inclusion_proof([*digests, digests[0]], digests[0])


@pytest.mark.parametrize(
    "bad",
    ["", "ab", "A" * 64, "g" * 64, "0" * 63, "0" * 65, " " + "0" * 63, None, 7, b"0" * 64],
)
def test_a_malformed_digest_is_refused(bad: Any) -> None:
    with pytest.raises(MerkleError, match="64 lowercase hex"):
        merkle_root([*_digests(2), bad])
    with pytest.raises(MerkleError, match="64 lowercase hex"):
        leaf_hash(bad)
    digests = _digests(3)
    proof = inclusion_proof(digests, digests[0])
    assert not verify_inclusion(bad, proof, merkle_root(digests))
    assert not verify_inclusion(digests[0], proof, bad)


# --- Proofs ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n", range(1, 18))
def test_every_leaf_of_trees_of_1_to_17_proves_and_matches_the_reference_path(n: int) -> None:
    digests = _digests(n, salt=str(n))
    root = merkle_root(digests)
    leaves = sorted(digests)
    for index, digest in enumerate(leaves):
        proof = inclusion_proof(digests, digest)
        assert (proof.leaf_index, proof.tree_size) == (index, n)
        assert list(proof.path) == [p.hex() for p in _ref_path(index, [bytes.fromhex(d) for d in leaves])]
        assert verify_inclusion(digest, proof, root)
        require_inclusion(digest, proof, root)
        # Every other leaf is refused with this proof: a proof proves one leaf only.
        for other in leaves:
            if other != digest:
                assert not verify_inclusion(other, proof, root)


def test_a_batch_of_one() -> None:
    (digest,) = _digests(1)
    proof = inclusion_proof([digest], digest)
    assert proof == MerkleProof(0, 1, ())
    assert merkle_root([digest]) == leaf_hash(digest).hex()
    assert verify_inclusion(digest, proof, merkle_root([digest]))
    # The leaf hash of one digest is not a valid root for another.
    assert not verify_inclusion(_digests(2)[1], proof, merkle_root([digest]))


def test_a_digest_outside_the_batch_has_no_proof() -> None:
    digests = _digests(5)
    with pytest.raises(MerkleError, match="not in the batch"):
        inclusion_proof(digests[:4], digests[4])


def _tree(n: int = 11) -> tuple[list[str], str]:
    digests = sorted(_digests(n, salt="forgery"))
    return digests, merkle_root(digests)


def _refuse(digest: str, proof: MerkleProof, root: str, reason: str) -> None:
    assert not verify_inclusion(digest, proof, root)
    with pytest.raises(MerkleError, match=reason):
        require_inclusion(digest, proof, root)


def test_forged_path_element_is_refused() -> None:
    digests, root = _tree()
    proof = inclusion_proof(digests, digests[4])
    for position in range(len(proof.path)):
        forged = list(proof.path)
        forged[position] = hashlib.sha256(b"forged").hexdigest()
        _refuse(digests[4], MerkleProof(proof.leaf_index, proof.tree_size, tuple(forged)), root, "does not lead")


def test_reordered_path_is_refused() -> None:
    digests, root = _tree()
    proof = inclusion_proof(digests, digests[2])
    assert len(proof.path) >= 3
    for swapped in (proof.path[::-1], (proof.path[1], proof.path[0], *proof.path[2:])):
        _refuse(digests[2], MerkleProof(proof.leaf_index, proof.tree_size, swapped), root, "does not lead")


def test_wrong_leaf_index_is_refused() -> None:
    digests, root = _tree()
    proof = inclusion_proof(digests, digests[6])
    for index in range(len(digests)):
        if index != 6:
            assert not verify_inclusion(digests[6], MerkleProof(index, proof.tree_size, proof.path), root)
    with pytest.raises(MerkleError, match="within its tree_size"):
        require_inclusion(digests[6], MerkleProof(len(digests), len(digests), proof.path), root)
    with pytest.raises(MerkleError, match="within its tree_size"):
        require_inclusion(digests[6], MerkleProof(-1, len(digests), proof.path), root)


def test_wrong_tree_size_is_refused() -> None:
    digests, root = _tree()
    proof = inclusion_proof(digests, digests[9])
    # Sizes that change the path's length or the order of its hashes fail on the hashes alone.
    for size in (1, 9, 10, 13, 16, 17, 32):
        wrong = MerkleProof(proof.leaf_index, size, proof.path)
        assert not verify_inclusion(digests[9], wrong, root)
        assert not verify_inclusion(digests[9], wrong, root, tree_size=len(digests))
    with pytest.raises(MerkleError, match="within its tree_size"):
        require_inclusion(digests[9], MerkleProof(proof.leaf_index, 0, proof.path), root)
    # Leaf 9 of 12 walks the same path as leaf 9 of 11 (RFC 9162 proofs do not bind the size by themselves): only the
    # size the signer stated refuses it.
    same_walk = MerkleProof(proof.leaf_index, 12, proof.path)
    assert verify_inclusion(digests[9], same_walk, root)
    _refuse_sized = pytest.raises(MerkleError, match="not the batch's size")
    with _refuse_sized:
        require_inclusion(digests[9], same_walk, root, tree_size=len(digests))
    assert not verify_inclusion(digests[9], same_walk, root, tree_size=len(digests))
    require_inclusion(digests[9], proof, root, tree_size=len(digests))


@pytest.mark.parametrize("n", range(1, 18))
def test_every_wrong_tree_size_is_refused_when_the_size_is_stated(n: int) -> None:
    digests = sorted(_digests(n, salt=f"size{n}"))
    root = merkle_root(digests)
    for digest in digests:
        proof = inclusion_proof(digests, digest)
        for size in range(1, 20):
            wrong = MerkleProof(proof.leaf_index, size, proof.path) if proof.leaf_index < size else None
            if wrong is not None and size != n:
                assert not verify_inclusion(digest, wrong, root, tree_size=n)


def test_tampered_leaf_is_refused() -> None:
    digests, root = _tree()
    proof = inclusion_proof(digests, digests[3])
    tampered = digests[3][:-1] + ("0" if digests[3][-1] != "0" else "1")
    _refuse(tampered, proof, root, "does not lead")


def test_a_reused_proof_of_another_leaf_is_refused() -> None:
    digests, root = _tree()
    proof_of_first = inclusion_proof(digests, digests[0])
    for other in digests[1:]:
        _refuse(other, proof_of_first, root, "does not lead")
    # Nor does a proof from another batch prove anything under this root.
    elsewhere = sorted(_digests(11, salt="elsewhere"))
    _refuse(digests[0], inclusion_proof(elsewhere, elsewhere[0]), root, "does not lead")


def test_extra_or_missing_path_elements_are_refused() -> None:
    digests, root = _tree()
    proof = inclusion_proof(digests, digests[5])
    extra = MerkleProof(proof.leaf_index, proof.tree_size, (*proof.path, proof.path[0]))
    _refuse(digests[5], extra, root, "longer than")
    missing = MerkleProof(proof.leaf_index, proof.tree_size, proof.path[:-1])
    _refuse(digests[5], missing, root, "shorter than")
    _refuse(digests[5], MerkleProof(proof.leaf_index, proof.tree_size, ()), root, "shorter than")


def test_a_node_cannot_pass_for_a_leaf() -> None:
    # The digest of an inner node, offered as a leaf with the path above that node, is refused (0x00 vs 0x01).
    digests = sorted(_digests(4, salt="node"))
    root = merkle_root(digests)
    left = node_hash(leaf_hash(digests[0]), leaf_hash(digests[1]))
    right = node_hash(leaf_hash(digests[2]), leaf_hash(digests[3]))
    assert not verify_inclusion(left.hex(), MerkleProof(0, 2, (right.hex(),)), root)


def test_a_proof_that_is_not_a_merkle_proof_is_refused() -> None:
    digests, root = _tree(3)
    proof = inclusion_proof(digests, digests[0])
    _refuse(digests[0], proof.as_json(), root, "not a MerkleProof")  # type: ignore[arg-type]
    malformed = MerkleProof(proof.leaf_index, proof.tree_size, ("zz",) * len(proof.path))
    _refuse(digests[0], malformed, root, "path element")


# --- JSON ------------------------------------------------------------------------------------------------------------
def test_proof_json_round_trip() -> None:
    digests, root = _tree(13)
    for digest in digests:
        proof = inclusion_proof(digests, digest)
        again = MerkleProof.from_json(json.loads(json.dumps(proof.as_json())))
        assert again == proof
        assert verify_inclusion(digest, again, root)
    assert proof.as_json() == {"leaf_index": 12, "tree_size": 13, "path": list(proof.path)}


_GOOD = {"leaf_index": 1, "tree_size": 3, "path": ["0" * 64, "f" * 64]}


@pytest.mark.parametrize(
    "obj",
    [
        None,
        [],
        "proof",
        {k: v for k, v in _GOOD.items() if k != "path"},
        {**_GOOD, "root": "0" * 64},
        {**_GOOD, "leaf_index": "1"},
        {**_GOOD, "leaf_index": 1.0},
        {**_GOOD, "leaf_index": True},
        {**_GOOD, "tree_size": None},
        {**_GOOD, "tree_size": 0},
        {**_GOOD, "leaf_index": 3},
        {**_GOOD, "leaf_index": -1},
        {**_GOOD, "path": "0" * 64},
        {**_GOOD, "path": ("0" * 64,)},
        {**_GOOD, "path": ["0" * 63]},
        {**_GOOD, "path": ["F" * 64]},
        {**_GOOD, "path": [None]},
        {**_GOOD, "path": ["0" * 64] * 65},
    ],
)
def test_malformed_proof_json_is_refused(obj: Any) -> None:
    with pytest.raises(MerkleError):
        MerkleProof.from_json(obj)


def test_well_formed_proof_json_parses() -> None:
    assert MerkleProof.from_json(_GOOD) == MerkleProof(1, 3, ("0" * 64, "f" * 64))
