"""numpy arrays and scalars, pandas frames, series and indexes in ``ckmsgpack``.

Neither library is imported by this module: encoders only run for objects
whose class comes from an already-imported numpy/pandas, and decoders import
the library on first use (both are on the builtin allowlist).

numpy arrays are stored as ``[dtype.str, shape, raw C-order bytes]``, or with
a list of items instead of bytes for object arrays. Structured dtypes are
refused. pandas objects are stored column by column, each column as one of:

- ``["np", ndarray]`` for numpy dtypes other than object,
- ``["obj", items]`` for object columns (items serialized one by one),
- ``["str", storage, na_is_nan, items]`` for `StringDtype` (incl. pandas 3's ``str``),
- ``["cat", categories index, codes, ordered]`` for categoricals,
- ``["dttz", unit, tz, int64 ndarray]`` for time-zone-aware datetimes,
- ``["masked", dtype name, data, mask]`` for nullable ints, floats and booleans.

Indexes are ``["range", start, stop, step, name]``, ``["multi", levels, codes,
names]`` or ``["index", column, name, freq]``. Other pandas dtypes (periods,
intervals, sparse, Arrow) are refused when writing, with a message naming them.
"""

from __future__ import annotations

import importlib
import math
import sys
from typing import Any

from msgpack import ExtType

from checkpointkit.errors import CorruptDataError, SerializationError
from checkpointkit.serde import _wire as w
from checkpointkit.serde._stdlib import Encoder, Pack, Unpack, ext

__all__ = ["SCIENTIFIC_DECODERS", "scientific_encoder"]

_PD_FRAME, _PD_SERIES, _PD_INDEX = 0, 1, 2
_MASKED_DTYPES = frozenset(
    {"Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32", "UInt64"}
    | {"Float32", "Float64", "boolean"}
)
_MAX_NDIM = 64


