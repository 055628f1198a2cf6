"""The Open Inference Protocol (V2, as KServe, MLServer and Triton speak it) over HTTP/REST.

Routes: ``GET /v2/health/live``, ``/v2/health/ready``, ``/v2`` (server metadata),
``/v2/models/{name}[/versions/{version}]`` (model metadata), ``…/ready`` and
``POST …/infer``. The served model answers to its name (the registered model's, else the run's
or the pickle's — what ``X-Model-Name`` says) and to ``model``; ``/versions/{v}`` answers for the
registry version serving.

An inference request's inputs are read in one of two layouts:

1. one tensor per column, named by column, of shape ``[n]`` or ``[n, 1]``, in any order;
2. a single 2-D tensor ``[n, k]`` (any name) whose rows hold the signature's ``k`` columns in
   order.

Tensor data is JSON (flat in row-major order, or nested) or, with Triton's binary tensor
extension, raw little-endian bytes after the JSON header (``Inference-Header-Content-Length``).
Either way the rows are checked against the signature as ``/invocations`` checks them and go
through the same micro-batched predict. Answers are binary when the request asks for it
(``binary_data_output``, or ``binary_data`` on a requested output), JSON otherwise.

Errors are ``{"error": "<message>", "code": …}`` (see :mod:`hokusai.serving.shapes`): 400 for a
request that is not a well-formed V2 request, 422 for inputs that do not fit the model, 404 for
an unknown model, version or output; never a 5xx for bad input.
"""

from __future__ import annotations

import math
import struct
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from hokusai import __version__, errors
from hokusai.http.bodies import parse_json
from hokusai.serving.inputs import Columns, check_matrix, check_size, name_column_difference
from hokusai.serving.predictor import LoadedModel
from hokusai.serving.routes import PartsDep, Prepared, serve_prediction, serving_model

__all__ = ["ALIAS", "DATATYPES", "router"]

ALIAS = "model"
"""The name every served model also answers to."""
HEADER_LENGTH = "inference-header-content-length"
EXTENSIONS = ["binary_tensor_data"]

#: V2 datatype → numpy dtype (little-endian, as the binary extension lays tensors out).
DATATYPES: Mapping[str, np.dtype[Any]] = {
    "BOOL": np.dtype("?"),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
}
_BY_DTYPE = {dtype.newbyteorder("="): name for name, dtype in DATATYPES.items()}
#: MLflow signature column types → V2 datatypes.
_MLFLOW_TYPES = {
    "double": "FP64",
    "float": "FP32",
    "long": "INT64",
    "integer": "INT32",
    "boolean": "BOOL",
    "string": "BYTES",
    "binary": "BYTES",
    "datetime": "BYTES",
}
#: JSON kinds a tensor of each family may hold (numpy ``dtype.kind`` of the parsed data).
_KINDS = {"BOOL": "b", "INT": "iu", "UINT": "iu", "FP": "iuf"}
#: Request parameters that belong to the protocol or to other servers' clients, never to the
#: model: MLServer's content types, Triton's binary switch and scheduling hints.
_PROTOCOL_PARAMETERS = {
    "binary_data_output",
    "content_type",
    "headers",
    "priority",
    "timeout",
    "sequence_id",
    "sequence_start",
    "sequence_end",
}

router = APIRouter(prefix="/v2")


# -- inference routes -------------------------------------------------------------------------
# Declared first: FastAPI tries a router's routes in declaration order, twice per request (to
# match, then to handle), so the hot route matches at the first try (~30 µs less a request).


@router.post("/models/{name}/infer")
async def infer(name: str, request: Request, parts: PartsDep) -> Response:
    return await _infer(request, parts, name, None)


@router.post("/models/{name}/versions/{version}/infer")
async def infer_version(name: str, version: str, request: Request, parts: PartsDep) -> Response:
    return await _infer(request, parts, name, version)


# -- health and metadata ----------------------------------------------------------------------


@router.get("/health/live")
async def live() -> dict[str, bool]:
    return {"live": True}


