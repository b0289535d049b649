"""msgpack codecs of the two protocols, byte-compatible with GR00T's and openpi's own.

Both refuse pickle: GR00T's arrays are `.npy` bytes loaded with `allow_pickle=False`, openpi's are raw
buffers with a dtype string, and object, void and complex dtypes are refused on both sides (openpi's
`msgpack_numpy.pack_array` refuses the same kinds), so a request can never run code on the server.
"""

from __future__ import annotations

import io
from typing import Any

import msgpack
import numpy as np

from egosim.policies.remote import RemotePolicyError

_BAD_KINDS = ("V", "O", "c")


def _check_dtype(dtype: np.dtype) -> None:
    if dtype.kind in _BAD_KINDS or dtype.hasobject:
        raise RemotePolicyError(f"arrays of dtype {dtype} cannot cross the wire (object, void and complex are refused)")


# --- GR00T (Isaac-GR00T gr00t/policy/server_client.py: MsgSerializer) ---------------------------------

def _gr00t_encode(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        _check_dtype(obj.dtype)
        buf = io.BytesIO()
        np.save(buf, obj, allow_pickle=False)
        return {"__ndarray_class__": True, "as_npy": buf.getvalue()}
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _gr00t_decode(obj: Any) -> Any:
    if not isinstance(obj, dict):
        return obj
    if "__ndarray_class__" in obj:
        try:
            arr = np.load(io.BytesIO(obj["as_npy"]), allow_pickle=False)
        except Exception as exc:  # noqa: BLE001 - any malformed payload is one wire error
            raise RemotePolicyError(f"malformed array on the wire: {exc}") from None
        _check_dtype(arr.dtype)
        return arr
    if "__ModalityConfig_class__" in obj:
        return obj["as_json"]  # egosim has no ModalityConfig class; its JSON form carries everything
    return obj


def gr00t_packb(obj: Any) -> bytes:
    """Packs `obj` as GR00T's `MsgSerializer.to_bytes` does."""
    return msgpack.packb(obj, default=_gr00t_encode)


def gr00t_unpackb(data: bytes) -> Any:
    """Unpacks GR00T's `MsgSerializer` bytes; raises `RemotePolicyError` on garbage."""
    try:
        return msgpack.unpackb(data, object_hook=_gr00t_decode)
    except RemotePolicyError:
        raise
    except Exception as exc:  # noqa: BLE001 - msgpack raises many types on garbage
        raise RemotePolicyError(f"undecodable msgpack message ({len(data)} bytes): {exc}") from None


def modality_config_json(modality_keys: list[str], delta_indices: list[int]) -> dict[str, Any]:
    """One GR00T `ModalityConfig` as it travels (`{"__ModalityConfig_class__": True, "as_json": ...}`)."""
    return {"__ModalityConfig_class__": True, "as_json": {
        "delta_indices": list(delta_indices), "modality_keys": list(modality_keys),
        "sin_cos_embedding_keys": None, "mean_std_embedding_keys": None, "action_configs": None}}


# --- openpi (openpi_client/msgpack_numpy.py) -----------------------------------------------------------

def _openpi_encode(obj: Any) -> Any:
    if isinstance(obj, (np.ndarray, np.generic)):
        _check_dtype(obj.dtype)
    if isinstance(obj, np.ndarray):
        return {b"__ndarray__": True, b"data": obj.tobytes(), b"dtype": obj.dtype.str, b"shape": obj.shape}
    if isinstance(obj, np.generic):
        return {b"__npgeneric__": True, b"data": obj.item(), b"dtype": obj.dtype.str}
    return obj


def _openpi_decode(obj: dict) -> Any:
    try:
        if b"__ndarray__" in obj:
            dtype = np.dtype(obj[b"dtype"])
            _check_dtype(dtype)
            return np.ndarray(buffer=obj[b"data"], dtype=dtype, shape=obj[b"shape"])
        if b"__npgeneric__" in obj:
            dtype = np.dtype(obj[b"dtype"])
            _check_dtype(dtype)
            return dtype.type(obj[b"data"])
    except RemotePolicyError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise RemotePolicyError(f"malformed array on the wire: {exc}") from None
    return obj


def openpi_packb(obj: Any) -> bytes:
    """Packs `obj` as `openpi_client.msgpack_numpy.packb` does."""
    return msgpack.packb(obj, default=_openpi_encode)


def openpi_unpackb(data: bytes) -> Any:
    """Unpacks openpi msgpack-numpy bytes; raises `RemotePolicyError` on garbage."""
    try:
        return msgpack.unpackb(data, object_hook=_openpi_decode)
    except RemotePolicyError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise RemotePolicyError(f"undecodable msgpack message ({len(data)} bytes): {exc}") from None
