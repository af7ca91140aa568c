"""The eight commonsense reasoning sets of the ReFT paper's Table 1 (Wu et al. 2024, Sec. 4.2), in the
format of LLM-Adapters' commonsense_170k (Hu et al. 2023), which ReFT trains and evaluates on: an
instruction that lists the options, answered by generating "the correct answer is <label>" (labels such as
answer2, solution1, option2, ending4, true). Each builder maps one row of the dataset as the hub serves it
(the same paths as lm-eval 0.4.13's tasks) to a record; `BUILDERS` names the columns each one reads.

Scoring (tasks/lm_eval_commonsense.yaml -> peftbench.scoring.commonsense -> metrics.trigger_exact_match): the text after "the correct answer is "
in the generation, exactly the gold label, as pyreft's evaluation (examples/loreft/compute_metrics.py) does.
(peftbench.scoring.metrics.choice_accuracy, the first option label anywhere in the generation, is the looser reading.)"""


def _record(instruction, labels, gold):
    """labels: the options' names in order (answer1, answer2, ...); gold: index of the right one."""
    options = "/".join(labels)
    return {
        "instruction": f"{instruction}\n\nAnswer format: {options}",
        "choices": labels,
        "target": f"the correct answer is {labels[gold]}",
        "answers": [labels[gold]],
    }


def _listed(question_line, name, texts, gold):
    labels = [f"{name}{i + 1}" for i in range(len(texts))]
    body = "\n\n".join(f"{name.capitalize()}{i + 1}: {t.strip()}" for i, t in enumerate(texts))
    return _record(f"{question_line}\n\n{body}", labels, gold)


def boolq(row):
    """aps/super_glue, config boolq: question, passage, idx, label (1 = true). As LLM-Adapters, the
    passage is not shown (the question alone). idx restarts in every split: the loader's <split>-<row> ids."""
    return _record(
        f"Please answer the following question with true or false, question: {row['question']}?",
        ["false", "true"],
        int(row["label"]),
    )


def piqa(row):
    """baber/piqa: goal, sol1, sol2, label (0/1)."""
    return _listed(
        f"Please choose the correct solution to the question: {row['goal']}",
        "solution",
        [row["sol1"], row["sol2"]],
        int(row["label"]),
    )


def siqa(row):
    """lighteval/siqa: context, question, answerA/B/C, label ("1".."3")."""
    return _listed(
        f"Please choose the correct answer to the question: {row['context']} {row['question']}",
        "answer",
        [row["answerA"], row["answerB"], row["answerC"]],
        int(row["label"]) - 1,
    )


def hellaswag(row):
    """Rowan/hellaswag: activity_label, ctx, endings (4), label ("0".."3")."""
    return _listed(
        f"Please choose the correct ending to complete the given sentence: {row['activity_label']}: {row['ctx']}",
        "ending",
        row["endings"],
        int(row["label"]),
    )


def winogrande(row):
    """allenai/winogrande, config winogrande_xl: sentence (with _), option1, option2, answer ("1"/"2")."""
    return _listed(
        f"Please choose the correct answer to fill in the blank to complete the given sentence: {row['sentence']}",
        "option",
        [row["option1"], row["option2"]],
        int(row["answer"]) - 1,
    )


def _lettered(question, row):
    """ARC / OpenBookQA: choices {text, label} with answerKey one of the labels (A-E or 1-5)."""
    labels = list(row["choices"]["label"])
    rec = _listed(
        f"Please choose the correct answer to the question: {question}",
        "answer",
        row["choices"]["text"],
        labels.index(row["answerKey"].strip()),
    )
    return {**rec, "id": str(row["id"])}


def arc(row):
    """allenai/ai2_arc, configs ARC-Easy / ARC-Challenge: id, question, choices, answerKey."""
    return _lettered(row["question"], row)


def openbookqa(row):
    """allenai/openbookqa, config main: id, question_stem, choices, answerKey."""
    return _lettered(row["question_stem"], row)


BUILDERS = {
    "boolq": (["question", "label"], boolq),
    "piqa": (["goal", "sol1", "sol2", "label"], piqa),
    "siqa": (["context", "question", "answerA", "answerB", "answerC", "label"], siqa),
    "hellaswag": (["activity_label", "ctx", "endings", "label"], hellaswag),
    "winogrande": (["sentence", "option1", "option2", "answer"], winogrande),
    "arc": (["id", "question", "choices", "answerKey"], arc),
    "openbookqa": (["id", "question_stem", "choices", "answerKey"], openbookqa),
}
