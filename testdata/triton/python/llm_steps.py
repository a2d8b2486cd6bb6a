"""The three composing steps of the ensemble_llm test model, one class chosen by the config
parameter "step". The outputs are a deterministic function of the inputs, so input files
can carry validation_data:
  preprocess:  PROMPT, MAX_TOKENS, TEMPERATURE, SEED, STREAM -> TOKENS (first 8 bytes of the
               prompt, zero padded), PARAMS [max_tokens, temperature, seed % 1000, stream]
  generate:    TOKENS, PARAMS -> GENERATED (TOKENS reversed), COUNT (min(max_tokens, tokens))
  postprocess: GENERATED, COUNT -> TEXT (the first COUNT non-zero characters), TOKEN_COUNT"""
import json
import time

import numpy as np
import triton_python_backend_utils as pb_utils


def tensor(request, name):
    return pb_utils.get_input_tensor_by_name(request, name).as_numpy()


def preprocess(request):
    prompts = tensor(request, "PROMPT")
    tokens = np.zeros((prompts.shape[0], 8), dtype=np.int32)
    for row, prompt in enumerate(prompts[:, 0]):
        raw = prompt if isinstance(prompt, bytes) else str(prompt).encode()
        for i, b in enumerate(raw[:8]):
            tokens[row, i] = b
    params = np.stack([
        tensor(request, "MAX_TOKENS")[:, 0].astype(np.float32),
        tensor(request, "TEMPERATURE")[:, 0].astype(np.float32),
        (tensor(request, "SEED")[:, 0] % 1000).astype(np.float32),
        tensor(request, "STREAM")[:, 0].astype(np.float32),
    ], axis=1)
    return [pb_utils.Tensor("TOKENS", tokens), pb_utils.Tensor("PARAMS", params)]


def generate(request):
    tokens = tensor(request, "TOKENS")
    params = tensor(request, "PARAMS")
    generated = tokens[:, ::-1].copy()
    nonzero = (tokens != 0).sum(axis=1)
    count = np.minimum(params[:, 0].astype(np.int64), nonzero).astype(np.uint32).reshape(-1, 1)
    return [pb_utils.Tensor("GENERATED", generated), pb_utils.Tensor("COUNT", count)]


def postprocess(request):
    generated = tensor(request, "GENERATED")
    count = tensor(request, "COUNT")
    texts = []
    for row in range(generated.shape[0]):
        chars = bytes(int(t) for t in generated[row] if t != 0)
        texts.append([chars[: int(count[row, 0])]])
    return [pb_utils.Tensor("TEXT", np.array(texts, dtype=np.object_)),
            pb_utils.Tensor("TOKEN_COUNT", count.astype(np.uint32))]


STEPS = {"preprocess": preprocess, "generate": generate, "postprocess": postprocess}


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        params = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        self.step = STEPS[params["step"]]
        self.delay = float(params.get("delay_ms", "0")) / 1000.0

    def execute(self, requests):
        if self.delay:
            time.sleep(self.delay)
        return [pb_utils.InferenceResponse(output_tensors=self.step(r)) for r in requests]
