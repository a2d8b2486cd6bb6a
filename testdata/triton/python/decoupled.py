"""A decoupled Python-backend model for rperf's streaming tests: each request gets
`responses` responses, the first after first_ms and the others gap_ms apart (OUTPUT0 =
the response's index), then an empty final response. Its own timing is the truth."""
import json
import time

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        params = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        self.responses = int(params.get("responses", "8"))
        self.first = float(params.get("first_ms", "50")) / 1000.0
        self.gap = float(params.get("gap_ms", "20")) / 1000.0

    def execute(self, requests):
        for request in requests:
            sender = request.get_response_sender()
            time.sleep(self.first)
            for k in range(self.responses):
                if k:
                    time.sleep(self.gap)
                out = pb_utils.Tensor("OUTPUT0", np.array([k], dtype=np.int32))
                sender.send(pb_utils.InferenceResponse(output_tensors=[out]))
            sender.send(flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
        return None
