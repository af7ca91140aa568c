"""Score an in-memory model with EleutherAI's lm-eval through the task YAML each task folder ships.

The YAML is loaded with lm-eval's own loader (so `!function utils.process_results` resolves next to
it), its data_files pointed at this profile's test.jsonl, and handed to `simple_evaluate` as a dict.
Every method, peft-wrapped or hooked, goes through the same HFLM path and the same prompts. What lm-eval's own
command line needs to score a run the same way is written beside its lm_eval.json: the task as run
(lm_eval_task.yaml, `task_yaml`) and the command (`cli_command`, with the batch size the DAG used)."""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from peftbench import io
from peftbench.model.generate import answer_start_suppressed  # the answer-start protocol, shared with generate
from peftbench.stages import greedy

if TYPE_CHECKING:  # hints only
    from transformers import PreTrainedTokenizerBase

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


# lm-eval's own standard errors are off (its stderr fields read "N/A"): peftbench's intervals (peftbench.stats)
# come from the per-example scores in samples.jsonl, seeded, over test examples and seeds, with 1,000+
# resamples; lm-eval's bootstrap of a corpus metric (100 resamples) was a second, test-only answer that nothing
# read, and it cost ~5 s per evaluation in a process pool that took the core of the job running beside it.
BOOTSTRAP_ITERS = 0

TASK_FILE = "lm_eval_task.yaml"  # beside lm_eval.json: the task as the DAG ran it, for lm-eval's command line


def task_name(task: Path | str) -> str:
    """lm-eval's name for tasks/<task>/: always derived from the folder, so a copied task folder
    (`cp -r tasks/e2e tasks/e2e-local`) is scored and read back under its own name."""
    return f"peftbench_{Path(task).name}"


def task_config(
    task_dir: Path | str,
    test_file: Path | str,
    train_file: Path | str | None = None,
    num_fewshot: int = 0,
    tokenizer: PreTrainedTokenizerBase | None = None,
) -> dict:
    """The task's lm_eval.yaml as a dict, reading this profile's test.jsonl. With `num_fewshot` the
    demonstrations come from train.jsonl only (lm-eval's `fewshot_split`), never from the test split.
    With `tokenizer`, the answer-start protocol (`answer_start_suppressed`) joins the generation settings."""
    from lm_eval.tasks._yaml_loader import load_yaml

    cfg = load_yaml(Path(task_dir) / "lm_eval.yaml")
    cfg["task"] = task_name(task_dir)  # whatever `task:` the (possibly copied) YAML says
    files = {"test": str(Path(test_file).resolve())}
    if num_fewshot:
        if train_file is None:
            raise ValueError(f"{task_dir}: few-shot prompting needs the task's train.jsonl")
        files["train"] = str(Path(train_file).resolve())
        cfg.update(fewshot_split="train", num_fewshot=int(num_fewshot))
    cfg["dataset_kwargs"] = {"data_files": files}
    if tokenizer is not None and cfg.get("output_type") == "generate_until":
        gen = dict(cfg.get("generation_kwargs") or {})
        gen["begin_suppress_tokens"] = answer_start_suppressed(tokenizer, gen.get("until", []))
        cfg["generation_kwargs"] = gen
    return cfg


def check_scorer(task_dir: Path | str, record: dict, where: str, aggregate: bool = True) -> None:
    """The task's scorer run once, on one test record with its reference as the output, before any training:
    each metric of lm_eval.yaml's metric_list is among what `process_results` returns, and its aggregation takes
    two such values. A metric misspelled the same way in task.yaml and lm_eval.yaml otherwise passed every check
    and lm-eval died after the fine-tuning, in its aggregation ("unsupported operand ... 'int' and 'tuple'"),
    naming neither the metric nor the file (issue 27). `aggregate=False` skips the aggregations (E2E's start Java)."""
    import lm_eval.api.metrics  # noqa: F401  (registers lm-eval's aggregations)
    from lm_eval.api.registry import get_aggregation
    from lm_eval.tasks._yaml_loader import load_yaml

    yml = Path(task_dir) / "lm_eval.yaml"
    cfg = load_yaml(yml)
    scorer = cfg.get("process_results")
    if not callable(scorer):
        return  # lm-eval's own metrics score the output: nothing of the task's to run
    try:
        out = scorer(record, [record["target"]])
    except Exception as e:
        raise ValueError(f"{yml}: process_results fails on {where}, record {record.get('id')}: {e!r}") from e
    returned = sorted(out) if isinstance(out, dict) else out
    for m in cfg.get("metric_list", []):
        name, agg = m["metric"], m.get("aggregation")
        if not isinstance(out, dict) or name not in out:
            raise ValueError(
                f"{yml}: metric_list: '{name}' is not among what process_results returns ({returned}) for {where}, "
                f"record {record.get('id')}"
            )
        try:
            combine = get_aggregation(agg) if isinstance(agg, str) else agg
            if aggregate and combine is not None:
                combine([out[name], out[name]])
        except Exception as e:
            raise ValueError(
                f"{yml}: metric_list: '{name}' (aggregation {agg!r}) cannot aggregate what process_results returns "
                f"for it ({out[name]!r}): {e!r}"
            ) from e


