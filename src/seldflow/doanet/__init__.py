"""DOAnet and the Hungarian network (Hnet): class-agnostic DOA estimation trained with a differentiable tracking loss.

Adavanne, Politis and Virtanen (WASPAA 2021) train a CRNN that emits up to ``n_max`` unit DOA vectors per 100-ms
frame without class labels. The association between predicted and reference DOAs, which a permutation-invariant
loss would search for, is produced by a small frozen network (Hnet) that has learnt the Hungarian algorithm on
synthetic distance matrices; it makes the tracking figures (dMOTp, dMOTa) differentiable.

Library modules: :mod:`~seldflow.doanet.directions` (inactive-slot values, output normalisation),
:mod:`~seldflow.doanet.hnet_data` (Hnet training data), :mod:`~seldflow.doanet.model` (the CRNN, its registry and
checkpoints), :mod:`~seldflow.doanet.labels` (class-agnostic targets), :mod:`~seldflow.doanet.loss` (dMOT and MSE
losses), :mod:`~seldflow.doanet.settings` (the ``doanet`` configuration section), :mod:`~seldflow.doanet.store`
(feature files and standardisation), :mod:`~seldflow.doanet.outputs` (activity rules, prediction rows).

Workflow stages, each with its rule file ``rules/doanet_<stage>.smk``: :mod:`~seldflow.doanet.synthesis` (the
embedded dataset), :mod:`~seldflow.doanet.check` (bad input before any training), :mod:`~seldflow.doanet.augment`
(overlap augmentation), :mod:`~seldflow.doanet.features`, :mod:`~seldflow.doanet.hnet` (Hnet, its loss, weighted
F1, training, frozen checkpoint), :mod:`~seldflow.doanet.train` (one optimisation step and the epoch loop),
:mod:`~seldflow.doanet.infer`, :mod:`~seldflow.doanet.score`, :mod:`~seldflow.doanet.report`.
"""
