"""A fake "LLM" served by LitServe for rperf's tests of generative and JSON endpoints.

No model and no tokenizer: a reply is `tokens` words " tok0", " tok1", ... sent on a fixed
schedule, so the server's own timing is the truth a client's TTFT/ITL figures are checked
against. Token k of a reply is sent at (request arrived) + ttft + k * tpot, deadlines on
one clock, so late wake-ups do not add up over a reply. "Arrived" is when the API server
(uvicorn) read the request's body: the StampArrival middleware writes that instant into the
body's `metadata.arrived_at` before LitServe hands the request to its inference worker. So the
hop to the worker (a queue between processes, 2-6 ms) is inside the schedule, as a real
server's queueing is; what is left between the truth and a client is loopback and the hop of
each token back from the worker.

Endpoints (one LitServer, one inference worker process each):
  POST /v1/chat/completions  LitServe's OpenAISpec; "stream": true for SSE. The reply has
                             max_completion_tokens, else max_tokens, else --tokens tokens.
                             usage: prompt_tokens = whitespace-separated words of all message
                             contents, completion_tokens = tokens sent (see --no-usage).
  POST /v1/embeddings        LitServe's OpenAIEmbeddingSpec; a vector of --embedding-dim floats
                             per input.
  POST /predict              plain JSON, LitServe's default: {"input": X} -> {"output": X}
                             after --predict-ms.
  POST /stream               plain streaming (LitAPI stream=True, no spec): one JSON object
                             per token, {"output": " tokK"} + "\n", same schedule as the chat.
  GET  /health               "ok" once every worker is ready (LitServe's own).

Per-request overrides, in OpenAI's `metadata` object (string values, as OpenAI requires):
  {"ttft_ms": "200", "tpot_ms": "5", "fail_after": "3"}; fail_after N raises in the model
  after N tokens (0: before the first), to show how LitServe reports an error mid-stream.
  `arrived_at` (Unix seconds) is the middleware's, overwriting any the client sent.

Settings: command-line flags, each with an environment variable as its default
(LITSERVE_TTFT_MS, LITSERVE_TPOT_MS, LITSERVE_TOKENS, LITSERVE_PREDICT_MS, LITSERVE_USAGE=0|1,
LITSERVE_FAST_QUEUE=0|1, LITSERVE_API_SERVERS). Runs on 127.0.0.1 only; start it with
scripts/litserve.sh run, which installs LitServe and stops the server's processes.
"""
import argparse
import asyncio
import json
import os
import signal
import time
import warnings

import litserve as ls
from litserve.specs import OpenAIEmbeddingSpec, OpenAISpec


# FakeChat keeps the spec's synchronous encode_response, which LitServe wraps itself.
warnings.filterwarnings("ignore", message="encode_response should be an async function")


def env_float(name, default):
    return float(os.environ.get(name, default))


def env_int(name, default):
    return int(os.environ.get(name, default))


def env_bool(name, default):
    return os.environ.get(name, "1" if default else "0") not in ("0", "false", "no", "")


class Schedule:
    """The fake model's timing and length, with the request's overrides applied."""

    def __init__(self, cfg, context=None):
        context = context or {}
        meta = context.get("metadata") or {}
        self.ttft = float(meta.get("ttft_ms", cfg["ttft_ms"])) / 1000.0
        self.tpot = float(meta.get("tpot_ms", cfg["tpot_ms"])) / 1000.0
        n = context.get("max_completion_tokens") or context.get("max_tokens") or cfg["tokens"]
        self.tokens = max(0, int(n))
        fail = meta.get("fail_after")
        self.fail_after = None if fail is None else int(fail)
        # The arrival on this process's monotonic clock (wall clocks agree across processes).
        arrived = meta.get("arrived_at")
        now = time.monotonic()
        self.start = now if arrived is None else min(now, now - (time.time() - float(arrived)))

    async def tokens_in_time(self):
        """Yields (k, text) for each token at its deadline; raises at fail_after."""
        start = self.start
        for k in range(self.tokens):
            if self.fail_after is not None and k >= self.fail_after:
                raise RuntimeError(f"fake model failure after {k} tokens (metadata.fail_after)")
            delay = start + self.ttft + k * self.tpot - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            yield k, f" tok{k}"
        if self.fail_after is not None and self.fail_after >= self.tokens:
            raise RuntimeError(f"fake model failure after {self.tokens} tokens (metadata.fail_after)")


