"""E2E decoding that can stop (LoRA Table 3's setup): targets trained to end with EOS (the LoRA repo's
gpt2_encode.py --add_eos) and lm-eval's beam search (beam 10, length penalty, no repeated 4-grams, from
tasks/e2e/lm_eval.yaml) returns each target whole: one sentence, nothing after it, none cut short, with the
whole test set in one generation batch (batch x beams candidates)."""

import yaml

from peftbench import config, io
from peftbench.model.assemble import method_model
from peftbench.paths import ROOT
from peftbench.stages import evaluate, train

MRS = [
    "name[The Eagle], food[French]",
    "name[Alimentum], area[city centre]",
    "name[Zizzi], priceRange[cheap]",
    "name[Aromi], eatType[pub], near[The Sorrento]",
]
TARGETS = [
    "The Eagle serves French food.",
    "Alimentum is in the city centre.",
    "Zizzi is a cheap place to eat.",
    "Aromi is a pub near The Sorrento.",
]
PROMPT = config.load_task("e2e")["prompt"]
RECORDS = [
    {"id": str(i), "prompt": PROMPT.format(mr=mr), "target": t, "answers": [t]}
    for i, (mr, t) in enumerate(zip(MRS, TARGETS))
]


def e2e_task_with_exact_match(tmp_path):
    """tasks/e2e/lm_eval.yaml's decoding, scored by exact match (E2E's corpus metrics need java)."""

    from lm_eval.tasks._yaml_loader import load_yaml

    real = load_yaml(ROOT / "tasks" / "e2e" / "lm_eval.yaml", resolve_func=False)  # with the YAML it includes
    assert real["generation_kwargs"]["num_beams"] == 10
    (tmp_path / "utils.py").write_text(
        "def process_results(doc, results):\n    return {'exact': float(results[0].strip() == doc['target'])}\n"
    )
    cfg = {
        k: real[k]
        for k in (
            "task",
            "dataset_path",
            "test_split",
            "output_type",
            "doc_to_text",
            "doc_to_target",
            "generation_kwargs",
        )
    }
    text = yaml.safe_dump({**cfg, "dataset_kwargs": {"data_files": {"test": "test.jsonl"}}})
    text += (
        "process_results: !function utils.process_results\n"
        "metric_list: [{metric: exact, aggregation: mean, higher_is_better: true}]\n"
    )
    (tmp_path / "lm_eval.yaml").write_text(text)
    return tmp_path


def test_trained_with_eos_beam_search_returns_each_whole_sentence(tiny_dir, method_specs, tmp_path):
    assert config.load_task("e2e")["target_end"] == "eos"
    model, tok, *_ = method_model(tiny_dir, method_specs["full"])
    settings = {
        **config.training_defaults(),
        "steps": 150,
        "batch_size": 4,
        "learning_rate": 3e-3,
        "warmup_ratio": 0.0,
        "val_loss_after": True,
    }
    stats = train.train(model, tok, RECORDS, RECORDS, settings, seed=0, target_end="eos")
    assert stats["val_loss_after"] < 0.05  # memorised: the test is decoding, not learning
    task_dir = e2e_task_with_exact_match(tmp_path)
    io.write_jsonl(tmp_path / "test.jsonl", RECORDS)
    results, samples = evaluate.run(
        model, tok, task_dir, tmp_path / "test.jsonl", batch_size=len(RECORDS), target_end="eos"
    )
    outputs = [s["filtered_resps"][0] for s in sorted(samples[evaluate.task_name(task_dir)], key=lambda s: s["doc_id"])]
    assert outputs == [" " + t for t in TARGETS]  # whole, and nothing after it
    assert results["results"][evaluate.task_name(task_dir)]["exact,none"] == 1.0
