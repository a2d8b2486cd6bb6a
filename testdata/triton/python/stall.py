"""A Python-backend model for rperf's open-loop tests: one request at a time, each taking
service_ms, and a stall of stall_ms at the start of every period_ms of the wall clock
(an execution due in the stall waits for its end). The output echoes the input."""
import json
import time

import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        params = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        self.service = float(params.get("service_ms", "1")) / 1000.0
        self.period = float(params.get("period_ms", "2000")) / 1000.0
        self.stall = float(params.get("stall_ms", "400")) / 1000.0

    def execute(self, requests):
        responses = []
        for request in requests:
            into = time.time() % self.period
            if into < self.stall:
                time.sleep(self.stall - into)
            time.sleep(self.service)
            value = pb_utils.get_input_tensor_by_name(request, "INPUT0").as_numpy()
            responses.append(pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("OUTPUT0", value)]))
        return responses
