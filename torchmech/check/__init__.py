"""Backends and machines judged against the specification: conformance (the matrix claim × backend), diverge
(the first diverging operation), ladder (the setting that restores a failing claim), to_accuracy (seconds to
the chapter's quality), releases (the chapter on every release), bench (speed per device and per backend).
Imports :mod:`torchmech.spec` and below; never :mod:`torchmech.learn` or :mod:`torchmech.report`."""
