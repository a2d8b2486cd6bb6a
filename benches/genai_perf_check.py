#!/usr/bin/env python3
"""rperf's figures against genai-perf's, computed by genai-perf's own parser from rperf's
profile export (run by scripts/genai_perf.sh, with the venv's Python that has genai-perf).

`rperf serve` runs testdata/serve/generative.toml; rperf sends testdata/openai/payloads.json
to its model `llm` (20 ms to the first token, then 5 ms a token, 8 tokens a reply) at
concurrency 2 with --profile-export-file and --json. genai-perf's LLMProfileDataParser reads
the export with a word-level tokenizer made here (the server's tokens are " tokK" words, so no
download is needed) and gives, for that level: request count, time to first token, its
"inter-token latency" (what rperf calls TPOT: (end-to-end - TTFT) / (tokens - 1)), output
sequence length and request latency. Each is printed beside rperf's own; exit 1 when one
differs by more than 0.1%.

Usage: benches/genai_perf_check.py RPERF. Loopback only; the server is stopped by its PID.
"""
import json, os, subprocess, sys, tempfile
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clients import start_serve  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def word_tokenizer():
    """genai-perf's Tokenizer wrapping a word-level tokenizer of the server's words."""
    from tokenizers import Tokenizer as Words, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast
    from genai_perf.tokenizer import Tokenizer

    vocab = {"[UNK]": 0, **{f"tok{k}": k + 1 for k in range(64)}}
    words = Words(models.WordLevel(vocab, unk_token="[UNK]"))
    words.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = Tokenizer()
    tokenizer._tokenizer = PreTrainedTokenizerFast(tokenizer_object=words, unk_token="[UNK]")
    return tokenizer


def main():
    from genai_perf.profile_data_parser import LLMProfileDataParser

    rperf = sys.argv[1]
    tmp = tempfile.mkdtemp(prefix="rperf-genai-perf-")
    export, report = os.path.join(tmp, "export.json"), os.path.join(tmp, "report.json")
    server, port = start_serve(rperf, os.path.join(ROOT, "testdata/serve/generative.toml"),
                               os.path.join(tmp, "serve.log"))
    try:
        run = subprocess.run([rperf, "-m", "llm", "--service-kind", "openai", "--endpoint", "v1/chat/completions",
                              "--input-data", os.path.join(ROOT, "testdata/openai/payloads.json"),
                              "-u", f"127.0.0.1:{port}", "--concurrency-range", "2", "-p", "1000", "-s", "100",
                              "--profile-export-file", export, "--json", report],
                             capture_output=True, text=True, timeout=120)
    finally:
        server.terminate()
        server.wait(timeout=10)
    if run.returncode != 0:
        sys.exit(f"rperf exited {run.returncode}: {run.stderr.strip()[-400:]}")
    level = json.load(open(report))["levels"][-1]
    tokens = level["tokens"]
    ours = {
        "request count": level["requests"],
        "time to first token, ms": tokens["time_to_first_token_us"]["avg"] / 1e3,
        "TPOT (genai-perf: inter-token latency), ms": tokens["time_per_output_token_us"]["avg"] / 1e3,
        "output tokens": tokens["output_tokens"]["avg"],
        "request latency, ms": level["latency_us"]["avg"] / 1e3,
    }
    stats = LLMProfileDataParser(filename=Path(export), tokenizer=word_tokenizer()).get_statistics(
        infer_mode="concurrency", load_level="2").stats_dict
    # The parser's statistics are in ns (genai-perf converts when it writes its files).
    theirs = {
        "request count": stats["request_count"]["avg"],
        "time to first token, ms": stats["time_to_first_token"]["avg"] / 1e6,
        "TPOT (genai-perf: inter-token latency), ms": stats["inter_token_latency"]["avg"] / 1e6,
        "output tokens": stats["output_sequence_length"]["avg"],
        "request latency, ms": stats["request_latency"]["avg"] / 1e6,
    }
    print(f"rperf {rperf}; export {export}")
    print("| figure (concurrency 2, avg) | rperf | genai-perf from rperf's export | ratio |")
    print("|---|---|---|---|")
    worst = 0.0
    for name, mine in ours.items():
        ratio = theirs[name] / mine if mine else float("nan")
        worst = max(worst, abs(ratio - 1))
        print(f"| {name} | {mine:.3f} | {theirs[name]:.3f} | {ratio:.4f} |")
    print(f"largest difference: {worst:.4%} (limit 0.1%)")
    return 0 if worst <= 0.001 else 1


if __name__ == "__main__":
    sys.exit(main())
