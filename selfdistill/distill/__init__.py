"""Distillation methods beyond plain SFT: logit KD, on-policy distillation, hidden-state alignment.

One part per file: `vocab.py` (the shared-vocabulary check), `hidden_align.py` (layer capture + learned
projection), `on_policy.py` (student-sampled completions), `objective.py` (the per-batch loss),
`trainer.py` (TRL SFTTrainer subclass) and `methods.py` (the `DISTILL_METHODS` table; the stage's `distill()` reads it). Importing this
package imports nothing heavy; see docs/distillation.md for which method to pick.
"""