@router.get("/health/ready")
async def ready(parts: PartsDep) -> JSONResponse:
    loaded = parts.manager.current is not None
    return JSONResponse({"ready": loaded}, status_code=200 if loaded else 503)


@router.get("")
async def server_metadata() -> dict[str, Any]:
    return {"name": "hokusai", "version": __version__, "extensions": EXTENSIONS}


@router.get("/models/{name}")
async def model_metadata(name: str, parts: PartsDep) -> dict[str, Any]:
    return metadata(_addressed(parts, name, None))


@router.get("/models/{name}/versions/{version}")
async def model_version_metadata(name: str, version: str, parts: PartsDep) -> dict[str, Any]:
    return metadata(_addressed(parts, name, version))


@router.get("/models/{name}/ready")
async def model_ready(name: str, parts: PartsDep) -> JSONResponse:
    return _readiness(parts, name, None)


@router.get("/models/{name}/versions/{version}/ready")
async def model_version_ready(name: str, version: str, parts: PartsDep) -> JSONResponse:
    return _readiness(parts, name, version)


def _readiness(parts: Any, name: str, version: str | None) -> JSONResponse:
    if parts.manager.current is None:
        return JSONResponse({"name": name, "ready": False}, status_code=503)
    model = _addressed(parts, name, version)
    return JSONResponse({"name": _name(model), "ready": True})


def metadata(model: LoadedModel) -> dict[str, Any]:
    """The model's V2 metadata: inputs from the signature's columns, the output it answers."""
    names = model.columns.names
    types = model.columns.types or (None,) * len(names or ())
    if names is None:
        inputs = [{"name": "input-0", "datatype": "FP64", "shape": [-1, -1]}]
    else:
        inputs = [
            {"name": name, "datatype": _MLFLOW_TYPES.get(kind or "", "FP64"), "shape": [-1]}
            for name, kind in zip(names, types, strict=True)
        ]
    return {
        "name": _name(model),
        "versions": [model.source.version] if model.source.version else [],
        "platform": f"mlflow-{model.flavor}",
        "inputs": inputs,
        "outputs": [
            {
                "name": _output_name(model),
                "datatype": _datatype(model.output_dtype) if model.output_dtype else "FP64",
                "shape": [-1],
            }
        ],
    }


# -- inference --------------------------------------------------------------------------------


async def _infer(request: Request, parts: Any, name: str, version: str | None) -> Response:
    def prepare(model: LoadedModel, body: bytes, request: Request) -> Prepared:
        _check_address(model, name, version)
        return read_request(body, request.headers.get(HEADER_LENGTH), model, parts.serving)

    return await serve_prediction(
        request,
        parts,
        protocol="v2",
        route="/v2/models/{name}/infer",
        prepare=prepare,
        render=render,
    )


@dataclass
class _InferContext:
    """What the answer needs from the request."""

    id: str
    outputs: list[tuple[str, bool]] = field(default_factory=list)
    """Requested outputs: (name, binary)."""
    binary: bool = False
    """``binary_data_output``: every output binary unless requested otherwise."""


def read_request(
    body: bytes, header_length: str | None, model: LoadedModel, serving: Any
) -> Prepared:
    """An inference request (JSON, or JSON header + binary tensors) → the validated matrix."""
    document, binary = _split_body(body, header_length)
    if not isinstance(document, dict):
        raise errors.InvalidRequestError("The inference request must be a JSON object.")
    inputs = document.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise errors.InvalidRequestError("The inference request needs 'inputs': a non-empty list.")
    parameters = _parameters(document.get("parameters"), "parameters")
    matrix = (
        None if binary else plain_columns(inputs, model.columns, max_rows=serving.max_batch_rows)
    )
    if matrix is None:
        tensors = _tensors(inputs, binary)
        matrix = _matrix(tensors, model.columns, max_rows=serving.max_batch_rows)
    request_id = document.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise errors.InvalidRequestError("'id' must be a string.")
    context = _InferContext(
        id=request_id if request_id is not None else str(uuid.uuid4()),
        outputs=_requested_outputs(document.get("outputs"), model),
        binary=parameters.get("binary_data_output") is True,
    )
    params = {k: v for k, v in parameters.items() if k not in _PROTOCOL_PARAMETERS}
    return Prepared(matrix, params or None, context)


