"""argparse types shared by the tools: each value is checked when the
command line is parsed, before any work starts, and a bad one is reported
by argparse in one line."""
import argparse
import math

from ssql_mm.quantization import observer_config
from ssql_mm.quantization.ptq import build_ptq

__all__ = ['positive_int', 'positive_float', 'observer_arg', 'ptq_arg']


def positive_int(text: str) -> int:
    """An integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected an integer, got {text!r}')
    if value < 1:
        raise argparse.ArgumentTypeError(f'must be >= 1, got {value}')
    return value


def positive_float(text: str) -> float:
    """A finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected a number, got {text!r}')
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(
            f'must be a finite number > 0, got {text}')
    return value


def observer_arg(text: str) -> str:
    """A calibration observer, ``'NAME'`` or ``'NAME:KEY=VALUE,...'``."""
    try:
        observer_config(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err))
    return text


def ptq_arg(text: str) -> str:
    """A post-training quantization method, ``'NAME'`` or
    ``'NAME:KEY=VALUE,...'`` (``adaround``, ``brecq``, ``qdrop``); names,
    arguments and their values are checked (building the method is cheap)."""
    try:
        build_ptq(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err))
    return text