def _import(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise SerializationError(
            f"blob holds a {name} value, but {name} is not installed: pip install {name}"
        ) from exc


def _unsupported(what: str) -> SerializationError:
    return SerializationError(
        f"{what} is not supported by MsgpackSerializer; convert it first "
        "(e.g. .astype(object)) or register a type with to_state/from_state"
    )


def _corrupt(what: str) -> CorruptDataError:
    return CorruptDataError(f"stored {what} is malformed")


# -- numpy ---------------------------------------------------------------------------


def _enc_ndarray(pack: Pack, arr: Any) -> ExtType:
    dtype = arr.dtype
    if dtype.fields is not None or dtype.subdtype is not None:
        raise _unsupported(f"numpy structured dtype {dtype!r}")
    shape = list(arr.shape)
    if dtype.kind == "O":
        return ext(w.EXT_NDARRAY, pack([dtype.str, shape, list(arr.ravel(order="C"))]))
    return ext(w.EXT_NDARRAY, pack([dtype.str, shape, arr.tobytes(order="C")]))


def _dec_ndarray(unpack: Unpack, data: bytes) -> Any:
    np = _import("numpy")
    dtype_str, shape, body = _list(unpack(data), "numpy array", 3, 3)
    if type(dtype_str) is not str or type(shape) is not list or len(shape) > _MAX_NDIM:
        raise _corrupt("numpy array")
    if not all(type(n) is int and n >= 0 for n in shape):
        raise _corrupt("numpy array shape")
    count = math.prod(shape)
    dtype = _plain_dtype(np, dtype_str)
    if dtype.kind == "O":
        if type(body) is not list or len(body) != count:
            raise _corrupt("numpy object array")
        return _object_array(np, body).reshape(shape)
    if type(body) is not bytes or dtype.hasobject or dtype.itemsize == 0:
        raise _corrupt("numpy array")
    # Checked before numpy sees it, so a huge declared shape allocates nothing.
    if len(body) != count * dtype.itemsize:
        raise _corrupt(f"numpy array ({len(body)} bytes for shape {shape} of {dtype})")
    return np.frombuffer(body, dtype=dtype).reshape(shape).copy()


def _plain_dtype(np: Any, dtype_str: str) -> Any:
    """Parse a stored dtype, refusing structured and sub-array ones (never written)."""
    dtype = np.dtype(dtype_str)
    if dtype.fields is not None or dtype.subdtype is not None:
        raise _corrupt(f"numpy dtype {dtype_str!r}")
    return dtype


def _object_array(np: Any, items: list[Any]) -> Any:
    # Item by item: numpy would otherwise turn nested lists into extra dimensions.
    out = np.empty(len(items), dtype=object)
    for i, item in enumerate(items):
        out[i] = item
    return out


def _enc_npscalar(pack: Pack, value: Any) -> ExtType:
    dtype = value.dtype
    if dtype.hasobject or dtype.fields is not None:
        raise _unsupported(f"numpy scalar of dtype {dtype!r}")
    return ext(w.EXT_NPSCALAR, pack([dtype.str, value.tobytes()]))


def _dec_npscalar(unpack: Unpack, data: bytes) -> Any:
    np = _import("numpy")
    dtype_str, body = _list(unpack(data), "numpy scalar", 2, 2)
    if type(dtype_str) is not str or type(body) is not bytes:
        raise _corrupt("numpy scalar")
    dtype = _plain_dtype(np, dtype_str)
    if dtype.hasobject or dtype.itemsize == 0 or len(body) != dtype.itemsize:
        raise _corrupt("numpy scalar")
    return np.frombuffer(body, dtype=dtype)[0]


# -- pandas: columns -----------------------------------------------------------------


def _column_spec(pd: Any, np: Any, values: Any) -> list[Any]:
    """Describe the values of a Series or Index (see the module docstring)."""
    dtype = values.dtype
    if isinstance(dtype, np.dtype):
        if dtype.kind == "O":
            return ["obj", list(np.asarray(values, dtype=object))]
        if dtype.fields is not None:
            raise _unsupported(f"pandas column of structured dtype {dtype!r}")
        return ["np", np.asarray(values)]
    array = values.array
    if isinstance(dtype, pd.StringDtype):
        na_is_nan = dtype.na_value is not pd.NA
        items = array.to_numpy(dtype=object, na_value=None).tolist()
        return ["str", dtype.storage, na_is_nan, items]
    if isinstance(dtype, pd.CategoricalDtype):
        categories = _index_spec(pd, np, dtype.categories)
        return ["cat", categories, np.asarray(array.codes), bool(dtype.ordered)]
    if isinstance(dtype, pd.DatetimeTZDtype):
        return ["dttz", dtype.unit, dtype.tz, np.asarray(pd.DatetimeIndex(values).asi8)]
    if dtype.name in _MASKED_DTYPES:
        return ["masked", dtype.name, np.asarray(array._data), np.asarray(array._mask)]
    raise _unsupported(f"pandas dtype {dtype!r}")


def _column(pd: Any, np: Any, spec: Any) -> tuple[Any, Any]:
    """Rebuild ``(values, dtype)`` from a column spec."""
    kind = _list(spec, "pandas column", 2, 5)[0]
    if kind == "np" and len(spec) == 2 and isinstance(spec[1], np.ndarray):
        return spec[1], spec[1].dtype
    if kind == "obj" and len(spec) == 2 and type(spec[1]) is list:
        return _object_array(np, spec[1]), object
    if kind == "str" and len(spec) == 4 and type(spec[3]) is list:
        storage, na_is_nan = spec[1], spec[2]
        if storage not in ("python", "pyarrow") or type(na_is_nan) is not bool:
            raise _corrupt("pandas string column")
        dtype = pd.StringDtype(storage, na_value=np.nan) if na_is_nan else pd.StringDtype(storage)
        return pd.array(spec[3], dtype=dtype), dtype
    if kind == "cat" and len(spec) == 4 and isinstance(spec[2], np.ndarray):
        dtype = pd.CategoricalDtype(_index(pd, np, spec[1]), ordered=bool(spec[3]))
        return pd.Categorical.from_codes(spec[2], dtype=dtype), dtype
    if kind == "dttz" and len(spec) == 4 and isinstance(spec[3], np.ndarray):
        unit, tz, i8 = spec[1], spec[2], spec[3]
        if unit not in ("s", "ms", "us", "ns") or i8.dtype != np.int64:
            raise _corrupt("pandas datetime column")
        naive = pd.DatetimeIndex(i8.view(f"M8[{unit}]"))
        values = naive.tz_localize("UTC").tz_convert(tz).array
        return values, values.dtype
    if kind == "masked" and len(spec) == 4 and spec[1] in _MASKED_DTYPES:
        dtype = pd.api.types.pandas_dtype(spec[1])
        data, mask = spec[2], spec[3]
        if not isinstance(data, np.ndarray) or not isinstance(mask, np.ndarray):
            raise _corrupt("pandas nullable column")
        return dtype.construct_array_type()(data, mask), dtype
    raise _corrupt("pandas column")


# -- pandas: indexes -----------------------------------------------------------------


def _index_spec(pd: Any, np: Any, index: Any) -> list[Any]:
    if type(index) is pd.RangeIndex:
        return ["range", index.start, index.stop, index.step, index.name]
    if type(index) is pd.MultiIndex:
        levels = [_index_spec(pd, np, level) for level in index.levels]
        codes = [np.asarray(c) for c in index.codes]
        return ["multi", levels, codes, list(index.names)]
    freq = getattr(index, "freqstr", None)
    return ["index", _column_spec(pd, np, index), index.name, freq]


def _index(pd: Any, np: Any, spec: Any) -> Any:
    kind = _list(spec, "pandas index", 4, 5)[0]
    if kind == "range" and len(spec) == 5:
        start, stop, step = (s if type(s) is int else None for s in spec[1:4])
        if start is None or stop is None or step is None:
            raise _corrupt("pandas range index")
        return pd.RangeIndex(start, stop, step, name=spec[4])
    if kind == "multi" and len(spec) == 4:
        levels = [_index(pd, np, level) for level in _list(spec[1], "pandas multi-index")]
        codes = _list(spec[2], "pandas multi-index")
        return pd.MultiIndex(levels=levels, codes=codes, names=_list(spec[3], "names"))
    if kind == "index" and len(spec) == 4:
        values, dtype = _column(pd, np, spec[1])
        index = pd.Index(values, dtype=dtype, name=spec[2])
        if spec[3] is not None:
            index = type(index)(index, freq=spec[3])
        return index
    raise _corrupt("pandas index")


# -- pandas: frames and series -------------------------------------------------------


def _enc_pandas(pack: Pack, obj: Any) -> ExtType:
    pd, np = sys.modules["pandas"], sys.modules["numpy"]
    attrs = dict(obj.attrs) if getattr(obj, "attrs", None) else None
    if isinstance(obj, pd.DataFrame):
        columns = [_column_spec(pd, np, obj.iloc[:, i]) for i in range(obj.shape[1])]
        body = [
            _PD_FRAME,
            _index_spec(pd, np, obj.columns),
            columns,
            _index_spec(pd, np, obj.index),
            attrs,
        ]
    elif isinstance(obj, pd.Series):
        body = [
            _PD_SERIES,
            _column_spec(pd, np, obj),
            _index_spec(pd, np, obj.index),
            obj.name,
            attrs,
        ]
    else:
        body = [_PD_INDEX, _index_spec(pd, np, obj)]
    return ext(w.EXT_PANDAS, pack(body))


def _dec_pandas(unpack: Unpack, data: bytes) -> Any:
    pd, np = _import("pandas"), _import("numpy")
    body = _list(unpack(data), "pandas value", 2, 5)
    kind = body[0]
    if kind == _PD_INDEX and len(body) == 2:
        return _index(pd, np, body[1])
    if kind == _PD_SERIES and len(body) == 5:
        values, dtype = _column(pd, np, body[1])
        out = pd.Series(values, index=_index(pd, np, body[2]), dtype=dtype, name=body[3])
    elif kind == _PD_FRAME and len(body) == 5:
        columns = _index(pd, np, body[1])
        index = _index(pd, np, body[3])
        specs = _list(body[2], "pandas columns")
        if len(specs) != len(columns):
            raise _corrupt("pandas frame (column count)")
        series = {}
        for i, spec in enumerate(specs):
            values, dtype = _column(pd, np, spec)
            series[i] = pd.Series(values, index=index, dtype=dtype)
        out = pd.DataFrame(series, index=index)
        out.columns = columns
    else:
        raise _corrupt("pandas value")
    if body[4] is not None:
        if type(body[4]) is not dict:
            raise _corrupt("pandas attrs")
        out.attrs = body[4]
    return out


def _list(value: Any, what: str, low: int = 0, high: int = 1 << 62) -> list[Any]:
    if type(value) is not list or not low <= len(value) <= high:
        raise _corrupt(what)
    return value


def scientific_encoder(cls: type) -> Encoder | None:
    """Return the encoder for a numpy/pandas class, or ``None`` if it is neither."""
    root = cls.__module__.partition(".")[0]
    if root == "numpy":
        np = sys.modules.get("numpy")
        if np is None:
            return None
        if cls is np.ndarray:
            return _enc_ndarray
        if issubclass(cls, np.generic):
            return _enc_npscalar
        return None
    if root == "pandas":
        pd = sys.modules.get("pandas")
        if pd is None:
            return None
        # Exact pandas classes only (the module root was checked above).
        if cls in (pd.DataFrame, pd.Series) or issubclass(cls, pd.Index):
            return _enc_pandas
    return None


SCIENTIFIC_DECODERS = {
    w.EXT_NDARRAY: _dec_ndarray,
    w.EXT_NPSCALAR: _dec_npscalar,
    w.EXT_PANDAS: _dec_pandas,
}
