"""Steps and pipelines the pipeline tests run (a module, so worker processes import it)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

import ctloop
from ctloop import pipeline, step


@step
def make_frame(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"x": rng.normal(size=n), "k": np.arange(n) % 3})


@step
def scale(df: pd.DataFrame, factor: float = 2.0) -> pd.DataFrame:
    return df.assign(x=df["x"] * factor)


@step
def summarise(df: pd.DataFrame) -> dict:
    ctloop.log_metric("rows", len(df))
    ctloop.log_param("summarised", "yes")
    print(f"summarising {len(df)} rows")
    print("a warning line", file=sys.stderr)
    return {"rows": len(df), "mean": round(float(df["x"].mean()), 12)}


@step
def to_array(df: pd.DataFrame) -> np.ndarray:
    return df.to_numpy()


@step(outputs=("low", "high"))
def split(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    return df[df["x"] < 0], df[df["x"] >= 0]


@pipeline
def numbers(n: int = 50, factor: float = 2.0, seed: int = 0):
    df = make_frame(n, seed=seed)
    scaled = scale(df, factor=factor)
    summarise(scaled)
    low, high = split(scaled)
    to_array(low)
    to_array(high)


# --- failures ----------------------------------------------------------------------------


@step
def explode(df: pd.DataFrame) -> pd.DataFrame:
    raise RuntimeError("the step blew up on purpose")


@pipeline
def half_broken(n: int = 10):
    df = make_frame(n)
    bad = explode(df)
    scale(bad)  # downstream of the failure: SKIPPED
    summarise(df)  # an independent branch: still runs


@step(retries=2, retry_delay=0.05)
def flaky(counter: str) -> int:
    """Fails until the third attempt (the attempts are counted in a file)."""
    path = Path(counter)
    n = int(path.read_text()) + 1 if path.exists() else 1
    path.write_text(str(n))
    if n < 3:
        raise ConnectionError(f"attempt {n} failed")
    return n


@pipeline
def retrying(counter: str):
    flaky(counter)


@step(timeout=1.5)
def sleepy(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@pipeline
def slow(seconds: float = 60.0):
    sleepy(seconds)


@step(cache=False)
def pid() -> int:
    return os.getpid()


@step
def nap(seconds: float, label: str) -> str:
    time.sleep(seconds)
    return label


@pipeline
def two_naps(seconds: float = 1.0):
    nap(seconds, "a")
    nap(seconds, "b")


@step(cache=False)
def report_pid_then_sleep(path: str, seconds: float) -> int:
    Path(path).write_text(str(os.getpid()))
    time.sleep(seconds)
    return os.getpid()


@pipeline
def long_nap(path: str, seconds: float = 120.0):
    report_pid_then_sleep(path, seconds)
