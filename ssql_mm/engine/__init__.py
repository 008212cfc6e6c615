"""Training-loop components: hooks, distributed set-up, train options."""
from .atomic_local_backend import AtomicLocalBackend
from .distributed import CPUDistributedDataParallel, setup_cpu_distributed
from .hooks import *  # noqa: F401,F403
from .random_state import (SeededSamples, capture_random_state,
                           restore_random_state)
from .train_setup import (add_random_state_hook, add_runner_args,
                          check_data_roots, ignore_per_image_warnings,
                          merge_runner_args, merge_test_args,
                          merge_train_args)

__all__ = [
    'AtomicLocalBackend',
    'CPUDistributedDataParallel', 'setup_cpu_distributed', 'check_data_roots',
    'add_runner_args', 'merge_runner_args', 'merge_test_args',
    'merge_train_args', 'ignore_per_image_warnings', 'SeededSamples',
    'capture_random_state', 'restore_random_state', 'add_random_state_hook'
]
