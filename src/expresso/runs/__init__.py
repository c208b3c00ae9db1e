"""Run folders: where a run's config, record, history, logs and checkpoints live."""
