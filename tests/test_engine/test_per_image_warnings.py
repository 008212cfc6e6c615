"""The tools silence exactly the per-image warning flood, nothing else."""
import warnings

import mmcv
import numpy as np

from ssql_mm.engine import ignore_per_image_warnings


def test_only_the_named_per_image_warning_is_ignored():
    img = np.random.default_rng(0).integers(0, 255, (8, 8, 3), np.uint8)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        mmcv.adjust_color(img, alpha=0.5, backend='pillow')
        assert [str(w.message) for w in caught] == [
            "Only use 'alpha' for pillow backend."]
        caught.clear()
        ignore_per_image_warnings()
        mmcv.adjust_color(img, alpha=0.5, backend='pillow')
        assert not caught
        # Same module, another message; same message, another module.
        warnings.warn_explicit('Another warning.', UserWarning,
                               'photometric.py', 1,
                               module='mmcv.image.photometric')
        warnings.warn_explicit("Only use 'alpha' for pillow backend.",
                               UserWarning, 'other.py', 1,
                               module='mmcv.image.other')
        assert len(caught) == 2
