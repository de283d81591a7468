"""Training: the shared loop (loop), its checkpoints (checkpoint), optimizers and schedules
(optim), stopping on a signal (signals), divergence checks (divergence), plans and budgets
(plans, budget), scheduled sampling (sampling) and the loss (loss)."""