#: Datatypes :func:`plain_columns` reads: every JSON number (a float64, or an int within 64 bits)
#: fits FP64 unchecked; FP16 and FP32 need the range check of the general path.
_PLAIN_DATATYPES = frozenset({"FP64"})
_INT64_MIN, _UINT64_END = -(2**63), 2**64
_NONE: dict[str, Any] = {}


def plain_columns(
    inputs: list[Any], columns: Columns, *, max_rows: int
) -> np.ndarray[Any, Any] | None:
    """Layout 1 as clients send it, read with one numpy call; None for any other request.

    Every signature column exactly once, a floating-point datatype, shape ``[n]`` or ``[n, 1]``
    (the same n), flat JSON numbers (no booleans, ints within 64 bits), no parameters: then
    the matrix is the one :func:`_tensors` + :func:`_matrix` build, ~10x cheaper (that path
    converts and checks each tensor on its own: ~150 µs for a 30-column row, as much as the rest
    of the request). Anything else returns None and goes the general way, which also words
    every error.
    """
    names = columns.names
    if names is None or len(inputs) != len(names):
        return None
    by_name: dict[Any, list[Any]] = {}
    rows = -1
    for spec in inputs:
        if type(spec) is not dict:
            return None
        data, shape = spec.get("data"), spec.get("shape")
        if (
            spec.get("datatype") not in _PLAIN_DATATYPES
            or type(data) is not list
            or type(shape) is not list
            or spec.get("parameters", _NONE) != _NONE
        ):
            return None
        rows_here = len(data)
        # type() checks too: in Python True == 1, and the general path refuses a bool dimension
        if len(shape) == 2 and (shape[1] != 1 or type(shape[1]) is not int):
            return None
        if not 1 <= len(shape) <= 2 or shape[0] != rows_here or type(shape[0]) is not int:
            return None
        if rows != rows_here and rows != -1:
            return None
        rows = rows_here
        by_name[spec.get("name")] = data
    if len(by_name) != len(names) or not all(name in by_name for name in names):
        return None  # a missing, repeated or unknown name
    ordered = [by_name[name] for name in names]
    kinds = {type(value) for data in ordered for value in data}
    if not kinds <= {float, int}:
        return None
    if int in kinds and not all(
        _INT64_MIN <= v < _UINT64_END for data in ordered for v in data if type(v) is int
    ):
        return None
    check_size(rows, max_rows)
    matrix = np.ascontiguousarray(np.array(ordered, dtype=np.float64).reshape(len(names), rows).T)
    return check_matrix(matrix, names, columns)


def _split_body(body: bytes, header_length: str | None) -> tuple[Any, bytes]:
    if header_length is None:
        return parse_json(body), b""
    try:
        length = int(header_length)
    except ValueError:
        length = -1
    if not 0 < length <= len(body):
        raise errors.InvalidRequestError(
            f"Inference-Header-Content-Length is {header_length!r}; it must be the length of the "
            f"JSON header, between 1 and the body's {len(body)} bytes."
        )
    return parse_json(body[:length]), body[length:]


