"""A checkpoint's backbone at a bit setting: see
:mod:`ssql_mm.models.pretrained`, its home (re-exported here for existing
imports)."""
from ssql_mm.models.pretrained import PretrainedBackbone, load_pretrained

__all__ = ['PretrainedBackbone', 'load_pretrained']
