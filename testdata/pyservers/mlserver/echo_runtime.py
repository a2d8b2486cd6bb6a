"""An MLServer custom runtime for rperf's tests: each declared input comes back as the
output declared at the same position, with the same shape, datatype and data.

The tensors are those of the model's model-settings.json (`inputs`, `outputs`), which are
also what MLServer reports as the model's metadata. A request is checked against them (names,
datatypes, shapes with -1 for any size, element counts), and a mismatch is refused with
MLServer's own InferenceError (HTTP 400, gRPC INVALID_ARGUMENT), so the server's error format
is what a client sees. No numpy: the data is handed back as it was decoded.
"""

from mlserver import MLModel
from mlserver.errors import InferenceError
from mlserver.types import InferenceRequest, InferenceResponse, ResponseOutput


def _count(data):
    """The number of elements of a (possibly nested) list of tensor data."""
    if isinstance(data, (list, tuple)):
        return sum(_count(d) if isinstance(d, (list, tuple)) else 1 for d in data)
    return 1


def _fits(shape, declared):
    return len(shape) == len(declared) and all(d in (-1, s) for s, d in zip(shape, declared))


class EchoRuntime(MLModel):
    async def load(self) -> bool:
        declared_in = self._settings.inputs or []
        declared_out = self._settings.outputs or []
        if len(declared_in) != len(declared_out):
            raise ValueError(f"{self.name}: as many outputs as inputs must be declared")
        self._pairs = {i.name: (i, o) for i, o in zip(declared_in, declared_out)}
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        outputs = []
        seen = set()
        for inp in payload.inputs:
            pair = self._pairs.get(inp.name)
            if pair is None:
                raise InferenceError(
                    f"model '{self.name}' has no input '{inp.name}' "
                    f"(its inputs: {', '.join(self._pairs)})"
                )
            declared, out = pair
            if inp.datatype != declared.datatype:
                raise InferenceError(
                    f"input '{inp.name}' of model '{self.name}' is {declared.datatype}, "
                    f"not {inp.datatype}"
                )
            shape = list(inp.shape)
            if not _fits(shape, declared.shape):
                raise InferenceError(
                    f"input '{inp.name}' of model '{self.name}' has shape {shape}, "
                    f"expected {list(declared.shape)}"
                )
            expected = 1
            for s in shape:
                expected *= s
            got = _count(inp.data.root if hasattr(inp.data, "root") else inp.data)
            if got != expected:
                raise InferenceError(
                    f"input '{inp.name}' of model '{self.name}' has {got} elements, "
                    f"its shape {shape} needs {expected}"
                )
            seen.add(inp.name)
            outputs.append(
                ResponseOutput(name=out.name, shape=shape, datatype=out.datatype, data=inp.data)
            )
        missing = [name for name in self._pairs if name not in seen]
        if missing:
            raise InferenceError(f"model '{self.name}' needs input(s) {', '.join(missing)}")
        return InferenceResponse(
            model_name=self.name,
            model_version=self.version,
            id=payload.id,
            outputs=outputs,
        )
