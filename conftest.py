"""Test-wide settings. Environment variables set here reach the notebook kernels."""

import os

# Chapters that train read this and run their seconds-long `smoke` preset, so
# `pytest --nbval` stays fast on a CPU. The stored outputs come from real runs.
os.environ["VGGCOURSE_SMOKE"] = "1"
