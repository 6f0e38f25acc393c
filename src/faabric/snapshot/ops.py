"""The arithmetic of typed merges: what a remote host sends for an element, how main applies it.

For an element whose snapshot value is `o` and whose value on a remote host is `r`, the remote
sends a *contribution* and the main host folds it into its own current value `m`:

    op        contribution            apply
    SUM       r - o                   m + c
    SUBTRACT  o - r                   m - c
    PRODUCT   r / o  (1 when o = 0)   m * c
    MAX, MIN  r                       max(m, c), min(m, c)

so N remote partial updates combine as if they had all run on main: sums add up, products
multiply, extrema compare. Integers wrap modulo 2^bits, as in C. For integer PRODUCT, `r / o`
is taken in the ring of integers modulo 2^bits (`o`'s odd part is inverted, its power of two
divided out of `r`), which is exact whenever `r = o * p` for some integer `p`, wrap-around
included. Element-wise numpy only; knows nothing of memory layout or of the wire.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from faabric.snapshot.regions import DataType, MergeOp

Elements = npt.NDArray[Any]


def _unsigned(values: Elements) -> npt.NDArray[np.unsignedinteger]:
    return values.view(np.dtype(f"<u{values.dtype.itemsize}"))


def contribution(op: MergeOp, data_type: DataType, remote: Elements,
                 original: Elements) -> Elements:
    """What the remote sends for elements that changed from `original` to `remote`."""
    is_int = data_type in (DataType.INT32, DataType.INT64)
    if op is MergeOp.SUM:
        return _unsigned(remote) - _unsigned(original) if is_int else remote - original
    if op is MergeOp.SUBTRACT:
        return _unsigned(original) - _unsigned(remote) if is_int else original - remote
    if op is MergeOp.PRODUCT:
        return _int_factor(_unsigned(remote), _unsigned(original)) if is_int \
            else _float_factor(remote, original)
    if op in (MergeOp.MAX, MergeOp.MIN):
        return remote.copy()
    raise ValueError(f"{op.name} is not a typed merge op")


def apply(op: MergeOp, data_type: DataType, main: Elements, index: npt.NDArray[np.intp],
          values: Elements) -> None:
    """Fold contributions into `main[index]` in place (indices are distinct)."""
    is_int = data_type in (DataType.INT32, DataType.INT64)
    target = _unsigned(main) if is_int and op is not MergeOp.MAX and op is not MergeOp.MIN \
        else main
    values = values.view(target.dtype)
    current = target[index]
    if op is MergeOp.SUM:
        target[index] = current + values
    elif op is MergeOp.SUBTRACT:
        target[index] = current - values
    elif op is MergeOp.PRODUCT:
        target[index] = current * values
    elif op is MergeOp.MAX:
        target[index] = np.maximum(current, values)
    elif op is MergeOp.MIN:
        target[index] = np.minimum(current, values)
    else:
        raise ValueError(f"{op.name} is not a typed merge op")


def _float_factor(remote: Elements, original: Elements) -> Elements:
    factor = np.ones_like(remote)
    nonzero = original != 0
    np.divide(remote, original, out=factor, where=nonzero)
    return factor


def _int_factor(remote: npt.NDArray[np.unsignedinteger],
                original: npt.NDArray[np.unsignedinteger]) -> npt.NDArray[np.unsignedinteger]:
    """p with original * p = remote (mod 2^bits), up to bits that cannot matter.

    With original = 2^k * u (u odd), p = (remote >> k) * u^-1; any value of main built by
    multiplying `original` carries the factor 2^k, so p's top k bits never show.
    """
    zero = original == 0
    lowest = original & (~original + 1)
    lowest[zero] = 1
    odd = original // lowest
    inverse = odd.copy()
    for _ in range(5):  # Newton: correct bits double from 3 to 96
        inverse *= 2 - odd * inverse
    factor = (remote // lowest) * inverse
    factor[zero] = 1
    return factor
