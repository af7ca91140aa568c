"""Score an in-memory model with EleutherAI's lm-eval through the task YAML each task folder ships.

The YAML is loaded with lm-eval's own loader (so `!function utils.process_results` resolves next to
it), its data_files pointed at this profile's test.jsonl, and handed to `simple_evaluate` as a dict.
Every method, peft-wrapped or hooked, goes through the same HFLM path and the same prompts."""
import os
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


# lm-eval's own standard errors (mean metrics: analytic; corpus metrics: its bootstrap, which lm-eval caps
# at 100 resamples): lm_eval.json stays a faithful lm-eval record. peftbench's intervals (peftbench.stats)
# are computed from the per-example scores in samples.jsonl, seeded, with 1,000+ resamples.
BOOTSTRAP_ITERS = 1000


def task_config(task_dir, test_file):
    from lm_eval.tasks._yaml_loader import load_yaml
    cfg = load_yaml(Path(task_dir) / "lm_eval.yaml")
    cfg["dataset_kwargs"] = {"data_files": {"test": str(Path(test_file).resolve())}}
    return cfg


def _hflm():
    from lm_eval.models.huggingface import HFLM

    class PeftbenchHFLM(HFLM):
        """lm-eval's HFLM with two fixes for the paper setups.

        Beam search: lm-eval's stop-sequence criterion (MultiTokenEOSCriteria) tracks `batch` rows, but beam
        search hands it batch x beams candidates: it reads the first example's beams as if they were the batch
        and can end the search for every example mid-sentence. With num_beams > 1 it is left out: hypotheses end
        at the model's EOS (a task with `target_end: eos` trains it) or max_gen_toks, as the LoRA repo's beam
        decoder (examples/NLG/src/gpt2_beam.py, eos_token_id); lm-eval still cuts every output at its `until`.

        BOS: `bos=True` puts the tokenizer's BOS before every generation prompt, as the training loop does with
        model.add_bos (lm-eval's add_bos_token only asks the tokenizer, whose post-processor may add nothing);
        bos=False adds no special token (add_bos_token=False), as training."""

        def __init__(self, *args, bos=False, **kwargs):
            super().__init__(*args, add_bos_token=False, **kwargs)
            self.bos = bos

        def tok_batch_encode(self, strings, *args, **kwargs):
            if self.bos:                       # a leading BOS string: lm-eval then adds no special tokens itself
                strings = [self.tokenizer.bos_token + s for s in strings]
            return super().tok_batch_encode(strings, *args, **kwargs)

        def _model_generate(self, context, max_length, stop, **generation_kwargs):
            if generation_kwargs.get("num_beams", 1) > 1:
                stop = []
            return super()._model_generate(context, max_length, stop, **generation_kwargs)

    return PeftbenchHFLM


def run(model, tokenizer, task_dir, test_file, batch_size=8, precision="fp32", limit=None, target_end="newline",
        add_bos=False):
    """lm-eval's results dict (as lm-eval returns it), plus the per-sample outputs separately.
    target_end="eos": the task's targets were trained to end with the tokenizer's EOS, which decoding stops at.
    add_bos: BOS before every prompt, as in training; otherwise none (lm-eval's own default would add whatever
    the tokenizer adds by default: LLaMA's <s>, which training never saw)."""
    import lm_eval
    import lm_eval.tasks  # noqa: F401  (must be imported before TaskManager)

    from .train import autocast
    device = "cuda" if next(model.parameters()).is_cuda else "cpu"
    if target_end == "eos":
        model.generation_config.eos_token_id = tokenizer.eos_token_id
    # only our task: indexing lm-eval's thousands of built-in YAMLs costs ~10 s per job
    tasks = lm_eval.tasks.TaskManager(include_defaults=False)
    lm = _hflm()(pretrained=model, tokenizer=tokenizer, batch_size=batch_size, device=device, bos=add_bos)
    with autocast(precision, device):
        results = lm_eval.simple_evaluate(model=lm, tasks=[task_config(task_dir, test_file)],
                                          task_manager=tasks, limit=limit, log_samples=True, bootstrap_iters=BOOTSTRAP_ITERS,
                                          random_seed=0, numpy_random_seed=0, torch_random_seed=0)
    samples = results.pop("samples", {})
    return results, samples


def scores(results, task_name):
    """{metric: value} from lm-eval's results for peftbench_<task>, dropping the ',none' filter suffix."""
    raw = results["results"][f"peftbench_{task_name}"]
    return {k.split(",")[0]: v for k, v in raw.items() if k.endswith(",none") and "_stderr" not in k}


def sample_record(sample):
    """One line of samples.jsonl: the output, the target and every per-example metric value lm-eval
    logged (a number for mean metrics, a [reference, hypothesis] pair for corpus metrics), so the
    statistics can be recomputed from this file alone."""
    return {"doc_id": sample.get("doc_id"), "target": sample.get("target"),
            "filtered_resps": sample.get("filtered_resps"),
            "metrics": {m: sample[m] for m in sample.get("metrics", []) if m in sample}}