class StampArrival:
    """ASGI middleware (runs in the uvicorn process): reads a POST body to a scheduled route
    whole, and when it is a JSON object writes the instant it was read into its `metadata`
    object as `arrived_at` (a string, as OpenAI's metadata values are), fixing Content-Length.
    Any other body is passed on untouched, for LitServe to refuse as it would."""

    ROUTES = ("/v1/chat/completions", "/stream")

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("method") != "POST" or scope.get("path") not in self.ROUTES:
            return await self.app(scope, receive, send)
        chunks = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away before its body was whole
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        arrived = time.time()
        body = b"".join(chunks)
        try:
            obj = json.loads(body)
        except ValueError:
            obj = None
        if isinstance(obj, dict) and isinstance(obj.get("metadata", {}), dict):
            obj.setdefault("metadata", {})["arrived_at"] = repr(arrived)
            body = json.dumps(obj).encode()
            headers = [(k, v) for k, v in scope["headers"] if k.lower() not in (b"content-length", b"transfer-encoding")]
            scope = dict(scope, headers=headers + [(b"content-length", str(len(body)).encode())])
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def prompt_words(messages):
    n = 0
    for m in messages:
        content = m.content
        if isinstance(content, str):
            n += len(content.split())
        elif isinstance(content, list):
            n += sum(len(part.text.split()) for part in content if getattr(part, "text", None))
    return n


class FakeChat(ls.LitAPI):
    """OpenAI chat: yields one message per token; the last one carries the usage counts.

    LitServe's OpenAISpec takes the usage of a stream's *last* message (it puts it in its
    closing chunk) but *sums* the usage of all messages for a non-streamed reply, so the
    counts go on the last message only, and both agree."""

    def __init__(self, cfg):
        super().__init__(spec=OpenAISpec(), enable_async=True)
        self.cfg = cfg

    def setup(self, device):
        pass

    async def decode_request(self, request, context):
        return request.messages

    async def predict(self, messages, context):
        sched = Schedule(self.cfg, context)
        prompt = prompt_words(messages)
        last = sched.tokens - 1
        async for k, text in sched.tokens_in_time():
            msg = {"role": "assistant", "content": text}
            if k == last and self.cfg["usage"]:
                msg.update(prompt_tokens=prompt, completion_tokens=k + 1, total_tokens=prompt + k + 1)
            yield msg


class FakeEmbeddings(ls.LitAPI):
    def __init__(self, cfg):
        super().__init__(spec=OpenAIEmbeddingSpec())
        self.cfg = cfg

    def setup(self, device):
        pass

    def predict(self, inputs):
        items = inputs if isinstance(inputs, list) else [inputs]
        dim = self.cfg["embedding_dim"]
        words = sum(len(x.split()) if isinstance(x, str) else 1 for x in items)
        vectors = [[float((i + j) % 7) / 7.0 for j in range(dim)] for i in range(len(items))]
        return vectors, words

    def encode_response(self, output):
        # The spec's own encode_response never sees the request context, so the usage goes here.
        vectors, words = output
        return {"embeddings": vectors, "prompt_tokens": words, "total_tokens": words}


