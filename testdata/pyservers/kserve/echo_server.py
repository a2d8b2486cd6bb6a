"""A KServe ModelServer for rperf's tests, with two echo models: each declared input comes
back as the output declared at the same position, with the same shape, datatype and data.

    python echo_server.py --http_port P --grpc_port P [other kserve.ModelServer flags]

    echo        INPUT0 FP32 [-1, 16]  ->  OUTPUT0 FP32 [-1, 16]
    bytes_echo  INPUT0 BYTES [-1, 1]  ->  OUTPUT0 BYTES [-1, 1]

The tensors are what the models report as their metadata (GET /v2/models/NAME, gRPC
ModelMetadata). A request is checked against them (names, datatypes, shapes with -1 for any
size, element counts) and a mismatch is refused with KServe's own InvalidInput (HTTP 400,
gRPC INVALID_ARGUMENT), so the server's error format is what a client sees. The response is
built as KServe's own get_predict_response builds it: binary (REST) or raw (gRPC) outputs
when the request asks for them.

KServe 0.21 listens on 0.0.0.0 (REST) and [::] (gRPC) with no flag to change it; for tests
that must stay on the loopback, both are bound to 127.0.0.1 here instead (RPERF_KSERVE_HOST
overrides). Its Prometheus metrics are on the HTTP port, GET /metrics.
"""

import os

import grpc.aio
import uvicorn

# Bind to the loopback: the REST server passes host="0.0.0.0" to uvicorn.Config, the gRPC
# server calls add_insecure_port("[::]:PORT"). Both are rewritten before kserve is imported.
HOST = os.environ.get("RPERF_KSERVE_HOST", "127.0.0.1")

_uvicorn_config_init = uvicorn.Config.__init__


def _config_init(self, *args, **kwargs):
    kwargs["host"] = HOST
    _uvicorn_config_init(self, *args, **kwargs)


uvicorn.Config.__init__ = _config_init

_grpc_aio_server = grpc.aio.server


def _loopback_grpc_server(*args, **kwargs):
    server = _grpc_aio_server(*args, **kwargs)
    add_insecure_port = server.add_insecure_port

    def _add_insecure_port(address):
        port = address.rsplit(":", 1)[1]
        return add_insecure_port(f"{HOST}:{port}")

    server.add_insecure_port = _add_insecure_port
    return server


grpc.aio.server = _loopback_grpc_server

import kserve  # noqa: E402
from kserve.errors import InvalidInput  # noqa: E402
from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse  # noqa: E402
from kserve.utils.utils import generate_uuid  # noqa: E402


def _fits(shape, declared):
    return len(shape) == len(declared) and all(d in (-1, s) for s, d in zip(shape, declared))


class EchoModel(kserve.Model):
    """Echoes `inputs[i]` as `outputs[i]`; each tensor is {"name", "datatype", "shape"}."""

    def __init__(self, name, inputs, outputs):
        super().__init__(name)
        if len(inputs) != len(outputs):
            raise ValueError(f"{name}: as many outputs as inputs must be declared")
        self._inputs = inputs
        self._outputs = outputs
        self._pairs = {i["name"]: (i, o) for i, o in zip(inputs, outputs)}
        self.load()

    def load(self) -> bool:
        self.ready = True
        return self.ready

    def get_input_types(self):
        return self._inputs

    def get_output_types(self):
        return self._outputs

    def predict(self, payload: InferRequest, headers=None, response_headers=None) -> InferResponse:
        if not isinstance(payload, InferRequest):
            raise InvalidInput(f"model '{self.name}' takes only v2 inference requests")
        outputs = []
        seen = set()
        for inp in payload.inputs:
            pair = self._pairs.get(inp.name)
            if pair is None:
                raise InvalidInput(
                    f"model '{self.name}' has no input '{inp.name}' "
                    f"(its inputs: {', '.join(self._pairs)})"
                )
            declared, out = pair
            if inp.datatype != declared["datatype"]:
                raise InvalidInput(
                    f"input '{inp.name}' of model '{self.name}' is {declared['datatype']}, "
                    f"not {inp.datatype}"
                )
            shape = list(inp.shape)
            if not _fits(shape, declared["shape"]):
                raise InvalidInput(
                    f"input '{inp.name}' of model '{self.name}' has shape {shape}, "
                    f"expected {declared['shape']}"
                )
            try:
                array = inp.as_numpy()
            except Exception as e:  # a wrong element count fails numpy's reshape
                raise InvalidInput(f"input '{inp.name}' of model '{self.name}': {e}")
            if list(array.shape) != shape:
                raise InvalidInput(
                    f"input '{inp.name}' of model '{self.name}' has {array.size} elements, "
                    f"its shape {shape} does not fit them"
                )
            output = InferOutput(name=out["name"], shape=shape, datatype=out["datatype"])
            output.set_data_from_numpy(array, binary_data=payload.use_binary_outputs)
            outputs.append(output)
            seen.add(inp.name)
        missing = [name for name in self._pairs if name not in seen]
        if missing:
            raise InvalidInput(f"model '{self.name}' needs input(s) {', '.join(missing)}")
        return InferResponse(
            response_id=payload.id if payload.id else generate_uuid(),
            model_name=self.name,
            infer_outputs=outputs,
            use_binary_outputs=payload.use_binary_outputs,
            requested_outputs=payload.request_outputs,
        )


def tensor(name, datatype, shape):
    return {"name": name, "datatype": datatype, "shape": shape}


if __name__ == "__main__":
    models = [
        EchoModel("echo", [tensor("INPUT0", "FP32", [-1, 16])], [tensor("OUTPUT0", "FP32", [-1, 16])]),
        EchoModel(
            "bytes_echo",
            [tensor("INPUT0", "BYTES", [-1, 1])],
            [tensor("OUTPUT0", "BYTES", [-1, 1])],
        ),
    ]
    kserve.ModelServer().start(models)
