"""Embedded engine tokens/s: persona_gen's ``LlamaCppEngine`` through DSPy over raw llama.cpp, same prompt.

Run: ``python bench/bench_embedded.py [--repeats 3] [--max-tokens 256]``. Not a timed test: numbers depend on
the machine. One DSPy call of ``AnswerQuestion`` (``dspy.Predict`` + ``dspy.JSONAdapter``, as ``Caller`` makes
it) goes through ``build_lm(kind=smollm2)``; the exact ``create_chat_completion`` arguments the engine passes
(messages, schema-constrained ``response_format``, decoding) are recorded and replayed on the same
``llama_cpp.Llama`` object as the baseline, so both decode the same tokens from the same weights and context.
Calls alternate (DSPy, raw, DSPy, ...) so both see the same llama.cpp prefix cache; the best of
``--repeats`` is reported (on a shared machine the best run is the one least disturbed by other load).
tokens/s = completion tokens / wall time of the whole call. Goal: ratio >= 0.9.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from _common import print_machine, verdict

QUESTION = ("Explain, step by step and in detail, how a family with a tight budget can plan a week of healthy "
            "meals: shopping, cooking ahead, storing leftovers and keeping children interested.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=256)
    args = parser.parse_args()
    print_machine()

    import dspy
    from omegaconf import OmegaConf

    from persona_gen.core.lm import build_lm, smollm2_path
    from persona_gen.signatures import AnswerQuestion

    cfg = OmegaConf.create({"kind": "smollm2", "name": "SmolLM2-135M-Instruct-Q4_1", "temperature": 0.0,
                            "max_tokens": args.max_tokens, "concurrency": 1, "context_size": 2048,
                            "model_path": None})
    client = build_lm(cfg, role="generator")
    engine = client.engine
    llm = engine._model()
    recorded: list[dict[str, Any]] = []
    outputs: list[dict[str, Any]] = []
    original = llm.create_chat_completion

    def recording(**kwargs: Any) -> Any:
        out = original(**kwargs)
        recorded.append(kwargs)
        outputs.append(out)
        return out

    llm.create_chat_completion = recording
    module = dspy.Predict(AnswerQuestion)

    def through_dspy() -> tuple[float, int]:
        t0 = time.perf_counter()
        with dspy.context(lm=client.lm, adapter=dspy.JSONAdapter()):
            module(question=QUESTION, config={"seed": 0})
        wall = time.perf_counter() - t0
        return wall, int(outputs[-1]["usage"]["completion_tokens"])

    through_dspy()  # warm-up: model load, grammar compile, prefix cache
    kwargs = dict(recorded[-1])

    def raw() -> tuple[float, int]:
        t0 = time.perf_counter()
        out = original(**kwargs)
        wall = time.perf_counter() - t0
        return wall, int(out["usage"]["completion_tokens"])

    raw()
    ours, base = [], []
    for _ in range(args.repeats):
        wall, tokens = through_dspy()
        ours.append(tokens / wall)
        wall, tokens = raw()
        base.append(tokens / wall)
    tokens = int(outputs[-1]["usage"]["completion_tokens"])
    prompt_tokens = int(outputs[-1]["usage"]["prompt_tokens"])
    ours_tps, base_tps = max(ours), max(base)
    print(f"\nSmolLM2-135M Q4_1 ({smollm2_path().name}), {prompt_tokens} prompt tokens, {tokens} completion tokens, "
          f"threads={engine.threads}, best of {args.repeats}")
    print(f"  raw Llama.create_chat_completion:        {base_tps:7.1f} tokens/s  (runs: "
          f"{', '.join(f'{x:.1f}' for x in base)})")
    print(f"  LlamaCppEngine via dspy.Predict + JSON:  {ours_tps:7.1f} tokens/s  (runs: "
          f"{', '.join(f'{x:.1f}' for x in ours)})")
    ratio = ours_tps / base_tps
    print(f"  ratio persona_gen / raw = {ratio:.3f}  {verdict(ratio, 0.9)}")


if __name__ == "__main__":
    main()
