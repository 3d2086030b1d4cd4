"""RL options any config can switch on (issue #17), each in its own module:

- `dynamic_sampling`: DAPO's dynamic sampling, the pure batch functions (dead groups, row selection, merging
  sub-batches of different widths, refill sizes).
- `difficulty`: the per-prompt pass-rate store (persisted in the run directory) and the sampling weights it gives.
- `trainer`: `RLOptionsMixin`, the TRL GRPOTrainer mixin that uses both (refills, pass-rate recording).

The soft overlong penalty is a reward, `rewards.overlong` (registry name ``overlong``).
Nothing here imports torch or TRL at package import.
"""
