"""A stateful Python-backend model under Triton's sequence batcher: OUTPUT is the running
sum of INPUT within a sequence, kept per correlation id (the CORRID control input); START
resets it and END forgets it."""
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        self.sums = {}

    def execute(self, requests):
        responses = []
        for request in requests:
            value = lambda name: pb_utils.get_input_tensor_by_name(request, name).as_numpy().reshape(-1)[0]
            corrid, start, end = int(value("CORRID")), bool(value("START")), bool(value("END"))
            if start:
                self.sums[corrid] = 0
            total = self.sums.get(corrid, 0) + int(value("INPUT"))
            self.sums[corrid] = total
            if end:
                self.sums.pop(corrid, None)
            out = pb_utils.Tensor("OUTPUT", np.array([[total]], dtype=np.int32))
            responses.append(pb_utils.InferenceResponse(output_tensors=[out]))
        return responses
