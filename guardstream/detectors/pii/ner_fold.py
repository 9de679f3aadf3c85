"""spaCy's NER embedding layer with its first matrix product folded into the tables.

Why: the NER model's token-to-vector network starts with four hash-embedding tables (the
token's NORM, PREFIX, SUFFIX and SHAPE), each summing 4 rows of 96 floats, concatenated to
384 values and multiplied by a 288 x 384 maxout matrix. That product is a quarter of the
network's arithmetic per token (110 of ~470 thousand multiply-adds), and it is linear in
the table rows: ``W @ concat(sum of rows) = sum over tables of (rows of E_i @ W_i.T)``. With
each table multiplied by its block of ``W`` once at load time (11,000 rows x 288, 12.7 MB),
the layer becomes one gather-and-sum of 16 precomputed rows per token and the maxout
only takes its maximum. Same function up to float rounding (tests compare the layer's
output and the entities against the unfolded model); inference only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from thinc.api import Model

from guardstream.errors import GuardstreamError

__all__ = ["FoldError", "fold_hash_embeddings"]

_Output = tuple[Any, Callable[..., Any]]


class FoldError(GuardstreamError, ValueError):
    """The installed spaCy model does not have the embedding layout this fold is written for."""


def fold_hash_embeddings(model: Model[Any, Any]) -> None:
    """Fold the first hash-embedding + maxout block found in ``model`` (in place).

    Looks for a chain holding ``with_array(concatenate(getitem >> hashembed, ...))`` right
    before ``with_array(maxout >> layernorm ...)``, the layout spaCy's ``MultiHashEmbed``
    builds. Raises :class:`FoldError` when there is none, so a changed model fails at load
    time rather than computing something else.
    """
    for node in model.walk():
        layers = node.layers
        for position in range(len(layers) - 1):
            concat = _sole_child(layers[position])
            maxout = _first_leaf(layers[position + 1])
            if concat is not None and _is_hash_concat(concat) and maxout.name == "maxout":
                _fold(layers[position], concat, layers[position + 1], maxout)
                return
    raise FoldError("no hash-embedding + maxout block in the model")


def _sole_child(node: Model[Any, Any]) -> Model[Any, Any] | None:
    return node.layers[0] if node.name.startswith("with_array") and node.layers else None


def _first_leaf(node: Model[Any, Any]) -> Model[Any, Any]:
    while node.layers:
        node = node.layers[0]
    return node


def _is_hash_concat(node: Model[Any, Any]) -> bool:
    return (bool(node.layers)
            and all(len(part.layers) == 2 and part.layers[1].name == "hashembed"
                    for part in node.layers))


def _fold(wrapper: Model[Any, Any], concat: Model[Any, Any], after: Model[Any, Any],
          maxout: Model[Any, Any]) -> None:
    n_out, n_pieces, n_in = (maxout.get_dim(d) for d in ("nO", "nP", "nI"))
    weights: Any = np.asarray(maxout.get_param("W")).reshape(n_out * n_pieces, n_in)
    parts = [part.layers for part in concat.layers]
    tables: list[Any] = [np.asarray(embed.get_param("E")) for _getter, embed in parts]
    widths = [table.shape[1] for table in tables]
    if sum(widths) != n_in:
        raise FoldError("the embeddings' widths do not add up to the maxout's input")
    # Written block by block into one float32 table: no float64 or stacked temporaries,
    # whose freed pages the allocator would keep in the worker's RSS.
    total_rows = sum(table.shape[0] for table in tables)
    folded_table: Any = np.empty((total_rows, n_out * n_pieces), dtype=np.float32)
    selectors: list[tuple[Model[Any, Any], int, int, int]] = []
    offset = column = 0
    for (getter, embed), table, width in zip(parts, tables, widths, strict=True):
        rows = table.shape[0]
        np.matmul(table, weights[:, column:column + width].T,
                  out=folded_table[offset:offset + rows])
        selectors.append((getter, int(embed.attrs["seed"]), rows, offset))
        offset += rows
        column += width
    bias: Any = np.asarray(maxout.get_param("b"), dtype=np.float32).reshape(n_out * n_pieces)
    ops = maxout.ops

    def gather(model: Model[Any, Any], ids: Any, is_train: bool) -> _Output:
        if is_train:
            raise NotImplementedError("the folded embedding is for inference only")
        if len(ids) == 0:
            return ops.alloc2f(0, n_out * n_pieces), _no_backprop
        keys = [ops.hash(ops.as_contig(getter.predict(ids), dtype="uint64"), seed) % rows
                + start for getter, seed, rows, start in selectors]
        indices: Any = np.ascontiguousarray(np.hstack(keys))
        summed = ops.gather_add(folded_table, indices)
        summed += bias
        return summed, _no_backprop

    def take_max(model: Model[Any, Any], summed: Any, is_train: bool) -> _Output:
        if is_train:
            raise NotImplementedError("the folded embedding is for inference only")
        best, _which = ops.maxout(ops.reshape3f(summed, summed.shape[0], n_out, n_pieces))
        return best, _no_backprop

    wrapper.layers[0] = Model("hashembed-folded", gather, ops=ops,
                              dims={"nO": n_out * n_pieces})
    parent = _parent_of(after, maxout)
    parent.layers[[id(layer) for layer in parent.layers].index(id(maxout))] = Model(
        "maxout-folded", take_max, ops=ops, dims={"nO": n_out, "nP": n_pieces})


def _parent_of(root: Model[Any, Any], child: Model[Any, Any]) -> Model[Any, Any]:
    for node in root.walk():
        if any(layer is child for layer in node.layers):
            return node
    raise FoldError("maxout layer has no parent")


def _no_backprop(*_args: Any) -> Any:
    raise NotImplementedError("the folded embedding is for inference only")
