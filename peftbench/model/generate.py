"""A quick look at a fine-tuned run: its greedy completion of a prompt, printed.

    python -m peftbench.model.generate results/smoke/tiny-random-llama/qa/lora/seed0 "Passage: ...\\nAnswer:"
    peftbench-generate <run folder> "prompt" [--max-new-tokens 32]      (the same, as a console script)

The model is `peftbench.load_run(run)`, the one the DAG evaluates. A task's prompt is in
tasks/<task>/task.yaml (`prompt:`); the run was trained to complete prompts of that form."""

import argparse

import torch


def complete(model, tokenizer, prompt, max_new_tokens=32):
    """Greedy decoding, as lm-eval's generate_until does here; only the new tokens are returned."""
    inputs = tokenizer([prompt], return_tensors="pt").to(next(model.parameters()).device)
    with torch.no_grad():
        out = model.generate(
            **inputs, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id
        )
    return tokenizer.decode(out[0, inputs.input_ids.shape[1] :], skip_special_tokens=True)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m peftbench.model.generate", description=__doc__.split("\n")[0])
    ap.add_argument("run", help="a run folder, results/<model>/<task>/<method>/seed<s>")
    ap.add_argument("prompt", help=r"the text to complete; a literal \n is a newline (task prompts have several)")
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args(argv)
    from peftbench.runs import load_run

    model, tokenizer = load_run(args.run, device=args.device)
    print(complete(model, tokenizer, args.prompt.replace("\\n", "\n"), args.max_new_tokens))


if __name__ == "__main__":
    main()
