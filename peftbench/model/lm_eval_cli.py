"""lm-eval's own command line, with peftbench's model registered:

    python -m peftbench.model.lm_eval_cli --model peftbench --model_args run=<run folder> --tasks <any lm-eval task>
    peftbench-lm-eval ...                     (the same, as a console script)

lm-eval 0.4.13 finds models only in its own table (no plugin entry points), so `peftbench` exists once
peftbench/model/lm_eval_model.py is imported: that import, then lm-eval's `cli_evaluate`, is all this does. Every
flag is lm-eval's. A peft run needs no peftbench at all:
`lm_eval --model hf --model_args pretrained=<base_model>,peft=<run>/adapter --tasks ...`."""


def main():
    from lm_eval.__main__ import cli_evaluate

    from peftbench.model import lm_eval_model  # noqa: F401  (registers "peftbench")

    cli_evaluate()


if __name__ == "__main__":
    main()
