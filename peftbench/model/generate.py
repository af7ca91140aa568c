"""A finished run, by hand: its greedy completions, made as the DAG's evaluation makes them.

    python -m peftbench.model.generate RUN                       # a prompt loop: the task's fields, one answer each
    python -m peftbench.model.generate RUN "a whole prompt"      # one completion of a prompt given whole
    python -m peftbench.model.generate RUN < records.jsonl       # one JSON line out per record in (the task's fields)
    peftbench-generate RUN ...                                   # the same, as a console script

RUN is a run folder, results/<model>/<task>/<method>/seed<s>; the model is `peftbench.load_run(RUN)`, the one the
DAG evaluates. As the evaluation does: the task's prompt template (tasks/<task>/task.yaml `prompt:`) filled from
the fields, the model's chat template where the run was scored with it (its lm_eval.json), greedy decoding up to
the task's `max_gen_toks`, cut at its stop sequences (lm_eval.yaml `until`), and the answer-start suppression
(`answer_start_suppressed`, which the evaluation imports from here). Not done: a few-shot run's demonstrations,
which lm-eval draws per test example; its completions here are zero-shot, and say so."""

import argparse
import json
import sys
from pathlib import Path

import torch

from peftbench import config, io


class Task:
    """How a run's task prompts and stops: its prompt template and fields, lm-eval's generation settings, and
    whether the run's evaluation used the model's chat template and demonstrations."""

    def __init__(self, run_dir: Path | str, tokenizer):
        run_dir = Path(run_dir)
        spec = config.load_task(io.read_json(run_dir / "train.json")["task"])
        gen = config.lm_eval_yaml(Path(spec["dir"]) / "lm_eval.yaml").get("generation_kwargs") or {}
        until = gen.get("until") or []
        scored = (io.read_json(run_dir / "lm_eval.json") if (run_dir / "lm_eval.json").is_file() else {}).get(
            "peftbench", {}
        )
        self.name, self.fields, self.template = spec["name"], list(spec["fields"]), spec["prompt"]
        self.until = [until] if isinstance(until, str) else list(until)
        self.max_new_tokens = int(gen.get("max_gen_toks", 32))
        self.chat = bool(scored.get("chat_template")) and getattr(tokenizer, "chat_template", None) is not None
        self.num_fewshot = int(scored.get("num_fewshot", 0))
        self.suppress = answer_start_suppressed(tokenizer, self.until)

    def prompt(self, record: dict) -> str:
        missing = [f for f in self.fields if f not in record]
        if missing:
            raise ValueError(f"task {self.name}: the record has no {', '.join(missing)} (its fields: {self.fields})")
        return self.template.format(**{f: record[f] for f in self.fields})


def answer_start_suppressed(tokenizer, until: list[str] | str) -> list[int]:
    """One protocol for every method: the first generated token may not end the answer before it starts.

    An instruct model often opens its reply with a line break; with the tasks' stop sequence `until: ["\n"]`
    that is an empty answer (the default run's zero-shot QA scored 1.5 F1 mostly from this). So at the
    first step only, the tokens that would stop generation with nothing but whitespace before the stop
    (e.g. "\n", " \n\n") and the end-of-sequence token are masked (transformers' `begin_suppress_tokens`);
    later tokens, and so the stop itself, are untouched. Greedy decoding then takes the best token
    that starts an answer."""
    stops = [s for s in (until if isinstance(until, list) else [until]) if s]
    texts = tokenizer.batch_decode([[i] for i in range(len(tokenizer))])
    ids = [i for i, t in enumerate(texts) if any(s in t and not t.split(s)[0].strip() for s in stops)]
    return sorted(set(ids) | {tid for tid in (tokenizer.eos_token_id,) if tid is not None})


def complete(model, tokenizer, prompt, max_new_tokens=32, until=(), chat=False, suppress=()):
    """Greedy decoding, as lm-eval's generate_until does here: the prompt (as a user turn of the chat template
    when `chat`), at most `max_new_tokens`, the first token not one of `suppress`, cut before the first of
    `until`. Only the new text is returned."""
    if chat:
        prompt = tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
        )
    inputs = tokenizer([prompt], return_tensors="pt", add_special_tokens=False).to(next(model.parameters()).device)
    kwargs = {"stop_strings": list(until), "tokenizer": tokenizer} if until else {}
    with torch.no_grad():
        out = model.generate(
            **inputs,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
            begin_suppress_tokens=list(suppress) or None,
            **kwargs,
        )
    text = tokenizer.decode(out[0, inputs.input_ids.shape[1] :], skip_special_tokens=True)
    for stop in until:  # lm-eval keeps the text before the first stop sequence
        text = text.split(stop, 1)[0]
    return text


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m peftbench.model.generate", description=__doc__.split("\n")[0])
    ap.add_argument("run", help="a run folder, results/<model>/<task>/<method>/seed<s>")
    ap.add_argument("prompt", nargs="?", help=r"a whole prompt to complete (a literal \n is a newline)")
    ap.add_argument("--max-new-tokens", type=int, help="default: the task's max_gen_toks")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args(argv)
    from peftbench.model.finished_run import load_run

    model, tokenizer = load_run(args.run, device=args.device)
    task = Task(args.run, tokenizer)
    settings = {
        "max_new_tokens": args.max_new_tokens or task.max_new_tokens,
        "until": task.until,
        "chat": task.chat,
        "suppress": task.suppress,
    }
    if args.prompt is not None:
        print(complete(model, tokenizer, args.prompt.replace("\\n", "\n"), **settings))
    elif sys.stdin.isatty():
        repl(model, tokenizer, task, settings)
    else:  # JSON lines in, JSON lines out
        for line in sys.stdin:
            if line.strip():
                record = json.loads(line)
                print(json.dumps({**record, "completion": complete(model, tokenizer, task.prompt(record), **settings)}))


def repl(model, tokenizer, task: Task, settings: dict) -> None:
    """Ask for each of the task's fields, print the completion; an empty first field or Ctrl-D ends."""
    shots = f"; the run was scored {task.num_fewshot}-shot, these are zero-shot" if task.num_fewshot else ""
    chat = ", chat template" if task.chat else ""
    print(f"task {task.name}: fields {', '.join(task.fields)}{chat}; stops at {task.until}{shots}", file=sys.stderr)
    while True:
        try:
            record = {f: input(f"{f}> ").replace("\\n", "\n") for f in task.fields}
        except EOFError:
            return
        if not record[task.fields[0]]:
            return
        print(complete(model, tokenizer, task.prompt(record), **settings))


if __name__ == "__main__":
    main()
