"""Where and how code runs, the lowest layer: devices (which exist, the environment a result was measured in),
backends (eager, float64, bf16, compile, deterministic, CUDA variants; the tolerances that judge them), the
thread policy (how many CPU threads torch computes with) and the console (libraries kept quiet). Imports
nothing else of torchmech."""