class Predict(ls.LitAPI):
    """Plain JSON: {"input": X} -> {"output": X}. A body without "input" raises KeyError in the
    model, which LitServe turns into 500 {"detail": "Internal server error"}."""

    def __init__(self, cfg):
        super().__init__(api_path="/predict", enable_async=True)
        self.cfg = cfg

    def setup(self, device):
        pass

    async def decode_request(self, request):
        return request["input"]

    async def predict(self, x):
        if self.cfg["predict_ms"] > 0:
            await asyncio.sleep(self.cfg["predict_ms"] / 1000.0)
        return {"output": x}

    async def encode_response(self, output):
        return output


class PlainStream(ls.LitAPI):
    """Plain streaming: LitServe writes each yielded dict as JSON + "\\n" (no SSE framing)."""

    def __init__(self, cfg):
        super().__init__(api_path="/stream", stream=True, enable_async=True)
        self.cfg = cfg

    def setup(self, device):
        pass

    async def decode_request(self, request):
        return request

    async def predict(self, request):
        cfg = dict(self.cfg)
        body = request if isinstance(request, dict) else {}
        context = {"max_tokens": body.get("max_tokens"), "metadata": body.get("metadata")}
        async for _, text in Schedule(cfg, context).tokens_in_time():
            yield {"output": text}

    async def encode_response(self, outputs):
        async for out in outputs:
            yield out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--ttft-ms", type=float, default=env_float("LITSERVE_TTFT_MS", 50))
    p.add_argument("--tpot-ms", type=float, default=env_float("LITSERVE_TPOT_MS", 10))
    p.add_argument("--tokens", type=int, default=env_int("LITSERVE_TOKENS", 16))
    p.add_argument("--predict-ms", type=float, default=env_float("LITSERVE_PREDICT_MS", 0))
    p.add_argument("--embedding-dim", type=int, default=env_int("LITSERVE_EMBEDDING_DIM", 8))
    p.add_argument("--usage", dest="usage", action="store_true", default=env_bool("LITSERVE_USAGE", True),
                   help="report token counts (default); LitServe sends usage in a stream's last "
                        "chunk whatever stream_options says, with zeros under --no-usage")
    p.add_argument("--no-usage", dest="usage", action="store_false")
    p.add_argument("--fast-queue", action="store_true", default=env_bool("LITSERVE_FAST_QUEUE", False),
                   help="LitServe's ZeroMQ transport instead of multiprocessing queues")
    p.add_argument("--api-servers", type=int, default=env_int("LITSERVE_API_SERVERS", 1),
                   help="uvicorn processes (LitServe's num_api_servers)")
    p.add_argument("--log-level", default=os.environ.get("LITSERVE_LOG_LEVEL", "warning"))
    a = p.parse_args()
    cfg = {"ttft_ms": a.ttft_ms, "tpot_ms": a.tpot_ms, "tokens": a.tokens, "predict_ms": a.predict_ms,
           "embedding_dim": a.embedding_dim, "usage": a.usage}
    apis = [FakeChat(cfg), FakeEmbeddings(cfg), Predict(cfg), PlainStream(cfg)]
    server = ls.LitServer(apis, accelerator="cpu", devices=1, fast_queue=a.fast_queue,
                          middlewares=[StampArrival])
    # On shutdown LitServe waits this long for open connections (its default is 30 s).
    server.uvicorn_graceful_timeout = 2
    # LitServe shuts its processes down on KeyboardInterrupt only; a plain SIGTERM would kill
    # this process and leave its workers running. So SIGTERM is made a KeyboardInterrupt here
    # (in this process only: a forked child takes the signal's default action).
    main_pid = os.getpid()

    def on_term(signum, frame):
        if os.getpid() != main_pid:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    print(f"litserve fake LLM: port {a.port}, ttft {a.ttft_ms} ms, tpot {a.tpot_ms} ms, "
          f"{a.tokens} tokens, usage {'on' if a.usage else 'off'}, fast_queue {a.fast_queue}", flush=True)
    server.run(host="127.0.0.1", port=a.port, num_api_servers=a.api_servers, log_level=a.log_level,
               generate_client_file=False)


if __name__ == "__main__":
    main()
