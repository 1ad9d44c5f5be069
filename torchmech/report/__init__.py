"""The chapter as a report: chapter (the claims judged, as a table, JSON and markdown), figures (one per
section, from the claims' runs), plots (the drawing) and page (the self-contained HTML). Imports
:mod:`torchmech.spec` and below; never :mod:`torchmech.learn` or :mod:`torchmech.check`."""
