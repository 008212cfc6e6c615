"""A tiny deterministic MMEngine run that saves a checkpoint every iteration.

Used in-process and from a killed subprocess (``python toy_runner.py
WORK_DIR MAX_ITERS RESUME MAX_KEEP KILL_AT``): with ``KILL_AT`` of the form
``NAME:N``, the process SIGKILLs itself when file ``NAME`` is about to be
renamed into place for the N-th time, i.e. with its temporary file complete
and the target not yet replaced.
"""
import os
import signal
import sys

import torch
import torch.nn as nn
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch.utils.data import Dataset


class ToyModel(BaseModel):

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(2, 1)

    def forward(self, x, mode='loss'):
        return {'loss': self.fc(x).pow(2).mean()}


class ToyData(Dataset):

    def __len__(self) -> int:
        return 8

    def __getitem__(self, i: int) -> dict:
        return dict(x=torch.tensor([float(i), 1.0 - i]))


def make_runner(work_dir: str, max_iters: int, resume: bool = False,
                max_keep: int = -1) -> Runner:
    torch.manual_seed(0)
    return Runner(
        model=ToyModel(),
        work_dir=work_dir,
        train_dataloader=dict(
            dataset=ToyData(),
            sampler=dict(type='DefaultSampler', shuffle=True),
            batch_size=2, num_workers=0,
            collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9)),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', interval=1, by_epoch=False,
                            max_keep_ckpts=max_keep),
            logger=dict(type='LoggerHook', interval=1)),
        resume=resume,
        default_scope='mmengine',
        randomness=dict(seed=0),
        log_level='WARNING')


def kill_before_renaming(name: str, nth: int) -> None:
    """SIGKILL this process when ``name`` is about to be renamed into place
    for the ``nth`` time."""
    replace, seen = os.replace, []

    def killing_replace(src, dst, *args, **kwargs):
        if os.path.basename(dst) == name:
            seen.append(dst)
            if len(seen) == nth:
                os.kill(os.getpid(), signal.SIGKILL)
        return replace(src, dst, *args, **kwargs)

    os.replace = killing_replace


if __name__ == '__main__':
    import ssql_mm  # noqa: F401  (applies the MMEngine patches)
    work_dir, max_iters, resume, max_keep, kill_at = sys.argv[1:6]
    if kill_at != '-':
        name, nth = kill_at.split(':')
        kill_before_renaming(name, int(nth))
    make_runner(work_dir, int(max_iters), resume == '1',
                int(max_keep)).train()
