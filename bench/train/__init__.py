"""Training: the shared loop, its checkpoints, optimizers and schedules, plans and budgets,
scheduled sampling and the loss."""
