"""A Python-backend model for rperf's soak tests: it slows with use, as a server that degrades.
Each execution sleeps base_ms plus growth_ms_per_100 for every 100 requests the model has
served so far, up to max_ms (the model stays usable in a long-lived test server); the output
echoes the input. The count is the model instance's own, from its load."""
import json
import time

import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        params = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        self.base = float(params.get("base_ms", "2")) / 1000.0
        self.growth = float(params.get("growth_ms_per_100", "0.2")) / 1000.0
        self.max = float(params.get("max_ms", "100")) / 1000.0
        self.served = 0

    def execute(self, requests):
        time.sleep(min(self.base + self.growth * self.served / 100.0, self.max))
        self.served += len(requests)
        responses = []
        for request in requests:
            value = pb_utils.get_input_tensor_by_name(request, "INPUT0").as_numpy()
            responses.append(pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("OUTPUT0", value)]))
        return responses
