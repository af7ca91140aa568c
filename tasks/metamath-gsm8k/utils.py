"""peft's GSM8K scoring (method_comparison/MetaMathQA/utils.py: parse_answer, convert_to_decimal,
get_accuracy), per record: the text after the last answer delimiter ("The answer is: " in MetaMath's style,
"#### " in GSM8K's), its first line stripped of " .!?$%", read as a number (or a fraction) and compared as a
float with the reference's; a prediction that is no number is compared as text, one with no delimiter is wrong."""

from decimal import Decimal, DivisionByZero, InvalidOperation

DELIMITERS = ("The answer is: ", "The answer is ", "The final answer is: ", "The final answer is ", "#### ")


def parse_answer(text):
    """The final answer after the first delimiter (in DELIMITERS' order) that occurs, else None."""
    text = text.strip().rstrip(".!?")
    delimiter = next((d for d in DELIMITERS if d in text), None)
    if delimiter is None:
        return None
    text = text.rpartition(delimiter)[-1].strip()
    return text.split("\n", 1)[0].strip(" .!?$%")


def to_decimal(s):
    """'13', '65.33' or '20/14' as a Decimal; None for anything else."""
    if s is None:
        return None
    try:
        s = s.strip()
        if "/" in s:
            parts = s.split("/")
            if len(parts) != 2 or Decimal(parts[1].strip()) == 0:
                return None
            return Decimal(parts[0].strip()) / Decimal(parts[1].strip())
        return Decimal(s)
    except (DivisionByZero, InvalidOperation, ValueError):
        return None


def correct(prediction, reference):
    """Whether the prediction's final answer is the reference's (peft's get_accuracy for one record)."""
    pred, true = parse_answer(prediction), parse_answer(reference)
    if true is None:
        raise ValueError(f"no final answer in the reference: {reference!r}")
    pred_num, true_num = to_decimal(pred), to_decimal(true)
    y_pred = float(pred_num) if pred_num is not None else pred
    if true_num is not None:
        y_true = float(true_num)
    else:  # peft: the reference's text only when the prediction parsed at all
        y_true = true if pred is not None else None
    return y_true is not None and y_pred is not None and y_true == y_pred


def process_results(doc, results):
    """100 or 0 (the harness's scores are percentages; peft's accuracy is their mean / 100)."""
    return {"acc": 100.0 * correct(results[0], doc["target"])}
