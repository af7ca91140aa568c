"""FLOPs estimated from parameter counts (Kaplan et al. 2020, Sec. 2.1): 2 N per token forward, 4 N backward
for a model whose N weights all train. No torch here: the report reads these too.

    training  C = (4 N + 2 N_trainable) x tokens   forward 2N over every weight; backward 2N for the activation
                                                   gradients (they flow through the frozen base too) plus
                                                   2 N_trainable for the weight gradients; full FT: 6 N x tokens
    prefill   C = 2 N x prompt tokens
    decode    C = 2 N per generated token

N counts every parameter once (a tied embedding is its LM head's matmul). Estimates, not counts: attention's
score and value products are left out (small at these lengths), and the LM head is counted at every token
although training computes it only from the batch's first target position on and prefill only at the last
position (SmolLM2-135M's head is 21% of N): an achieved rate from these is an upper bound at that share."""


def train_flops(total_params, trainable_params, tokens):
    """C = (4 N + 2 N_trainable) x tokens; 0 when nothing trained."""
    return float((4 * total_params + 2 * trainable_params) * tokens) if trainable_params and tokens else 0.0


def forward_flops(total_params, tokens):
    """2 N x tokens: prefill over prompt tokens, or decoding (one token per sequence per step)."""
    return float(2 * total_params * tokens)
