"""Prompt tuning: train a task's soft prompt and head on the frozen backbone, and evaluate tasks."""
