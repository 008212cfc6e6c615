"""SSQL models: quantized backbones, self-supervised algorithms and the
batched view preprocessor."""
from .backbones import *  # noqa: F401,F403
from .data_preprocessors import *  # noqa: F401,F403
from .selfsup import *  # noqa: F401,F403
