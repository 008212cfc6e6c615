"""SSQL models: quantized backbones, self-supervised algorithms and the
batched view preprocessor."""
from .backbones import *  # noqa: F401,F403
from .bit_setting import (BitSetting, LayerBits, load_bit_setting,
                          parse_bit_setting, parse_bit_settings,
                          save_bit_setting)
from .data_preprocessors import *  # noqa: F401,F403
from .pretrained import (CalibrationOptions, PretrainedBackbone,
                         load_pretrained)
from .selfsup import *  # noqa: F401,F403
