"""The architectures (HRM, TRM, the transformer baseline), their layers and registry, and reading
checkpoints (hrm's own and the reference code's). Knows nothing of training or evaluation."""