def _parameters(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise errors.InvalidRequestError(f"'{where}' must be a JSON object.")
    return value


@dataclass
class _Tensor:
    name: str
    shape: tuple[int, ...]
    datatype: str
    values: np.ndarray[Any, Any]
    """The data, flat, as parsed (numeric kinds only reach the matrix)."""


def _tensors(inputs: list[Any], binary: bytes) -> list[_Tensor]:
    tensors: list[_Tensor] = []
    offset = 0
    seen: set[str] = set()
    for index, spec in enumerate(inputs):
        if not isinstance(spec, dict):
            raise errors.InvalidRequestError(f"inputs[{index}] must be a JSON object.")
        name = spec.get("name")
        if not isinstance(name, str) or not name:
            raise errors.InvalidRequestError(f"inputs[{index}] needs a 'name' (a string).")
        if name in seen:
            raise errors.InvalidRequestError(f"Input {name!r} is sent more than once.")
        seen.add(name)
        shape = _shape(spec.get("shape"), name)
        datatype = spec.get("datatype")
        if not isinstance(datatype, str) or (datatype not in DATATYPES and datatype != "BYTES"):
            raise errors.InvalidRequestError(
                f"Input {name!r} has datatype {datatype!r}; V2 datatypes are "
                f"{', '.join([*DATATYPES, 'BYTES'])}."
            )
        size = _binary_size(_parameters(spec.get("parameters"), f"inputs[{index}].parameters"))
        if size is not None:
            if offset + size > len(binary):
                raise errors.InvalidRequestError(
                    f"Input {name!r} declares {size} bytes of binary data; only "
                    f"{len(binary) - offset} remain in the body."
                )
            values = _from_bytes(binary[offset : offset + size], datatype, name)
            offset += size
        else:
            if "data" not in spec:
                raise errors.InvalidRequestError(
                    f"Input {name!r} has no 'data' (nor a binary_data_size parameter)."
                )
            values = _from_json(spec["data"], datatype, name)
        count = math.prod(shape)
        if values.size != count:
            raise errors.InvalidRequestError(
                f"Input {name!r} has shape {list(shape)} ({count} values) but holds "
                f"{values.size} values."
            )
        tensors.append(_Tensor(name, shape, datatype, values))
    if offset != len(binary):
        raise errors.InvalidRequestError(
            f"The body has {len(binary) - offset} bytes of binary data no input claims."
        )
    return tensors


def _shape(value: Any, name: str) -> tuple[int, ...]:
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in value)
    ):
        raise errors.InvalidRequestError(
            f"Input {name!r} needs a 'shape': a non-empty list of non-negative integers."
        )
    return tuple(value)


def _binary_size(parameters: dict[str, Any]) -> int | None:
    size = parameters.get("binary_data_size")
    if size is None:
        return None
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise errors.InvalidRequestError("binary_data_size must be a non-negative integer.")
    return size


def _from_json(data: Any, datatype: str, name: str) -> np.ndarray[Any, Any]:
    if not isinstance(data, list):
        data = [data]
    try:
        values = np.asarray(data)
    except (ValueError, TypeError) as exc:  # ragged nesting
        raise errors.InvalidRequestError(
            f"Input {name!r} data is ragged: nested lists must be of equal lengths."
        ) from exc
    if datatype == "BYTES":
        return values.ravel()
    family = datatype.rstrip("0123456789")
    if values.size and values.dtype.kind not in _KINDS[family]:
        if values.dtype.kind == "O" and any(v is None for v in values.ravel()):
            raise errors.InvalidInputError(f"Input {name!r} has a missing value.", column=name)
        raise errors.InvalidRequestError(
            f"Input {name!r} is declared {datatype} but holds {_describe_kind(values)} values."
        )
    if family in ("INT", "UINT") and values.size:
        limits = np.iinfo(DATATYPES[datatype])
        if values.min() < limits.min or values.max() > limits.max:
            raise errors.InvalidRequestError(
                f"Input {name!r} holds values outside the range of {datatype}."
            )
    if family == "FP" and values.size:
        with np.errstate(all="ignore"):  # an overflow is reported below, not warned about
            narrowed = values.astype(DATATYPES[datatype])
        if not np.isfinite(narrowed).all():
            raise errors.InvalidRequestError(
                f"Input {name!r} holds values outside the range of {datatype}."
            )
    return values.ravel()


def _describe_kind(values: np.ndarray[Any, Any]) -> str:
    kind: str = {"f": "non-integer", "U": "string", "b": "boolean", "O": "mixed or nested"}.get(
        values.dtype.kind, values.dtype.kind
    )
    return kind


