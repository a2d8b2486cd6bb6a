"""A Python-backend model for rperf's tests: returns each input as the output of the same
position, after an optional fixed delay per execution (config parameter delay_ms). With
fail_on_negative set, a request whose first input has a negative value gets an error."""
import json
import time

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        params = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        self.delay = float(params.get("delay_ms", "0")) / 1000.0
        self.fail_on_negative = params.get("fail_on_negative", "false") == "true"
        self.inputs = [t["name"] for t in config["input"]]
        self.outputs = [t["name"] for t in config["output"]]

    def execute(self, requests):
        if self.delay:
            time.sleep(self.delay)
        responses = []
        for request in requests:
            values = [pb_utils.get_input_tensor_by_name(request, n).as_numpy() for n in self.inputs]
            if self.fail_on_negative and values[0].dtype != np.object_ and (values[0] < 0).any():
                error = pb_utils.TritonError("negative input value")
                responses.append(pb_utils.InferenceResponse(output_tensors=[], error=error))
                continue
            tensors = [pb_utils.Tensor(o, v) for o, v in zip(self.outputs, values)]
            responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
        return responses