def task_yaml(task_dir: Path | str, cfg: dict) -> str:
    """The task as an evaluation ran it (`task_config`'s dict), as a YAML lm-eval's command line reads from any
    working directory: the task's lm_eval.yaml, included by absolute path (its `!function`s resolve next to it),
    with what `task_config` set for this run restated: the data files by absolute path (the shared YAML's
    `test.jsonl` is relative to the working directory), the few-shot split and count, and the generation
    settings with the answer-start suppression (a plain task YAML would decode without it)."""
    keys = ("task", "dataset_kwargs", "fewshot_split", "num_fewshot", "generation_kwargs")
    doc = {"include": str((Path(task_dir) / "lm_eval.yaml").resolve()), **{k: cfg[k] for k in keys if k in cfg}}
    head = "# written by peftbench's evaluate job: the lm-eval task as it scored this run (lm_eval.json's command)\n"
    return head + "".join(f"{k}: {json.dumps(v)}\n" for k, v in doc.items())  # JSON values are YAML: "\n" stays "\n"


def cli_command(run_dir: Path | str, batch_size: int, device: str, seed: int = 0, chat: bool = False) -> str:
    """lm-eval's command line that scores `run_dir` as its evaluate job did, from the folder the DAG ran in: the run
    through `--model peftbench`, the task as run (`task_yaml`), the job's batch size (lm-eval's default is 1) and
    device, the seeds `run` gives lm-eval (python, numpy, torch 0; the few-shot draw the run's seed), its chat template."""
    args = ["python", "-m", "peftbench.model.lm_eval_cli", "--model", "peftbench", "--model_args", f"run={run_dir}"]
    args += ["--tasks", str(Path(run_dir) / TASK_FILE), "--batch_size", str(batch_size), "--seed", f"0,0,0,{seed}"]
    args += ["--device", device, *(["--apply_chat_template"] if chat else [])]
    return shlex.join(args)


def _hflm():
    from lm_eval.models.huggingface import HFLM

    class PeftbenchHFLM(HFLM):
        """lm-eval's HFLM with two fixes for the paper setups, and grouped prefill (`prefill_tokens`, below).

        Beam search: lm-eval's stop-sequence criterion (MultiTokenEOSCriteria) tracks `batch` rows, but beam
        search hands it batch x beams candidates: it reads the first example's beams as if they were the batch
        and can end the search for every example mid-sentence. With num_beams > 1 it is left out: hypotheses end
        at the model's EOS (a task with `target_end: eos` trains it) or max_gen_toks, as the LoRA repo's beam
        decoder (examples/NLG/src/gpt2_beam.py, eos_token_id); lm-eval still cuts every output at its `until`.

        BOS: `bos=True` puts the tokenizer's BOS before every generation prompt, as the training loop does with
        model.add_bos (lm-eval's add_bos_token only asks the tokenizer, whose post-processor may add nothing);
        bos=False adds no special token (add_bos_token=False), as training.

        Prefill: with `prefill_tokens` > 0, a greedy or sampled batch's prompts are prefilled in groups of about
        that many positions (grouped_prefill) and then decoded together; the outputs are the padded forward's (tests/test_prefill.py).

        Decoding: with `position_wise` (method.yaml `chunked_prefill` or `position_wise_decoding`), a greedy batch decodes in peftbench.stages.greedy,
        where an answer leaves the batch once it has ended; the same tokens as generate() (tests/test_greedy.py)."""

        def __init__(self, *args, bos=False, prefill_tokens=0, position_wise=False, **kwargs):
            super().__init__(*args, add_bos_token=False, **kwargs)
            self.bos, self.prefill_tokens, self.position_wise = bos, prefill_tokens, position_wise

        def tok_batch_encode(self, strings, *args, **kwargs):
            if self.bos:  # a leading BOS string: lm-eval then adds no special tokens itself
                strings = [self.tokenizer.bos_token + s for s in strings]
            room = kwargs.get("left_truncate_len")  # lm-eval would cut a longer prompt from the left, silently
            if room and (n := max(len(self.tokenizer(s, add_special_tokens=False).input_ids) for s in strings)) > room:
                raise ValueError(
                    f"a prompt of {n:,} tokens (demonstrations and chat template included) exceeds the {room:,} "
                    f"lm-eval leaves for it (the model's context {self.max_length:,} less max_gen_toks): it would "
                    f"be cut; use fewer demonstrations (num_fewshot) or shorter records"
                )
            return super().tok_batch_encode(strings, *args, **kwargs)

        def _model_generate(self, context, max_length, stop, **generation_kwargs):
            beams = generation_kwargs.get("num_beams", 1) > 1
            if beams:
                stop = []
            mask = generation_kwargs.get("attention_mask")  # beam search widens the batch: its own prefill
            if self.prefill_tokens and not beams and mask is not None:
                with torch.autocast(
                    self.device.type, self.mixed_precision_dtype, self.mixed_precision_dtype is not None
                ):
                    generation_kwargs["cache"] = grouped_prefill(self.model, context, mask, self.prefill_tokens)
            if self.position_wise and not beams and greedy.applies(self.model, generation_kwargs):
                with torch.autocast(
                    self.device.type, self.mixed_precision_dtype, self.mixed_precision_dtype is not None
                ):
                    return greedy.decode(
                        self.model,
                        self.tokenizer,
                        context,
                        mask,
                        max_length,
                        stop,
                        cache=generation_kwargs.get("cache"),
                        begin_suppress_tokens=generation_kwargs.get("begin_suppress_tokens"),
                    )
            return super()._model_generate(context, max_length, stop, **generation_kwargs)

    return PeftbenchHFLM