def _from_bytes(raw: bytes, datatype: str, name: str) -> np.ndarray[Any, Any]:
    if datatype == "BYTES":
        return np.asarray(_bytes_elements(raw, name), dtype=object)
    dtype = DATATYPES[datatype]
    if len(raw) % dtype.itemsize:
        raise errors.InvalidRequestError(
            f"Input {name!r}: {len(raw)} bytes of binary data is not a whole number of "
            f"{datatype} values ({dtype.itemsize} bytes each)."
        )
    return np.frombuffer(raw, dtype=dtype)


def _bytes_elements(raw: bytes, name: str) -> list[bytes]:
    """BYTES in the binary extension: each element is a 4-byte little-endian length, then it."""
    elements, offset = [], 0
    while offset < len(raw):
        if offset + 4 > len(raw):
            raise errors.InvalidRequestError(f"Input {name!r}: BYTES data is cut short.")
        (length,) = struct.unpack_from("<I", raw, offset)
        offset += 4
        if offset + length > len(raw):
            raise errors.InvalidRequestError(f"Input {name!r}: BYTES data is cut short.")
        elements.append(raw[offset : offset + length])
        offset += length
    return elements


def _matrix(tensors: list[_Tensor], columns: Columns, *, max_rows: int) -> np.ndarray[Any, Any]:
    """The tensors as rows × signature columns (float64), checked like ``/invocations``."""
    names = columns.names
    given = [t.name for t in tensors]
    if names is not None and set(given) <= set(names) and not _is_table(tensors, names):
        if set(given) != set(names):
            name_column_difference(given, names)
        by_name = {t.name: t for t in tensors}
        return _columnwise([by_name[n] for n in names], names, columns, max_rows=max_rows)
    if len(tensors) == 1 and len(tensors[0].shape) == 2:
        tensor = tensors[0]
        rows, width = tensor.shape
        expected = len(names) if names is not None else width
        if width != expected:
            raise errors.InvalidInputError(
                f"Input {tensor.name!r} has {width} columns; the model's signature has "
                f"{expected} ({', '.join(repr(n) for n in names or ())})."
            )
        check_size(rows, max_rows)
        labels = names or tuple(f"{tensor.name}[{i}]" for i in range(width))
        values = _numeric(tensor, labels[0] if width == 1 else tensor.name)
        return check_matrix(values.reshape(rows, width), labels, columns)
    if names is None:
        return _columnwise(tensors, tuple(given), columns, max_rows=max_rows)
    name_column_difference(given, names)
    raise errors.InvalidInputError(  # same names, but neither layout (unreachable in practice)
        "Send one tensor per signature column, or a single 2-D tensor of rows."
    )


def _is_table(tensors: list[_Tensor], names: tuple[str, ...]) -> bool:
    """A single 2-D tensor that is named after a column but holds every column: layout 2."""
    return (
        len(tensors) == 1
        and len(names) > 1
        and len(tensors[0].shape) == 2
        and tensors[0].shape[1] == len(names)
    )


def _columnwise(
    tensors: list[_Tensor], names: tuple[str, ...], columns: Columns, *, max_rows: int
) -> np.ndarray[Any, Any]:
    rows = None
    for tensor in tensors:
        if len(tensor.shape) > 2 or (len(tensor.shape) == 2 and tensor.shape[1] != 1):
            raise errors.InvalidInputError(
                f"Input {tensor.name!r} has shape {list(tensor.shape)}; a column's tensor has "
                "shape [n] or [n, 1].",
                column=tensor.name,
            )
        if rows is None:
            rows = tensor.shape[0]
        elif tensor.shape[0] != rows:
            raise errors.InvalidInputError(
                f"Input {tensor.name!r} has {tensor.shape[0]} rows; {tensors[0].name!r} has "
                f"{rows}. Every column needs the same number of rows.",
                column=tensor.name,
            )
    assert rows is not None
    check_size(rows, max_rows)
    matrix = np.empty((rows, len(tensors)), dtype=np.float64)
    for index, tensor in enumerate(tensors):
        matrix[:, index] = _numeric(tensor, tensor.name)
    return check_matrix(matrix, names, columns)


