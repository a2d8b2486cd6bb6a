"""A fake text generator for Triton's generate extension (POST /v2/models/<m>/generate and
/generate_stream) and rperf's token metrics. No tokenizer: a reply is `tokens` words
" tok0", " tok1", ... (max_tokens, when given, instead of the config's `tokens`).

Inputs: text_input (BYTES [1]), max_tokens (INT32 [1], optional). Output: text_output (BYTES [1]).

Decoupled (model_transaction_policy { decoupled: true }): one response per token, token k at
(request picked up) + first_ms + k * gap_ms, deadlines on one clock, then an empty final
response (flag only). Each request runs in its own thread, so one instance serves any number
of concurrent streams on time.
Not decoupled: one response with the whole text, after first_ms + (n - 1) * gap_ms.

Config parameters (strings): tokens, first_ms, gap_ms. Request parameters (the generate
request's "parameters" object) override them per request: "first_ms", "gap_ms", and
  "fail_after": N   an error response after min(N, tokens) tokens (0: before the first),
                    which ends the stream; not decoupled: the request fails at once.
  "accumulate": true  each text_output holds the text so far instead of the new token.
"""
import json
import threading
import time

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        params = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        self.tokens = int(params.get("tokens", "16"))
        self.first = float(params.get("first_ms", "50"))
        self.gap = float(params.get("gap_ms", "10"))
        self.decoupled = config.get("model_transaction_policy", {}).get("decoupled", False)
        self.lock = threading.Lock()
        self.running = 0
        self.idle = threading.Condition(self.lock)

    def plan(self, request):
        """(tokens, first s, gap s, fail_after or None, accumulate) of one request."""
        n = self.tokens
        max_tokens = pb_utils.get_input_tensor_by_name(request, "max_tokens")
        if max_tokens is not None:
            n = int(max_tokens.as_numpy().reshape(-1)[0])
        p = json.loads(request.parameters() or "{}")
        first = float(p.get("first_ms", self.first)) / 1000.0
        gap = float(p.get("gap_ms", self.gap)) / 1000.0
        fail = p.get("fail_after")
        return max(0, n), first, gap, None if fail is None else int(fail), bool(p.get("accumulate", False))

    @staticmethod
    def text(value):
        return pb_utils.Tensor("text_output", np.array([value.encode()], dtype=np.object_))

    def execute(self, requests):
        if not self.decoupled:
            return [self.whole(request) for request in requests]
        for request in requests:
            with self.lock:
                self.running += 1
            threading.Thread(target=self.stream, args=(request,), daemon=True).start()
        return None

    def whole(self, request):
        n, first, gap, fail, _ = self.plan(request)
        if fail is not None:
            return pb_utils.InferenceResponse(error=pb_utils.TritonError(
                    f"fake model failure after {min(fail, n)} tokens (parameters.fail_after)"))
        time.sleep(first + max(0, n - 1) * gap)
        return pb_utils.InferenceResponse(output_tensors=[self.text("".join(f" tok{k}" for k in range(n)))])

    def stream(self, request):
        sender = request.get_response_sender()
        try:
            n, first, gap, fail, accumulate = self.plan(request)
            start = time.monotonic()
            so_far = ""
            for k in range(n):
                if fail is not None and k >= fail:
                    break
                delay = start + first + k * gap - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                so_far += f" tok{k}"
                sender.send(pb_utils.InferenceResponse(output_tensors=[self.text(so_far if accumulate else f" tok{k}")]))
            if fail is not None:
                error = pb_utils.TritonError(f"fake model failure after {min(fail, n)} tokens (parameters.fail_after)")
                sender.send(pb_utils.InferenceResponse(error=error), flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
            else:
                sender.send(flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
        except Exception as e:  # a bad request: still end its stream
            sender.send(pb_utils.InferenceResponse(error=pb_utils.TritonError(str(e))),
                        flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
        finally:
            with self.lock:
                self.running -= 1
                self.idle.notify_all()

    def finalize(self):
        # Streams still running get up to 5 s to end before the model unloads.
        with self.lock:
            self.idle.wait_for(lambda: self.running == 0, timeout=5)