@torch.no_grad()
def grouped_prefill(model: torch.nn.Module, context: torch.Tensor, mask: torch.Tensor, tokens: int):
    """The KV cache of every prompt but its last token, computed a group of prompts at a time in order of length,
    each group padded only to its own longest prompt and holding about `tokens` positions (so its matrix
    multiplies stay large: short prompts go in larger groups), then laid out as one left-padded batch, as the whole
    batch's padded forward would have laid it out (padded slots hold zeros, masked as before). generate() then runs
    each prompt's last token and decodes the whole batch together: the prompts cost about their real tokens, where
    one padded forward of a 64-prompt batch computes 29-43% padding on the default splits, and decoding keeps its
    one large batch. Only for a model whose output at a position depends on the tokens up to it and not on where
    a forward starts (method.yaml `chunked_prefill`); a prompt or prefix prepended per forward, or an intervention
    on positions counted per forward (LoReFT), is not such a model. None (generate prefills as usual) where one
    group would hold the whole batch, or the batch is not left-padded."""
    from transformers import DynamicCache

    rows, width = context.shape
    if rows * width <= tokens or not bool(mask[:, -1].all()):  # one group anyway / not every prompt's last token
        return None
    lengths = mask.sum(1)
    order = torch.argsort(lengths, descending=True, stable=True)
    done = width - 1  # cached: every position but the last, which left padding makes every prompt's last token
    layers, start = None, 0
    while start < rows:
        longest = int(lengths[order[start]])
        chunk = order[start : start + max(1, tokens // longest)]
        start += len(chunk)
        span = longest - 1  # the group's longest prompt, less its last token
        if span <= 0:
            continue
        ids, m = context[chunk, done - span : done], mask[chunk, done - span : done]
        # only the cache is kept: logits_to_keep=1 skips the vocabulary head at every other position (~20% of a
        # 135M model's prefill FLOPs; the cache is the same, bit for bit)
        pos = (m.cumsum(-1) - 1).clamp(min=0)
        out = model(input_ids=ids, attention_mask=m, position_ids=pos, use_cache=True, logits_to_keep=1)
        cache = out.past_key_values if getattr(out, "cache", None) is None else out.cache
        for i, (k, v, *_) in enumerate(cache):
            if layers is None:
                layers = [[t.new_zeros(rows, *t.shape[1:-2], done, t.shape[-1]) for t in (k, v)] for _ in cache]
            layers[i][0][chunk, ..., done - span :, :] = k
            layers[i][1][chunk, ..., done - span :, :] = v
    return None if layers is None else DynamicCache(ddp_cache_data=layers)


def uses_chat_template(prompting: dict | None, tokenizer: PreTrainedTokenizerBase) -> bool:
    """Chat template on when the method asks for it and the model has one (a chat/instruct model)."""
    return bool((prompting or {}).get("chat_template")) and getattr(tokenizer, "chat_template", None) is not None


def run(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    task_dir: Path | str,
    test_file: Path | str,
    batch_size: int = 8,
    precision: str = "fp32",
    limit: int | None = None,
    target_end: str = "newline",
    prompting: dict | None = None,
    train_file: Path | str | None = None,
    seed: int = 0,
    add_bos: bool = False,
    prefill_tokens: int = 0,
    position_wise: bool = False,
    task_file: Path | str | None = None,
) -> tuple[dict, dict[str, list[dict]]]:
    """lm-eval's results dict (as lm-eval returns it), plus the per-sample outputs separately.

    target_end="eos": the task's targets were trained to end with the tokenizer's EOS, which decoding stops at.
    `prompting` (method.yaml's `prompting:`): `chat_template` renders the task's prompt as a user turn of
    the model's chat template (lm-eval's `apply_chat_template`); `num_fewshot` k puts k demonstrations
    from train.jsonl before it (as earlier turns of the chat when templated), drawn by lm-eval's sampler
    with `seed`: the same prompts on every rerun.
    add_bos: BOS before every prompt, as in training; otherwise none (lm-eval's own default would add whatever
    the tokenizer adds by default: LLaMA's <s>, which training never saw).
    prefill_tokens: > 0, the prompts' cache is computed in groups of about that many positions (grouped_prefill;
    only for a method whose method.yaml says chunked_prefill); 0, in one padded forward with the batch.
    position_wise: after the prompt's forward the model is position-wise (method.yaml chunked_prefill or
    position_wise_decoding): greedy answers leave the batch once ended (peftbench.stages.greedy), with generate()'s tokens.
    task_file: where the task as run goes (`task_yaml`), once lm-eval has scored it.
    The results' config records the batch size and device (lm-eval records simple_evaluate's own arguments, None
    for a model passed in)."""
    import lm_eval
    import lm_eval.tasks  # noqa: F401  (must be imported before TaskManager)

    from peftbench.stages.train import autocast

    device = "cuda" if next(model.parameters()).is_cuda else "cpu"
    if target_end == "eos":
        model.generation_config.eos_token_id = tokenizer.eos_token_id
    # only our task: indexing lm-eval's thousands of built-in YAMLs costs ~10 s per job
    tasks = lm_eval.tasks.TaskManager(include_defaults=False)
    lm = _hflm()(
        pretrained=model,
        tokenizer=tokenizer,
        batch_size=batch_size,
        device=device,
        bos=add_bos,
        prefill_tokens=prefill_tokens,
        position_wise=position_wise,
    )
    k = int((prompting or {}).get("num_fewshot", 0))
    cfg = task_config(task_dir, test_file, train_file, k, tokenizer)
    chat = uses_chat_template(prompting, tokenizer)
    with autocast(precision, device):
        results = lm_eval.simple_evaluate(
            model=lm,
            tasks=[cfg],
            task_manager=tasks,
            limit=limit,
            log_samples=True,
            bootstrap_iters=BOOTSTRAP_ITERS,
            apply_chat_template=chat,
            fewshot_as_multiturn=chat,
            fewshot_random_seed=seed,
            random_seed=0,
            numpy_random_seed=0,
            torch_random_seed=0,
        )
    results["config"].update(batch_size=batch_size, device=device)
    if task_file is not None:
        io.write_text(task_file, task_yaml(task_dir, cfg))
    samples = results.pop("samples", {})
    return results, samples


def scores(results: dict, task: Path | str) -> dict[str, float]:
    """{metric: value} from lm-eval's results for peftbench_<task>, dropping the ',none' filter suffix."""
    raw = results["results"][task_name(task)]
    return {k.split(",")[0]: v for k, v in raw.items() if k.endswith(",none") and "_stderr" not in k}


def sample_record(sample: dict) -> dict:
    """One line of samples.jsonl: the output, the target and every per-example metric value lm-eval
    logged (a number for mean metrics, a [reference, hypothesis] pair for corpus metrics), so the
    statistics can be recomputed from this file alone."""
    return {
        "doc_id": sample.get("doc_id"),
        "target": sample.get("target"),
        "prompt": prompt_of(sample),
        "filtered_resps": sample.get("filtered_resps"),
        "metrics": {m: sample[m] for m in sample.get("metrics", []) if m in sample},
    }


def prompt_of(sample: dict) -> str | None:
    """The exact context lm-eval generated from (chat template and demonstrations included)."""
    args = sample.get("arguments") or [[None]]
    if isinstance(args, dict):  # lm-eval's saved-sample layout {gen_args_0: {arg_0: ...}}
        return args.get("gen_args_0", {}).get("arg_0")
    return args[0][0]
