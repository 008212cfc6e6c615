"""``python -m ssql_mm.compat``: print the MMEngine patches ``import
ssql_mm`` applies in this environment (``$SSQL_MM_PATCHES`` respected)."""
import ssql_mm  # noqa: F401  (applies the patches)
from ssql_mm.compat import describe_patches

print(describe_patches())
