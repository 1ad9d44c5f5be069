"""The specification: core (Context, the rules, Claim, Result), claims (the chapter's claims: the registry)
and runs (the chapter's runs, computed once per process and keyed by implementation). Imports
:mod:`torchmech.chapter` and :mod:`torchmech.runtime`."""
