"""Training-loop components: hooks, distributed set-up, train options."""
from .distributed import CPUDistributedDataParallel, setup_cpu_distributed
from .hooks import *  # noqa: F401,F403
from .train_setup import check_data_roots, merge_train_args

__all__ = [
    'CPUDistributedDataParallel', 'setup_cpu_distributed', 'check_data_roots',
    'merge_train_args'
]
