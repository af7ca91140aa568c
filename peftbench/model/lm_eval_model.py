"""lm-eval's model "peftbench": a finished run of any method, through lm-eval's own HF model class.

    python -m peftbench.model.lm_eval_cli --model peftbench --model_args run=results/.../qa/houlsby/seed0 --tasks <task>

`run=` is the run folder (`base=` overrides the base model folder); every other model_arg is HFLM's
(batch_size, max_length, ...). The model is `peftbench.load_run(run)`, the one the DAG evaluates, so any
lm-eval task scores any run; lm_eval.json's config names the run and the method (`record`)."""

import logging

import torch
from lm_eval.api.registry import register_model
from lm_eval.models.huggingface import HFLM

from peftbench.model import finished_run


@register_model("peftbench")
class PeftbenchLM(HFLM):
    def __init__(self, run, base=None, device=None, **kwargs):
        if not device or (device.startswith("cuda") and not torch.cuda.is_available()):
            # lm-eval's CLI passes device=cuda unless told otherwise; like HFLM, fall back where there is none
            if device:
                logging.getLogger(__name__).warning("peftbench: device %s is not available, using cpu", device)
            device = "cuda" if torch.cuda.is_available() else "cpu"
        model, tokenizer = finished_run.load_run(run, base=base, device=device)
        self._record = finished_run.record(run)  # into lm_eval.json's config
        super().__init__(pretrained=model, tokenizer=tokenizer, device=device, **kwargs)

    def get_model_info(self):
        return {**super().get_model_info(), **self._record}