def _numeric(tensor: _Tensor, column: str) -> np.ndarray[Any, Any]:
    if tensor.datatype == "BYTES":
        raise errors.InvalidInputError(
            f"Input {tensor.name!r} is BYTES; the model's columns are numeric.", column=column
        )
    return tensor.values.astype(np.float64, copy=False)


def _requested_outputs(value: Any, model: LoadedModel) -> list[tuple[str, bool]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise errors.InvalidRequestError("'outputs' must be a list.")
    known = _output_name(model)
    requested = []
    for index, spec in enumerate(value):
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            raise errors.InvalidRequestError(f"outputs[{index}] needs a 'name' (a string).")
        if spec["name"] != known:
            raise errors.ModelNotFoundError(
                f"The model has no output {spec['name']!r}; its output is {known!r}."
            )
        parameters = _parameters(spec.get("parameters"), f"outputs[{index}].parameters")
        requested.append((spec["name"], parameters.get("binary_data") is True))
    return requested


# -- the answer -------------------------------------------------------------------------------


def render(model: LoadedModel, prepared: Prepared, predictions: Any) -> Response:
    """The inference response: JSON, or JSON header + binary output when asked for."""
    context: _InferContext = prepared.context
    array = np.asarray(predictions)
    name = _output_name(model)
    binary = context.binary
    if context.outputs:
        binary = context.outputs[0][1]
    output: dict[str, Any] = {
        "name": name,
        "datatype": _datatype(array.dtype),
        "shape": list(array.shape),
    }
    head = {
        "model_name": _name(model),
        "model_version": model.source.version or "",
        "id": context.id,
        "parameters": {},
        "outputs": [output],
    }
    if not binary:
        output["data"] = _json_data(array)
        return Response(
            orjson.dumps(head, option=orjson.OPT_SERIALIZE_NUMPY), media_type="application/json"
        )
    raw = _binary_data(array)
    output["parameters"] = {"binary_data_size": len(raw)}
    header = orjson.dumps(head)
    return Response(
        header + raw,
        media_type="application/octet-stream",
        headers={"Inference-Header-Content-Length": str(len(header))},
    )


def _json_data(array: np.ndarray[Any, Any]) -> Any:
    flat = array.ravel()
    if flat.dtype.kind in "biuf" and flat.dtype.byteorder in "=|<":
        return flat
    return [v.decode() if isinstance(v, bytes) else v for v in flat.tolist()]


def _binary_data(array: np.ndarray[Any, Any]) -> bytes:
    if array.dtype.kind in "biuf":
        return np.ascontiguousarray(array, dtype=DATATYPES[_datatype(array.dtype)]).tobytes()
    parts = []
    for value in array.ravel().tolist():
        raw = value if isinstance(value, bytes) else str(value).encode()
        parts.append(struct.pack("<I", len(raw)) + raw)
    return b"".join(parts)


def _datatype(dtype: np.dtype[Any]) -> str:
    return str(_BY_DTYPE.get(dtype.newbyteorder("="), "BYTES"))


# -- addressing -------------------------------------------------------------------------------


def _name(model: LoadedModel) -> str:
    return model.source.name or ALIAS


def _output_name(model: LoadedModel) -> str:
    return model.output_name or "predict"


def _addressed(parts: Any, name: str, version: str | None) -> LoadedModel:
    model = serving_model(parts.manager)
    _check_address(model, name, version)
    return model


def _check_address(model: LoadedModel, name: str, version: str | None) -> None:
    """404 unless ``name`` (and ``version``) is the model serving."""
    served = _name(model)
    if name not in (served, ALIAS):
        raise errors.ModelNotFoundError(
            f"No model {name!r} is served here; this server serves {served!r}"
            f"{f' version {model.source.version}' if model.source.version else ''} "
            f"(also reachable as {ALIAS!r})."
        )
    if version is not None and version != model.source.version:
        serving = model.source.version
        raise errors.ModelNotFoundError(
            f"Version {version!r} of {served!r} is not served here; "
            + (f"version {serving} is." if serving else "the model serving has no version.")
        )
