"""SSQL models: quantized backbones and self-supervised algorithms."""
from .backbones import *  # noqa: F401,F403
from .selfsup import *  # noqa: F401,F403
