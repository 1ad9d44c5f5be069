"""The book's own code, section by section: graph (§1), glorot (§2), autodiff (§3), losses and models (§4),
capacity (§5), layers (§6), data/ and runs (§5–§8's procedures), train (the one loop), captured (§8's step as a
CUDA graph), lit and ignite_bonus (§9); recipes (how each run trains) and implementation (where each piece
comes from: the reference or a learner's). Imports only :mod:`torchmech.runtime`."""
