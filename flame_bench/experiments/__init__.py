"""Experiments: what flame-bench runs end to end. `compare` (train and evaluate systems head to head), `seeds`
(pool saved comparisons), the paper's `pilot` study, regression `gates` and speed `bench`."""
